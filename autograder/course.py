"""The course on disk: worksheet ids, the nbgrader configuration, releasing."""

import os
import sys
import tempfile
import warnings
from pathlib import Path

from .datasets.download import PROJECT_ROOT

SOLUTIONS = PROJECT_ROOT / "solutions"
ASSIGNMENTS = PROJECT_ROOT / "assignments"
CONFIG_FILE = PROJECT_ROOT / "nbgrader_config.py"


class UserError(Exception):
    """A problem the user can fix, said in one sentence (the CLI exits with status 2)."""


def worksheet_ids(solutions=SOLUTIONS):
    """Ids of the worksheets in `solutions/`, in course order."""
    return sorted(p.name for p in Path(solutions).iterdir() if (p / f"{p.name}.ipynb").is_file())


def check_ids(ids, solutions=SOLUTIONS):
    known = worksheet_ids(solutions)
    for assignment_id in ids:
        if assignment_id not in known:
            raise UserError(f"unknown assignment {assignment_id!r}; the course has {', '.join(known)}.")
    return list(ids) or known


def course_settings(root, db_url=None):
    """CourseDirectory settings for a course folder: one other than the project keeps the project's sources."""
    settings = {} if Path(root).resolve() == PROJECT_ROOT else {
        "source_directory": str(SOLUTIONS), "release_directory": "release"}
    if db_url:
        settings["db_url"] = db_url
    return settings


def nbgrader_config(root=PROJECT_ROOT, **course_directory):
    """The project's nbgrader_config.py as a traitlets Config, re-rooted at ``root``."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(CONFIG_FILE.name, str(CONFIG_FILE.parent)).load_config()
    config.CourseDirectory.root = str(root)
    for key, value in course_directory.items():
        setattr(config.CourseDirectory, key, value)
    return config


def _put_interpreter_on_path():
    # nbgrader's Gradebook runs the `alembic` command found on PATH (nbgrader/api.py,
    # get_alembic_version) when it creates a gradebook, so a venv's Python that is
    # called without activating the venv would fail with "No such file: 'alembic'".
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def _cache_alembic_head():
    """Compute nbgrader's alembic head once per nbgrader version, not once per gradebook.

    Gradebook() runs the `alembic heads` command whenever it creates a new
    gradebook (nbgrader/api.py, get_alembic_version): 2-12 s measured here, on
    every grading, since each grades in a fresh course. The head is a constant
    of the installed nbgrader, so it is kept in a file in the temp folder.
    """
    import nbgrader
    import nbgrader.api

    original = nbgrader.api.get_alembic_version
    if getattr(original, "cached", False):
        return
    cache = Path(tempfile.gettempdir()) / f"autograder-nbgrader-{nbgrader.__version__}-alembic-head"

    def get_alembic_version():
        if cache.is_file() and cache.read_text().strip():
            return cache.read_text().strip()
        head = original()
        cache.write_text(head)
        return head

    get_alembic_version.cached = True
    nbgrader.api.get_alembic_version = get_alembic_version


def nbgrader_api(root=PROJECT_ROOT, **course_directory):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    _put_interpreter_on_path()
    _cache_alembic_head()
    # nbgrader 0.9.6's Gradebook triggers SQLAlchemy 2 "not in session" autoflush
    # warnings on every submission; they are harmless and drown the output.
    warnings.filterwarnings("ignore", message=r".*not in session.*")
    config = nbgrader_config(root, **course_directory)
    return NbGraderAPI(CourseDirectory(config=config), config=config)


def run_nbgrader(result, what):
    """Raise with nbgrader's own log when one of its API calls failed."""
    if not result.get("success"):
        detail = (result.get("error") or result.get("log") or "").strip().splitlines()
        raise RuntimeError(f"nbgrader {what} failed: {detail[-1] if detail else 'no log'}")
    return result


def release(ids=(), root=PROJECT_ROOT):
    """Regenerate ``assignments/<id>/`` from ``solutions/<id>/`` with nbgrader generate_assignment."""
    ids = check_ids(ids)
    api = nbgrader_api(root)
    for assignment_id in ids:
        run_nbgrader(api.generate_assignment(assignment_id, force=True), f"generate_assignment {assignment_id}")
    return [Path(root) / "assignments" / i / f"{i}.ipynb" for i in ids]
