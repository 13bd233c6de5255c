"""The course on disk: worksheet ids, the nbgrader configuration, releasing."""

import hashlib
import os
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from .. import UserError

# The course this checkout holds: nbgrader_config.py, solutions/, assignments/.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = PROJECT_ROOT / "solutions"
ASSIGNMENTS = PROJECT_ROOT / "assignments"
CONFIG_FILE = PROJECT_ROOT / "nbgrader_config.py"
LAB_MARKER = "# Written by `autograder lab`"  # earlier versions wrote such a file into a course folder
CAUSE = re.compile(r"^\s*((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Problem|Unavailable|Interrupt): .*)$")
# The course the instructors' commands work on by default: `autograder hub` sets it in their servers.
COURSE_VARIABLE = "AUTOGRADER_COURSE"


def default_course():
    """The course folder of ``$AUTOGRADER_COURSE``, else this checkout."""
    return Path(os.environ.get(COURSE_VARIABLE) or PROJECT_ROOT)


def worksheet_ids(solutions=SOLUTIONS):
    """Ids of the worksheets in `solutions/`, in course order."""
    if not Path(solutions).is_dir():
        raise UserError(f"the course's source notebooks should be in {solutions}, which is not a folder; set "
                        "c.CourseDirectory.source_directory in the course's nbgrader_config.py.")
    return sorted(p.name for p in Path(solutions).iterdir() if (p / f"{p.name}.ipynb").is_file())


def check_ids(ids, solutions=SOLUTIONS):
    known = worksheet_ids(solutions)
    for assignment_id in ids:
        if assignment_id not in known:
            raise UserError(f"unknown assignment {assignment_id!r}; the course has {', '.join(known)}.")
    return list(ids) or known


def own_configuration(root):
    """``root``'s own nbgrader_config.py, if it has one an instructor wrote."""
    path = Path(root) / CONFIG_FILE.name
    return path if path.is_file() and LAB_MARKER not in path.read_text(errors="replace") else None


def course_settings(root, db_url=None):
    """CourseDirectory settings a course folder gets unless its configuration says otherwise.

    A course with worksheets of its own (the project, or a folder with its own
    ``solutions/`` or whose nbgrader_config.py names its source folder) keeps
    its layout; any other folder (the demo's, a hub's course) grades the
    project's worksheets and releases them into its own ``release/``.
    """
    root = Path(root).resolve()
    settings = {}
    if root != PROJECT_ROOT and not (root / SOLUTIONS.name).is_dir():
        kit = _layout(CONFIG_FILE)
        own = _layout(own_configuration(root))
        if own.get("source_directory") in (None, kit.get("source_directory")):
            settings["source_directory"] = str(SOLUTIONS)
        if own.get("release_directory") in (None, kit.get("release_directory")):
            settings["release_directory"] = "release"
    if db_url:
        settings["db_url"] = db_url
    return settings


def _layout(path):
    from ..run.course_config import load

    return dict(load(path).get("CourseDirectory", {})) if path and Path(path).is_file() else {}


def nbgrader_config(root=PROJECT_ROOT, course=None, **course_directory):
    """The configuration of the course at ``course`` (default ``root``), as a Config rooted at ``root``:
    the kit's defaults (the project's nbgrader_config.py), then the course's own nbgrader_config.py on top,
    so that a course file needs only what it changes (a late penalty, a time limit)."""
    from traitlets.config import Config

    from ..run.course_config import load

    own = own_configuration(course or root)
    if not (own or CONFIG_FILE.is_file()):
        raise UserError(f"no nbgrader_config.py for the course at {course or root}, nor the project's at {CONFIG_FILE}")
    config = load(CONFIG_FILE) if CONFIG_FILE.is_file() else Config()
    if own:
        config.merge(load(own))
    config.CourseDirectory.root = str(Path(root).resolve())
    for key, value in course_directory.items():
        setattr(config.CourseDirectory, key, value)
    return config


def course_of(solutions):
    """The configuration of the course whose source notebooks are in ``solutions`` (its hidden-test markers,
    its limits): every tool that reads a solution reads it as that course's nbgrader would."""
    return nbgrader_config(course=Path(solutions).resolve().parent)


def source_folder(config):
    """The folder of the course's source notebooks (its solutions), as ``config`` places it."""
    return Path(config.CourseDirectory.root, config.CourseDirectory.source_directory)


COURSE_CONFIG_TEMPLATE = '''\
"""nbgrader configuration of this course: the one place to configure it.

grade-all, feedback, Formgrader (its Autograde and Generate too), `autograder grade --root` and the hub
read it, on top of the kit's defaults (the nbgrader_config.py of the kit's checkout). Set here only what
this course changes.
"""
c = get_config()  # noqa: F821

# nbgrader's layout: the worksheets with their solutions and hidden tests in source/<id>/ (copied from the kit;
# edit them there), released into release/<id>/.
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"

# --- What instructors change most: uncomment and edit -----------------------------
# A late submission (after the due date set in Formgrader's Manage Assignments): "none", "zero" (no
# points), or a plugin of your own (nbgrader's LateSubmissionPlugin).
# c.LateSubmissionPlugin.penalty_method = "zero"
#
# Your own hand-drawn digits for worksheets 1 and 5 (one PNG or JPEG per digit, its label first in the name);
# before class, `autograder drawings check /path/to/drawings` says how the reference solutions read them and
# the floor the set supports, which you may then set here for your set.
# c.PlanHiddenTests.drawings = "/path/to/drawings"
# c.PlanHiddenTests.drawings_floors = {"01_handdrawn_digits": 0.8, "05_cnn": 0.85}
#
# Time limits: one cell, one whole notebook (a host lowers the latter to ~3x its reference's time).
# c.Execute.timeout = 600
# c.SandboxedExecute.notebook_timeout = 1200
#
# Memory of a student's kernel, and the disk it may write.
# c.SandboxedExecute.memory_limit = 8 * 2**30
# c.SandboxedExecute.disk_quota = 4 * 2**30
'''


def start_course(root, worksheets=SOLUTIONS):
    """A course folder of its own at ``root``: the worksheets' sources copied into ``root/source/`` (where the
    instructor sees and edits them), and ``root/nbgrader_config.py``. What is there already is kept; a link in
    either place is refused (hub-setup.sh runs this as root, in a folder the instructor may own)."""
    root = Path(root)
    source, path = root / "source", root / CONFIG_FILE.name
    for planted in (source, path):
        if planted.is_symlink():
            raise UserError(f"{planted} is a link; remove it (the course's own folder and file go there), "
                            "then run this again.")
    if not source.exists():
        source.mkdir(mode=0o750)  # not a folder that appeared meanwhile: mkdir fails on anything there
        shutil.copytree(worksheets, source, dirs_exist_ok=True, symlinks=True,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    if not own_configuration(root):
        try:  # never through a link, never over a file that appeared meanwhile
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
        except FileExistsError:
            raise UserError(f"{path} is not a configuration file this can keep; move it away, then run this "
                            "again.") from None
        with os.fdopen(fd, "w") as f:
            f.write(COURSE_CONFIG_TEMPLATE)
    return path


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


def autograde_one(config, assignment, student, steps, verbose=False):
    """nbgrader's Autograde converter on one submission, with these autograde steps; its captured log.

    Each call logs to a logger of its own, so that grade-all's submissions,
    converted in turn from several threads, keep their logs apart.
    """
    import logging

    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    log = logging.getLogger(f"autograder.autograde.{student}.{assignment}")
    log.propagate = False
    log.setLevel(logging.INFO)
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id, coursedir.student_id = assignment, student
    converter = Autograde(coursedir=coursedir, config=config, log=log)
    converter.force = True
    converter.create_student = True
    converter.autograde_preprocessors = steps
    result = capture_log(converter)
    show_log(result, verbose)
    return result


def nbgrader_failure(result):
    """The real cause of a failed nbgrader API call, not its generic closing line.

    nbgrader logs the traceback of the exception (indented, inside its log)
    and then raises NbGraderException("Please see the above traceback ...");
    the cause is the first exception line that is not that one.
    """
    text = "\n".join(filter(None, [result.get("log"), result.get("error")]))
    for line in text.splitlines():
        match = CAUSE.match(line[:2000])  # a bounded line: the pattern backtracks on long words
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
    # It holds the source cells, hidden tests included: in the user's own cache folder, never in the /tmp
    # the students share (where someone else could make the file, or the folder, first).
    folder = private_cache("gradebooks")
    cached = folder / f"{assignment_id}-{key}.db"
    if not cached.is_file():
        with tempfile.TemporaryDirectory(prefix="autograder-gradebook-") as tmp:
            api = nbgrader_api(tmp, config=nbgrader_config(tmp, course=Path(solutions).resolve().parent,
                                                            source_directory=str(Path(solutions).resolve()),
                                                            release_directory="release"))
            run_nbgrader(api.generate_assignment(assignment_id, force=True), f"generate_assignment {assignment_id}")
            fd, staging = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as out, open(Path(tmp) / "gradebook.db", "rb") as source:
                shutil.copyfileobj(source, out)
            os.replace(staging, cached)
    return cached


def private_cache(name):
    """``~/.cache/autograder/<name>/`` (or under $XDG_CACHE_HOME): the user's own, closed to others (0700);
    one that someone else owns or could write is refused."""
    import stat

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = base / "autograder" / name
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Every folder from the cache's base down: one another user could write would let them swap what is below
    # (red team: a shared XDG_CACHE_HOME, and `lab`'s settings replaced after the check).
    for path in (base, base / "autograder", folder):
        info = os.lstat(path)
        theirs = info.st_uid not in (os.getuid(), 0) if path == base else info.st_uid != os.getuid()
        others_write = info.st_mode & 0o002 or (info.st_mode & 0o020 and info.st_gid != os.getgid())
        if not stat.S_ISDIR(info.st_mode) or theirs or (path == base and others_write):
            raise UserError(f"{path} is not a folder of yours that only you can write; use a cache folder of your "
                            "own (XDG_CACHE_HOME), or remove it, then run this again.")
        if path != base and info.st_mode & 0o077:
            os.chmod(path, 0o700)
    return folder
