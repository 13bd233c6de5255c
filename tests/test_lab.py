"""The course in JupyterLab, driven by headless Chromium: what instructors and students see.

One real server (`autograder lab --root COURSE`, tests/lab_server.py) on a
small graded course (tests/graded_course.py), one browser for the module.
Screenshots go to test-artifacts/lab/ (or $AUTOGRADER_TEST_ARTIFACTS/lab).
The last test changes a score, so the file runs in its written order.

Without Playwright or Chromium the tests skip, unless
AUTOGRADER_REQUIRE_BROWSER=1 (as in CI) turns that into a failure.
"""

import csv
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from graded_course import ASSIGNMENT, EXPECTED_SCORES, build_graded_course, released
from lab_server import LabServer
from tiny_course import MARKER, student_version, tiny_solution

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("AUTOGRADER_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts")) / "lab"
NBGRADER_COMMANDS = ["nbgrader:open-formgrader", "nbgrader:open-create-assignment", "nbgrader:open-assignment-list",
                     "nbgrader:open-course-list"]

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    sync_playwright = None

if sync_playwright is None or CHROMIUM is None:
    missing = "playwright (pip install -e '.[test]')" if sync_playwright is None else "chromium (apt-get install chromium)"
    if os.environ.get("AUTOGRADER_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"the browser tests need {missing}")
    pytest.skip(f"the browser tests need {missing}", allow_module_level=True)

expect.set_options(timeout=30_000)  # Formgrader draws its tables after a request; CI machines are busy


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return build_graded_course(tmp_path_factory.mktemp("lab") / "course")


@pytest.fixture(scope="module")
def lab(course, tmp_path_factory):
    server = LabServer(course, tmp_path_factory.mktemp("jupyter")).start()
    yield server
    server.stop()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(server.log_path, ARTIFACTS / "jupyter-lab.log")


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, lab, request):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(60_000)
    # Offline and deterministic: the grading view and the feedback ask a CDN for MathJax.
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
    page = context.new_page()
    # A workspace of its own: JupyterLab would restore the tabs an earlier test left open.
    page.goto(lab.url(f"/lab/workspaces/test-{uuid.uuid4().hex[:8]}"))
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    page.wait_for_function("window.jupyterapp !== undefined")
    page.evaluate("async () => { await window.jupyterapp.restored; }")
    yield page
    page.screenshot(path=ARTIFACTS / "last" / f"{request.node.name}.png")  # what a failure looked like
    context.close()


def command(page, name, args=None):
    page.evaluate("([name, args]) => window.jupyterapp.commands.execute(name, args)", [name, args or {}])


def formgrader(page, lab, path=None):
    """The Formgrader tab's frame, showing ``path`` when given (the tab ignores a URL once it exists)."""
    command(page, "nbgrader:open-formgrader")
    frame = page.locator("#formgrader-iframe iframe")
    if path:
        frame.element_handle().content_frame().goto(lab.base + path)
    return page.frame_locator("#formgrader-iframe iframe")


def scores_shown(frame):
    """Student id -> score text of Formgrader's "manage submissions" table, once its rows are drawn."""
    expect(frame.locator("#main-table tr td.score").first).not_to_be_empty()
    rows = frame.locator("#main-table tr").all()
    return {row.locator("td.student-id").inner_text(): row.locator("td.score").inner_text() for row in rows}


def open_notebook(page, path):
    command(page, "docmanager:open", {"path": path})
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(panel.locator(".jp-Notebook .jp-Cell").first).to_be_visible()
    return panel


def kernel_idle(page):
    page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget;"
                           " const k = w && w.sessionContext && w.sessionContext.session"
                           " && w.sessionContext.session.kernel; return k && k.status === 'idle'; }")


def words(text):
    return " ".join(text.split())


def shown(score):
    return f"{score:g} / 3"


# --- instructors ----------------------------------------------------------------------------

def test_formgrader_shows_the_graded_course(page, lab):
    """The Nbgrader menu opens Formgrader on the gradebook grade-all wrote, with each student's score."""
    assert all(page.evaluate("(names) => names.map(n => window.jupyterapp.commands.hasCommand(n))",
                             NBGRADER_COMMANDS))
    page.locator('#jp-MainMenu .lm-MenuBar-itemLabel:text-is("Nbgrader")').click()
    page.locator('#jp-mainmenu-nbgrader li[data-command="nbgrader:open-formgrader"]').click()
    frame = page.frame_locator("#formgrader-iframe iframe")
    assignment = frame.locator("#main-table tr", has=frame.locator("td.name", has_text=ASSIGNMENT))
    expect(assignment.locator("td.num-submissions")).to_have_text("3")
    assignment.locator("td.num-submissions a").click()
    assert scores_shown(frame) == {student: shown(score) for student, score in EXPECTED_SCORES.items()}
    page.screenshot(path=ARTIFACTS / "formgrader.png")


def test_create_assignment_shows_the_source_cells(page):
    """The Create Assignment sidebar reads the source notebook's grading metadata: types, ids, points."""
    open_notebook(page, f"solutions/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
    command(page, "nbgrader:open-create-assignment")
    widgets = page.locator(".nbgrader-CreateAssignmentWidget .nbgrader-CellWidget")
    expect(widgets).to_have_count(6)
    shown = [(w.locator(".nbgrader-CellType select").input_value(),
              *[i.input_value() for i in w.locator(".nbgrader-CellId input, .nbgrader-CellPoints input").all()
                if i.is_visible()]) for w in widgets.all()]
    assert shown == [("",), ("solution", "answer"), ("tests", "test_answer", "1"),
                     ("",), ("solution", "double"), ("tests", "test_double", "2")]
    page.screenshot(path=ARTIFACTS / "create-assignment.png")


# --- students -------------------------------------------------------------------------------

def test_released_notebook_opens_with_its_cells(page, course):
    panel = open_notebook(page, f"assignments/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
    release = nbformat.read(released(course), as_version=4)
    expect(panel.locator(".jp-Notebook .jp-Cell")).to_have_count(len(release.cells))
    for level, title in ((1, "Tiny worksheet"), (2, "1. The answer"), (2, "2. Doubling")):
        expect(panel.get_by_role("heading", level=level, name=title)).to_be_visible()
    code = [c.source for c in release.cells if c.cell_type == "code"]
    assert [words(t) for t in panel.locator(".jp-CodeCell .cm-content").all_inner_texts()] == list(map(words, code))
    expect(panel.locator("jp-button.validate-button")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "released-notebook.png")


# What a student may hand in, and what running it in Lab shows (run-all stops at the first error).
STUDENT_WORK = {
    "untouched": (lambda course: nbformat.read(released(course), as_version=4), "NotImplementedError"),
    "visible-mistake": (lambda course: student_version(tiny_solution(), answer="-1"),
                        "AssertionError: answer should be positive"),
    "solved": (lambda course: student_version(tiny_solution()), None),
}


@pytest.mark.parametrize("work", list(STUDENT_WORK))
def test_validate_gives_the_verdicts_of_check(page, course, work):
    """A student runs the notebook in Lab, then Validate fails exactly the tests `autograder check` fails."""
    from autograder.visible_tests import check_notebook

    make, output = STUDENT_WORK[work]
    path = course / "students" / f"{work}.ipynb"
    path.parent.mkdir(exist_ok=True)
    nbformat.write(make(course), path)
    panel = open_notebook(page, f"students/{work}.ipynb")
    kernel_idle(page)
    command(page, "notebook:run-all-cells")
    prompts = panel.locator(".jp-CodeCell .jp-InputPrompt")
    expect(prompts.first).to_have_text(re.compile(r"\[\d+\]"))
    if output:
        expect(panel.locator(".jp-OutputArea-output", has_text=output)).to_be_visible()
    else:
        expect(prompts.last).to_have_text(re.compile(r"\[\d+\]"))
        expect(panel.locator(".jp-OutputArea-output")).to_have_count(0)
    kernel_idle(page)

    panel.locator("jp-button.validate-button").click()
    message = page.locator(".jp-Dialog #validation-message")
    # Issue 22: for the whole run the button said only "Validating..."; the kit's extension says which cell runs.
    label, seen = panel.locator(".validate-button .jp-ToolbarButtonComponent-label"), set()
    deadline = time.monotonic() + 120
    while not message.is_visible() and time.monotonic() < deadline:
        seen.add(label.inner_text())
        time.sleep(0.2)
    assert any(re.fullmatch(r"Validating: (starting the kernel|cell \d+/\d+ · .+) \(\d+ s\)", t) for t in seen), seen
    expect(message).to_be_visible(timeout=120_000)
    text = message.inner_text()
    page.screenshot(path=ARTIFACTS / f"validate-{work}.png")

    report = check_notebook(path, progress=False)  # the file Validate saved
    failed = {t["name"] for t in report["cells"] if t["score"] < t["max_score"]}
    tests = {c.metadata.nbgrader["grade_id"]: c.source for c in nbformat.read(path, as_version=4).cells
             if c.metadata.get("nbgrader", {}).get("grade")}
    assert {name for name, source in tests.items() if f"failed:\n\n{source}\n" in text} == failed
    for cell in report["cells"]:  # check's own message, not a traceback through the kit
        if cell["name"] in failed:
            assert f"{cell['name']}: {cell['message'].split()[0]}" in text
    assert "Traceback" not in text and "autograder/checks.py" not in text
    if failed:
        expect(message).to_have_class(re.compile("validation-failed"))
    else:
        expect(message).to_have_class(re.compile("validation-success"))
        assert text.strip() == "Success! Your notebook passes all the tests."


def test_feedback_shows_each_tests_message_and_no_hidden_test(page, lab, course):
    for student, score in EXPECTED_SCORES.items():
        page.goto(lab.url(f"/files/feedback/{student}/{ASSIGNMENT}/{ASSIGNMENT}.html"))
        text = words(page.locator("body").inner_text())
        assert f"{ASSIGNMENT} (Score: {score:.1f} / 3.0)" in text
        autograded = nbformat.read(course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
        for cell in autograded.cells:
            grade = cell.metadata.get("nbgrader", {})
            if grade.get("grade"):
                assert f"Grade cell: {grade['grade_id']}" in text
                for output in cell.outputs:
                    if output.output_type == "error":
                        assert words(f"{output.ename}: {output.evalue}") in text
        html = page.content()
        assert MARKER not in html and "HIDDEN TESTS" not in html and "hidden.expect" not in html
        if student == "cy":
            assert "Expected the value 42, found 7" in text  # the hidden test's verdict reached the student
            page.screenshot(path=ARTIFACTS / "feedback.png", full_page=True)


# --- last: changes cy's score ---------------------------------------------------------------

def test_a_manual_score_survives_grade_all(page, lab, course):
    """An instructor overrides a score in Formgrader; grade-all --force regrades and keeps it."""
    from autograder.grader.classroom.grade_all import grade_all
    from autograder.grader.course import nbgrader_api

    notebooks = lab.api("GET", f"/formgrader/api/submitted_notebooks/{ASSIGNMENT}/{ASSIGNMENT}")
    cy = next(n["id"] for n in notebooks if n["student"] == "cy")
    frame = formgrader(page, lab, f"/formgrader/submissions/{cy}/")
    score = frame.locator("input.score#test_answer")
    expect(score).to_have_attribute("placeholder", "0")  # the page's script holds the auto score
    with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT") as saved:
        score.fill("1")
        score.press("Tab")
    assert saved.value.ok and saved.value.json()["manual_score"] == 1.0

    outcomes = grade_all(course, workers=1, force=True, progress=False)
    assert outcomes["cy/tiny"]["score"] == EXPECTED_SCORES["cy"] + 1
    with nbgrader_api(course).gradebook as gb:
        grade = gb.find_grade("test_answer", ASSIGNMENT, ASSIGNMENT, "cy")
        assert (grade.auto_score, grade.manual_score, grade.score) == (0.0, 1.0, 1.0)
    rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader((course / "grades.csv").open())}
    assert rows["cy"] == EXPECTED_SCORES["cy"] + 1

    frame = formgrader(page, lab, f"/formgrader/manage_submissions/{ASSIGNMENT}")
    assert scores_shown(frame)["cy"] == shown(EXPECTED_SCORES["cy"] + 1)
    page.screenshot(path=ARTIFACTS / "formgrader-after-manual-score.png")
