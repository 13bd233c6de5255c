"""Grading the whole class from Formgrader: `autograder grade-all`, started by the instructor's server.

nbgrader's Formgrader grades one submission per click (its Autograde button, which runs the
kit's pipeline too). The kit's JupyterLab extension adds a button to Manage Assignments that
grades every collected submission as `autograder grade-all` in the instructor's terminal does,
and shows its progress in the page. The run is a child process of the instructor's server:
on the hub it starts in the control groups the hub delegated to the course, with the course's
limits, whoever clicks.

``POST /autograder/grade-all`` starts it (one run per course at a time); ``GET`` answers
``{"running", "exit", "progress", "log"}``: the JSON grade-all writes with --progress-file,
and the last lines it printed.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from ...run.record import terminal_text
from ..course import private_cache

RUNS = {}  # course root -> the Popen of its grade-all
BAR = re.compile(r"^grading:\s+\d+%\|")


def run_folder(root):
    """The instructor's own private folder for the course's run from Formgrader: progress and log."""
    folder = private_cache("formgrader-grading") / hashlib.sha256(str(root).encode()).hexdigest()[:16]
    folder.mkdir(exist_ok=True, mode=0o700)
    return folder


def start(root):
    """Start grade-all on the course at ``root``; False when one runs already."""
    running = RUNS.get(root)
    if running is not None and running.poll() is None:
        return False
    folder = run_folder(root)
    (folder / "progress.json").unlink(missing_ok=True)
    with open(folder / "grade-all.log", "wb") as log:
        RUNS[root] = subprocess.Popen(
            # -I: nothing of the course folder (its working folder) or of PYTHON* variables is imported
            [sys.executable, "-I", "-u", "-m", "autograder", "grade-all", "--root", str(root),
             "--progress-file", str(folder / "progress.json")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=root,
            env=dict(os.environ))
    (folder / "started").write_text(str(time.time()))
    return True


def state(root):
    """What the page shows: whether it runs, how it ended, its progress and its last lines."""
    folder = run_folder(root)
    process = RUNS.get(root)
    progress, log = {}, ""
    try:
        progress = json.loads((folder / "progress.json").read_text())
    except (OSError, ValueError):
        pass
    try:
        with open(folder / "grade-all.log", "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 8000))
            log = f.read().decode(errors="replace")
    except OSError:
        pass
    # the progress bar's drawings are for a terminal: the page shows the counts from progress.json instead
    lines = [line.split("\r")[-1] for line in log.splitlines()]
    lines = [line for line in lines if line.strip() and not BAR.match(line)]
    return {"running": process is not None and process.poll() is None,
            "exit": None if process is None else process.poll(),
            "progress": progress, "log": [terminal_text(line) for line in lines[-15:]]}


def _jupyter_server_extension_points():
    return [{"module": "autograder.grader.hub.formgrader_grading"}]


def _load_jupyter_server_extension(serverapp):
    from jupyter_server.base.handlers import JupyterHandler
    from jupyter_server.utils import url_path_join
    from nbgrader.apps import NbGrader
    from nbgrader.coursedir import CourseDirectory
    from tornado import web

    class GradeAllHandler(JupyterHandler):
        def course_root(self):
            app = NbGrader()
            app.load_config_file()  # the course as Formgrader reads it
            return str(Path(CourseDirectory(config=app.config).root).resolve())

        @web.authenticated
        def get(self):
            self.finish(json.dumps(state(self.course_root())))

        @web.authenticated
        def post(self):
            root = self.course_root()
            started = start(root)
            self.finish(json.dumps({"started": started, **state(root)}))

    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base, r"/autograder/grade-all"), GradeAllHandler)])
