"""The course on disk: worksheet ids, the nbgrader configuration, releasing."""

import hashlib
import os
import re
import secrets
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from .. import UserError
from ..datasets.download import PROJECT_ROOT

SOLUTIONS = PROJECT_ROOT / "solutions"
ASSIGNMENTS = PROJECT_ROOT / "assignments"
CONFIG_FILE = PROJECT_ROOT / "nbgrader_config.py"
SECRET_FILE = ".autograder-secret"
CAUSE = re.compile(r"^\s*((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Problem|Unavailable|Interrupt): .*)$")


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
    """CourseDirectory settings for a course folder.

    A course of its own (the project, or a folder with its own nbgrader_config.py
    or its own ``solutions/``) keeps the layout of its config; any other folder
    (the demo's) grades the project's worksheets and releases them into its
    own ``release/``.
    """
    root = Path(root).resolve()
    config = root / CONFIG_FILE.name
    # The configuration `autograder lab` (and so `autograder hub`) writes into such a folder is not its own.
    written = config.is_file() and "# Written by `autograder lab`" in config.read_text()
    own = root == PROJECT_ROOT or (config.is_file() and not written) or (root / SOLUTIONS.name).is_dir()
    settings = {} if own else {"source_directory": str(SOLUTIONS), "release_directory": "release"}
    if db_url:
        settings["db_url"] = db_url
    return settings


def course_secret(root):
    """The key of the grader's input seeds, kept in ``root/.autograder-secret`` (made on first use).

    Students never see it: the sandboxed kernel cannot read the course folder.
    With it a regrade picks the same inputs, so it gives the same result.
    """
    path = Path(root) / SECRET_FILE
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def nbgrader_config(root=PROJECT_ROOT, **course_directory):
    """The course's nbgrader_config.py (``root``'s own, else the project's) as a Config rooted at ``root``."""
    from traitlets.config.loader import PyFileConfigLoader

    own = Path(root) / CONFIG_FILE.name
    source = own if own.is_file() else CONFIG_FILE
    config = PyFileConfigLoader(source.name, str(source.parent)).load_config()
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


def nbgrader_api(root=PROJECT_ROOT, config=None, **course_directory):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    _put_interpreter_on_path()
    # nbgrader 0.9.6's Gradebook triggers SQLAlchemy 2 "not in session" autoflush
    # warnings on every submission; they are harmless and drown the output.
    warnings.filterwarnings("ignore", message=r".*not in session.*")
    config = config or nbgrader_config(root, **course_directory)
    return NbGraderAPI(CourseDirectory(config=config), config=config)


def nbgrader_failure(result):
    """The real cause of a failed nbgrader API call, not its generic closing line.

    nbgrader logs the traceback of the exception (indented, inside its log)
    and then raises NbGraderException("Please see the above traceback ...");
    the cause is the first exception line that is not that one.
    """
    text = "\n".join(filter(None, [result.get("log"), result.get("error")]))
    for line in text.splitlines():
        match = CAUSE.match(line)
        if match and "NbGraderException" not in match.group(1):
            return _short(match.group(1).strip())
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line]
    return (errors[0] if errors else lines[-1] if lines else "no log").strip()


def _short(cause):
    """``package.module.SomeError: text`` as ``SomeError: text``."""
    return re.sub(r"^(?:[A-Za-z_][\w]*\.)+([A-Za-z_]\w*: )", r"\1", cause)


def show_log(result, verbose):
    """nbgrader's own log of an API call (captured, not printed), on stderr for --verbose."""
    if verbose and result.get("log"):
        print(result["log"].rstrip("\n"), file=sys.stderr)


def run_nbgrader(result, what):
    """Raise with nbgrader's own cause when one of its API calls failed."""
    if not result.get("success"):
        raise RuntimeError(f"nbgrader {what} failed: {nbgrader_failure(result)}")
    return result


def release(ids=(), root=PROJECT_ROOT):
    """Regenerate ``assignments/<id>/`` from ``solutions/<id>/`` with nbgrader generate_assignment."""
    ids = check_ids(ids)
    api = nbgrader_api(root)
    for assignment_id in ids:
        run_nbgrader(api.generate_assignment(assignment_id, force=True), f"generate_assignment {assignment_id}")
    return [Path(root) / "assignments" / i / f"{i}.ipynb" for i in ids]


def prepared_gradebook(assignment_id, solutions=SOLUTIONS):
    """A gradebook holding ``assignment_id``'s source cells, made once per source and copied after.

    Creating a gradebook runs the `alembic heads` command (4 s here); one
    submission graded alone needs only the assignment's source in it.
    """
    import nbgrader

    source = Path(solutions) / assignment_id / f"{assignment_id}.ipynb"
    key = hashlib.sha256(source.read_bytes() + nbgrader.__version__.encode()).hexdigest()[:16]
    # It holds the source cells, hidden tests included: one per user, readable by that user alone
    # (on the course's JupyterHub, students share /tmp).
    cached = Path(tempfile.gettempdir()) / f"autograder-gradebook-{assignment_id}-{key}-{os.getuid()}.db"
    if not cached.is_file():
        with tempfile.TemporaryDirectory(prefix="autograder-gradebook-") as tmp:
            api = nbgrader_api(tmp, source_directory=str(Path(solutions).resolve()), release_directory="release")
            run_nbgrader(api.generate_assignment(assignment_id, force=True), f"generate_assignment {assignment_id}")
            staging = cached.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(Path(tmp) / "gradebook.db", staging)
            os.chmod(staging, 0o600)
            os.replace(staging, cached)
    return cached
