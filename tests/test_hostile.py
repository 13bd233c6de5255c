"""The hostile suite: every trick and fault in hostile.py gains no point it does not deserve.

Each course is graded once with grade-all (2 workers, the jail on), then
every case's scores, fault and flag are compared with what it deserves;
the feedback and the autograded notebooks must hold no hidden-test text,
and the gradebook must be as the grader left it.
"""

import ast
import html as html_lib
import json
import os
import shutil
import site
import sqlite3

import nbformat
import pytest
from hostile import HOST_SECRET, MINI_FULL, mini_cases, mini_solution, tiny_cases
from tiny_course import MARKER, make_course, submit, tiny_solution

from autograder.grader.classroom.grade_all import grade_all
from autograder.grader.pages.feedback import generate_all

# Faults must show within a test run's patience: small limits, same code paths.
FAST_LIMITS = """
c.Execute.timeout = 15
c.SandboxedExecute.interrupt_grace = 3
c.SandboxedExecute.notebook_timeout = 180
c.SandboxedExecute.memory_limit = 1 * 2**30
c.SandboxedExecute.disk_quota = 256 * 2**20
c.GradingRun.grader_memory_limit = 1 * 2**30
"""


def slug(name):
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower())[:40]


def gradable(cases):
    """The cases this host can grade as they deserve: process and memory limits need a control group,
    which only root can make here (an ordinary grader has rlimits, counted for its whole uid)."""
    return [c for c in cases if not c.control_group or os.geteuid() == 0]


def grade_cases(root, cases, solution, assignment):
    course = make_course(root, solution=solution, assignment=assignment, config=FAST_LIMITS)
    for case in gradable(cases):
        built = case.build()
        if isinstance(built, (dict, str)):  # JSON that nbformat would refuse to write (a str: as it is)
            folder = course / "submitted" / slug(case.name) / assignment
            folder.mkdir(parents=True)
            (folder / f"{assignment}.ipynb").write_text(built if isinstance(built, str) else json.dumps(built))
        else:
            folder = submit(course, slug(case.name), built, assignment=assignment).parent
        if case.files:
            case.files(folder, course)
    os.environ["AUTOGRADER_TEST_HOST_SECRET"] = HOST_SECRET  # the workers inherit it; no kernel may
    try:
        outcomes = grade_all(course, workers=2, progress=False)
    finally:
        del os.environ["AUTOGRADER_TEST_HOST_SECRET"]
    return course, outcomes


def scores(course, student, assignment):
    from autograder.grader.course import nbgrader_api

    with nbgrader_api(course).gradebook as gb:
        notebook = gb.find_submission_notebook(assignment, assignment, student)
        return {g.name: g.score for g in notebook.grades}


def selected(request, cases):
    """The cases whose tests this session runs (`-k` picks a few): the course grades those only."""
    chosen = {item.callspec.params["case"].name for item in request.session.items
              if hasattr(item, "callspec") and "case" in item.callspec.params}
    everything = any(item.name.startswith(("test_the_gradebook", "test_a_regrade", "test_the_whole_class"))
                     for item in request.session.items)
    return cases if everything else [c for c in cases if c.name in chosen]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, request):
    return grade_cases(tmp_path_factory.mktemp("hostile-tiny"), selected(request, tiny_cases()), tiny_solution(),
                       "tiny")


@pytest.fixture(scope="module")
def mini(tmp_path_factory, request):
    return grade_cases(tmp_path_factory.mktemp("hostile-mini"), selected(request, mini_cases()), mini_solution(),
                       "mini")


def check_case(graded, case, assignment):
    if case not in gradable([case]):
        pytest.skip("its limits need a control group, which only root can make on this host")
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
    if case.note:
        assert any(case.note in n for n in outcome["notes"]), outcome["notes"]
    if case.max_grader_bytes:
        assert outcome["grader_peak_bytes"] < case.max_grader_bytes, outcome["grader_peak_bytes"]
    autograded = course / "autograded" / student / assignment / f"{assignment}.ipynb"
    text = autograded.read_text()
    assert MARKER not in json.dumps([c.get("outputs", []) for c in nbformat.reads(text, 4).cells])
    assert HOST_SECRET not in text and HOST_SECRET not in json.dumps(outcome)
    assert len(text) < 3_000_000  # output and attachments were capped


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
    for folder in filter(os.path.isdir, site.getsitepackages()):  # nothing planted for the next students
        assert not [p for p in os.listdir(folder) if p.startswith("zz_cheat")]
    secret = (course / ".autograder-secret").read_text().strip()
    pages = generate_all(course)
    assert len(pages) == len(gradable(tiny_cases()))
    for page in pages:
        html = page.read_text()
        # The hidden lines themselves; a student's own code may mention "BEGIN HIDDEN TESTS".
        assert MARKER not in html and "hidden.expect" not in html
        assert HOST_SECRET not in html and secret not in html
        assert len(html) < 5_000_000
    # The disk search finds installed packages only (nbgrader ships example notebooks and a
    # gradebook), never the course, its solutions, its key or its gradebook.
    page = html_lib.unescape(next(p.read_text() for p in pages if "FOUND [" in p.read_text()))
    found = ast.literal_eval(page[page.index("FOUND [") + 6:].split("]")[0] + "]")
    assert found and all("/site-packages/" in path or "/autograder-kit-" in path for path in found), found


@pytest.mark.slow
def test_the_whole_class_is_graded_with_no_host_fault(tiny, mini):
    """Issue 21: a class holding every hostile submission and two honest solutions: the honest ones at full
    marks, every submission with a row and its own outcome, none a fault of the host, none left ungraded."""
    for (course, outcomes), cases, assignment in ((tiny, tiny_cases(), "tiny"), (mini, mini_cases(), "mini")):
        assert len(outcomes) == len(gradable(cases))
        assert all(o["status"] == "graded" for o in outcomes.values()), \
            {k: o.get("reason") for k, o in outcomes.items() if o["status"] != "graded"}
        honest = [c for c in cases if c.category == "honest"]
        assert [outcomes[f"{slug(c.name)}/{assignment}"]["score"] for c in honest] == \
               [sum(c.expected.values()) for c in honest]
    assert len([c for c in tiny_cases() if c.category == "honest"]) == 2


# The cases that touch the gradebook or the cells it restores, and an honest one.
REGRADED = ("honest tiny solution", "write a trigger into the gradebook", "points and metadata changed",
            "a test cell of one's own worth 100 points", "os._exit(0) after the first test")


@pytest.mark.slow
def test_a_regrade_gives_the_same_result(tiny, tmp_path):
    course, first = tiny
    course = shutil.copytree(course, tmp_path / "course", symlinks=True)  # the other tests read the first gradebook
    keep = {slug(name) for name in REGRADED}
    assert keep <= {key.split("/")[0] for key in first}
    for folder in (course / "submitted").iterdir():
        if folder.name not in keep:
            shutil.rmtree(folder)
    again = grade_all(course, workers=2, progress=False, force=True)
    first = {k: o for k, o in first.items() if k.split("/")[0] in keep}
    strip = {"seconds", "versions", "host", "grader_peak_bytes"}
    assert {k: {f: v for f, v in o.items() if f not in strip} for k, o in again.items()} == \
           {k: {f: v for f, v in o.items() if f not in strip} for k, o in first.items()}


def test_every_case_is_in_the_robustness_table():
    from pathlib import Path

    table = (Path(__file__).parents[1] / "docs" / "ROBUSTNESS.md").read_text()
    missing = [c.name for c in tiny_cases() + mini_cases() if f"| {c.name} |" not in table]
    assert not missing, missing
    assert MINI_FULL
