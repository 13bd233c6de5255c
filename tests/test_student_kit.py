"""The student kit: what students install holds no answers, no hidden tests and no hidden data."""

import hashlib
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from tiny_course import student_version, tiny_solution

from autograder.grader.course import SOLUTIONS, worksheet_ids
from autograder.grader.hidden_tests.drawings import HIDDEN_SET
from autograder.run import kit

BLOCKS = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END (?:SOLUTION|HIDDEN TESTS)", re.S)
REFERENCE_NAMES = ("def multi_hot", "def imdb_encode", "def nearest_mnist_labels", "heldout", "hidden_check",
                   "grading_set", "draw_example_set")


def protected_lines():
    """Lines of the solutions and hidden tests that say something specific."""
    lines = set()
    for assignment_id in worksheet_ids():
        nb = nbformat.read(SOLUTIONS / assignment_id / f"{assignment_id}.ipynb", as_version=4)
        for c in nb.cells:
            for _, block in BLOCKS.findall(c.source):
                lines |= {line.strip() for line in block.splitlines() if len(line.strip()) > 20}
    return lines


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The kit's wheel installed into a fresh virtualenv that borrows only third-party packages."""
    tmp = tmp_path_factory.mktemp("kit")
    wheel = kit.build_wheel(tmp / "dist")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    # numpy, keras, nbgrader... from this environment; `autograder` only from the wheel.
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    str(wheel)], check=True)
    return venv, site / "autograder", wheel


def test_the_wheel_is_the_kit_and_nothing_else(installed):
    _, package, wheel = installed
    names = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert "checks.py" in names and "datasets/mnist.py" in names and "datasets/manifest.json" in names
    assert not [n for n in names if n.startswith("grader/")], names
    assert wheel.name.startswith("autograder_student-")


def test_the_kit_holds_no_solution_hidden_test_reference_or_hidden_data(installed):
    _, package, _ = installed
    texts = {p: p.read_bytes() for p in package.rglob("*") if p.is_file()}
    code = b"\n".join(texts.values()).decode("utf-8", errors="ignore")
    leaked = sorted(line for line in protected_lines() if line in code)
    assert not leaked, leaked[:5]
    assert not [name for name in REFERENCE_NAMES if name in code]
    hidden = {hashlib.sha256(p.read_bytes()).hexdigest() for p in HIDDEN_SET.iterdir() if p.is_file()}
    assert not hidden & {hashlib.sha256(b).hexdigest() for b in texts.values()}
    assert not [p for p in texts if p.suffix.lower() in (".png", ".jpg", ".jpeg")]


def test_the_kit_checks_notebooks_and_refuses_to_grade(installed, tmp_path):
    venv, package, _ = installed
    nbformat.write(student_version(tiny_solution()), tmp_path / "tiny.ipynb")
    autograder = str(venv / "bin" / "autograder")
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import autograder; print(autograder.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    assert Path(where).parent == package
    done = subprocess.run([autograder, "check", str(tmp_path / "tiny.ipynb")], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Visible tests: 3 / 3 points." in done.stdout
    refused = subprocess.run([autograder, "grade", str(tmp_path / "tiny.ipynb")], capture_output=True, text=True,
                             cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == ("autograder: `grade` is for instructors; this is the student kit, which can `check` "
                              "notebooks and fetch `data`.\n")


def test_a_course_configuration_holding_a_secret_never_travels_with_the_kit(tmp_path):
    """The kit carries nbgrader_config.py to every student, and graded kernels read its copy in /tmp (red team)."""
    from autograder import UserError
    from autograder.run.kit import refuse_secrets

    for line in ('c.PlanHiddenTests.secret = "s3cret"', 'c.CourseDirectory.db_url = "postgresql://u:pw@db/course"'):
        config = tmp_path / "nbgrader_config.py"
        config.write_text(f"c = get_config()\n{line}\n")
        with pytest.raises(UserError, match="holds a secret"):
            refuse_secrets(config)
    config.write_text('c = get_config()\nc.CourseDirectory.db_url = "sqlite:////srv/course/gradebook.db"\n')
    refuse_secrets(config)


def test_validate_progress_names_the_cell_that_runs(tmp_path):
    """What the Validate button's label shows while a notebook runs (autograder/validate.py): the cell and
    its section, from the run itself (issue 22: a grey "Validating..." for 40 s)."""
    import threading
    import time

    from tiny_course import student_version, tiny_solution

    from autograder import validate

    nb = student_version(tiny_solution(), answer="__import__('time').sleep(4) or 42")
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    seen = set()
    worker = threading.Thread(target=validate.CheckValidator().validate, args=(str(path),))
    worker.start()
    while worker.is_alive():
        progress = validate.RUNNING.get(str(path.resolve()))
        if progress is not None:
            seen.add(progress.line)
        time.sleep(0.1)
    assert "cell 1/4 · 1. The answer" in seen, seen
    assert str(path.resolve()) not in validate.RUNNING  # nothing left once it ends
