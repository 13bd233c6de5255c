"""The four worksheets: the release is clean and in sync, and nbgrader grades them right.

The grading tests execute whole notebooks through nbgrader autograde on the
real data (a few minutes on 2 CPU cores); `-m "not slow"` skips them.
"""

import json
import re
import shutil

import nbformat
import pytest

from autograder import course
from autograder.demo import COMMON_MISTAKES, with_mistake
from autograder.grading import grade_submission

IDS = ["01_handdrawn_digits", "02_fashion_mnist", "03_imdb_regularization", "04_lstm_sentiment"]
BLOCK = {
    "solution": re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S),
    "hidden": re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S),
}


def notebook(root, assignment_id):
    return nbformat.read(root / assignment_id / f"{assignment_id}.ipynb", as_version=4)


def protected_lines(assignment_id, kind):
    """Lines inside solution or hidden-test blocks that say something specific."""
    lines = set()
    for cell in notebook(course.SOLUTIONS, assignment_id).cells:
        for block in BLOCK[kind].findall(cell.source):
            lines.update(line.strip() for line in block.splitlines() if len(line.strip()) > 12)
    return lines - {"return results"}


def test_the_course_has_the_four_worksheets():
    assert course.worksheet_ids() == IDS


@pytest.mark.parametrize("assignment_id", IDS)
def test_release_has_no_solution_code_and_no_hidden_tests(assignment_id):
    released = notebook(course.ASSIGNMENTS, assignment_id)
    text = "\n".join(cell.source for cell in released.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    for kind in ("solution", "hidden"):
        leaked = {line for line in protected_lines(assignment_id, kind) if line in text}
        assert not leaked, f"{kind} lines in the release: {sorted(leaked)[:3]}"
    code = "\n".join(cell.source for cell in released.cells if cell.cell_type == "code")
    assert code.count("# YOUR CODE HERE") == sum(
        "### BEGIN SOLUTION" in c.source for c in notebook(course.SOLUTIONS, assignment_id).cells)


def test_regenerating_the_release_gives_no_diff(tmp_path):
    shutil.copytree(course.SOLUTIONS, tmp_path / "solutions")
    course.release(root=tmp_path)
    for assignment_id in IDS:
        committed = sorted(p.relative_to(course.ASSIGNMENTS) for p in (course.ASSIGNMENTS / assignment_id).rglob("*"))
        fresh = sorted(p.relative_to(tmp_path / "assignments") for p in (tmp_path / "assignments" / assignment_id).rglob("*"))
        assert committed == fresh
        for rel in committed:
            a, b = course.ASSIGNMENTS / rel, tmp_path / "assignments" / rel
            if a.is_file():
                assert a.read_bytes() == b.read_bytes(), f"{rel} differs: run `autograder release`"


# --- grading through nbgrader ---------------------------------------------------

@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """grade_submission, memoised per (kind, assignment), so each notebook runs once."""
    cache = {}

    def grade(kind, assignment_id):
        key = (kind, assignment_id)
        if key not in cache:
            folder = tmp_path_factory.mktemp(f"{kind}-{assignment_id}")
            source = course.SOLUTIONS if kind != "untouched" else course.ASSIGNMENTS
            shutil.copytree(source / assignment_id, folder / assignment_id)
            path = folder / assignment_id / f"{assignment_id}.ipynb"
            if kind == "mistake":
                nbformat.write(with_mistake(nbformat.read(path, as_version=4), assignment_id), path)
            cache[key] = grade_submission(path, assignment_id)
            print(json.dumps(cache[key], indent=1))
        return cache[key]

    return grade


def scores(report):
    return {cell["name"]: (cell["score"], cell["max_score"]) for cell in report["cells"]}


@pytest.mark.slow
@pytest.mark.parametrize("assignment_id", IDS)
def test_solution_gets_full_marks(graded, assignment_id):
    report = graded("solution", assignment_id)
    lost = {name: s for name, s in scores(report).items() if s[0] != s[1]}
    assert not lost, f"{assignment_id} solution lost points: {lost}\n" + json.dumps(report["cells"], indent=1)
    assert report["score"] == report["max_score"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("assignment_id", IDS)
def test_untouched_release_scores_zero_everywhere(graded, assignment_id):
    report = graded("untouched", assignment_id)
    assert report["max_score"] > 0 and report["cells"]
    assert all(cell["score"] == 0 for cell in report["cells"]), report["cells"]


@pytest.mark.slow
@pytest.mark.parametrize("assignment_id", IDS)
def test_a_common_mistake_loses_exactly_its_points(graded, assignment_id):
    _, losing, _ = COMMON_MISTAKES[assignment_id]
    report = graded("mistake", assignment_id)
    full = scores(graded("solution", assignment_id))
    for name, (score, max_score) in scores(report).items():
        expected = 0 if name in losing else full[name][0]
        assert score == expected, f"{name}: {score}/{max_score}, expected {expected}\n{report['cells']}"
        if name in losing:
            assert next(c["message"] for c in report["cells"] if c["name"] == name)
