"""The student kit: the part of this package that students install and that their kernel imports.

It is the whole `autograder` package except `autograder/grader/` (hidden
checks, reference implementations, grading, the hidden hand-drawn set) plus
the dataset manifest. `autograder release` builds it as a wheel; at grading,
the sandboxed kernel imports a copy of it, so that a notebook cannot read or
replace anything of the grader's.
"""

import functools
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
GRADER = PACKAGE / "grader"
# The kit's JupyterLab extension (autograder/labextensions/@autograder/lab): a folder of prebuilt extensions.
LAB_EXTENSIONS = PACKAGE / "labextensions"
NAME = "autograder-student"
# The server extensions the kit turns on: nbgrader's Validate handler swapped for the kit's (validate.py);
# the due dates for the Assignment List (nbgrader_exchange/assignment_list.py).
SERVER_EXTENSIONS = {"nbgrader.server_extensions.validate_assignment": False, "autograder.validate": True,
                     "autograder.nbgrader_exchange.assignment_list": True}


def files(grader=False):
    """``(path in the package, source path)`` of every file the kit holds; with ``grader``, the whole package."""
    from ..datasets.download import MANIFEST_PATH

    found = []
    for path in sorted(PACKAGE.rglob("*")):
        rel = path.relative_to(PACKAGE)
        if path.is_dir() or (rel.parts[0] == "grader" and not grader) or "__pycache__" in rel.parts \
                or path.suffix == ".pyc":
            continue
        found.append((rel.as_posix(), path))
    if MANIFEST_PATH.parent != PACKAGE / "datasets":  # a source checkout keeps it in datasets/
        found.append(("datasets/manifest.json", MANIFEST_PATH))
    from .course_config import CHECKOUT_CONFIG, KIT_COPY

    if not KIT_COPY.is_file() and CHECKOUT_CONFIG.is_file():  # the course's configuration, for `check`
        refuse_secrets(CHECKOUT_CONFIG)
        found.append((KIT_COPY.name, CHECKOUT_CONFIG))
    return found


def refuse_secrets(config_file):
    """The kit carries the course's configuration to every student (and graded kernels read its copy in
    /tmp): one that holds a secret is refused, in one sentence, before it travels (red team)."""
    from .. import UserError
    from .course_config import load

    config = load(config_file)
    url = str(config.get("CourseDirectory", {}).get("db_url", ""))
    if "secret" in config.get("PlanHiddenTests", {}) or ("@" in url and ":" in url.split("//", 1)[-1].split("@")[0]):
        raise UserError(f"{config_file} holds a secret (PlanHiddenTests.secret, or a password in the gradebook's "
                        "URL), and the student kit carries that file to every student; keep the course's secret in "
                        ".autograder-secret and the password in the environment.")


def build_tree(dest, grader=False):
    """Write the kit (with ``grader``, the whole package) as ``dest/autograder/``; return ``dest``."""
    dest = Path(dest)
    for rel, source in files(grader):
        target = dest / "autograder" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return dest


def readable_tree(dest, grader=False):
    """`build_tree`, made readable by a jail's unprivileged user whatever the checkout's modes."""
    build_tree(dest, grader)
    for folder, _, names in os.walk(dest):
        os.chmod(folder, 0o755)
        for name in names:
            os.chmod(os.path.join(folder, name), 0o644)
    return Path(dest)


@functools.lru_cache(maxsize=1)
def package_digest():
    """A digest of the whole package as installed here: what a cached verdict of this host depends on."""
    digest = hashlib.sha256()
    for rel, source in files(grader=True):
        digest.update(rel.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def is_full_package():
    """True where the grader's part is installed beside the kit (instructors, graders)."""
    return GRADER.is_dir()


@functools.lru_cache(maxsize=1)
def package_for_kernel():
    """A folder to put first on a sandboxed kernel's PYTHONPATH, holding the kit only."""
    if not is_full_package():
        return PACKAGE.parent
    digest = hashlib.sha256()
    for rel, source in files():
        digest.update(rel.encode() + b"\0" + source.read_bytes())
    # /tmp is shared (on the course's JupyterHub, with the students): a folder of this name that
    # someone else made could hold a kit of theirs, which every graded kernel would import.
    dest = Path(tempfile.gettempdir()) / f"autograder-kit-{digest.hexdigest()[:16]}-{os.getuid()}"
    if not _own_folder(dest):
        staging = readable_tree(tempfile.mkdtemp(prefix="autograder-kit-"))
        try:
            staging.rename(dest)
        except OSError:  # another process built it first, or someone else's folder is in the way
            pass
        if not _own_folder(dest):
            return staging
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _own_folder(path):
    """Whether ``path`` is a built kit folder of this user's that no one else can write to."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022
            and (path / "autograder" / "__init__.py").is_file())


def grader_only_paths():
    """Folders a kernel must never see, even where a bound folder contains them."""
    return [GRADER] if is_full_package() else []


PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"
description = "Student kit of the deep-learning worksheets: datasets, visible checks, `autograder check`."
requires-python = ">=3.10"
dependencies = {dependencies}

[project.scripts]
autograder = "autograder.cli:main"

[tool.setuptools.packages.find]
include = ["autograder*"]

[tool.setuptools.package-data]
"autograder.datasets" = ["manifest.json"]
"autograder.grader" = ["data/handdrawn/*"]

# JupyterLab's Validate gives `autograder check`'s verdicts: the kit's handler instead of nbgrader's.
# The file sorts after nbgrader's own nbgrader.json, so its choice is the one that stands.
[tool.setuptools.data-files]
"etc/jupyter/jupyter_server_config.d" = ["jupyter-config/nbgrader_autograder.json"]
# The kit's JupyterLab extension: Validate says which cell runs, (view feedback) opens the page.
"share/jupyter/labextensions/@autograder/lab" = ["autograder/labextensions/@autograder/lab/package.json"]
"share/jupyter/labextensions/@autograder/lab/static" = ["autograder/labextensions/@autograder/lab/static/remoteEntry.js"]
"""
DEPENDENCIES = ["tensorflow>=2.18,<2.22", "keras>=3.6,<4", "nbgrader>=0.9.6,<0.10", "jupyterlab>=4,<5",
                "numpy>=1.26", "pillow>=10", "matplotlib>=3.8"]


def build_wheel(dist, grader=False):
    """Build the kit's wheel into ``dist``; return its path.

    With ``grader``, the wheel is the whole package, named `autograder`: what
    a grading machine that has no checkout installs (otter on Gradescope).
    """
    from .. import __version__

    name = "autograder" if grader else NAME
    dist = Path(dist)
    dist.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="autograder-kit-build-") as tmp:
        build_tree(tmp, grader)
        server = Path(tmp, "jupyter-config", "nbgrader_autograder.json")
        server.parent.mkdir()
        server.write_text(json.dumps({"ServerApp": {"jpserver_extensions": SERVER_EXTENSIONS}}, indent=1))
        Path(tmp, "pyproject.toml").write_text(
            PYPROJECT.format(name=name, version=__version__, dependencies=DEPENDENCIES))
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                        "--wheel-dir", str(dist), tmp], check=True, capture_output=True)
    return next(dist.glob(f"{name.replace('-', '_')}-{__version__}-*.whl"))
