"""`autograder lab`: the course in JupyterLab, with nbgrader's Formgrader, Create Assignment,
Assignment List and Validate.

nbgrader's lab extensions read their configuration from the server's working
folder and from the Jupyter configuration path, and re-read it on every
Formgrader request (nbgrader/apps/baseapp.py, formgrader/base.py). So the
server runs in the course folder, and a course folder is never written into:
its configuration, as every command reads it (the kit's defaults, then the
course's own nbgrader_config.py, rooted in that folder with the layout
`grade-all --root` grades it with, `course.course_settings`), goes to a
folder of the kit's own that is put first on ``JUPYTER_CONFIG_PATH``. The server's configuration there also
swaps nbgrader's Validate handler for the kit's (`autograder.validate`),
which gives `autograder check`'s verdicts, and keeps what a student wrote
inert in Formgrader (`instructor_server_files`).
"""

import hashlib
import json
import os
import sys
from pathlib import Path

from ... import UserError
from ...run.kit import LAB_EXTENSIONS, SERVER_EXTENSIONS
from ..course import (
    CONFIG_FILE,
    PROJECT_ROOT,
    _put_interpreter_on_path,
    course_settings,
    own_configuration,
    private_cache,
)

# Formgrader builds its HTMLExporter from the server's configuration (nbgrader 0.9.6,
# formgrader/formgrader.py: HTMLExporter(config=self.config)), and its manual grading template renders
# markdown cells with markdown2html alone, whatever sanitize_html says: the kit's filters sanitize both
# (autograder/grader/pages/inert.py). The same settings are in the course's nbgrader_config.py, for feedback;
# here they hold for a course whose own configuration lacks them.
# MakeInert on every page Formgrader renders too: a notebook graded before the step existed is inert as well.
INERT_EXPORTER = {"sanitize_html": True, "preprocessors": ["autograder.grader.pages.inert.MakeInert"],
                  "filters": {"markdown2html": "autograder.grader.pages.inert.SafeMarkdown",
                              "clean_html": "autograder.grader.pages.inert.sanitize_html"}}
# Formgrader's pages refuse every script but their own (autograder/grader/hub/formgrader_csp.py): enabled the
# way an extension enables itself, in jupyter_server_config.d/, so the kit's own list stays as it is.
FORMGRADER_CSP = "autograder.grader.hub.formgrader_csp"
# Formgrader's dialogs at the server's log level, not DEBUG (autograder/grader/hub/formgrader_log.py).
FORMGRADER_LOG = "autograder.grader.hub.formgrader_log"
# The due dates, published for the students' Assignment List (autograder/grader/hub/due_dates.py).
DUE_DATES = "autograder.grader.hub.due_dates"
# Grading the whole class from Formgrader's page (autograder/grader/hub/formgrader_grading.py).
FORMGRADER_GRADING = "autograder.grader.hub.formgrader_grading"


# JupyterLab asks the internet for news on a first log-in, in a toast over the buttons: off, for everyone.
QUIET_LAB_SETTINGS = {"labconfig/default_setting_overrides.json": json.dumps(
    {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}, indent=1)}


def instructor_server_files(**server_app):
    """``{relative path: text}``: the jupyter_server configuration of an instructor's server (`autograder lab`,
    the hub's instructors), ``server_app`` added to its ServerApp section."""
    return {
        "jupyter_server_config.json": json.dumps(
            {"ServerApp": {"jpserver_extensions": SERVER_EXTENSIONS, **server_app}, "HTMLExporter": INERT_EXPORTER,
             "LabApp": {"extra_labextensions_path": [str(LAB_EXTENSIONS)]}}, indent=1),
        **{f"jupyter_server_config.d/{name.replace('.', '_')}.json": json.dumps(
            {"ServerApp": {"jpserver_extensions": {name: True}}}, indent=1)
           for name in (FORMGRADER_CSP, FORMGRADER_LOG, DUE_DATES, FORMGRADER_GRADING)},
        **QUIET_LAB_SETTINGS,
    }


TEMPLATE = '''\
"""nbgrader configuration of the course in {root} (written by `autograder`, rewritten on each start): the
kit's defaults, then the course's own nbgrader_config.py if it has one, rooted there."""
c = get_config()  # noqa: F821  (traitlets provides it)
load_subconfig({project!r})  # noqa: F821
{own}c.CourseDirectory.root = {root!r}
{settings}'''


def course_config_text(root, settings=None):
    """The configuration file of the course at ``root``, as `course.nbgrader_config` reads it (``settings``: its
    `course.course_settings`, when they were read already)."""
    root = Path(root).resolve()
    own = own_configuration(root) if root != PROJECT_ROOT else None
    settings = course_settings(root) if settings is None else settings
    settings = "".join(f"c.CourseDirectory.{key} = {value!r}\n" for key, value in settings.items())
    return TEMPLATE.format(project=str(CONFIG_FILE), root=str(root), settings=settings,
                           own=f"load_subconfig({str(own)!r})  # noqa: F821\n" if own else "")


def course_config_file(root, folder, settings=None):
    """The course's configuration, written into ``folder`` (the hub's instructors load it)."""
    path = Path(folder) / "course_nbgrader_config.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(course_config_text(root, settings))
    return path


def config_dir(root):
    """The folder put first on JUPYTER_CONFIG_PATH for the course at ``root``: its server settings,
    and its nbgrader_config.py (the kit's defaults, the course's own on top)."""
    root = Path(root).resolve()
    # private: the server imports what lies here, so a folder another user made first is refused
    folder = private_cache("lab") / hashlib.sha256(str(root).encode()).hexdigest()[:16]
    folder.mkdir(exist_ok=True, mode=0o700)
    for relative, text in instructor_server_files().items():
        (folder / relative).parent.mkdir(exist_ok=True)
        (folder / relative).write_text(text)
    (folder / CONFIG_FILE.name).write_text(course_config_text(root))
    return folder


def server_root(root):
    """The folder JupyterLab serves: the project when the course lies in it, so that
    Formgrader's links to the project's solutions/ and assignments/ open; else the course."""
    root = Path(root).resolve()
    return PROJECT_ROOT if root.is_relative_to(PROJECT_ROOT) else root


def lab_command(root, port=None, browser=True, extra=()):
    """The `jupyter lab` command line for the course at ``root`` (run it from ``root``)."""
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={server_root(root)}"]
    if port is not None:
        command.append(f"--ServerApp.port={port}")
    if not browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI run as root; jupyter refuses it otherwise
    return command + list(extra)


def open_lab(root, port=None, browser=True, extra=()):
    """Replace this process with JupyterLab on the course (so Ctrl-C reaches the server directly)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"no course folder at {root}.")
    folder = config_dir(root)
    command = lab_command(root, port, browser, extra)
    _put_interpreter_on_path()  # nbgrader's gradebook runs `alembic` by name
    os.environ["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        [str(folder), *filter(None, os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep))])
    print(f"autograder: JupyterLab on {root.resolve()}; Formgrader is in the Nbgrader menu.", flush=True)
    os.chdir(root)
    os.execv(sys.executable, command)
