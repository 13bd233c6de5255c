"""`autograder drawings check DIR`, and a course's drawings as the course's problem (issue 23).

A tiny course reads drawings with worksheet 1's `load_digit` and a small
dense network trained in seconds; its hidden test is worksheet 1's
`expect_handdrawn_accuracy`. The drawings are the kit's synthetic example
set, as they are, or relabelled so that no reference can read them.
"""

import json
import os
import shutil
import stat

import nbformat
import pytest
from tiny_course import (
    cell,
    hidden,
    make_course,
    student_version,
    submit,
    tiny_solution,
)

from autograder.cli import run
from autograder.grader.course import SOLUTIONS, nbgrader_api
from autograder.grader.hidden_tests.drawings import HIDDEN_SET
from autograder.grader.tools.drawings_check import Reading, advice, write_contact_sheet
from autograder.handdrawn import labelled_images

LOAD_DIGIT_CELLS = ("read_grey", "ink_side", "paper", "ink_map", "frame_digit", "load_digit")
TRAIN = """import keras
from autograder.datasets import mnist

keras.utils.set_random_seed(0)
(x, y), _ = mnist.load_data()
model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.fit(x[:20000].reshape(-1, 784) / 255, y[:20000], epochs=2, batch_size=128, verbose=0)"""


def drawing_solution():
    """Worksheet 1's load_digit and a network trained in seconds; the hidden test reads the course's drawings."""
    first = nbformat.read(SOLUTIONS / "01_handdrawn_digits" / "01_handdrawn_digits.ipynb", as_version=4)
    code = "\n\n".join(c.source.replace("### BEGIN SOLUTION\n", "").replace("\n### END SOLUTION", "")
                       for c in first.cells if c.metadata.get("nbgrader", {}).get("grade_id") in LOAD_DIGIT_CELLS)
    nb = nbformat.v4.new_notebook(cells=[
        cell("import numpy as np\nfrom PIL import Image, ImageFilter, ImageOps"),
        cell(f"### BEGIN SOLUTION\n{code}\n### END SOLUTION", solution=True, grade_id="load_digit"),
        cell(f"### BEGIN SOLUTION\n{TRAIN}\n### END SOLUTION", solution=True, grade_id="train"),
        cell("assert model is not None" + hidden("hidden.expect_handdrawn_accuracy(load_digit, model, floor=0.5)"),
             grade=True, grade_id="test_handdrawn", points=2),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def relabelled(folder, every=1):
    """The example set with the label of every ``every``-th drawing moved on by one: no network reads those."""
    folder.mkdir()
    for i, (path, label) in enumerate(labelled_images(HIDDEN_SET)):
        shutil.copyfile(path, folder / f"{(label + (i % every == 0)) % 10}_{path.name}")
    return folder


@pytest.fixture
def drawing_course(tmp_path):
    return make_course(tmp_path / "course", drawing_solution(), assignment="drawn")


@pytest.mark.slow
def test_drawings_check_grades_the_reference_on_the_set_against_the_courses_floor(drawing_course, tmp_path, capsys):
    """Half the set unreadable: below the worksheet's floor of 0.5, above the course's own 0.3 for its set."""
    drawings = relabelled(tmp_path / "drawings", every=2)
    three = next(p for p, label in labelled_images(drawings) if label == 3)
    shutil.copyfile(three, drawings / f"3_<img src=x onerror=alert(1)>{three.suffix}")
    (drawing_course / "nbgrader_config.py").write_text(
        (drawing_course / "nbgrader_config.py").read_text() + "\nc.PlanHiddenTests.drawings_floors = {'drawn': 0.3}\n")
    sheet = tmp_path / "sheet.html"
    assert run(["drawings", "check", str(drawings), "--root", str(drawing_course), "--sheet", str(sheet)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "51 drawings in" in out and "the reference solutions of drawn read them" in out
    assert "drawn: " in out and "of 51 read right); floor 0.30, the reference must read 0.35: ok" in out
    assert float(out.split("drawn: ")[1].split()[0]) < 0.55  # the worksheet's own floor would refuse the set
    page = sheet.read_text()
    assert page.count("<tr>") == 52  # a heading row and one per drawing
    assert "<img src=x" not in page and "3_&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("data:image/png;base64,") == 2 * 51  # the drawing and what load_digit made of it
    assert page.index("class='wrong'") < page.index("class='right'")  # misread ones first


@pytest.mark.slow
def test_a_set_the_reference_cannot_read_is_the_courses_problem_said_as_such(drawing_course, tmp_path, capsys):
    drawings = relabelled(tmp_path / "drawings")
    sheet = tmp_path / "sheet.html"
    assert run(["drawings", "check", str(drawings), "--root", str(drawing_course), "--sheet", str(sheet)]) == 1
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())
    assert "the reference must read 0.55: SHORT: this set supports a floor of at most 0.0" in out
    assert "50 drawings misread (redraw or remove them if they are not clearly their digit)" in out and "; and 38 more on the contact sheet" in out
    assert "c.PlanHiddenTests.drawings_floors = {'drawn': 0.0" in out
    assert "cannot grade with these drawings" in captured.err and "Traceback" not in captured.err

    # Grading with that set: one sentence that names the drawings, the accuracy, the floor and the command,
    # and does not blame the host (exit 2, not the host fault's 3).
    (drawing_course / "nbgrader_config.py").write_text(
        (drawing_course / "nbgrader_config.py").read_text() + f"\nc.PlanHiddenTests.drawings = {str(drawings)!r}\n")
    notebook = submit(drawing_course, "sam", student_version(drawing_solution()), assignment="drawn")
    assert run(["grade", str(notebook), "--root", str(drawing_course)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "drawn cannot be graded with the course's drawings: the reference solution reads only" in err
    assert f"of the course's 50 hand-drawn digits in {drawings} (it must read 0.55: the floor of 0.50" in err
    assert "`autograder drawings check DIR` shows the ones it misreads" in err
    assert "cannot grade drawn" not in err and "Traceback" not in err

    # The class: each submission of that worksheet is "not graded", the course's to mend, not a host fault;
    # nothing is saved, and the next run tries again.
    assert run(["grade-all", "--root", str(drawing_course), "--workers", "1"]) == 1
    captured = capsys.readouterr()
    out, err = " ".join(captured.out.split()), " ".join(captured.err.split())
    assert "sam/drawn NOT GRADED, no score saved (the course's to mend): drawn cannot be graded with the " \
           "course's drawings: the reference solution reads only" in out
    assert "`autograder drawings check DIR`" in out and "HOST FAULT" not in out
    assert "1 of 1 submissions could not be graded" in err and "grading hosts failed" not in err
    outcome = json.loads((drawing_course / "grade-all.json").read_text())["sam/drawn"]
    assert outcome["status"] == "not-graded"
    with nbgrader_api(drawing_course).gradebook as gb:
        assert gb.find_assignment("drawn").submissions == []


def reading(accuracy, floor=0.9, required=0.95, wrong=("4_2.png",)):
    drawings = [{"name": name, "label": int(name[0]), "read": (int(name[0]) + 1) % 10 if name in wrong else int(name[0]),
                 "image": ""} for name in ("1_1.png", "4_2.png", "7_3.jpg")]
    return Reading("05_cnn", accuracy, floor, required, drawings)


@pytest.mark.parametrize("accuracy, supported", [(0.95, 0.9), (0.949, 0.85), (0.769, 0.70), (0.04, 0.0), (1.0, 0.95)])
def test_the_floor_a_set_supports_keeps_the_calibrated_margin(accuracy, supported):
    assert reading(accuracy).supported_floor == supported


def test_advice_names_the_misread_drawings_and_the_floors_to_set():
    lines = advice([reading(0.769), Reading("01_handdrawn_digits", 1.0, 0.8, 0.85, reading(1.0, wrong=()).drawings)])
    assert lines == [
        "1 drawing misread (redraw or remove them if they are not clearly their digit): 4_2.png (05_cnn read a 5)",
        "or grade this set with the floors it supports: c.PlanHiddenTests.drawings_floors = {'05_cnn': 0.70} in the "
        "course's nbgrader_config.py"]
    assert advice([reading(1.0, wrong=())]) == []


def test_the_contact_sheet_puts_misread_drawings_first(tmp_path):
    page = write_contact_sheet(tmp_path / "sheet.html", tmp_path, [reading(0.667)]).read_text()
    assert page.index("4_2.png") < page.index("1_1.png") < page.index("7_3.jpg")
    assert "class='wrong'" in page and "read 5" in page


def broken_set(folder):
    """Five good drawings and the files an instructor's folder may also hold by mistake."""
    from PIL import Image

    folder.mkdir()
    for path, _ in labelled_images(HIDDEN_SET)[:5]:
        shutil.copyfile(path, folder / path.name)
    (folder / "3_notes.png").write_text("not an image")
    Image.new("1", (15000, 15000)).save(folder / "3_bomb.png")  # 27 KB, 225 megapixels
    (folder / "4_folder.png").mkdir()
    os.symlink("/etc/passwd", folder / "5_link.png")
    (folder / "6_cut.jpg").write_bytes(next(HIDDEN_SET.glob("*.jpg")).read_bytes()[:2000])
    return folder


def test_files_of_a_set_that_cannot_be_graded_with_are_named_one_line_each(tmp_path, capsys):
    """Red team: one text file named 3_x.png, a bomb, a folder or a link in the course's drawings made every
    grading of the class a host fault (the grader's copy raised while planning)."""
    from autograder.grader.hidden_tests.drawings import drawing_problems

    folder = broken_set(tmp_path / "drawings")
    problems = drawing_problems(folder)
    assert [p.split()[0] for p in problems] == ["3_bomb.png", "3_notes.png", "4_folder.png", "5_link.png",
                                                "6_cut.jpg"]
    assert drawing_problems(HIDDEN_SET) == []
    assert run(["drawings", "check", str(folder), "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"autograder: 5 of the 10 drawings in {folder} cannot be graded with: 3_bomb.png ")
    assert err.rstrip().endswith("Fix or remove them.") and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_set_that_cannot_be_read_stops_only_its_worksheets_as_the_courses_problem(tmp_path, capsys):
    course = make_course(tmp_path / "course", drawing_solution(), assignment="drawn")
    make_course(course, assignment="tiny",
                config=f"c.PlanHiddenTests.drawings = {str(broken_set(tmp_path / 'drawings'))!r}\n"
                       f"c.ReferenceRun.cache_dir = {str(tmp_path / 'verdicts')!r}\n")
    drawn = submit(course, "ada", student_version(drawing_solution()), assignment="drawn")
    submit(course, "bob", student_version(tiny_solution()), assignment="tiny")

    assert run(["grade", str(drawn), "--root", str(course)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "drawn cannot be graded with the course's drawings: the course's drawings cannot all be read: " \
           "3_bomb.png" in err and "no score was saved" in err and "Traceback" not in err

    assert run(["grade-all", "--root", str(course), "--workers", "1"]) == 1
    outcomes = json.loads((course / "grade-all.json").read_text())
    assert outcomes["ada/drawn"]["status"] == "not-graded" and "3_notes.png is not an image" in \
        outcomes["ada/drawn"]["reason"]
    assert outcomes["bob/tiny"]["status"] == "graded" and outcomes["bob/tiny"]["score"] == 3.0
    assert "HOST FAULT" not in capsys.readouterr().out
    # The host's verdicts (they hold the readings of the hidden drawings) are private wherever they are kept.
    kept = list((tmp_path / "verdicts").iterdir())
    assert kept and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in kept)
    assert stat.S_IMODE((tmp_path / "verdicts").stat().st_mode) == 0o700


def test_the_contact_sheet_replaces_a_planted_link_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("the instructor's file")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "drawings-check.html").symlink_to(victim)
    sheet = write_contact_sheet(tmp_path / "shared" / "drawings-check.html", tmp_path, [reading(0.667)])
    assert victim.read_text() == "the instructor's file"
    assert not sheet.is_symlink() and "4_2.png" in sheet.read_text()
    assert stat.S_IMODE(sheet.stat().st_mode) == 0o600  # the hidden drawings and their labels


def test_a_worksheet_that_reads_no_drawings_is_named_not_graded(tmp_path, capsys):
    course = make_course(tmp_path / "course", assignment="tiny")
    drawings = relabelled(tmp_path / "drawings")
    assert run(["drawings", "check", str(drawings), "--root", str(course)]) == 2
    assert capsys.readouterr().err.startswith(f"autograder: no worksheet in {course / 'solutions'} grades hand-drawn")
    make_course(course, drawing_solution(), assignment="drawn")
    assert run(["drawings", "check", str(drawings), "--root", str(course), "--worksheet", "tiny"]) == 2
    assert capsys.readouterr().err == ("autograder: tiny does not grade hand-drawn digits; the worksheets that do: "
                                       "drawn.\n")
