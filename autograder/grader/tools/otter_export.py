"""`autograder export-otter`: the worksheets for otter-grader 7, converted from the nbgrader source.

`solutions/<id>/<id>.ipynb` stays the one source. For each worksheet:

    <out>/<id>/autograder.zip       what `otter run` and Gradescope take: tests/, files/, and a
                                    set-up that installs this package (a wheel in the zip) and the data
    <out>/<id>/student/<id>.ipynb   nbgrader's release of the worksheet, plus otter's cells
    <out>/<id>/student/tests/       the visible cases only, for `grader.check` and `otter check`
    <out>/<id>/student/...          the worksheet's other files (e.g. my_digits/)

Each autograded test cell becomes one otter question, named after its
grade_id and worth its points, all or nothing, as nbgrader scores the kit's
test cells. Its visible case runs the cell's visible lines. Its hidden case
hands the cell's hidden block to `trusted.check_in_clean_process`, so the
same named checks decide, in a fresh process. Under otter the student's code
shares its process with the tests; the README says what that leaves open.
"""

import ast
import contextlib
import copy
import os
import pprint
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell
from nbgrader.utils import is_grade, is_solution

from ... import UserError
from ...run.hidden_regions import Markers
from ..course import PROJECT_ROOT, SOLUTIONS, check_ids, course_of
from ..hidden_tests.scorer import PlanError, parse

DEFAULT_OUT = PROJECT_ROOT / "dist" / "otter"
# What nbgrader leaves out when it copies a worksheet's folder (CourseDirectory.ignore).
IGNORED = shutil.ignore_patterns(".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback")
# The grading image's conda env gets the Python the kit is tested with.
PYTHON_VERSION = "3.11"
# Doctest compares what an example prints with its expected output; test cells print what they measure.
QUIET = "with __import__('contextlib').redirect_stdout(__import__('io').StringIO()):"
OTTER_CELL = {"tags": ["otter"], "deletable": False, "editable": False}
INIT_SOURCE = ('# otter-grader: grader.check("<question>") runs the visible tests of a question\n'
               'import otter\ngrader = otter.Notebook(tests_dir="tests")')
# Appended to otter's setup.sh, which Gradescope and `otter grade` run to build the grading image.
# By then Gradescope has unpacked the whole zip into /autograder/source, while `otter grade`'s
# Dockerfile has copied only setup.sh, environment.yml and requirements.* (a folder's contents
# straight into source/), so the wheel sits in requirements.d/ and is looked for in both places.
WHEELS = "requirements.d"
SETUP = f"""
# autograder: this package, from the wheel in the zip's {WHEELS}/
for wheel in /autograder/source/{WHEELS}/*.whl /autograder/source/*.whl; do
  if [ -f "$wheel" ]; then mamba run -n otter-env pip install "$wheel"; break; fi
done
# the worksheets' datasets, verified, into the image's cache
# (from $AUTOGRADER_DATA_MIRROR when it is set, else from the canonical URLs)
mamba run -n otter-env autograder data fetch
"""


@dataclass
class Question:
    """One nbgrader test cell, as otter sees it."""

    name: str
    points: float
    visible: str
    hidden: str


def is_test_cell(cell):
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


def questions(nb, markers=Markers()):
    """The autograded test cells of a source notebook, in order; PlanError for a cell otter could not run."""
    found = []
    for cell in filter(is_test_cell, nb.cells):
        meta = cell.metadata.nbgrader
        visible, blocks = markers.split(cell.source)
        visible = "\n".join(visible).strip()
        try:
            ast.parse(visible)
        except SyntaxError as e:  # an IPython magic, say: doctest runs plain Python only
            raise PlanError(f"the visible part of {meta['grade_id']} is not plain Python ({e.msg}, line {e.lineno})")
        hidden = "\n".join(blocks)  # joined as PlanHiddenTests joins them
        if hidden:
            parse(hidden, where=f"the hidden test of {meta['grade_id']}")
        found.append(Question(meta["grade_id"], meta["points"], visible, hidden))
    return found


# --- otter's test files -----------------------------------------------------------

def _doctest(lines):
    """One doctest example: the first line after >>>, the rest after ... (blank ones would end it)."""
    return "\n".join([f">>> {lines[0]}"] + [f"... {line}" if line.strip() else "..." for line in lines[1:]])


def _indented(source):
    """``source`` as the body of a block, or an exec of it where indenting would change a multi-line string."""
    body = [f"    {line}" if line.strip() else "" for line in source.splitlines()]
    as_block = ast.parse("with _:\n" + "\n".join(body)).body[0].body
    if ast.dump(ast.Module(as_block, [])) == ast.dump(ast.parse(source)):
        return body
    return [f"    exec({source!r})"]


def visible_case(source):
    """The visible lines as a doctest that ignores what they print: doctest would compare it with nothing."""
    return _doctest([QUIET] + _indented(source))


def hidden_case(question):
    """The hidden block, decided by the grader's named checks in a fresh process: no failures expected.

    Quiet too: exporting calls the student's functions, which may print.
    """
    call = f"failures = check_in_clean_process({question.hidden!r}, globals(), name={question.name!r})"
    return "\n".join([_doctest(["from autograder.grader.hidden_tests.launch import check_in_clean_process"]),
                      _doctest([QUIET, f"    {call}"]),
                      _doctest(["failures"]),
                      "[]"])


def ok_test(question, hidden=True):
    """An OK-format test: the cell's points, all or nothing, like nbgrader's score of the cell."""
    cases = []
    if ast.parse(question.visible).body:
        cases.append({"name": f"{question.name} (visible)", "code": visible_case(question.visible), "hidden": False})
    if hidden and question.hidden:
        cases.append({"name": f"{question.name} (hidden)", "code": hidden_case(question), "hidden": True})
    return {"name": question.name, "points": question.points, "all_or_nothing": True,
            "suites": [{"type": "doctest", "scored": True, "setup": "", "teardown": "", "cases": cases}]}


def write_tests(found, folder, hidden):
    """``folder/<grade_id>.py`` per question; without ``hidden``, the students' copy."""
    folder.mkdir(parents=True, exist_ok=True)
    for question in found:
        spec = pprint.pformat(ok_test(question, hidden), sort_dicts=False, width=110)
        (folder / f"{question.name}.py").write_text(f"OK_FORMAT = True\n\ntest = {spec}\n")
    return folder


# --- the student notebook -----------------------------------------------------------

def release(nb):
    """nbgrader's release of a source notebook: generate_assignment's own steps, less the gradebook's."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.preprocessors import SaveCells

    nb, resources = copy.deepcopy(nb), {}
    for step in GenerateAssignment.class_traits()["preprocessors"].default():
        if step is not SaveCells:
            nb, resources = step().preprocess(nb, resources)
    return nb


def otter_cell(source):
    return new_code_cell(source, metadata=copy.deepcopy(OTTER_CELL))


def add_otter_cells(nb):
    """Otter's set-up before the first code cell, and a check after each test cell, where nbgrader scores it."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code" and not any(c.cell_type == "code" for c in cells):
            cells.append(otter_cell(INIT_SOURCE))
        cells.append(cell)
        if is_test_cell(cell):
            cells.append(otter_cell(f'grader.check("{cell.metadata.nbgrader["grade_id"]}")'))
    nb.cells = cells
    return nb


def without_otter_cells(nb):
    """The nbgrader notebook an otter student notebook was made from."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if "otter" not in c.metadata.get("tags", [])]
    return nb


# --- writing a worksheet ---------------------------------------------------------------

def support_files(source, assignment_id):
    """The worksheet folder's other files and folders, which nbgrader releases beside the notebook."""
    ignored = IGNORED(str(source), os.listdir(source)) | {f"{assignment_id}.ipynb"}
    return sorted(p for p in source.iterdir() if p.name not in ignored)


def copy_into(paths, folder):
    for path in paths:
        if path.is_dir():
            shutil.copytree(path, folder / path.name, ignore=IGNORED, dirs_exist_ok=True)
        else:
            shutil.copy2(path, folder / path.name)


@contextlib.contextmanager
def working_directory(folder):
    """otter generate reads every path relative to the working directory."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def write_autograder(found, files, wheel, zip_path):
    """otter generate's zip of the full tests and ``files``, then this package's wheel and data in its set-up.

    `otter run` reads only tests/ and files/; Gradescope and `otter grade`
    build their image with setup.sh.
    """
    try:
        from otter.generate import main as otter_generate
    except ImportError:
        raise UserError("export-otter needs otter-grader: pip install -e '.[otter]'.") from None
    with tempfile.TemporaryDirectory(prefix="autograder-otter-") as tmp:
        staging = Path(tmp)
        write_tests(found, staging / "tests", hidden=True)
        copy_into(files, staging)
        with working_directory(staging):
            otter_generate(tests_dir="tests", output_path=str(zip_path), no_config=True, lang="python",
                           no_requirements=True, no_environment=True,
                           files=[p.name for p in files], python_version=PYTHON_VERSION)
    add_to_setup(zip_path, wheel)
    return zip_path


def add_to_setup(zip_path, wheel):
    """Add ``wheel`` and the lines that install it and fetch the data to setup.sh (zip members cannot be edited)."""
    with zipfile.ZipFile(zip_path) as old:
        members = [(info, old.read(info)) for info in old.infolist()]
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as new:
        for info, data in members:
            new.writestr(info, data + SETUP.encode() if info.filename == "setup.sh" else data)
        new.write(wheel, f"{WHEELS}/{wheel.name}")


def worksheet_questions(assignment_id, solutions):
    """``(source notebook, its questions)``, the hidden blocks found by the course's own markers."""
    nb = nbformat.read(Path(solutions) / assignment_id / f"{assignment_id}.ipynb", as_version=4)
    try:
        return nb, questions(nb, Markers.from_config(course_of(solutions)))
    except PlanError as e:
        raise UserError(f"{assignment_id}: {e}.") from None


def export_worksheet(assignment_id, out, solutions, wheel):
    """``(autograder zip, student notebook)`` of one worksheet, written afresh under ``out/<id>/``."""
    source = Path(solutions) / assignment_id
    nb, found = worksheet_questions(assignment_id, solutions)
    target = Path(out) / assignment_id
    shutil.rmtree(target, ignore_errors=True)
    student = target / "student"
    student.mkdir(parents=True)
    files = support_files(source, assignment_id)
    copy_into(files, student)
    notebook = student / f"{assignment_id}.ipynb"
    nbformat.write(add_otter_cells(release(nb)), notebook)
    write_tests(found, student / "tests", hidden=False)
    return write_autograder(found, files, wheel, target / "autograder.zip"), notebook


def writable(out):
    out = Path(out).resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as e:
        raise UserError(f"cannot write to {out} ({e.strerror or type(e).__name__}).") from None
    return out


def export(ids=(), out=DEFAULT_OUT, solutions=SOLUTIONS):
    """Export worksheets ``ids`` (default: all) for otter; ``[(autograder zip, student notebook)]``."""
    from ...run.kit import build_wheel

    ids = check_ids(ids, solutions)
    out = writable(out)
    with tempfile.TemporaryDirectory(prefix="autograder-wheel-") as tmp:
        wheel = build_wheel(tmp, grader=True)
        return [export_worksheet(assignment_id, out, solutions, wheel) for assignment_id in ids]
