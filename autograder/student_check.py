"""`autograder check`: a student's fast local feedback on the visible tests.

The notebook runs top to bottom in a fresh kernel, in its own folder, the way
the grader will run it. Only the tests in the notebook run: hidden-test
blocks, if any, are removed first by nbgrader's ClearHiddenTests. Each test
cell is scored as nbgrader scores it, after the same IgnorePattern step.
"""

import time
from pathlib import Path

from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.preprocessors import ClearHiddenTests, IgnorePattern
from nbgrader.utils import determine_grade, is_grade, is_solution

from . import host
from .course import UserError, nbgrader_config
from .grading import cell_messages, read_notebook


def check_notebook(path):
    """Run ``path`` in a fresh kernel; return the visible-test report."""
    path = Path(path)
    nb = read_notebook(path)
    config = nbgrader_config()
    host.configure_kernels()
    nb, _ = ClearHiddenTests(config=config).preprocess(nb, {})
    started = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=config.Execute.timeout,
        allow_errors=True,  # report every test, not just the first failure
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    try:
        client.execute()
    except DeadKernelError:
        raise UserError(f"the kernel died while running {path.name} (out of memory, or os._exit in a cell?); "
                        "nothing was scored.") from None
    except CellTimeoutError:
        raise UserError(f"a cell of {path.name} ran longer than {config.Execute.timeout} s; "
                        "nothing was scored.") from None
    nb, _ = IgnorePattern(config=config).preprocess(nb, {})
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
        "seconds": round(time.perf_counter() - started, 1),
        "device": host.device(),
    }


def format_check(report):
    lines = [f"Checked {report['notebook']} in {report['seconds']:.0f} s on {report['device']}."]
    for test in report["tests"]:
        ok = test["score"] == test["max_score"]
        lines.append(f"  {'pass' if ok else 'FAIL'}  {test['name']:<28} {test['score']:g}/{test['max_score']:g}")
        if not ok and test["message"]:
            lines.extend("        " + line for line in test["message"].splitlines()[:6])
    lines.append(f"Visible tests: {report['score']:g} / {report['max_score']:g} points.")
    lines.append("Hidden tests will also be run at grading (accuracy on held-out data, exact architectures).")
    return "\n".join(lines)
