"""`autograder drawings check DIR`: how the course reads a set of hand-drawn digits, before class.

Each worksheet whose hidden tests read the instructor's drawings
(`hidden.expect_handdrawn_accuracy`) is graded here as a grading host grades
it before a class: its reference solution runs in the jail with DIR as the
course's drawings (`reference`), and must read the worksheet's floor plus the
calibrated margin. A verdict that passes is kept as this host's, so the
class's grading does not run it again.

What the instructor reads: each worksheet's accuracy against its floor, the
drawings the references misread, the floor the set supports, and a contact
sheet (HTML, images inline) with each drawing, what the reference's
`load_digit` made of it and each network's reading, misread ones first.
"""

import base64
import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from ... import UserError
from ...handdrawn import labelled_images
from ..course import course_settings, nbgrader_config, source_folder
from ..hidden_tests.drawings import (
    HANDDRAWN_CHECK,
    drawing_problems,
    reads_course_drawings,
)

FLOOR_STEP = 0.05  # floors are suggested in these steps
SHOWN = 12  # misread drawings named on the terminal; the contact sheet shows them all


@dataclass
class Reading:
    """One worksheet's reference on the set: its accuracy, what it must reach, each drawing's reading."""

    worksheet: str
    accuracy: float
    floor: float
    required: float
    drawings: list = field(default_factory=list)  # {"name", "label", "read", "image"} per drawing

    @property
    def ok(self):
        return self.accuracy >= self.required

    @property
    def supported_floor(self):
        """The highest floor, in steps of FLOOR_STEP, that the reference clears on this set by its margin."""
        steps = math.floor(round((self.accuracy - (self.required - self.floor)) / FLOOR_STEP, 6))
        return round(max(steps, 0) * FLOOR_STEP, 2)

    def line(self):
        right = sum(d["label"] == d["read"] for d in self.drawings)
        verdict = "ok" if self.ok else f"SHORT: this set supports a floor of at most {self.supported_floor:.2f}"
        return (f"{self.worksheet}: {self.accuracy:.3f} ({right} of {len(self.drawings)} read right); floor "
                f"{self.floor:.2f}, the reference must read {self.required:.2f}: {verdict}")


def drawing_worksheets(solutions):
    """The ids of the worksheets in ``solutions`` whose hidden tests read the instructor's drawings."""
    return sorted(p.parent.name for p in Path(solutions).glob("*/*.ipynb")
                  if p.stem == p.parent.name and reads_course_drawings(p))


def check_drawings(folder, root, worksheets=(), sheet=None, sandbox=True, timeout=None, say=print):
    """The `Reading` of each worksheet's reference on the drawings in ``folder``; writes the contact sheet."""
    from ..classroom.grade import HostFaultError, throwaway_course
    from ..classroom.reference import check_here

    folder = Path(folder).resolve()
    try:
        drawings = labelled_images(folder)
    except FileNotFoundError as e:
        raise UserError(str(e)) from None
    if not drawings:
        raise UserError(f"no drawings in {folder}: name each one after its digit, e.g. 7_1.png is a 7.")
    problems = drawing_problems(folder)
    if problems:
        raise UserError(f"{len(problems)} of the {len(drawings)} drawings in {folder} cannot be graded with: "
                        + "; ".join(problems[:SHOWN]) + ("; ..." if len(problems) > SHOWN else "")
                        + ". Fix or remove them.")
    config = nbgrader_config(root, **course_settings(root))
    solutions = source_folder(config)
    config.pop("CourseDirectory")
    reading = drawing_worksheets(solutions)
    if not reading:
        raise UserError(f"no worksheet in {solutions} grades hand-drawn digits (hidden.{HANDDRAWN_CHECK}).")
    others = [w for w in worksheets if w not in reading]
    if others:
        raise UserError(f"{', '.join(others)} does not grade hand-drawn digits; the worksheets that do: "
                        f"{', '.join(reading)}.")
    worksheets = list(worksheets) or reading
    config.PlanHiddenTests.drawings = str(folder)
    say(f"{len(drawings)} drawings in {folder}; the reference solutions of {', '.join(worksheets)} read them as a "
        "grading host would (about a minute each)")
    readings = []
    for worksheet in worksheets:
        with throwaway_course(worksheet, solutions, sandbox, config, timeout=timeout, say=say) as (_, settings):
            verdict = check_here(settings, worksheet, say=lambda line: None)
        found = next(iter(verdict.readings.values()), None)
        if found is None:
            raise HostFaultError(f"this host could not grade {worksheet}'s reference solution, so it cannot say how "
                                 f"it reads the drawings: {verdict.problem or 'its hidden tests never read them'}.")
        readings.append(Reading(worksheet, found["accuracy"], found["floor"], found["required"], found["drawings"]))
        say(readings[-1].line())
    write_contact_sheet(sheet or Path.cwd() / "drawings-check.html", folder, readings)
    return readings


def advice(readings):
    """What the instructor does next: the drawings to look at, the floors to set (one line each)."""
    lines = []
    misread = {}
    for r in readings:
        for d in r.drawings:
            if d["read"] != d["label"]:
                misread.setdefault(d["name"], []).append(f"{r.worksheet} read a {d['read']}")
    if misread:
        named = sorted(misread.items())
        lines.append(f"{len(misread)} drawing{'s' if len(misread) > 1 else ''} misread (redraw or remove them if they "
                     "are not clearly their digit): " + "; ".join(f"{name} ({', '.join(by)})" for name, by in named[:SHOWN])
                     + (f"; and {len(named) - SHOWN} more on the contact sheet" if len(named) > SHOWN else ""))
    short = [r for r in readings if not r.ok]
    if short:
        floors = ", ".join(f"{r.worksheet!r}: {r.supported_floor:.2f}" for r in short)
        lines.append(f"or grade this set with the floors it supports: c.PlanHiddenTests.drawings_floors = {{{floors}}} "
                     "in the course's nbgrader_config.py")
    return lines


def write_contact_sheet(path, folder, readings):
    """One HTML page: each drawing, what load_digit made of it and each reference's reading; misread first."""
    by_name = [{d["name"]: d for d in r.drawings} for r in readings]  # one lookup per reference
    names = {name: d for found in by_name for name, d in found.items()}
    wrong = {name: any(found[name]["read"] != found[name]["label"] for found in by_name if name in found)
             for name in names}
    rows = []
    for name in sorted(names, key=lambda n: (not wrong[n], n)):
        cells = [f"<td><img src='data:image/png;base64,{_thumbnail(folder / name)}' alt=''><br>"
                 f"{html.escape(name)}: a {names[name]['label']}</td>"]
        for found in by_name:
            d = found[name]
            mark = "right" if d["read"] == d["label"] else "wrong"
            cells.append(f"<td class='{mark}'><img class='digit' src='data:image/png;base64,{d['image']}' alt=''>"
                         f"<br>read {d['read']}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{html.escape(r.worksheet)}: load_digit and the reading<br>"
                   f"{html.escape(r.line().split(': ', 1)[1])}</th>" for r in readings)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Drawings check: {html.escape(folder.name)}</title>
<style>body{{font-family:sans-serif}} td,th{{padding:4px 10px;text-align:center;border-bottom:1px solid #ddd}}
img{{max-width:96px;max-height:96px}} img.digit{{width:84px;height:84px;image-rendering:pixelated;background:#000}}
.wrong{{background:#fdd}} .right{{background:#efe}}</style></head><body>
<h1>How the course reads {html.escape(str(folder))}</h1>
<p>{"<br>".join(html.escape(line) for line in [r.line() for r in readings] + advice(readings))}</p>
<table><tr><th>drawing</th>{head}</tr>
{chr(10).join(rows)}
</table></body></html>
"""
    return _write_private(Path(path), page)


def _write_private(path, text):
    """``text`` into ``path``, mode 0600, replacing whatever is there (a link is replaced, never followed): the
    sheet shows the hidden drawings with their labels."""
    import os
    import tempfile

    fd, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return path


def _thumbnail(path):
    """The drawing as the instructor sees it, upright, at most 96 pixels, as a base64 PNG."""
    from PIL import Image, ImageOps

    from ...run import safe_files
    from ..hidden_tests.drawings import MAX_DRAWING_BYTES

    try:
        with Image.open(io.BytesIO(safe_files.read_bytes(path, MAX_DRAWING_BYTES))) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
            img.thumbnail((96, 96))
            buffer = io.BytesIO()
            img.save(buffer, format="PNG")
    except Exception:  # changed since it was checked: the sheet shows no picture, the readings still
        return ""
    return base64.b64encode(buffer.getvalue()).decode()
