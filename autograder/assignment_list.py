"""What the kit adds to nbgrader's Assignment List: the course's due dates, for the kit's JupyterLab extension.

``GET /autograder/due-dates`` answers ``{course id: the course's due-dates.json}`` for the course of the
student's nbgrader configuration, as the instructor's server publishes it in the exchange
(`autograder.grader.due_dates`); ``{}`` where there is none. The extension shows each assignment's due
date, and each submission's time against it, with the course's late penalty.
"""

import json
import os
import stat
from pathlib import Path

MAX_BYTES = 1_000_000


def read_small_file(path, limit=MAX_BYTES):
    """The text of ``path`` when it is a plain file (not a link, a pipe or a device) of at most ``limit``
    bytes, read in one open: nothing swapped in after a check is read. None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        return f.read(limit + 1)[:limit].decode(errors="replace")


def due_dates(config):
    """``{course id: published due dates}`` for the course in ``config``."""
    course = str(config.get("CourseDirectory", {}).get("course_id", ""))
    root = config.get("Exchange", {}).get("root", "/usr/local/share/nbgrader/exchange")
    text = read_small_file(Path(root, course, "due-dates.json")) if course else None
    try:
        data = json.loads(text) if text else None
    except (ValueError, RecursionError):  # whatever lies there: no due dates, never a failed request
        return {}
    return {course: data} if isinstance(data, dict) else {}


def _jupyter_server_extension_points():
    return [{"module": "autograder.assignment_list"}]


def _load_jupyter_server_extension(serverapp):
    from jupyter_server.base.handlers import JupyterHandler
    from jupyter_server.utils import url_path_join
    from nbgrader.apps import NbGrader
    from tornado import web

    class DueDatesHandler(JupyterHandler):
        @web.authenticated
        def get(self):
            app = NbGrader()
            app.load_config_file()
            self.finish(json.dumps(due_dates(app.config)))

    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base, r"/autograder/due-dates"), DueDatesHandler)])
