"""The course's nbgrader configuration, read the same way by every command that runs a notebook.

`autograder check` and Validate take the nearest ``nbgrader_config.py`` at
or above the notebook's folder (a course checkout), else the copy the
student kit carries, else the one of this source checkout: so a student's
check runs with the course's time limits, jail and stderr filter, as
grading does.
"""

from pathlib import Path

CONFIG_NAME = "nbgrader_config.py"
KIT_COPY = Path(__file__).parent.parent / CONFIG_NAME  # written into the student kit by `autograder release`
CHECKOUT_CONFIG = Path(__file__).resolve().parents[2] / CONFIG_NAME


def load(path):
    """The traitlets Config of the configuration file ``path``."""
    from traitlets.config.loader import PyFileConfigLoader

    path = Path(path)
    return PyFileConfigLoader(path.name, str(path.parent)).load_config()


# nbgrader's folders of students' work: a configuration file there is a student's, never the course's.
STUDENT_FOLDERS = ("submitted", "autograded", "feedback", "feedback_released", "inbound", "outbound")


def nearest(start):
    """The configuration file that applies to a notebook in ``start``: the nearest above it, skipping
    any inside nbgrader's folders of students' work (an instructor checking a submission must not run
    a configuration file the student handed in)."""
    folders = (Path(start).resolve(), *Path(start).resolve().parents)
    for i, folder in enumerate(folders):
        if any(part in STUDENT_FOLDERS for part in folder.parts):
            continue
        if (folder / CONFIG_NAME).is_file():
            return folder / CONFIG_NAME
    for candidate in (KIT_COPY, CHECKOUT_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def for_notebook(path):
    """The Config a notebook at ``path`` is checked with (empty where no course configuration exists)."""
    from traitlets.config import Config

    found = nearest(Path(path).parent)
    return load(found) if found else Config()
