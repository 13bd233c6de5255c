"""Faults of the grading host end as recorded host faults, never as a student's score (issue 14).

Each case breaks the host, not the submission: an honest, full-marks notebook is handed in, and
the outcome must be "the host failed, no score saved", with the host's reason, and exit status 3.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_course import make_course, student_version, submit, tiny_solution

from autograder.datasets import download
from autograder.grader.course import nbgrader_api

VENV_BIN = Path(sys.executable).parent


def grade(path, course, env=None, *extra):
    command = [sys.executable, "-m", "autograder", "grade", str(path), "--solutions", str(course / "solutions"),
               *extra]
    return subprocess.run(command, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=900)


def venv_under_tmp(tmp_path, checkout=None):
    """A virtualenv under /tmp with this one's packages; ``checkout``: another copy of the project, first."""
    venv = tmp_path / "venv"  # tmp_path lies under /tmp
    subprocess.run([sys.base_prefix + "/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = next(venv.glob("lib/python3*/site-packages"))
    real = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    (site_packages / "the_project.pth").write_text(
        (f"{checkout}\n" if checkout else "") + f"import site; site.addsitedir({str(real)!r})\n")
    return venv / "bin" / "python"


def grade_in_full(python, tmp_path):
    course = make_course(tmp_path / "course")
    path = submit(course, "sam", student_version(tiny_solution()))
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",  # its scripts (alembic), as activated
           "AUTOGRADER_DATA_DIR": str(download.data_dir())}  # a copy of the checkout has no datasets of its own
    done = subprocess.run([str(python), "-m", "autograder", "grade", str(path), "--solutions",
                           str(course / "solutions"), "--json", str(tmp_path / "r.json")],
                          capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert (report["score"], report["max_score"], report["sandbox"]) == (3.0, 3.0, "bwrap")


def test_a_checkout_and_its_python_under_tmp_grade_in_full(tmp_path):
    """The first try of many: the project under /tmp. The scoring jail's tmpfs over /tmp hid the
    interpreter, so every hidden cell failed and every student got 0, the reference included."""
    grade_in_full(venv_under_tmp(tmp_path), tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root grader's checkout can be closed to its own jail")
def test_a_root_checkout_closed_to_everyone_else_grades_in_full(tmp_path):
    """A root grader's checkout of files only root may read (umask 077, as the lent GPU machine's copy
    was): the scoring process, as the jail's unprivileged user, could not import the grader, and the
    reference itself failed on that host."""
    closed = tmp_path / "closed"
    shutil.copytree(Path(__file__).parents[1] / "autograder", closed / "autograder",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(Path(__file__).parents[1] / "nbgrader_config.py", closed / "nbgrader_config.py")
    shutil.copytree(Path(download.MANIFEST_PATH).parent, closed / "datasets",
                    ignore=lambda folder, names: [n for n in names if n != "manifest.json"])
    for folder, _, names in os.walk(closed):
        os.chmod(folder, 0o700)
        for name in names:
            os.chmod(os.path.join(folder, name), 0o600)
    grade_in_full(venv_under_tmp(tmp_path, checkout=closed), tmp_path)


def test_a_scoring_process_that_cannot_run_saves_no_score(tmp_path):
    course = make_course(tmp_path / "course", config="c.ScoreHiddenTests.memory_limit = 8 * 2**20\n")
    path = submit(course, "sam", student_version(tiny_solution()))
    done = grade(path, course)
    assert done.returncode == 3, done.stderr
    *before, last = done.stderr.splitlines()  # the error, after at most the line that names the reference run
    assert "no score was saved" in last and "the scoring process" in last
    assert all(line.startswith("autograder: this host grades the reference solution") for line in before), before
    assert len(before) <= 1 and "Traceback" not in done.stderr


def test_an_imdb_encoding_not_built_is_the_hosts_fault(tmp_path):
    """Both jails mount the data read-only: an encoding the kernel would build itself is the host's to build."""
    cache = tmp_path / "cache"
    for name, entry in download.manifest().items():
        (cache / name).mkdir(parents=True)
        for fname in entry["files"]:
            (cache / name / fname).symlink_to(download.cached_path(name, fname))
    course = make_course(tmp_path / "course")
    path = submit(course, "sam", student_version(tiny_solution()))
    done = grade(path, course, {"AUTOGRADER_DATA_DIR": str(cache)})
    assert done.returncode == 3 and "the IMDB encoding is not built" in done.stderr, done.stderr
    assert "no score was saved" in done.stderr


@pytest.fixture
def cluster_without_bwrap(tmp_path):
    """`dask scheduler` and a `dask worker` on a host whose PATH has no bubblewrap."""
    dask = str(VENV_BIN / "dask")
    scheduler_file = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
                               "127.0.0.1:0", "--scheduler-file", str(scheduler_file)], cwd=tmp_path, **quiet)]
    for _ in range(120):
        if scheduler_file.is_file():
            break
        time.sleep(0.5)
    bare = {**os.environ, "PATH": str(VENV_BIN)}
    procs.append(subprocess.Popen([dask, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                                   "--no-nanny", "--dashboard-address", "127.0.0.1:0"], cwd=tmp_path, env=bare,
                                  **quiet))
    from distributed import Client

    address = json.loads(scheduler_file.read_text())["address"]
    with Client(address, set_as_default=False) as client:
        client.wait_for_workers(1, timeout=120)
    yield address
    for proc in procs:
        try:
            os.killpg(proc.pid, 9)
        except OSError:
            pass


def test_a_worker_host_without_bubblewrap_grades_nothing_and_saves_nothing(tmp_path, cluster_without_bwrap):
    course = make_course(tmp_path / "course")
    submit(course, "ada", student_version(tiny_solution()))
    submit(course, "ben", student_version(tiny_solution(), answer="7"))
    done = subprocess.run([sys.executable, "-m", "autograder", "grade-all", "--root", str(course), "--scheduler",
                           cluster_without_bwrap], capture_output=True, text=True, timeout=900)
    assert done.returncode == 3, done.stdout + done.stderr
    outcomes = json.loads((course / "grade-all.json").read_text())
    assert {o["status"] for o in outcomes.values()} == {"host-fault"}
    assert all("cannot start the jail" in o["reason"] for o in outcomes.values()), outcomes
    assert "HOST FAULT, no score saved" in done.stdout
    with nbgrader_api(course).gradebook as gb:
        assert gb.find_assignment("tiny").submissions == []
    shutil.rmtree(course / "autograded", ignore_errors=True)
