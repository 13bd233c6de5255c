"""What the kit adds to nbgrader's Assignment List: the course's due dates, for the kit's JupyterLab extension.

``GET /autograder/due-dates`` answers ``{course id: the course's due-dates.json}`` for the course of the
student's nbgrader configuration, as the instructor's server publishes it in the exchange
(`autograder.grader.hub.due_dates`); ``{}`` where there is none. The extension shows each assignment's due
date, and each submission's time against it, with the course's late penalty.
"""

import json
from pathlib import Path

from ..run import safe_files

MAX_BYTES = 1_000_000
FILE_NAME = "due-dates.json"


def course_folder(config):
    """The course's folder in nbgrader's exchange, as ``config`` places it."""
    return Path(config.get("Exchange", {}).get("root", "/usr/local/share/nbgrader/exchange"),
                str(config.get("CourseDirectory", {}).get("course_id", "")))


def published(config):
    """The text of the course's due-dates.json, read as the grader reads a student's file (one open, no link,
    no pipe, at most MAX_BYTES); None where there is none."""
    if not config.get("CourseDirectory", {}).get("course_id"):
        return None
    try:
        return safe_files.read_text(course_folder(config) / FILE_NAME, MAX_BYTES)
    except (OSError, safe_files.Refused):
        return None


def due_dates(config):
    """``{course id: published due dates}`` for the course in ``config``."""
    text = published(config)
    try:
        data = json.loads(text) if text else None
    except (ValueError, RecursionError):  # whatever lies there: no due dates, never a failed request
        return {}
    return {str(config["CourseDirectory"]["course_id"]): data} if isinstance(data, dict) else {}


def _jupyter_server_extension_points():
    return [{"module": "autograder.nbgrader_exchange.assignment_list"}]


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
