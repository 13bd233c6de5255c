"""`grade`, `check` and feedback on a tiny course built here, so that each grading takes seconds."""

import json
import shutil
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_output
from tiny_course import MARKER, make_course, student_version, submit, tiny_solution

from autograder.cli import run
from autograder.grader.classroom import grade as grading
from autograder.grader.pages.feedback import StripHiddenTests
from autograder.grader.pages.offline import WrapErrors
from autograder.visible_tests import check_notebook, format_check


@pytest.fixture
def course(tmp_path):
    return make_course(tmp_path)


# --- grade: one submission ------------------------------------------------------

def test_grade_restores_hidden_tests_and_matches_nbgrader_autograde(course):
    """Per-cell scores equal those of a plain `nbgrader autograde` in a real course."""
    from autograder.grader.course import nbgrader_api

    path = submit(course, "sam", student_version(tiny_solution(), answer="7"))
    report = grading.grade_submission(path, solutions=course / "solutions")
    assert [(c["name"], c["score"], c["max_score"]) for c in report["cells"]] == [
        ("test_answer", 0.0, 1.0), ("test_double", 2.0, 2.0)]
    assert report["cells"][0]["message"] == "HiddenTestFailed: Expected the value 42, found 7. Check the answer cell."
    assert (report["score"], report["max_score"], report["sandbox"], report["fault"]) == (2.0, 3.0, "bwrap", None)
    assert {"device", "versions", "seeds", "seconds", "flags"} <= report.keys()

    api = nbgrader_api(course, source_directory=str(course / "solutions"), release_directory="release")
    assert api.generate_assignment("tiny")["success"]
    assert api.autograde("tiny", "sam")["success"]
    with api.gradebook as gb:
        nb = gb.find_submission_notebook("tiny", "tiny", "sam")
        assert sorted((g.name, g.score) for g in nb.grades) == [("test_answer", 0.0), ("test_double", 2.0)]


def test_a_cell_scores_only_when_its_visible_and_hidden_parts_pass(course):
    wrong_visible = submit(course, "v", student_version(tiny_solution(), double="2 * x if x != 1 else 0"))
    wrong_hidden = submit(course, "h", student_version(tiny_solution(), double="2 * x if x > 0 else 0"))
    for path, message in ((wrong_visible, "AssertionError: double(1) should be 2"),
                          (wrong_hidden, "HiddenTestFailed: Expected double(-3,) ")):
        report = grading.grade_submission(path, solutions=course / "solutions")
        cell = report["cells"][1]
        assert (cell["name"], cell["score"]) == ("test_double", 0.0)
        assert cell["message"].startswith(message), cell["message"]


def test_grade_cli_prints_a_summary_and_writes_json(course, tmp_path, capsys):
    path = submit(course, "sam", student_version(tiny_solution()))
    out = tmp_path / "report.json"
    assert run(["grade", str(path), "--solutions", str(course / "solutions"), "--json", str(out)]) == 0
    assert "tiny: 3 / 3 points" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["score"] == report["max_score"] == 3.0


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
    assert capsys.readouterr().err.startswith("autograder: unknown assignment '99_nope'; the course has ")
    renamed = path.with_name("homework.ipynb")
    shutil.copy(path, renamed)
    shutil.move(str(path.parent), str(path.parent.with_name("hw")))
    assert run(["grade", str(renamed.parent.with_name("hw") / "homework.ipynb")]) == 2
    assert "cannot tell which worksheet homework.ipynb is; pass --assignment" in capsys.readouterr().err


def test_grade_refuses_to_run_without_a_sandbox(course):
    """A host without bubblewrap: only the virtualenv on PATH, as on a machine that never installed it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    path = submit(course, "sam", student_version(tiny_solution()))
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    command = [sys.executable, "-m", "autograder", "grade", str(path), "--solutions", str(course / "solutions")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and done.stderr.startswith("autograder: grading needs bubblewrap"), done.stderr
    assert done.stderr.count("\n") == 1
    done = subprocess.run(command + ["--no-sandbox", "--json", str(course / "r.json")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads((course / "r.json").read_text())
    assert (report["score"], report["sandbox"]) == (3.0, "none")


def test_a_host_under_a_lower_file_size_limit_still_grades(course, tmp_path, monkeypatch):
    """Issue 22: under a hard RLIMIT_FSIZE below the jail's 1 GiB, prlimit could not raise it and the jail never
    started; the jail only ever lowers a limit. (jail_problem is cached per process: a fresh one here.)"""
    import os
    import subprocess
    import sys

    path = submit(course, "sam", student_version(tiny_solution()))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    limit = 512 * 2**20
    done = subprocess.run(["prlimit", f"--fsize={limit}:{limit}", "--", sys.executable, "-m", "autograder", "grade",
                           str(path), "--solutions", str(course / "solutions")],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "tiny: 3 / 3 points" in done.stdout


def test_a_jail_that_fails_for_another_reason_names_that_reason(course, capsys, monkeypatch):
    """Not "grading needs bubblewrap" when bubblewrap is there and something else stops the jail."""
    from autograder.grader.classroom import worker

    path = submit(course, "sam", student_version(tiny_solution()))
    monkeypatch.setattr(worker, "jail_problem", lambda: "bubblewrap cannot start a jail here (prlimit: failed "
                                                         "to set the FSIZE resource limit)")
    assert run(["grade", str(path), "--solutions", str(course / "solutions")]) == 3
    err = capsys.readouterr().err
    assert "cannot start the jail: bubblewrap cannot start a jail here (prlimit: failed to set the FSIZE" in err
    assert "needs bubblewrap" not in err and err.count("\n") == 1


# --- check: a student's visible tests -------------------------------------------

def test_check_runs_visible_tests_only(course, tmp_path):
    solution = tiny_solution()
    solution.cells[2].source = solution.cells[2].source.replace(
        "### END HIDDEN TESTS", f"open('{tmp_path}/hidden_ran', 'w')\n### END HIDDEN TESTS")
    nbformat.write(solution, tmp_path / "with_hidden.ipynb")
    report = check_notebook(tmp_path / "with_hidden.ipynb", progress=False)
    assert not (tmp_path / "hidden_ran").exists()
    assert [(t["name"], t["score"]) for t in report["cells"]] == [("test_answer", 1.0), ("test_double", 2.0)]

    nbformat.write(student_version(tiny_solution(), answer="-1"), tmp_path / "broken.ipynb")
    text = format_check(check_notebook(tmp_path / "broken.ipynb", progress=False))
    assert "FAIL  test_answer" in text and "AssertionError: answer should be positive" in text
    assert "Visible tests: 2 / 3 points." in text and "Hidden tests will also be run at grading" in text
    assert MARKER not in text


def test_check_names_the_unanswered_cell_above_a_failing_test(tmp_path):
    nb = student_version(tiny_solution())
    nb.cells[1].source = "# YOUR CODE HERE\nraise NotImplementedError()"
    nbformat.write(nb, tmp_path / "release.ipynb")
    report = check_notebook(tmp_path / "release.ipynb", progress=False)
    assert report["cells"][0]["message"] == "the answer cell above (1. The answer) was not filled in"
    assert report["cells"][1]["message"] == ""


def test_check_cli_exit_status(tmp_path, capsys):
    nbformat.write(student_version(tiny_solution()), tmp_path / "ok.ipynb")
    assert run(["check", str(tmp_path / "ok.ipynb")]) == 0
    capsys.readouterr()  # its progress lines, on stderr
    assert run(["check", str(tmp_path / "absent.ipynb")]) == 2
    assert capsys.readouterr().err.strip() == f"autograder: no notebook at {tmp_path / 'absent.ipynb'}."


def test_check_reports_a_dead_kernel_in_one_sentence(tmp_path, capsys):
    nbformat.write(student_version(tiny_solution(), extra="\nimport os; os._exit(1)"), tmp_path / "dies.ipynb")
    assert run(["check", str(tmp_path / "dies.ipynb")]) == 1
    out = capsys.readouterr().out
    assert "The run stopped early: the kernel exited with status 1" in out
    assert "NotRun: not run: the kernel exited with status 1" in out


# --- feedback ---------------------------------------------------------------------

def test_strip_hidden_tests_on_a_hand_built_cell():
    cell = new_code_cell(f"assert x\n### BEGIN HIDDEN TESTS\nassert y  # {MARKER}\n### END HIDDEN TESTS\nprint(1)")
    cell.outputs = [new_output("error", ename="CheckFailed", evalue="Expected 3 layers " + "x" * 150,
                               traceback=[f"----> 3 assert y  # {MARKER}"])]
    cell, _ = StripHiddenTests().preprocess_cell(cell, {}, 0)
    assert cell.source == "assert x\n# Hidden tests ran here; their results are below.\nprint(1)"
    cell, _ = WrapErrors().preprocess_cell(cell, {}, 0)
    assert MARKER not in json.dumps(cell)
    assert cell.outputs[0].traceback == ["CheckFailed: Expected 3 layers\n" + "x" * 150]  # wrapped at spaces


def test_grade_refuses_a_host_without_the_datasets(course, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(tmp_path / "empty"))
    path = submit(course, "sam", student_version(tiny_solution()))
    assert run(["grade", str(path), "--solutions", str(course / "solutions")]) == 3  # the host's fault
    err = capsys.readouterr().err
    assert "lacks the mnist dataset (run `autograder data fetch` there); no score was saved." in err
    assert err.count("\n") == 1


# --- check with the course's whole configuration (issue 15) -----------------------------------

def _released_copy(tmp_path, assignment_id, edit=None):
    from autograder.grader.classroom.demo import student_copy
    from autograder.grader.course import ASSIGNMENTS, SOLUTIONS

    folder = tmp_path / assignment_id
    shutil.copytree(ASSIGNMENTS / assignment_id, folder)
    nb = student_copy(nbformat.read(SOLUTIONS / assignment_id / f"{assignment_id}.ipynb", as_version=4))
    if edit:
        edit(nb)
    nbformat.write(nb, folder / f"{assignment_id}.ipynb")
    return folder / f"{assignment_id}.ipynb"


def test_check_names_the_given_cell_that_could_not_load_the_data(tmp_path, monkeypatch):
    """Without the datasets the given load cell raises a DatasetError that says what to do; check says so,
    not "NameError: name 'train_images' is not defined" from the answer cell below it."""
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(tmp_path / "no-data"))
    from autograder.grader.course import ASSIGNMENTS

    folder = tmp_path / "02_fashion_mnist"
    shutil.copytree(ASSIGNMENTS / "02_fashion_mnist", folder)
    report = check_notebook(folder / "02_fashion_mnist.ipynb", progress=False)
    first = report["cells"][0]["message"]
    assert "raised DatasetError" in first and "autograder data fetch" in first, first
    assert "NameError" not in first


@pytest.mark.slow
def test_check_gives_each_cell_the_course_time_not_nbgraders_30_s(tmp_path):
    """check ran cells with nbgrader's 30 s (a slow laptop's training cell failed): it takes the course's limit,
    here 3 s, which a 6 s cell passes with nbgrader's default and fails with the course's. (Seconds, not the
    35 s sleep of a whole worksheet this test once took.)"""
    course = make_course(tmp_path / "course", config="c.Execute.timeout = 3\n")
    path = submit(course, "sam", student_version(tiny_solution(), answer="__import__('time').sleep(6) or 42"))
    report = check_notebook(path, progress=False)
    assert [(c["name"], c["score"]) for c in report["cells"]] == [("test_answer", 0.0), ("test_double", 2.0)]
    assert "this cell ran past its time limit (3 s)" in report["cells"][0]["message"], report["cells"][0]


def test_grade_runs_the_reference_once_per_host_and_version(course, tmp_path, monkeypatch):
    """Issue 22: each `grade` built a throwaway course whose folder was part of the cache key, so every
    call graded the reference again (a minute on 2 cores) and left one more cache file."""
    from autograder.grader.classroom import reference

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # A worksheet's own files travel with its reference (worksheet 5's drawings): copied afresh each time, they
    # made the payload's zip, and so the cache key, differ from one call to the next (issue 23).
    (course / "solutions" / "tiny" / "data").mkdir()
    (course / "solutions" / "tiny" / "data" / "7_1.txt").write_text("a file the worksheet reads")
    runs = []
    real = reference.execute
    monkeypatch.setattr(reference, "execute", lambda payload: runs.append(payload.assignment) or real(payload))
    said = []
    reports = []
    for name in ("sam", "kim"):
        reports.append(grading.grade_submission(submit(course, name, student_version(tiny_solution())),
                                                solutions=course / "solutions", say=said.append))
        time.sleep(2.1)  # a zip's times have a resolution of 2 s
    assert [r["score"] for r in reports] == [3.0, 3.0]
    assert runs == ["tiny"]
    assert said == ["this host grades the reference solution of tiny first (once per host and version; "
                    "a minute or more)"]  # the wait is named, the first time only
    assert [r["reference"]["cached"] for r in reports] == [False, True]
    assert len(list((tmp_path / "cache" / "autograder" / "reference").iterdir())) == 1


def test_grade_uses_the_course_configuration_its_worksheets_and_its_limits(course, tmp_path, capsys):
    """Issue 22: `grade` read the project's configuration whatever course the instructor set up; a course's
    own nbgrader_config.py (a hub course's, here with a 3 s cell limit) is the one place to configure it."""
    hub_course = tmp_path / "hub-course"
    hub_course.mkdir()
    (hub_course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.source_directory = {str(course / 'solutions')!r}\nc.Execute.timeout = 3\n")
    slow = submit(course, "sam", student_version(tiny_solution(), answer="__import__('time').sleep(30) or 42"))
    assert run(["grade", str(slow), "--root", str(hub_course)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "tiny: 2 / 3 points" in out
    assert "raised TimeoutError: this cell ran past its time limit (3 s) and was stopped" in out


def test_a_reference_short_only_on_the_courses_own_drawings_names_the_drawings():
    """Issue 22: when the instructor's drawings were too hard for worksheet 5's reference, the host "cannot grade
    05_cnn"; the drawings, not the host, are the cause, and the message says so, what it needed, and what to do
    (issue 23: the command that shows which drawings, and the floor the set supports)."""
    from autograder.grader.classroom.reference import (
        ReferenceVerdict,
        _drawings_shortfall,
    )

    cells = [{"name": "test_layers", "score": 2, "max_score": 2, "message": ""},
             {"name": "test_handdrawn", "score": 0, "max_score": 2, "message": "HiddenTestFailed: below 0.95"}]
    readings = {"test_handdrawn": {"accuracy": 0.769, "floor": 0.9, "required": 0.95, "count": 39, "drawings": []}}
    config = {"PlanHiddenTests": {"drawings": "/srv/course/drawings"}}
    verdict = ReferenceVerdict(False, "host-1", "test_handdrawn 0/2", drawings=_drawings_shortfall(cells, readings, config))
    assert verdict.problem.startswith(
        "the reference solution reads only 0.769 of the course's 39 hand-drawn digits in /srv/course/drawings (it "
        "must read 0.95: the floor of 0.90 plus a margin for the seed a student trains with); the drawings, not "
        "host-1, are the cause: `autograder drawings check DIR` shows the ones it misreads")
    # Anything else lost, the drawings read well enough, or the kit's own example set: the host's problem.
    other = cells + [{"name": "test_accuracy", "score": 0, "max_score": 2, "message": "HiddenTestFailed: 0.5"}]
    read_well = {"test_handdrawn": {**readings["test_handdrawn"], "accuracy": 0.96}}
    assert _drawings_shortfall(other, readings, config) == ""
    assert _drawings_shortfall(cells, read_well, config) == ""
    assert _drawings_shortfall(cells, readings, {}) == ""


def test_a_recheck_leaves_the_hosts_budgets_as_they_were(course, tmp_path, monkeypatch):
    """A host that rechecks itself after a failed run ran its reference again and cached that verdict: measured
    under load, it gave the next grading other budgets, and a regrade of the same notebook another result."""
    from autograder.grader.classroom import reference
    from autograder.grader.classroom.grade import throwaway_course

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with throwaway_course("tiny", course / "solutions") as (_, settings):
        payload = reference.reference_payload(settings, "tiny", 600)
        assert reference.reference(payload)["ok"]
        cached = reference.cache_path(payload).read_text()
        again = reference.reference(payload, fresh=True)
    assert again["ok"] and not again["cached"]
    assert reference.cache_path(payload).read_text() == cached


def test_grade_a_notebook_under_another_name_for_the_given_worksheet(course, tmp_path):
    """Red team: `grade loose/hw.ipynb --assignment tiny` failed with nbgrader's "No notebooks found"."""
    path = tmp_path / "loose" / "hw.ipynb"
    path.parent.mkdir()
    nbformat.write(student_version(tiny_solution()), path)
    report = grading.grade_submission(path, assignment_id="tiny", solutions=course / "solutions")
    assert (report["score"], report["max_score"]) == (3.0, 3.0)
