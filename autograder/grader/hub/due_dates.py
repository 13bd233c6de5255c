"""The course's due dates and late penalty, published in the exchange for the students' Assignment List.

Formgrader keeps due dates in the gradebook, which no student may read. The instructor's server
(a Jupyter server extension, enabled by `lab.instructor_server_files`) writes them to
``<exchange>/<course>/due-dates.json``, a folder of the course's that students read and cannot
write, when it starts and every `SYNC_SECONDS` after: a due date set in Formgrader reaches the
students within that time. The kit's JupyterLab extension shows it beside each assignment, and
each submission's time against it (`autograder.nbgrader_exchange.assignment_list` serves it to them).
"""

import json
import os
import stat
import tempfile
from pathlib import Path

from ...nbgrader_exchange.assignment_list import FILE_NAME, course_folder, published

SYNC_SECONDS = 10


def course_due_dates(config):
    """``{"late_penalty": method, "assignments": {name: ISO time in UTC or None}}`` from the gradebook,
    or None where the course has no gradebook yet."""
    import sqlite3

    from nbgrader.coursedir import CourseDirectory

    url = CourseDirectory(config=config).db_url
    if not url.startswith("sqlite:///"):
        return None  # a gradebook server: Formgrader's own (its due dates stay in Formgrader)
    path = Path(url[len("sqlite:///"):])
    if not path.is_file():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:  # read only: grading may be writing
        rows = db.execute("SELECT name, duedate FROM assignment ORDER BY name").fetchall()
    released = released_assignments(config)
    due = {name: (str(when).replace(" ", "T")[:19] + "Z" if when else None) for name, when in rows
           if name in released}  # what is not released yet is nobody's business
    return {"late_penalty": str(config.get("LateSubmissionPlugin", {}).get("penalty_method", "none")),
            "assignments": due}


def released_assignments(config):
    """The assignments released to the exchange (their folders in outbound/)."""
    outbound = course_folder(config) / "outbound"
    return {p.name for p in outbound.iterdir() if p.is_dir()} if outbound.is_dir() else set()


def publish(config, log=None):
    """Write the course's due dates into its exchange folder when they changed; the path, or None where
    there is no exchange folder of this user's (`autograder lab` without a hub)."""
    folder = course_folder(config)
    try:
        info = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():  # a link, or someone else's: not ours
        return None
    data = course_due_dates(config)
    if data is None:
        return None
    path = folder / FILE_NAME
    text = json.dumps(data, indent=1, sort_keys=True)
    if published(config) == text:
        return path
    fd, staging = tempfile.mkstemp(dir=folder, prefix=".due-dates-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(staging, 0o644)
    os.replace(staging, path)
    if log is not None:
        log.info("autograder: the course's due dates are in %s", path)
    return path


def _jupyter_server_extension_points():
    return [{"module": "autograder.grader.hub.due_dates"}]


def _load_jupyter_server_extension(serverapp):
    from nbgrader.apps import NbGrader
    from tornado.ioloop import PeriodicCallback

    def sync():
        try:
            app = NbGrader()
            app.load_config_file()  # as Formgrader reads it: the course's configuration, reread each time
            publish(app.config, serverapp.log)
        except Exception:  # never the server's failure; said in its log
            serverapp.log.warning("autograder: the due dates could not be published", exc_info=True)

    sync()
    PeriodicCallback(sync, SYNC_SECONDS * 1000).start()
