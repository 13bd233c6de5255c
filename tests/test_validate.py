"""nbgrader's Validate and `autograder check` agree when TensorFlow logs in a test cell.

TensorFlow writes its absl lines ("I0000 ... oneDNN custom operations are
on") to the kernel's stderr when it loads; nbgrader fails a test cell with
any stderr output. nbgrader_config.py starts kernels with ipykernel's
`capture_fd_output` off, so those C-level lines stay in the kernel's log,
for Validate's kernels as for grading's and `check`'s: both callers of
Validate, `nbgrader validate` and JupyterLab's Validate button, then pass
what `check` passes.
"""

import os
import subprocess
import sys

import nbformat
import pytest
from lab_server import LabServer
from tiny_course import make_course, student_version, tiny_solution


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course with the project's configuration (as `autograder lab` gives it) and a checked notebook."""
    from autograder.visible_tests import check_notebook

    course = make_course(tmp_path_factory.mktemp("validate") / "course")
    solution = tiny_solution()
    solution.cells[2].source = "import keras\nkeras.ops.zeros((1, 3))\n" + solution.cells[2].source
    path = course / "work" / "tiny.ipynb"
    path.parent.mkdir()
    nbformat.write(student_version(solution), path)
    report = check_notebook(path, progress=False)
    assert report["score"] == report["max_score"] == 3
    return course


def test_nbgrader_validate_passes_what_check_passes(course):
    # ipykernel leaves stderr uncaptured under pytest (PYTEST_CURRENT_TEST): unset, its kernel behaves as a user's.
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    done = subprocess.run([sys.executable, "-m", "nbgrader", "validate", "work/tiny.ipynb"], cwd=course, env=env,
                          capture_output=True, text=True, timeout=600)
    assert "Success! Your notebook passes all the tests." in done.stdout, done.stdout + done.stderr


def test_the_validate_button_passes_what_check_passes_and_speaks_like_check(course, tmp_path):
    """Issue 15: Validate showed raw tracebacks through autograder/checks.py; now check's one message."""
    import json

    from autograder.visible_tests import check_notebook

    broken = course / "work" / "broken.ipynb"
    nbformat.write(student_version(tiny_solution(), answer="-1"), broken)
    expected = [f"{c['name']}: {c['message']}" for c in check_notebook(broken, progress=False)["cells"]
                if c["score"] < c["max_score"]]
    lab = LabServer(course, tmp_path).start()
    try:
        passing = lab.api("POST", "/assignments/validate?path=work/tiny.ipynb")
        failing = lab.api("POST", "/assignments/validate?path=work/broken.ipynb")
        absent = lab.api("POST", "/assignments/validate?path=work/absent.ipynb")
    finally:
        lab.stop()
    assert passing == {"success": True, "value": {}}  # no failed, changed or type-changed cells
    assert [cell["raw_error"] for cell in failing["value"]["failed"]] == expected == [
        "test_answer: AssertionError: answer should be positive"]
    assert "Traceback" not in json.dumps(failing) and "autograder/" not in json.dumps(failing)
    assert absent["success"] is False and "Traceback" not in absent["value"] and absent["value"].count("\n") == 0
