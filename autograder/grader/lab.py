"""`autograder lab`: the course in JupyterLab, with nbgrader's Formgrader, Create Assignment,
Assignment List and Validate.

nbgrader's lab extensions read their configuration from the server's working
folder and from the course root, and re-read it on every Formgrader request
(nbgrader/apps/baseapp.py, formgrader/base.py). So the server runs in the
course folder, and that folder needs an nbgrader_config.py: the project has
its own; any other course folder (the demo's, a test's) gets one written
here that loads the project's and roots it in that folder, with the layout
`grade-all --root` grades it with (`course.course_settings`). Formgrader then
shows the gradebook grade-all wrote and the feedback it generated; Validate
runs with the course's settings.
"""

import os
import sys
from pathlib import Path

from .. import UserError, host
from ..datasets.download import PROJECT_ROOT
from .course import CONFIG_FILE, _put_interpreter_on_path, course_settings

CONFIG_NAME = "nbgrader_config.py"
MARKER = "# Written by `autograder lab`"

TEMPLATE = '''\
"""nbgrader configuration of this course folder: the project's, rooted here."""
{marker}: it is rewritten on each start, so edit the project's
# {project} instead (or delete this line to keep your edits).
import os

PROJECT_CONFIG = {project!r}
if not os.path.isfile(PROJECT_CONFIG):
    raise FileNotFoundError(f"{{PROJECT_CONFIG}} is gone; run `autograder lab --root` on this folder again")
load_subconfig(PROJECT_CONFIG)  # noqa: F821  (traitlets provides it)
c = get_config()  # noqa: F821
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
{settings}'''


def write_course_config(root):
    """``root/nbgrader_config.py``, written when the folder has none (or has the one written here)."""
    root = Path(root).resolve()
    path = root / CONFIG_NAME
    if root == PROJECT_ROOT or (path.is_file() and MARKER not in path.read_text()):
        return path  # the instructor's own configuration
    settings = "".join(f"c.CourseDirectory.{key} = {value!r}\n" for key, value in course_settings(root).items())
    path.write_text(TEMPLATE.format(marker=MARKER, project=str(CONFIG_FILE), settings=settings))
    return path


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
    config = write_course_config(root)
    command = lab_command(root, port, browser, extra)
    _put_interpreter_on_path()  # nbgrader's gradebook runs `alembic` by name
    host.configure_kernels()  # quiet TensorFlow in the kernels the server starts
    print(f"autograder: JupyterLab on {root.resolve()} with {config}; Formgrader is in the Nbgrader menu.",
          flush=True)
    os.chdir(root)
    os.execv(sys.executable, command)
