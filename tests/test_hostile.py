"""The hostile suite: every trick and fault in hostile.py gains no point it does not deserve.

Each course is graded once with grade-all (2 workers, the jail on), then
every case's scores, fault and flag are compared with what it deserves;
the feedback and the autograded notebooks must hold no hidden-test text,
and the gradebook must be as the grader left it.
"""

import json
import sqlite3

import nbformat
import pytest

from autograder.grader.feedback import generate_all
from autograder.grader.grade_all import grade_all
from hostile import MINI_FULL, mini_cases, mini_solution, tiny_cases
from tiny_course import MARKER, make_course, submit, tiny_solution

# Faults must show within a test run's patience: small limits, same code paths.
FAST_LIMITS = """
c.Execute.timeout = 15
c.SandboxedExecute.interrupt_grace = 3
c.SandboxedExecute.notebook_timeout = 180
c.SandboxedExecute.memory_limit = 1 * 2**30
"""


def slug(name):
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower())[:40]


def grade_cases(root, cases, solution, assignment):
    course = make_course(root, solution=solution, assignment=assignment, config=FAST_LIMITS)
    for case in cases:
        submit(course, slug(case.name), case.build(), assignment=assignment)
    outcomes = grade_all(course, workers=2, progress=False)
    return course, outcomes


def scores(course, student, assignment):
    from autograder.grader.course import nbgrader_api

    with nbgrader_api(course).gradebook as gb:
        notebook = gb.find_submission_notebook(assignment, assignment, student)
        return {g.name: g.score for g in notebook.grades}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return grade_cases(tmp_path_factory.mktemp("hostile-tiny"), tiny_cases(), tiny_solution(), "tiny")


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return grade_cases(tmp_path_factory.mktemp("hostile-mini"), mini_cases(), mini_solution(), "mini")


def check_case(graded, case, assignment):
    course, outcomes = graded
    student = slug(case.name)
    outcome = outcomes[f"{student}/{assignment}"]
    assert outcome["status"] == "graded", outcome
    found = scores(course, student, assignment)
    assert found == case.expected, f"{case.name}: {found} (expected {case.expected}); {outcome}"
    if case.fault:
        assert case.fault in (outcome.get("fault") or ""), outcome
    if case.flag:
        assert any(case.flag in f for f in outcome["flags"]), outcome
    else:
        assert not outcome["flags"], outcome
    autograded = course / "autograded" / student / assignment / f"{assignment}.ipynb"
    text = autograded.read_text()
    assert MARKER not in json.dumps([c.get("outputs", []) for c in nbformat.reads(text, 4).cells])
    assert len(text) < 3_000_000  # output was capped


@pytest.mark.slow
@pytest.mark.parametrize("case", tiny_cases(), ids=lambda c: slug(c.name))
def test_tiny_tricks_and_faults(tiny, case):
    check_case(tiny, case, "tiny")


@pytest.mark.slow
@pytest.mark.parametrize("case", mini_cases(), ids=lambda c: slug(c.name))
def test_model_tricks(mini, case):
    check_case(mini, case, "mini")


@pytest.mark.slow
def test_the_gradebook_and_feedback_stay_clean(tiny):
    course, outcomes = tiny
    db = sqlite3.connect(course / "gradebook.db")
    assert db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall() == []
    pages = generate_all(course)
    assert len(pages) == len(tiny_cases())
    for page in pages:
        html = page.read_text()
        # The hidden lines themselves; a student's own code may mention "BEGIN HIDDEN TESTS".
        assert MARKER not in html and "hidden.expect" not in html
    # The disk search sees installed packages, never the course, its key or its gradebook.
    found = next(p.read_text() for p in pages if "FOUND [" in p.read_text())
    found = found[found.index("FOUND ["):].split("]")[0]
    assert str(course) not in found and "gradebook.db" not in found and "secret" not in found
    assert "/source/" not in found and "solutions/" not in found


@pytest.mark.slow
def test_a_regrade_gives_the_same_result(tiny):
    course, first = tiny
    again = grade_all(course, workers=2, progress=False, force=True)
    strip = {"seconds", "versions", "host"}
    assert {k: {f: v for f, v in o.items() if f not in strip} for k, o in again.items()} == \
           {k: {f: v for f, v in o.items() if f not in strip} for k, o in first.items()}


def test_every_case_is_in_the_robustness_table():
    from pathlib import Path

    table = (Path(__file__).parents[1] / "docs" / "ROBUSTNESS.md").read_text()
    missing = [c.name for c in tiny_cases() + mini_cases() if f"| {c.name} |" not in table]
    assert not missing, missing
    assert MINI_FULL
