"""The one jail, as the user running these tests sees it: root in CI, and an ordinary user (.ci/run runs
this file as both). Student code never keeps a capability, never runs as root, sees none of the
grader's environment, and can neither remount nor write what the grader runs."""

import json
import os
import site
import sys

import pytest

from autograder.datasets.download import data_dir
from autograder.grading_run import Folders
from autograder import sandbox
from autograder.sandbox import GPU_SHARING, JAIL_UID, PASSED_ENV, Limits, Sandbox, jail_problem

pytestmark = pytest.mark.skipif(bool(jail_problem()), reason=f"no jail here: {jail_problem()}")

PROBE = """
import json, os, subprocess, site
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
found = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
         "caps": {k: status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")},
         "no_new_privs": status["NoNewPrivs"].strip()}
try:
    found["pid1_environ"] = open("/proc/1/environ", "rb").read().decode(errors="replace")
except OSError as e:
    found["pid1_environ"] = type(e).__name__
found["environ"] = dict(os.environ)
found["remount"] = subprocess.run(["mount", "-o", "remount,rw,bind", site.getsitepackages()[0]],
                                  capture_output=True).returncode
written = []
for folder in [*site.getsitepackages(), os.environ["AUTOGRADER_DATA_DIR"], "/usr/lib", "/etc"]:
    try:
        open(os.path.join(folder, "zz_planted.pth"), "w").write("import os")
        written.append(folder)
    except OSError:
        pass
found["written"] = written
found["unshare"] = subprocess.run(["unshare", "-Ur", "true"], capture_output=True).returncode
open("probe.json", "w").write(json.dumps(found))
open("mine", "w").write("x")
"""


@pytest.fixture(scope="module")
def inside():
    """What a program in the jail found, and the owner of the file it wrote, as the host sees it."""
    folders = Folders()
    os.environ["AUTOGRADER_TEST_GRADER_SECRET"] = "grader-secret-0b7e"
    try:
        jail = Sandbox(folders.jail, folders.work, readable=[data_dir()], limits=Limits(memory_bytes=2**30),
                       env={"AUTOGRADER_DATA_DIR": str(data_dir())})
        done = jail.run([sys.executable, "-I", "-c", PROBE], timeout=120)
        jail.close()
        assert done.returncode == 0, done.stderr
        found = json.loads((folders.work / "probe.json").read_text())
        found["owner"] = (folders.work / "mine").stat().st_uid
        return found
    finally:
        del os.environ["AUTOGRADER_TEST_GRADER_SECRET"]
        folders.close()


def test_no_capability_and_no_new_privileges(inside):
    assert set(inside["caps"].values()) == {"0000000000000000"}, inside["caps"]
    assert inside["no_new_privs"] == "1"
    assert inside["unshare"] != 0  # no user namespace of its own, to win capabilities back in


def test_never_the_graders_uid(inside):
    assert (inside["uid"], inside["gid"]) == (JAIL_UID, JAIL_UID) and set(inside["groups"]) <= {JAIL_UID}
    if os.geteuid() == 0:  # as root, setpriv became 65534 on the host too: its files are not root's
        assert inside["owner"] == JAIL_UID
    else:  # an ordinary grader: a user namespace maps 65534 inside to the grader outside
        assert inside["owner"] == os.geteuid()


def test_none_of_the_graders_environment_not_even_in_pid_1(inside):
    assert "grader-secret-0b7e" not in inside["pid1_environ"] and "grader-secret-0b7e" not in json.dumps(inside)
    assert set(inside["environ"]) <= {"PATH", "HOME", "MPLCONFIGDIR", "IPYTHONDIR", "PYTHONDONTWRITEBYTECODE",
                                      "TMPDIR", "LANG", "AUTOGRADER_DATA_DIR", "LC_CTYPE", "PWD",
                                      *PASSED_ENV, *GPU_SHARING}


def test_jails_share_a_gpu_unless_the_host_says_otherwise(monkeypatch, tmp_path):
    """JAX takes 75% of a GPU when it starts and TensorFlow all of it: a second worker's kernel, or the
    scoring process after the kernel, could not start on the same GPU."""
    jail = Sandbox(tmp_path / "jail", tmp_path / "jail" / "work", limits=Limits(memory_bytes=None))
    assert jail.environment()["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert jail.environment()["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "true")
    assert jail.environment()["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true"


def test_on_a_gpu_without_control_groups_memory_is_not_bounded_by_rlimit_data(monkeypatch, tmp_path):
    """On the lent H200 (16 cores, no control groups), RLIMIT_DATA of 4 GiB made XLA's thread pool fail
    (`Check failed: ... Thread tf_XLAEigen creation via pthread_create() failed`, SIGABRT): every scoring
    process and worksheet 6's kernel died. There, only a control group can bound memory."""
    jail = Sandbox(tmp_path / "jail", tmp_path / "jail" / "work", limits=Limits(memory_bytes=4 * 2**30))
    jail.close()
    jail.cgroups.groups = {}  # a host without control groups: rlimits stand in
    assert "--data=4294967296" in jail.rlimit_args()
    assert jail.describe()["limits"] == "rlimits"
    monkeypatch.setattr(sandbox, "gpu_devices", lambda: ["/dev/nvidia0"])
    assert not any(arg.startswith("--data") for arg in jail.rlimit_args())
    assert jail.describe()["limits"] == "rlimits, memory unbounded on a GPU"


def test_what_the_grader_runs_cannot_be_remounted_or_written(inside):
    assert inside["remount"] != 0
    assert inside["written"] == []
    for folder in filter(os.path.isdir, site.getsitepackages()):
        assert not os.path.exists(os.path.join(folder, "zz_planted.pth"))


@pytest.mark.skipif(os.geteuid() != 0, reason="staging is what root does for the jail's uid")
def test_a_folder_the_jails_uid_cannot_reach_by_its_path_is_still_bound(tmp_path):
    """A Python under /root/.pyenv (mode 0700): root stages it in a private mount namespace before it
    drops to the jail's uid, which could not walk to it by its path."""
    private = tmp_path / "private"
    (private / "python").mkdir(parents=True)
    (private / "python" / "lib.txt").write_text("readable")
    os.chmod(private, 0o700)
    folders = Folders()
    try:
        jail = Sandbox(folders.jail, folders.work, readable=[private / "python"], limits=Limits(memory_bytes=None))
        command = jail.command(["/bin/cat", str(private / "python" / "lib.txt")])
        assert command[:4] == ["unshare", "--mount", "--propagation", "private"]
        done = jail.run(["/bin/cat", str(private / "python" / "lib.txt")], timeout=60)
        jail.close()
        assert (done.returncode, done.stdout) == (0, "readable"), done.stderr
    finally:
        folders.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="an ordinary grader's run folder is its own, mode 0700")
def test_what_a_jail_holds_is_closed_to_everyone_else_on_the_machine(tmp_path):
    """A root grader opens its run folder in /tmp to the jail's uid (o+x), and /tmp lists it: on the course's
    JupyterHub, a student could read a classmate's notebook while it was graded, or the scoring job's
    hidden tests and the grader's own package copy."""
    import subprocess
    from pathlib import Path

    from autograder.grader.trusted import scoring_package

    folders = Folders()
    try:
        (folders.work / "classmate.ipynb").write_text("{}")
        jail = Sandbox(folders.jail, folders.work, limits=Limits(memory_bytes=None))
        package = scoring_package(folders.base / "package")
        assert jail.run(["/bin/cat", str(folders.work / "classmate.ipynb")], timeout=60).stdout == "{}"
        jail.close()
        for secret in (folders.work / "classmate.ipynb", package / "autograder" / "grader" / "hidden.py"):
            assert Path(secret).is_file()
            done = subprocess.run(["runuser", "-u", "daemon", "--", "/bin/cat", str(secret)], capture_output=True)
            assert done.returncode != 0 and b"Permission denied" in done.stderr, secret
    finally:
        folders.close()
