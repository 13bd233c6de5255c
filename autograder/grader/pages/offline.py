"""Steps that make the HTML pages students read (feedback, published worksheets) read well offline.

- `RenderMath`: the LaTeX between ``$...$`` and ``$$...$$`` in markdown cells
  becomes MathML at build time (latex2mathml), which browsers draw
  themselves: no MathJax, no CDN. Code spans and fenced code are left alone;
  anything latex2mathml cannot read stays as it was written.
- `WrapErrors`: every error output shows its message, not a traceback (the
  kit's frames are noise to a student), broken into lines that fit the page.
- `DropSolutionMarkers`: the lines that hold nbgrader's solution markers
  (`ClearSolutions`'s own settings) leave the published solution's code.
"""

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Integer

from ...run.record import wrap


def _math_spans(text):
    """``(start, end, tex, display)`` of each math span, in one pass (linear in the text)."""
    spans, i, n = [], 0, len(text)
    at_line_start = True
    while i < n:
        if at_line_start and text.startswith("```", i):  # a fenced block: skip to its end
            end = text.find("\n```", i + 3)
            i = n if end < 0 else end + 4
            continue
        ch = text[i]
        at_line_start = ch == "\n"
        if ch == "`":
            end = text.find("`", i + 1)
            i = n if end < 0 else end + 1
            continue
        if ch == "\\" and i + 1 < n:
            i += 2
            continue
        if ch == "$":
            display = text.startswith("$$", i)
            mark = "$$" if display else "$"
            end = text.find(mark, i + len(mark))
            if end > i + len(mark) and (display or "\n\n" not in text[i:end]):
                spans.append((i, end + len(mark), text[i + len(mark):end], display))
                i = end + len(mark)
                continue
        i += 1
    return spans


def render_math(text):
    """``text`` with its LaTeX turned into MathML."""
    from latex2mathml.converter import convert

    out, last = [], 0
    for start, end, tex, display in _math_spans(text):
        try:
            mathml = convert(tex.strip(), display="block" if display else "inline")
        except Exception:  # latex2mathml cannot read it: leave the source
            continue
        out += [text[last:start], mathml]
        last = end
    return "".join(out + [text[last:]])


class RenderMath(Preprocessor):
    """LaTeX in markdown cells, drawn as MathML at build time."""

    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown" and "$" in cell.source:
            cell.source = render_math(cell.source)
        return cell, resources


class WrapErrors(Preprocessor):
    """Error outputs as their message only, wrapped to the page."""

    enabled = Bool(True).tag(config=True)
    width = Integer(100, help="Characters per line of an error message.").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output.traceback = [wrap(f"{output.ename}: {output.evalue}", self.width)]
        return cell, resources


class DropSolutionMarkers(Preprocessor):
    """Solution code without nbgrader's marker lines."""

    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        section = self.config.get("ClearSolutions", {})
        markers = (section.get("begin_solution_delimeter", "BEGIN SOLUTION"),
                   section.get("end_solution_delimeter", "END SOLUTION"))
        if cell.cell_type == "code" and any(m in cell.source for m in markers):
            cell.source = "\n".join(line for line in cell.source.split("\n") if not any(m in line for m in markers))
        return cell, resources
