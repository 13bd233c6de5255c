"""Grading workflows on a tiny course built here, so that each grading takes seconds.

The tiny worksheet has two graded cells; its hidden tests hold a marker
string that must never reach a student (check output, feedback).
"""

import csv
import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder import grading
from autograder.cli import run
from autograder.feedback import StripHiddenTests
from autograder.grade_all import grade_all
from autograder.student_check import check_notebook, format_check

MARKER = "HIDDEN_MARKER_7f3a"


def _cell(source, **nbgrader):
    cell = new_code_cell(source)
    if nbgrader:
        cell.metadata["nbgrader"] = {"schema_version": 3, "locked": not nbgrader.get("solution", False),
                                     "solution": False, "grade": False, **nbgrader}
    return cell


def tiny_solution():
    nb = new_notebook(cells=[
        new_markdown_cell("# Tiny worksheet"),
        _cell("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION", solution=True, grade_id="answer"),
        _cell('assert answer > 0, "answer should be positive"\n### BEGIN HIDDEN TESTS\n'
              f'assert answer == 42, "the answer is 42"  # {MARKER}\n### END HIDDEN TESTS',
              grade=True, grade_id="test_answer", points=1),
        _cell("### BEGIN SOLUTION\ndef double(x):\n    return 2 * x\n### END SOLUTION",
              solution=True, grade_id="double"),
        _cell('assert double(1) == 2, "double(1) should be 2"\n### BEGIN HIDDEN TESTS\n'
              f'assert double(-3) == -6  # {MARKER}\n### END HIDDEN TESTS',
              grade=True, grade_id="test_double", points=2),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def student_version(nb, answer="42", extra=""):
    """What a student hands in: solutions filled in, no hidden tests."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        cell.source = cell.source.split("### BEGIN HIDDEN TESTS")[0].rstrip()
        cell.source = cell.source.replace("answer = 42", f"answer = {answer}{extra}")
    return nb


@pytest.fixture
def course(tmp_path):
    solutions = tmp_path / "solutions" / "tiny"
    solutions.mkdir(parents=True)
    nbformat.write(tiny_solution(), solutions / "tiny.ipynb")
    return tmp_path


def submit(course, student, nb, assignment="tiny"):
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True)
    if nb is not None:
        nbformat.write(nb, folder / f"{assignment}.ipynb")
    return folder / f"{assignment}.ipynb"


# --- grade: one submission ------------------------------------------------------

def test_grade_restores_hidden_tests_and_matches_nbgrader_autograde(course):
    """Per-cell scores equal those of a plain `nbgrader autograde` in a real course."""
    from autograder.course import nbgrader_api

    wrong = student_version(tiny_solution(), answer="7")
    path = submit(course, "sam", wrong)
    report = grading.grade_submission(path, solutions=course / "solutions")
    assert [(c["name"], c["score"], c["max_score"]) for c in report["cells"]] == [
        ("test_answer", 0.0, 1.0), ("test_double", 2.0, 2.0)]
    assert report["cells"][0]["message"] == "AssertionError: the answer is 42"
    assert (report["score"], report["max_score"]) == (2.0, 3.0)
    assert {"device", "versions", "seeds", "seconds"} <= report.keys()
    assert report["versions"]["nbgrader"].startswith("0.9")

    api = nbgrader_api(course)
    assert api.generate_assignment("tiny")["success"]
    assert api.autograde("tiny", "sam")["success"]
    with api.gradebook as gb:
        nb = gb.find_submission_notebook("tiny", "tiny", "sam")
        assert sorted((g.name, g.score) for g in nb.grades) == [("test_answer", 0.0), ("test_double", 2.0)]


def test_grade_cli_prints_a_summary_and_writes_json(course, tmp_path, capsys):
    path = submit(course, "sam", student_version(tiny_solution()))
    out = tmp_path / "report.json"
    assert run(["grade", str(path), "--solutions", str(course / "solutions"), "--json", str(out)]) == 0
    assert "tiny: 3 / 3 points" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["score"] == report["max_score"] == 3.0
    assert {"score", "max_score", "cells", "device", "versions", "seconds"} <= report.keys()


@pytest.mark.parametrize("make, expected", [
    (lambda d: d / "missing.ipynb", "no notebook at {path}."),
    (lambda d: (d / "notes.ipynb").write_text("these are my notes") and d / "notes.ipynb",
     "{path} is not a Jupyter notebook ("),
    (lambda d: d, "{path} is a folder; give the path of a .ipynb notebook."),
])
def test_grade_errors_are_one_sentence(tmp_path, capsys, make, expected):
    path = make(tmp_path)
    assert run(["grade", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("autograder: " + expected.format(path=path)) and err.count("\n") == 1


def test_grade_with_an_unknown_assignment_id(course, capsys):
    path = submit(course, "sam", student_version(tiny_solution()))
    assert run(["grade", str(path), "--assignment", "99_nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("autograder: unknown assignment '99_nope'; the course has 01_handdrawn_digits,")
    renamed = path.with_name("homework.ipynb")
    shutil.copy(path, renamed)
    shutil.move(str(path.parent), str(path.parent.with_name("hw")))
    assert run(["grade", str(renamed.parent.with_name("hw") / "homework.ipynb")]) == 2
    assert "cannot tell which worksheet homework.ipynb is; pass --assignment" in capsys.readouterr().err


# --- check: a student's visible tests -------------------------------------------

def test_check_runs_visible_tests_only(course, tmp_path):
    solution = tiny_solution()
    solution.cells[2].source += f"\nopen('{tmp_path}/hidden_ran', 'w')"  # inside the hidden block
    solution.cells[2].source = solution.cells[2].source.replace(
        "\nopen(", "\n### BEGIN HIDDEN TESTS\nopen(") + "\n### END HIDDEN TESTS"
    nbformat.write(solution, tmp_path / "with_hidden.ipynb")
    report = check_notebook(tmp_path / "with_hidden.ipynb")
    assert not (tmp_path / "hidden_ran").exists()
    assert [(t["name"], t["score"]) for t in report["tests"]] == [("test_answer", 1.0), ("test_double", 2.0)]

    broken = student_version(tiny_solution(), answer="-1")
    nbformat.write(broken, tmp_path / "broken.ipynb")
    text = format_check(check_notebook(tmp_path / "broken.ipynb"))
    assert "FAIL  test_answer" in text and "AssertionError: answer should be positive" in text
    assert "Visible tests: 2 / 3 points." in text and "Hidden tests will also be run at grading" in text
    assert MARKER not in text


def test_check_cli_exit_status(tmp_path, capsys):
    nbformat.write(student_version(tiny_solution()), tmp_path / "ok.ipynb")
    assert run(["check", str(tmp_path / "ok.ipynb")]) == 0
    assert run(["check", str(tmp_path / "absent.ipynb")]) == 2
    assert capsys.readouterr().err.strip() == f"autograder: no notebook at {tmp_path / 'absent.ipynb'}."


# --- grade-all and feedback -----------------------------------------------------

def test_grade_all_records_every_outcome_and_is_idempotent(course, capsys):
    submit(course, "ada", student_version(tiny_solution()))
    submit(course, "ben", student_version(tiny_solution(), answer="7"))
    submit(course, "cy", student_version(tiny_solution(), extra="\nimport os; os._exit(1)"))  # kernel dies
    submit(course, "dee", student_version(tiny_solution(), extra="\nimport time; time.sleep(120)"))
    submit(course, "eve", None)  # a folder without the notebook
    submit(course, "fay", student_version(tiny_solution()), assignment="99_unknown")

    outcomes = grade_all(course, workers=2, timeout=25, progress=False)
    assert outcomes["ada/tiny"]["score"] == 3.0 and outcomes["ben/tiny"]["score"] == 2.0
    assert outcomes["cy/tiny"]["status"] == "failed" and outcomes["cy/tiny"]["reason"]
    assert outcomes["dee/tiny"] == {"status": "failed", "reason": "timed out after 25 s",
                                    "sha256": outcomes["dee/tiny"]["sha256"]}
    assert outcomes["eve/tiny"] == {"status": "malformed", "reason": "missing notebook tiny.ipynb"}
    assert outcomes["fay/99_unknown"]["reason"] == "unknown assignment '99_unknown'"
    assert json.loads((course / "grade-all.json").read_text()) == outcomes

    rows = {r["student_id"]: r for r in csv.DictReader((course / "grades.csv").open())}
    assert float(rows["ada"]["score"]) == 3.0 and float(rows["ben"]["score"]) == 2.0

    from autograder.course import nbgrader_api
    with nbgrader_api(course).gradebook as gb:
        assert gb.find_submission("tiny", "ben").score == 2.0

    # Again: nothing changed, so nothing is regraded and the outcomes are the same.
    again = grade_all(course, workers=2, timeout=25, progress=False)
    assert {k: v for k, v in again.items() if k != "dee/tiny" and k != "cy/tiny"} == \
           {k: v for k, v in outcomes.items() if k != "dee/tiny" and k != "cy/tiny"}
    assert again["ada/tiny"]["seconds"] == outcomes["ada/tiny"]["seconds"]  # not regraded

    # Feedback: the results and messages, never the hidden tests.
    assert run(["feedback", "--root", str(course)]) == 0
    pages = sorted((course / "feedback").glob("*/tiny/tiny.html"))
    assert [p.parts[-3] for p in pages] == ["ada", "ben"]
    for page in pages:
        assert MARKER not in page.read_text() and "HIDDEN TESTS" not in page.read_text()
    assert "the answer is 42" in pages[1].read_text()


def test_grade_all_without_submissions(tmp_path, capsys):
    assert run(["grade-all", "--root", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"autograder: no submissions: {tmp_path / 'submitted'} does not exist "
        "(nbgrader's submitted/<student>/<assignment>/).")


def test_strip_hidden_tests_on_a_hand_built_cell():
    cell = new_code_cell(f"assert x\n### BEGIN HIDDEN TESTS\nassert y  # {MARKER}\n### END HIDDEN TESTS\nprint(1)")
    cell.outputs = [nbformat.v4.new_output("error", ename="CheckFailed", evalue="Expected 3 layers",
                                           traceback=[f"----> 3 assert y  # {MARKER}"])]
    cell, _ = StripHiddenTests().preprocess_cell(cell, {}, 0)
    assert MARKER not in json.dumps(cell)
    assert cell.source == "assert x\n# Hidden tests ran here; their results are below.\nprint(1)"
    assert cell.outputs[0].traceback == ["CheckFailed: Expected 3 layers"]


def test_demo_submissions_are_independent_copies(tmp_path):
    """Each sample student gets its own notebook: ada's solution must not carry cy's mistake."""
    import nbformat as nbf

    from autograder.demo import COMMON_MISTAKES, make_submissions

    submitted = make_submissions(tmp_path)
    for assignment_id, ((old, new), _, _) in COMMON_MISTAKES.items():
        ada = nbf.read(submitted / "ada" / assignment_id / f"{assignment_id}.ipynb", as_version=4)
        cy = nbf.read(submitted / "cy" / assignment_id / f"{assignment_id}.ipynb", as_version=4)
        ada_text = "\n".join(c.source for c in ada.cells)
        cy_text = "\n".join(c.source for c in cy.cells)
        assert new not in ada_text and new in cy_text
        assert "BEGIN HIDDEN TESTS" not in ada_text + cy_text


def test_check_reports_a_dead_kernel_in_one_sentence(tmp_path, capsys):
    nbformat.write(student_version(tiny_solution(), extra="\nimport os; os._exit(1)"), tmp_path / "dies.ipynb")
    assert run(["check", str(tmp_path / "dies.ipynb")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("autograder: the kernel died while running dies.ipynb") and err.count("\n") == 1
