"""Hidden-test regions of a cell, found line by line as nbgrader's ClearHiddenTests finds them.

The markers are nbgrader's own settings, `ClearHiddenTests.begin_test_delimeter`
and `end_test_delimeter`, read from the course's configuration, so a course
states them once. A line that contains the begin marker opens a region and a
line that contains the end marker closes it; both lines belong to the region.
One pass over the lines: the time is linear in the cell's length, whatever a
student writes (a regular expression with ``.*?`` between the markers was
quadratic on a cell of 40,000 begin lines).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Markers:
    begin: str = "BEGIN HIDDEN TESTS"
    end: str = "END HIDDEN TESTS"

    @classmethod
    def from_config(cls, config):
        """The markers a traitlets Config sets for nbgrader's ClearHiddenTests (its defaults otherwise)."""
        section = config.get("ClearHiddenTests", {}) if config is not None else {}
        return cls(section.get("begin_test_delimeter", cls.begin), section.get("end_test_delimeter", cls.end))

    def split(self, source):
        """``(visible lines, [region bodies])``: the source without its regions, and what each region holds."""
        visible, regions, body = [], [], None
        for line in source.split("\n"):
            if body is None:
                if self.begin in line:
                    body = []
                else:
                    visible.append(line)
            elif self.end in line:
                regions.append("\n".join(body))
                body = None
            else:
                body.append(line)
        if body is not None:  # never closed: hidden to the end, as far as the kernel is concerned
            regions.append("\n".join(body))
        return visible, regions

    def visible(self, source):
        """What the student's kernel runs of a cell."""
        return "\n".join(self.split(source)[0])

    def blocks(self, source):
        """The body of each hidden region."""
        return self.split(source)[1]

    def replace(self, source, placeholder):
        """The source with each region replaced by ``placeholder`` (a line of its own)."""
        out, inside = [], False
        for line in source.split("\n"):
            if not inside and self.begin in line:
                inside = True
                out.append(placeholder.rstrip("\n"))
            elif inside:
                inside = self.end not in line
            else:
                out.append(line)
        return "\n".join(out)

    def present(self, source):
        return self.begin in source
