"""otter-grader from the nbgrader source: the converter, students' checks, and equal scores under both engines.

The fast tests use the tiny course (tiny_course.py) and the export of every
worksheet; the slow one grades worksheet 2 with nbgrader and `otter run`.
"""

import json
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from tiny_course import MARKER, make_course, tiny_solution

from autograder.cli import run
from autograder.grader.classroom.demo import COMMON_MISTAKES, student_copy, with_mistake
from autograder.grader.classroom.grade import grade_submission
from autograder.grader.course import ASSIGNMENTS, SOLUTIONS, worksheet_ids
from autograder.grader.tools.otter_export import (
    SETUP,
    WHEELS,
    Question,
    export,
    is_test_cell,
    ok_test,
    questions,
    without_otter_cells,
)

OKTestFile = pytest.importorskip("otter.test_files", reason="needs the [otter] extra").OKTestFile
OTTER = Path(sys.executable).with_name("otter")


def filled(nb, **answers):
    """A student's hand-in: the answer cells (by grade_id) filled in."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def tiny_answers(answer="42"):
    return {"answer": f"answer = {answer}", "double": "def double(x):\n    print('doubling', x)\n    return 2 * x"}


def write(nb, folder, name):
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)
    return folder / name


def otter_scores(autograder_zip, notebook, out):
    """``{question: (score, max_score)}`` from `otter run` (no Docker)."""
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([str(OTTER), "run", "-a", str(autograder_zip), "-o", str(out), "--no-logo", str(notebook)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0 and (out / "results.json").is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    tests = json.loads((out / "results.json").read_text())["tests"]
    return {t["name"]: (t["score"], t["max_score"]) for t in tests if "max_score" in t}, tests


def nbgrader_scores(notebook, assignment_id, solutions=SOLUTIONS):
    report = grade_submission(notebook, assignment_id, solutions=solutions)
    return {c["name"]: (c["score"], c["max_score"]) for c in report["cells"]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny course exported for otter: ``(solutions, autograder zip, student notebook)``."""
    root = make_course(tmp_path_factory.mktemp("tiny"))
    [(autograder_zip, notebook)] = export(["tiny"], root / "otter", root / "solutions")
    return root / "solutions", autograder_zip, notebook


# --- the converter ------------------------------------------------------------------

def test_each_test_cell_becomes_a_question_with_its_points_and_blocks():
    found = questions(tiny_solution())
    assert [(q.name, q.points) for q in found] == [("test_answer", 1), ("test_double", 2)]
    assert found[0].visible == 'assert answer > 0, "answer should be positive"'
    assert found[1].hidden.strip() == f"hidden.expect_returns(double, [[-3], [0.5]], [-6, 1.0])  # {MARKER}"

    spec = ok_test(found[1])
    assert (spec["points"], spec["all_or_nothing"]) == (2, True)
    assert [(c["name"], c["hidden"]) for c in spec["suites"][0]["cases"]] == [
        ("test_double (visible)", False), ("test_double (hidden)", True)]
    assert "check_in_clean_process" in spec["suites"][0]["cases"][1]["code"]
    students = ok_test(found[1], hidden=False)
    assert [c["hidden"] for c in students["suites"][0]["cases"]] == [False] and MARKER not in str(students)


def test_a_visible_case_ignores_what_it_prints_but_not_what_fails():
    visible = ('print("measured", x)\nx\ntext = """two\n\n  lines"""\n'
               'assert text == "two\\n\\n  lines" and x > 0, "x must be positive"')
    test = OKTestFile.from_spec(ok_test(Question("q", 3, visible, ""), hidden=False))
    test.run({"x": 1})
    assert (test.score, test.possible) == (3, 3)
    test.run({"x": -1})
    assert test.score == 0 and "AssertionError: x must be positive" in test.test_case_results[0].message


@pytest.mark.parametrize("old, new, expected", [
    ("hidden.expect_value(answer, 42)", "assert answer == 42",
     "the hidden test of test_answer may only call hidden checks"),
    ("assert answer > 0", "%time assert answer > 0", "the visible part of test_answer is not plain Python"),
], ids=["hidden", "visible"])
def test_a_cell_otter_could_not_run_is_refused(tmp_path, capsys, old, new, expected):
    nb = tiny_solution()
    nb.cells[2].source = nb.cells[2].source.replace(old, new)
    root = make_course(tmp_path, nb)
    assert run(["export-otter", "tiny", "--solutions", str(root / "solutions"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"autograder: tiny: {expected}") and err.count("\n") == 1


@pytest.mark.parametrize("argv, expected", [
    (["export-otter", "05_nope"], "autograder: unknown assignment '05_nope'; the course has "),
    (["export-otter", "02_fashion_mnist", "--out", "{file}"], "autograder: cannot write to {file} ("),
])
def test_bad_input_is_one_sentence_and_status_2(tmp_path, capsys, argv, expected):
    file = tmp_path / "a-file"
    file.write_text("")
    assert run([a.format(file=file) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected.format(file=file)) and err.count("\n") == 1


# --- every worksheet -----------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("otter")
    return {assignment_id: paths for assignment_id, paths in zip(worksheet_ids(), export((), out))}


@pytest.mark.parametrize("assignment_id", worksheet_ids())
def test_every_worksheet_exports_its_questions_tests_and_set_up(exported, assignment_id):
    autograder_zip, notebook = exported[assignment_id]
    source = nbformat.read(SOLUTIONS / assignment_id / f"{assignment_id}.ipynb", as_version=4)
    cells = {c.metadata.nbgrader["grade_id"]: c for c in source.cells if is_test_cell(c)}
    with zipfile.ZipFile(autograder_zip) as zf:
        names = set(zf.namelist())
        assert {f"tests/{g}.py" for g in cells} == {n for n in names if n.startswith("tests/")}
        for grade_id, cell in cells.items():
            spec = _load_test(zf.read(f"tests/{grade_id}.py").decode())
            test = OKTestFile.from_spec(spec)
            assert (test.name, test.possible, test.all_or_nothing) == (grade_id, cell.metadata.nbgrader["points"], True)
            assert any(c.hidden for c in test.test_cases) == ("### BEGIN HIDDEN TESTS" in cell.source)
        assert zf.read("setup.sh").decode().endswith(SETUP)
        assert any(n.startswith(f"{WHEELS}/autograder-") and n.endswith(".whl") for n in names)
    released = ASSIGNMENTS / assignment_id
    for extra in released.iterdir():
        if extra.name != notebook.name:
            assert any(n.startswith(f"files/{extra.name}") for n in names)
            assert (notebook.parent / extra.name).exists()

    student = nbformat.read(notebook, as_version=4)
    assert without_otter_cells(student) == nbformat.read(released / notebook.name, as_version=4)
    checks = [b.source for a, b in zip(student.cells, student.cells[1:]) if is_test_cell(a)]
    assert checks == [f'grader.check("{g}")' for g in cells]
    for test_file in (notebook.parent / "tests").iterdir():
        spec = _load_test(test_file.read_text())
        assert not any(c["hidden"] for c in spec["suites"][0]["cases"])
        assert "check_in_clean_process" not in test_file.read_text() and "hidden." not in test_file.read_text()


def test_the_wheel_carries_the_grader_and_the_manifest(exported):
    autograder_zip, _ = exported["01_handdrawn_digits"]
    with zipfile.ZipFile(autograder_zip) as zf:
        wheel = next(n for n in zf.namelist() if n.endswith(".whl"))
        with zipfile.ZipFile(zf.open(wheel)) as whl:
            names = set(whl.namelist())
    assert {"autograder/grader/hidden_tests/scorer.py", "autograder/grader/hidden_tests/vocabulary.py",
            "autograder/datasets/manifest.json"} <= names
    assert any(n.startswith("autograder/grader/data/handdrawn/") for n in names)


@pytest.mark.parametrize("builder", ["Gradescope", "otter grade"])
def test_the_set_up_installs_the_wheel_and_fetches_the_data(exported, tmp_path, builder):
    """Gradescope unpacks the whole zip before setup.sh; otter grade's Dockerfile only requirements.*,
    a folder's contents straight into source/."""
    source, bin_dir = tmp_path / "source", tmp_path / "bin"
    bin_dir.mkdir()
    with zipfile.ZipFile(exported["02_fashion_mnist"][0]) as zf:
        wheel = next(n for n in zf.namelist() if n.endswith(".whl"))
        zf.extractall(source, [wheel] if builder == "otter grade" else None)
    if builder == "otter grade":
        (source / wheel).rename(source / Path(wheel).name)
        (source / WHEELS).rmdir()
    (bin_dir / "mamba").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "log"}\n')
    (bin_dir / "mamba").chmod(0o755)
    script = SETUP.replace("/autograder/source", str(source))
    subprocess.run(["bash", "-euc", script], check=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    installed = source / (wheel if builder == "Gradescope" else Path(wheel).name)
    assert (tmp_path / "log").read_text().splitlines() == [
        f"run -n otter-env pip install {installed}", "run -n otter-env autograder data fetch"]


def _load_test(text):
    found = {}
    exec(text, found)
    assert found["OK_FORMAT"] is True
    return found["test"]


# --- students' checks and `otter run` on the tiny course -----------------------------------

def test_students_check_the_visible_tests_with_grader_check_and_otter_check(tiny, tmp_path):
    _, _, notebook = tiny
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "tests").symlink_to(notebook.parent / "tests")
    right = write(filled(nbformat.read(notebook, as_version=4), **tiny_answers("7")), folder, "right.ipynb")
    wrong = write(filled(nbformat.read(notebook, as_version=4), **tiny_answers("-1")), folder, "wrong.ipynb")

    def checks(path):
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=120, allow_errors=True, resources={"metadata": {"path": str(folder)}}).execute()
        return [json.dumps(c.outputs) for c in nb.cells if c.source.startswith("grader.check(")]

    # 7 passes the visible test; only the hidden one, which students do not have, knows the answer is 42
    assert all("All test cases passed!" in out for out in checks(right))
    answer, double = checks(wrong)
    assert "answer should be positive" in answer and "All test cases passed!" in double

    done = subprocess.run([str(OTTER), "check", wrong.name, "-q", "test_answer"], cwd=folder,
                          capture_output=True, text=True, timeout=300)
    assert "AssertionError: answer should be positive" in done.stdout
    done = subprocess.run([str(OTTER), "check", right.name], cwd=folder, capture_output=True, text=True, timeout=300)
    assert "All tests passed!" in done.stdout
    assert MARKER not in "".join(p.read_text() for p in folder.glob("tests/*.py"))


def test_otter_run_scores_the_tiny_course_as_nbgrader_does(tiny, tmp_path):
    solutions, autograder_zip, notebook = tiny
    # the visible tests pass, the hidden test of test_answer fails; double prints while the grader calls it
    handed_in = write(filled(nbformat.read(notebook, as_version=4), **tiny_answers("7")), tmp_path / "hand-in",
                      "tiny.ipynb")
    scores, tests = otter_scores(autograder_zip, handed_in, tmp_path / "otter")
    assert scores == {"test_answer": (0.0, 1.0), "test_double": (2.0, 2.0)}
    assert "Expected the value 42, found 7" in next(t["output"] for t in tests if t["name"] == "test_answer")
    assert nbgrader_scores(handed_in, "tiny", solutions) == scores


# --- equal scores on a real worksheet ----------------------------------------------------

EQUAL_ID = "02_fashion_mnist"


def _submission(kind):
    solution = nbformat.read(SOLUTIONS / EQUAL_ID / f"{EQUAL_ID}.ipynb", as_version=4)
    if kind == "solution":
        return student_copy(solution)
    if kind == "mistake":
        return with_mistake(student_copy(solution), EQUAL_ID)
    return nbformat.read(ASSIGNMENTS / EQUAL_ID / f"{EQUAL_ID}.ipynb", as_version=4)


@pytest.fixture(scope="module")
def equal_zip(tmp_path_factory):
    [(autograder_zip, _)] = export([EQUAL_ID], tmp_path_factory.mktemp("otter"))
    return autograder_zip


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["solution", *(pytest.param(kind, marks=pytest.mark.exhaustive)
                                                 for kind in ("release", "mistake"))])
def test_nbgrader_and_otter_give_each_cell_the_same_score(equal_zip, kind, tmp_path):
    handed_in = write(_submission(kind), tmp_path / EQUAL_ID, f"{EQUAL_ID}.ipynb")
    with ThreadPoolExecutor(1) as pool:  # both at once: kernel starts and fresh processes overlap
        otter_run = pool.submit(otter_scores, equal_zip, handed_in, tmp_path / "otter")
        by_nbgrader = nbgrader_scores(handed_in, EQUAL_ID)
        by_otter, _ = otter_run.result()
    assert by_otter == by_nbgrader
    lost = {"solution": set(), "release": set(by_nbgrader), "mistake": COMMON_MISTAKES[EQUAL_ID][1]}[kind]
    assert by_otter == {name: (0.0 if name in lost else top, top) for name, (_, top) in by_nbgrader.items()}
