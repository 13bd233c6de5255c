"""`autograder check`: a student's fast local feedback on the visible tests.

The notebook runs top to bottom in a fresh kernel, the way the grader will
run it, through the grading pipeline's own steps (`pipeline.check_steps`):
hidden-test blocks out first (nbgrader's ClearHiddenTests), then the jailed
kernel where bubblewrap works (elsewhere, as on macOS, without one and with
a one-line notice), then the stderr filter. Each test cell is scored as
nbgrader scores it. While it runs, a line says which cell and section.
"""

import sys
import time
from pathlib import Path

import nbformat
from nbgrader.utils import determine_grade, is_grade, is_solution
from traitlets.config import Config
from traitlets.utils.importstring import import_item

from . import UserError, host, pipeline


def read_notebook(path):
    """The notebook at ``path``, or a UserError saying in one sentence what is wrong."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"no notebook at {path}.")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give the path of a .ipynb notebook.")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as e:  # nbformat raises json, unicode and validation errors alike
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path} is not a Jupyter notebook ({reason[:200]}).") from None


def sections(nb):
    """For each cell, the title of the last markdown heading above it."""
    titles, current = [], ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    current = line.lstrip("#").strip()
        titles.append(current)
    return titles


def cell_messages(nb):
    """grade_id -> what the student should read about each test cell.

    The first error (a hidden test's verdict comes first), else the last
    stderr line. When an answer cell between this test and the previous one
    raised, the message says so: the test's own error is only a consequence.
    """
    messages, answers, titles = {}, [], sections(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if is_solution(cell) and not is_grade(cell):
            answers.append((index, errors[0] if errors else None))
            continue
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if not grade_id or not is_grade(cell):
            continue
        text = ""
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                text = f"{output.ename}: {output.evalue}".strip()
                break
            if output.output_type == "stream" and output.name == "stderr" and output.text.strip():
                text = "the cell wrote to stderr: " + output.text.strip().splitlines()[-1]
        failed = [(i, e) for i, e in answers if e is not None]
        if text and failed and not text.startswith("NotRun"):
            i, error = failed[-1]
            where = f"the answer cell above ({titles[i]})" if titles[i] else "the answer cell above"
            text = (f"{where} was not filled in" if error.ename == "NotImplementedError"
                    else f"{where} raised {error.ename}: {error.evalue}".strip())
        messages[grade_id] = text
        answers = []
    return messages


class Progress:
    """One status line on stderr while the notebook runs: cell, section, seconds."""

    def __init__(self, nb, stream=sys.stderr):
        self.titles = sections(nb)
        self.total = sum(c.cell_type == "code" for c in nb.cells)
        self.code_index = {i: n for n, i in enumerate(i for i, c in enumerate(nb.cells) if c.cell_type == "code")}
        self.stream = stream
        self.started = time.perf_counter()
        self.last_section = None
        self.tty = stream.isatty()

    def __call__(self, cell, cell_index, **_):
        if cell.cell_type != "code":
            return
        section = self.titles[cell_index] or "start"
        elapsed = time.perf_counter() - self.started
        text = f"  cell {self.code_index[cell_index] + 1}/{self.total} · {section} · {elapsed:.0f} s"
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


def check_notebook(path, sandbox="auto", progress=True, verbose=False):
    """Run ``path``'s visible tests in a fresh kernel; return the report."""
    path = Path(path)
    nb = read_notebook(path)
    host.configure_kernels()
    config = Config()
    config.SandboxedExecute.sandbox = sandbox
    config.SandboxedExecute.show_kernel_output = verbose
    config.SandboxedExecute.work_on_copy = False  # the student's own folder; no hidden tests in it
    # Libraries' C-level log lines stay in the kernel's log, as at grading (nbgrader_config.py).
    config.SandboxedExecute.extra_arguments = ["--IPKernelApp.capture_fd_output=False"]
    config.FilterStderr.enabled = True
    steps = [import_item(name)(config=config) for name in pipeline.check_steps()]
    resources = {"metadata": {"path": str(path.parent.resolve())}, "unique_key": path.stem}
    status = Progress(nb) if progress else None
    started = time.perf_counter()
    for step in steps:
        if status is not None and hasattr(step, "on_cell_start"):
            step.on_cell_start = status
        try:
            # Called as nbconvert calls it: a step that is not enabled (nbconvert's
            # ClearMetadataPreprocessor, off in nbgrader too) is skipped; its
            # `preprocess` would drop the nbgrader metadata that marks the tests.
            nb, resources = step(nb, resources)
        finally:
            if status is not None and hasattr(step, "on_cell_start"):
                status.done()
    execution = resources.get("autograder", {}).get("execution", {})
    messages = cell_messages(nb)
    tests = []
    for cell in nb.cells:
        if is_grade(cell) and not is_solution(cell):
            score, max_score = determine_grade(cell)
            name = cell.metadata.nbgrader["grade_id"]
            tests.append({"name": name, "score": score, "max_score": max_score, "message": messages.get(name, "")})
    return {
        "notebook": str(path),
        "tests": tests,
        "score": sum(t["score"] for t in tests),
        "max_score": sum(t["max_score"] for t in tests),
        "fault": (execution.get("fault") or {}).get("reason"),
        "sandbox": (execution.get("sandbox") or {}).get("kind", "none"),
        "seconds": round(time.perf_counter() - started, 1),
        "device": host.device(),
    }


def format_check(report):
    lines = [f"Checked {report['notebook']} in {report['seconds']:.0f} s on {report['device']}."]
    if report.get("fault"):
        lines.append(f"  The run stopped early: {report['fault']}.")
    for test in report["tests"]:
        ok = test["score"] == test["max_score"]
        lines.append(f"  {'pass' if ok else 'FAIL'}  {test['name']:<28} {test['score']:g}/{test['max_score']:g}")
        if not ok and test["message"]:
            lines.extend("        " + line for line in test["message"].splitlines()[:6])
    lines.append(f"Visible tests: {report['score']:g} / {report['max_score']:g} points.")
    lines.append("Hidden tests will also be run at grading (accuracy on held-out data, exact architectures).")
    return "\n".join(lines)
