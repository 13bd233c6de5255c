"""`autograder check`: a student's fast local feedback on the visible tests.

The notebook runs top to bottom in a fresh kernel, the way the grader will
run it: the course's own configuration (`course_config`: time limits, the
jail, the stderr filter) and the grading run's own steps (`pipeline.check_steps`:
hidden tests out first, no grader-only step), run by `record.run_steps`.
Where bubblewrap works the kernel is jailed as at grading; elsewhere (macOS)
it runs as in Jupyter, with a one-line notice. Each test cell is scored as
nbgrader scores it. While it runs, a line says which cell and section.
"""

import sys
import time
from pathlib import Path

from . import UserError
from .run import course_config, pipeline, safe_files
from .run.record import build_steps, cell_lines, report, run_steps, sections


def read_notebook(path, with_notes=False):
    """The notebook at ``path`` (read safely, repaired where it can be; with the notes of what was
    repaired), or a UserError in one sentence."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise UserError(f"no notebook at {path}.")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give the path of a .ipynb notebook.")
    try:
        nb, notes = safe_files.read_notebook(path)
    except safe_files.Refused as e:
        raise UserError(f"{path} is not a Jupyter notebook ({e}).") from None
    return (nb, notes) if with_notes else nb


STDERR = object()  # the terminal's stream when a `Progress` starts (pytest swaps sys.stderr, and closes its own)


class Progress:
    """Which cell runs, in which section: one status line on ``stream`` while the notebook runs (none
    without a stream: Validate's dialog asks for ``line`` instead)."""

    def __init__(self, nb, stream=STDERR):
        self.titles = sections(nb)
        self.total = sum(c.cell_type == "code" for c in nb.cells)
        self.code_index = {i: n for n, i in enumerate(i for i, c in enumerate(nb.cells) if c.cell_type == "code")}
        # sys.stderr as it is now, not as it was at import (a stream pytest had closed stayed the default);
        # None: no terminal, the lab's Validate.
        self.stream = stream = sys.stderr if stream is STDERR else stream
        self.started = time.perf_counter()
        self.last_section = None
        self.tty = stream is not None and stream.isatty()
        self.line = "starting the kernel"

    @property
    def seconds(self):
        return time.perf_counter() - self.started

    def __call__(self, cell, cell_index, **_):
        if cell.cell_type != "code":
            return
        section = self.titles[cell_index] or "start"
        self.line = f"cell {self.code_index[cell_index] + 1}/{self.total} · {section}"
        text = f"  {self.line} · {self.seconds:.0f} s"
        if self.stream is None:
            return
        if self.tty:
            self.stream.write("\r" + text[:110].ljust(110))
        elif section != self.last_section:
            self.stream.write(text + "\n")
        self.last_section = section
        self.stream.flush()

    def done(self):
        if self.tty:
            self.stream.write("\r" + " " * 110 + "\r")
            self.stream.flush()


def check_config(path, sandbox="auto", verbose=False):
    """The course's configuration for checking the notebook at ``path`` on a student's machine."""
    config = course_config.for_notebook(path)
    config.SandboxedExecute.sandbox = sandbox  # a laptop without bubblewrap still gets its feedback
    config.SandboxedExecute.show_kernel_output = verbose
    config.SandboxedExecute.nbgrader_execution = "validate"
    return config


def run_check(nb, folder, name, config, on_cell_start=None):
    """The check steps over ``nb`` as if it lay in ``folder``; the executed notebook."""
    steps = build_steps(pipeline.check_steps(config), config=config)
    for step in steps:
        if on_cell_start is not None and hasattr(step, "on_cell_start"):
            step.on_cell_start = on_cell_start
    resources = {"metadata": {"path": str(Path(folder).resolve())}, "unique_key": name}
    nb, _ = run_steps(nb, resources, steps)
    return nb


def check_notebook(path, sandbox="auto", progress=True, verbose=False):
    """Run ``path``'s visible tests in a fresh kernel; return the report."""
    path = Path(path)
    nb = read_notebook(path)
    status = Progress(nb) if progress else None
    try:
        nb = run_check(nb, path.parent, path.stem, check_config(path, sandbox, verbose), status)
    finally:
        if status is not None:
            status.done()
    return {"notebook": str(path), **report(nb)}


def format_check(report):
    lines = [f"Checked {report['notebook']} in {report['seconds']:.0f} s on {report['device']}."]
    if report.get("fault"):
        lines.append(f"  The run stopped early: {report['fault']}.")
    lines += cell_lines(report)
    lines.append(f"Visible tests: {report['score']:g} / {report['max_score']:g} points.")
    lines.append("Hidden tests will also be run at grading (accuracy on held-out data, exact architectures).")
    return "\n".join(lines)
