"""A tiny course built in a test's temporary folder, so that grading it takes seconds.

`tiny` has two answers and two test cells; each test cell has a visible part,
run in the student's kernel, and a hidden part, decided by the grader. The
hidden parts hold a marker string that must never reach a student.
"""

import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

MARKER = "HIDDEN_MARKER_7f3a"


def cell(source, **nbgrader):
    c = new_code_cell(source)
    if nbgrader:
        c.metadata["nbgrader"] = {"schema_version": 3, "locked": not nbgrader.get("solution", False),
                                  "solution": False, "grade": False, **nbgrader}
    return c


def hidden(lines):
    return f"\n### BEGIN HIDDEN TESTS\n{lines}  # {MARKER}\n### END HIDDEN TESTS"


def tiny_solution():
    nb = new_notebook(cells=[
        new_markdown_cell("# Tiny worksheet\n\n## 1. The answer"),
        cell("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION", solution=True, grade_id="answer"),
        cell('assert answer > 0, "answer should be positive"' + hidden("hidden.expect_value(answer, 42)"),
             grade=True, grade_id="test_answer", points=1),
        new_markdown_cell("## 2. Doubling"),
        cell("### BEGIN SOLUTION\ndef double(x):\n    return 2 * x\n### END SOLUTION", solution=True, grade_id="double"),
        cell('assert double(1) == 2, "double(1) should be 2"'
             + hidden("hidden.expect_returns(double, [[-3], [0.5]], [-6, 1.0])"),
             grade=True, grade_id="test_double", points=2),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def student_version(nb, answer="42", extra="", double="2 * x"):
    """What a student hands in: solutions filled in (answer, an extra line), no hidden tests."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for c in nb.cells:
        c.source = c.source.split("\n### BEGIN HIDDEN TESTS")[0]
        c.source = c.source.replace("### BEGIN SOLUTION\n", "").replace("\n### END SOLUTION", "")
        c.source = c.source.replace("answer = 42", f"answer = {answer}{extra}").replace("2 * x", double)
    return nb


PROJECT_CONFIG = Path(__file__).resolve().parents[1] / "nbgrader_config.py"


def make_course(root, solution=None, assignment="tiny", config=""):
    """``root/solutions/<assignment>/<assignment>.ipynb``, and the project's nbgrader_config.py
    (rooted wherever it lies) followed by ``config`` lines; returns ``root``."""
    folder = Path(root) / "solutions" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(solution or tiny_solution(), folder / f"{assignment}.ipynb")
    (Path(root) / "nbgrader_config.py").write_text(PROJECT_CONFIG.read_text() + "\n" + config)
    return Path(root)


def submit(course, student, nb, assignment="tiny", timestamp=None):
    folder = Path(course) / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    if nb is not None:
        nbformat.write(nb, folder / f"{assignment}.ipynb")
    if timestamp:
        (folder / "timestamp.txt").write_text(timestamp)
    return folder / f"{assignment}.ipynb"
