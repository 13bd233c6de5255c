"""The one jail, as the user running these tests sees it: root in CI, and an ordinary user (.ci/run runs
this file as both). Student code never keeps a capability, never runs as root, sees none of the
grader's environment, and can neither remount nor write what the grader runs."""

import json
import os
import platform
import shutil
import signal
import site
import stat
import subprocess
import sys
import time
import uuid

import pytest

from autograder.datasets.download import data_dir
from autograder.run import jail as sandbox
from autograder.run import syscall_filter
from autograder.run.jail import (
    GPU_SHARING,
    JAIL_UID,
    LAUNCH_ENV,
    PASSED_ENV,
    Limits,
    Sandbox,
    SandboxUnavailable,
    jail_problem,
)
from autograder.run.record import Folders

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
    assert jail.describe()["limits"] == "rlimits; memory watched each second (proportional set size)"
    monkeypatch.setattr(sandbox, "gpu_devices", lambda: ["/dev/nvidia0"])
    # No bound of the jail's own; the grading process's own heap bound (soft) is lifted for it.
    assert [arg for arg in jail.rlimit_args() if arg.startswith("--data")] == ["--data=unlimited:"]
    assert jail.describe()["limits"] == "rlimits; memory watched each second (proportional set size)"
    assert jail.watches_memory()


def allocating(megabytes, children=0):
    """A process that holds ``megabytes`` of touched memory in each of itself and ``children`` forks, until killed."""
    code = (f"import os, time\nfor _ in range({children}):\n    if os.fork() == 0: break\n"
            f"block = bytearray({megabytes} * 2**20)\nos.write(1, b'ready\\n')\ntime.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    for _ in range(children + 1):
        assert proc.stdout.readline().strip() == "ready"
    return proc


def test_the_memory_of_a_jail_counts_every_process_below_its_launcher():
    proc = allocating(100, children=2)
    try:
        assert sandbox.tree_memory(proc.pid) > 300 * 2**20
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_memory_files_count_mapped_or_not():
    code = ("import os, time\nfd = os.memfd_create('x')\nfor _ in range(300):\n    os.write(fd, b'a' * 2**20)\n"
            "os.write(1, b'ready\\n')\ntime.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert sandbox.tree_memory(proc.pid) > 300 * 2**20  # its resident set is a few MB: the file is not mapped
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_page_tables_count_though_no_page_is_resident():
    """Red team: a read-only mapping of terabytes touched every 2 MiB maps only the zero page (no resident
    memory, and no RLIMIT_DATA: it is not writable) but costs a page-table page each."""
    code = ("import mmap, os, time\nsize = 2**36\nm = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS"
            " | 0x4000, prot=mmap.PROT_READ)\nm.madvise(mmap.MADV_NOHUGEPAGE)\n"
            "for i in range(0, size, 2**21):\n    m[i]\nos.write(1, b'ready\\n')\ntime.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert sandbox.tree_memory(proc.pid) > 100 * 2**20  # 32,768 page-table pages of 4 KiB: 128 MiB
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_memory_held_in_memory_files_is_bounded_with_or_without_control_groups(tmp_path):
    """Pages of a memory file are no heap: where no control group can be made (an ordinary grader, as in CI's
    second pass) RLIMIT_DATA let a notebook hold 1.2 GB in four of them under a 600 MiB limit."""
    from test_execute import notebook, run

    code = ("import os, time\nfds = []\nfor _ in range(4):\n    fds.append(os.memfd_create('x'))\n"
            "    for _ in range(300):\n        os.write(fds[-1], b'a' * 2**20)\ntime.sleep(5)\nprint('kept')")
    nb, execution = run(notebook(code, ("pass", "after")), tmp_path, sandbox="bwrap", memory_limit=600 * 2**20,
                        timeout=60)
    assert execution.fault is not None, nb.cells[0].outputs
    assert execution.fault.reason == "out of memory: the notebook used more than 0.585938 GiB"


def test_where_no_control_group_counts_memory_the_watchdog_kills_the_kernel_past_its_limit(tmp_path):
    """Issue 25: on a GPU host without control groups a jail's memory was unbounded (RLIMIT_DATA aborts XLA):
    one notebook could take the host's memory from the classmates graded beside it."""
    from autograder.run.execute import _DiskWatchdog

    proc, killed = allocating(300), []
    try:
        watch = lambda: "out of memory" if sandbox.tree_memory(proc.pid) > 200 * 2**20 else ""  # noqa: E731
        watchdog = _DiskWatchdog(tmp_path, Limits(memory_bytes=200 * 2**20), lambda: killed.append(True),
                                 every=0.05, watches=[watch])
        deadline = time.monotonic() + 10
        while not killed and time.monotonic() < deadline:
            time.sleep(0.05)
        watchdog.stop()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert killed and watchdog.tripped == "out of memory"


FAKE_NVIDIA_SMI = """#!/bin/sh
# What an NVIDIA driver says, made up: the GPUs of $FAKE_GPUS ("uuid:MiB ..."), and on the first of them each
# process of $FAKE_GPU_PIDS ("all"; "comm:NAME", those of that name now; or ids) holding $FAKE_GPU_MIB MiB,
# then a row the driver could not fill. $FAKE_GPU_HANG: seconds the process query takes.
case "$*" in
  *query-gpu=uuid,memory.total*)
    for gpu in $FAKE_GPUS; do echo "${gpu%%:*}, ${gpu##*:}"; done ;;
  *query-compute-apps=gpu_uuid,pid,used_memory*)
    sleep "${FAKE_GPU_HANG:-0}"
    first=${FAKE_GPUS%%:*}
    case "$FAKE_GPU_PIDS" in
      all) pids=$(ls /proc | grep -E '^[0-9]+$') ;;
      comm:*) pids=$(grep -lx "${FAKE_GPU_PIDS#comm:}" /proc/[0-9]*/comm 2>/dev/null | cut -d/ -f3) ;;
      *) pids=$FAKE_GPU_PIDS ;;
    esac
    for pid in $pids; do echo "$first, $pid, $FAKE_GPU_MIB"; done
    echo "$first, 4242, [N/A]" ;;
  *) exit 9 ;;
esac
"""


@pytest.fixture
def fake_gpu(tmp_path, monkeypatch):
    """A host whose nvidia-smi answers as an NVIDIA driver does (one GPU of 80 GiB; the processes' use made up)."""
    folder = tmp_path / "driver"
    folder.mkdir()
    (folder / "nvidia-smi").write_text(FAKE_NVIDIA_SMI)
    (folder / "nvidia-smi").chmod(0o755)
    monkeypatch.setattr(sandbox, "NVIDIA_SMI_PATH", str(folder))
    monkeypatch.setenv("FAKE_GPUS", "GPU-a:81920")
    monkeypatch.setenv("FAKE_GPU_MIB", "3000")
    return monkeypatch


def test_the_gpu_memory_of_a_jail_is_what_the_driver_counts_for_its_processes(fake_gpu):
    """Each process below the launcher, on each GPU; processes outside the tree and rows the driver could not
    fill count nothing."""
    proc = allocating(1, children=2)
    try:
        tree = sandbox.tree_pids(proc.pid)
        assert len(tree) == 3
        fake_gpu.setenv("FAKE_GPU_PIDS", f"{tree[0]} {tree[1]} {tree[1]} {os.getpid()}")
        used = sandbox.gpu_memory_of_processes()
        assert sandbox.tree_gpu_memory(proc.pid, used) == {"GPU-a": 3 * 3000 * 2**20}
        fake_gpu.setenv("FAKE_GPUS", "GPU-a:81920 GPU-b:40960")
        assert sandbox.gpu_memory_sizes() == {"GPU-a": 80 * 2**30, "GPU-b": 40 * 2**30}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("driver", [
    None,  # no nvidia-smi
    "#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n",
    "#!/bin/sh\nprintf 'GPU-a, 1\\xb2\\n'\n",  # not ASCII
    "#!/usr/bin/env python3\nprint('GPU-a, 1\\u00b2, 5')\nprint('GPU-a, 7, \\u0663')\n",  # digits, not ASCII ones
])
def test_a_driver_that_does_not_answer_as_one_is_no_gpu_and_no_error(tmp_path, monkeypatch, driver):
    """Red team: `int("²")` raised in the watch's thread (its other watches stopped) and failed the grading."""
    monkeypatch.setattr(sandbox, "NVIDIA_SMI_PATH", str(tmp_path))
    if driver:
        (tmp_path / "nvidia-smi").write_text(driver)
        (tmp_path / "nvidia-smi").chmod(0o755)
    assert sandbox.gpu_memory_sizes() == {}
    assert not sandbox.gpu_memory_of_processes()
    assert sandbox.tree_gpu_memory(os.getpid(), sandbox.gpu_memory_of_processes() or {}) == {}


def test_nvidia_smi_is_the_drivers_not_the_first_on_path(tmp_path, monkeypatch):
    """Whatever PATH the grader was started with, nvidia-smi is looked for where the driver installs it."""
    (tmp_path / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU-planted, 1'\n")
    (tmp_path / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert "GPU-planted" not in sandbox.gpu_memory_sizes()


def watch_until(watch, seconds):
    deadline = time.monotonic() + seconds
    while not watch.excess and time.monotonic() < deadline:
        time.sleep(0.1)
    watch.stop()
    return watch.excess


def test_each_gpu_is_held_to_its_own_share(fake_gpu):
    """Red team: with two GPUs of 80 GiB the share was of their sum, so a notebook holding 77 GiB of the first
    (where every kernel goes unless told otherwise) stayed under a share of 0.5."""
    from autograder.run.execute import GpuMemoryWatch

    proc = allocating(1)
    try:
        fake_gpu.setenv("FAKE_GPUS", "GPU-a:81920 GPU-b:81920")
        fake_gpu.setenv("FAKE_GPU_PIDS", str(proc.pid))
        fake_gpu.setenv("FAKE_GPU_MIB", "79000")
        watch = GpuMemoryWatch(proc.pid, 0.5, every=0.1)
        assert watch_until(watch, 10) == ("out of GPU memory: the notebook held 77.1 GiB of a GPU's memory, more "
                                          "than its share of a GPU shared with other gradings (0.5 of it, 40 GiB)")
        assert watch.status == "watched each second: at most 0.5 of each GPU's memory (40 of 80 GiB, 40 of 80 GiB)"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_where_the_driver_names_other_process_ids_nothing_is_watched(fake_gpu, monkeypatch):
    """Red team: in a container the driver gives the machine's process ids, and one of them may be a process of
    the jail's: a classmate's memory would then be charged to the student. There the watch stands aside."""
    from autograder.run import execute
    from autograder.run.execute import GpuMemoryWatch

    assert sandbox.in_host_pid_namespace()  # this machine's own view: kthreadd is process 2
    monkeypatch.setattr(execute, "in_host_pid_namespace", lambda: False)
    fake_gpu.setenv("FAKE_GPU_PIDS", "all")
    fake_gpu.setenv("FAKE_GPU_MIB", "79000")
    watch = GpuMemoryWatch(os.getpid(), 0.25, every=0.1)
    assert watch_until(watch, 2) == ""
    assert watch.status == "not watched: the grader does not see the machine's process ids, which the driver gives"


@pytest.mark.skipif(not sandbox.in_host_pid_namespace(), reason="the driver's process ids are not this machine's")
@pytest.mark.parametrize("mib, fault", [
    (30_000, "out of GPU memory: the notebook held more than 20 GiB"),
    (100, None),
])
def test_a_notebook_past_its_share_of_a_shared_gpu_is_stopped(tmp_path, fake_gpu, mib, fault):
    """Issue 25: N workers share one GPU, each kernel growing its memory as it needs it; a notebook that takes
    the GPU's memory would make the classmates graded beside it fail. Each jail keeps its share (grade-all gives
    1 / the host's slots) by the driver's count for the kernel's processes, each second."""
    from test_execute import notebook, run

    fake_gpu.setenv("FAKE_GPU_PIDS", "all")  # the notebook's processes among them
    fake_gpu.setenv("FAKE_GPU_MIB", str(mib))
    nb, execution = run(notebook("import time\ntime.sleep(3)", "print('after')"), tmp_path, sandbox="bwrap",
                        gpu_memory_share=0.25, timeout=60)
    assert execution.jail["gpu_memory"] == "watched each second: at most 0.25 of each GPU's memory (20 of 80 GiB)"
    if fault is None:
        assert execution.fault is None and nb.cells[-1].outputs[0].text == "after\n"
    else:
        assert execution.fault is not None and execution.fault.owner == "student"
        assert execution.fault.reason.startswith("out of GPU memory: the notebook held ")
        assert execution.fault.reason.endswith("more than its share of a GPU shared with other gradings (0.25 of "
                                               "it, 20 GiB)")


@pytest.mark.skipif(not sandbox.in_host_pid_namespace(), reason="the driver's process ids are not this machine's")
def test_short_bursts_on_the_gpu_are_seen(tmp_path, fake_gpu):
    """Red team: the GPU was looked at 1 s into each cell and at its end if 2 s had passed since the last look:
    twenty cells each holding the GPU for 0.85 s, under 1 s, were never seen. The watch samples in a thread of its
    own, each second, whatever the cells do."""
    from test_execute import notebook, run

    fake_gpu.setenv("FAKE_GPU_PIDS", "comm:gpuhog")
    fake_gpu.setenv("FAKE_GPU_MIB", "30000")
    burst = ("import ctypes, time\nlibc = ctypes.CDLL(None)\nlibc.prctl(15, b'gpuhog')\ntime.sleep(0.85)\n"
             "libc.prctl(15, b'python3')")
    nb, execution = run(notebook(*[burst] * 20), tmp_path, sandbox="bwrap", gpu_memory_share=0.25, timeout=60)
    assert execution.fault is not None and execution.fault.reason.startswith("out of GPU memory: "), \
        execution.fault


@pytest.mark.skipif(not sandbox.in_host_pid_namespace(), reason="the driver's process ids are not this machine's")
def test_a_driver_that_hangs_costs_the_notebook_no_time(tmp_path, fake_gpu):
    """Red team: the GPU was looked at in the grading's own thread as each cell ended; a driver that hung (a
    fault of the host) used up the notebook's time budget and an honest notebook got 0, its own fault."""
    from test_execute import notebook, run

    fake_gpu.setenv("FAKE_GPU_PIDS", "all")
    fake_gpu.setenv("FAKE_GPU_HANG", "60")
    started = time.monotonic()
    nb, execution = run(notebook(*["x = 1"] * 10, "print('after')"), tmp_path, sandbox="bwrap",
                        gpu_memory_share=0.25, timeout=60)
    assert time.monotonic() - started < 20
    assert execution.fault is None and nb.cells[-1].outputs[0].text == "after\n"
    assert execution.jail["gpu_memory"].startswith("watched each second: at most 0.25 of each GPU's memory")


def test_looks_the_driver_did_not_answer_are_counted_for_the_report(fake_gpu):
    """Red team: without a control group, processes each in a session of their own starved every look past its
    5 s, and the report still said "watched each second". It says how many looks got no answer."""
    from autograder.run.execute import GpuMemoryWatch

    fake_gpu.setenv("FAKE_GPU_PIDS", "all")
    fake_gpu.setenv("FAKE_GPU_HANG", "60")
    watch = GpuMemoryWatch(os.getpid(), 0.25, every=0.1)
    deadline = time.monotonic() + 20
    while not watch.unanswered and time.monotonic() < deadline:
        time.sleep(0.2)
    watch.stop()
    assert watch.status == ("watched each second: at most 0.25 of each GPU's memory (20 of 80 GiB); 1 of 1 looks got "
                            "no answer from the driver")


def test_no_second_look_while_one_hangs(fake_gpu):
    """A wedged driver's nvidia-smi may outlive SIGKILL: a look per second would pile them up."""
    stuck = subprocess.Popen(["sleep", "30"])  # stands in for an nvidia-smi killed and still there
    fake_gpu.setitem(sandbox._LOOKS, "compute-apps=gpu_uuid,pid,used_memory", stuck)
    fake_gpu.setenv("FAKE_GPU_PIDS", str(os.getpid()))
    try:
        assert sandbox.gpu_memory_of_processes() is None  # the driver would have answered: not asked
    finally:
        stuck.kill()
        stuck.wait()
    assert sandbox.gpu_memory_of_processes() == {("GPU-a", os.getpid()): 3000 * 2**20}


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

    from autograder.grader.hidden_tests.launch import scoring_package

    folders = Folders()
    try:
        (folders.work / "classmate.ipynb").write_text("{}")
        jail = Sandbox(folders.jail, folders.work, limits=Limits(memory_bytes=None))
        package = scoring_package(folders.base / "package")
        assert jail.run(["/bin/cat", str(folders.work / "classmate.ipynb")], timeout=60).stdout == "{}"
        jail.close()
        for secret in (folders.work / "classmate.ipynb", package / "autograder" / "grader" / "hidden_tests" / "vocabulary.py"):
            assert Path(secret).is_file()
            done = subprocess.run(["runuser", "-u", "daemon", "--", "/bin/cat", str(secret)], capture_output=True)
            assert done.returncode != 0 and b"Permission denied" in done.stderr, secret
    finally:
        folders.close()


# --- attacks on the class: the seccomp filter (autograder/run/syscall_filter.py) and the jail's tmpfs -----------

x86_64 = pytest.mark.skipif(platform.machine() != "x86_64", reason="the probes use x86-64's system call numbers")

# A hostile notebook's system calls, through ctypes as a student would make them: each answers 'ok' or the
# name of its errno. Where the kernel would refuse a call anyway (no capability), the arguments make it
# answer something else first (a missing target, a bad descriptor), so only the filter answers EPERM.
ATTACKS = r"""
import ctypes, errno, json, os, signal, struct, time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def answer(result):
    return "ok" if result >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))


def raw(number, *args):
    ctypes.set_errno(0)
    return libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])


def call(number, *args):
    return answer(raw(number, *args))


def forking(number, *args):
    pid = raw(number, *args)
    if pid == 0:  # a child, if the call worked: it leaves at once
        os._exit(0)
    found = answer(pid)
    if pid > 0:
        os.waitpid(pid, 0)
    return found


class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


found = {"fds": sorted(os.listdir("/proc/self/fd"))}
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
found["seccomp"] = status["Seccomp"].strip()
USER_KEYRING, SESSION_KEYRING = -4, -3
found["add_key"] = call(248, b"user", b"probe", b"answers", 7, USER_KEYRING)
found["keyctl"] = call(250, 0, SESSION_KEYRING, 1)  # KEYCTL_GET_KEYRING_ID, made if missing
found["request_key"] = call(249, b"user", b"probe", None, 0)
found["io_uring_setup"] = call(425, 4, ctypes.create_string_buffer(120))
found["shmget"] = call(29, 0, 2**28, 0o1600)  # IPC_PRIVATE, 256 MiB, IPC_CREAT | 0600
found["io_uring_enter"] = call(426, -1, 0, 0, 0, None, 0)
found["io_uring_register"] = call(427, -1, 0, None, 0)
child = os.fork()
if child == 0:
    os._exit(0 if raw(101, 0, 0, 0, 0) == 0 else ctypes.get_errno())  # PTRACE_TRACEME
code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
found["ptrace_traceme"] = "ok" if code == 0 else errno.errorcode.get(code, str(code))
child = os.fork()
if child == 0:
    time.sleep(30)
    os._exit(0)
found["ptrace_attach"] = call(101, 16, child, 0, 0)
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
secret, copy = ctypes.create_string_buffer(b"answers", 16), ctypes.create_string_buffer(16)
local, remote = iovec(ctypes.addressof(copy), 16), iovec(ctypes.addressof(secret), 16)
found["process_vm_readv"] = call(310, os.getpid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
found["process_vm_writev"] = call(311, os.getpid(), ctypes.byref(remote), 1, ctypes.byref(local), 1, 0)
found["bpf"] = call(321, 0xdead, None, 0)  # a command the kernel would call invalid
found["bpf_map_create"] = call(321, 0, ctypes.create_string_buffer(struct.pack("IIII", 2, 4, 4, 1), 16), 16)
attr = struct.pack("IIQQQQQIIQ", 1, 64, 0, 0, 0, 0, 1 | 1 << 5 | 1 << 6, 0, 0, 0)  # cpu-clock, user space only
found["perf_event_open"] = call(298, ctypes.create_string_buffer(attr, 64), 0, -1, -1, 0)
found["userfaultfd"] = call(323, 1 | os.O_CLOEXEC)  # UFFD_USER_MODE_ONLY
CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWNS = 0x10000000, 0x40000000, 0x20000
found["unshare_user"] = call(272, CLONE_NEWUSER)
found["unshare_mount"] = call(272, CLONE_NEWNS)
found["setns"] = call(308, -1, 0)
found["clone_user"] = forking(56, CLONE_NEWUSER | signal.SIGCHLD, 0, 0, 0, 0)
found["clone_net"] = forking(56, CLONE_NEWNET | signal.SIGCHLD, 0, 0, 0, 0)
args = struct.pack("11Q", CLONE_NEWUSER, 0, 0, 0, signal.SIGCHLD, 0, 0, 0, 0, 0, 0)
found["clone3_user"] = forking(435, ctypes.create_string_buffer(args, 88), 88)
found["mount"] = call(165, b"tmpfs", b"/tmp", b"tmpfs", 0, None)
found["mount_missing_target"] = call(165, b"none", b"/no/such/target", b"tmpfs", 0, None)
found["umount2"] = call(166, b"/no/such/target", 0)
found["chroot"] = call(161, b"/no/such/target")
found["pivot_root"] = call(155, b"/tmp", b"/tmp")
found["open_tree"] = call(428, -100, b"/tmp", 0)
found["fsopen"] = call(430, b"tmpfs", 0)
found["fspick"] = call(433, -100, b"/tmp", 0)
found["move_mount"] = call(429, -1, b"", -1, b"", 0)
found["mount_setattr"] = call(442, -100, b"/tmp", 0, None, 0)
found["init_module"] = call(175, None, 0, b"")
found["finit_module"] = call(313, -1, b"", 0)
found["kexec_load"] = call(246, 0, 0, None, 0)
found["syslog"] = call(103, 10, None, 0)  # SYSLOG_ACTION_SIZE_BUFFER
found["acct"] = call(163, None)
found["uselib"] = call(134, b"/no/such/library")
handle, mount_id = ctypes.create_string_buffer(struct.pack("Ii", 0, 0), 8), ctypes.c_int()
found["name_to_handle_at"] = call(303, -100, b"/tmp", handle, ctypes.byref(mount_id), 0)
found["open_by_handle_at"] = call(304, -1, handle, 0)
found["personality_linux"] = call(135, 0)
found["personality_bsd"] = call(135, 6)  # PER_BSD
found["personality_no_aslr"] = call(135, 0x0040000)  # ADDR_NO_RANDOMIZE
call(135, 0)
found["ioctl_tiocsti"] = call(16, -1, 0x5412, None)
found["ioctl_tiocsti_high_bits"] = call(16, -1, 0x1_0000_5412, None)
found["ioctl_tioclinux"] = call(16, -1, 0x541C, None)
found["ioctl_fionread"] = call(16, -1, 0x541B, None)
sockets = {"AF_UNIX": (1, 1, 0), "AF_INET": (2, 2, 0), "AF_INET6": (10, 2, 0), "AF_NETLINK": (16, 3, 0),
           "AF_VSOCK": (40, 1, 0), "AF_PACKET": (17, 3, 0), "AF_ALG": (38, 5, 0), "AF_KEY": (15, 3, 2),
           "AF_BLUETOOTH": (31, 1, 3), "AF_CAN": (29, 3, 1), "AF_TIPC": (30, 4, 0), "AF_RDS": (21, 5, 0),
           "AF_XDP": (44, 3, 0), "AF_APPLETALK": (5, 2, 0), "AF_UNIX with high bits": (0x1_0000_0001, 1, 0)}
for name, (family, kind, protocol) in sockets.items():
    found[name] = call(41, family, kind, protocol)
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def attacks():
    """What each hostile system call answered inside a jail."""
    folders = Folders()
    try:
        jail = Sandbox(folders.jail, folders.work, limits=Limits(memory_bytes=2**30))
        done = jail.run([sys.executable, "-I", "-c", ATTACKS], timeout=120)
        jail.close()
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
    finally:
        folders.close()


def answers(found, *names):
    return {name: found[name] for name in names}


def test_the_jail_runs_under_a_seccomp_filter(attacks, tmp_path):
    assert attacks["seccomp"] == "2"  # SECCOMP_MODE_FILTER
    assert "9" not in attacks["fds"]  # bubblewrap closed the descriptor it read the filter from
    jail = Sandbox(tmp_path / "jail", tmp_path / "jail" / "work", limits=Limits(memory_bytes=None))
    jail.close()
    assert jail.describe()["syscall_filter"].startswith("seccomp")


@x86_64
def test_no_kernel_keyring(attacks):
    assert answers(attacks, "add_key", "keyctl", "request_key") == dict.fromkeys(
        ["add_key", "keyctl", "request_key"], "EPERM")


@x86_64
def test_no_system_v_shared_memory(attacks):
    """A segment outlives every process and is charged to none: without a control group nothing counted it
    (red team: 3 GiB kept under a 2 GiB limit, in blocks of 256 MiB, each detached)."""
    assert attacks["shmget"] == "EPERM"


@x86_64
def test_no_io_uring(attacks):
    """io_uring's operations never pass through seccomp: refused as if the kernel lacked it."""
    names = ["io_uring_setup", "io_uring_enter", "io_uring_register"]
    assert answers(attacks, *names) == dict.fromkeys(names, "ENOSYS")


@x86_64
def test_no_tracing_or_reading_another_process(attacks):
    names = ["ptrace_traceme", "ptrace_attach", "process_vm_readv", "process_vm_writev"]
    assert answers(attacks, *names) == dict.fromkeys(names, "EPERM")


@x86_64
def test_no_bpf_perf_events_or_userfaultfd(attacks):
    names = ["bpf", "bpf_map_create", "perf_event_open", "userfaultfd"]
    assert answers(attacks, *names) == dict.fromkeys(names, "EPERM")


@x86_64
def test_no_namespace_of_its_own(attacks):
    """clone3 answers ENOSYS (seccomp cannot read its flags) so that glibc falls back to clone, whose flags it
    can: a new namespace is refused either way."""
    names = ["unshare_user", "unshare_mount", "setns", "clone_user", "clone_net"]
    assert answers(attacks, *names) == dict.fromkeys(names, "EPERM")
    assert attacks["clone3_user"] == "ENOSYS"


@x86_64
def test_nothing_mounted_by_any_api(attacks):
    old = ["mount", "mount_missing_target", "umount2", "chroot", "pivot_root"]
    new = ["open_tree", "fsopen", "fspick", "move_mount", "mount_setattr"]
    assert answers(attacks, *old) == dict.fromkeys(old, "EPERM")
    assert answers(attacks, *new) == dict.fromkeys(new, "ENOSYS")


@x86_64
def test_no_kernel_modules_kernel_log_or_files_by_handle(attacks):
    names = ["init_module", "finit_module", "kexec_load", "syslog", "acct", "uselib", "name_to_handle_at",
             "open_by_handle_at"]
    assert answers(attacks, *names) == dict.fromkeys(names, "EPERM")


@x86_64
def test_no_other_personality_and_no_typing_into_a_terminal(attacks):
    assert attacks["personality_linux"] == "ok"
    assert answers(attacks, "personality_bsd", "personality_no_aslr") == {"personality_bsd": "EPERM",
                                                                          "personality_no_aslr": "EPERM"}
    tty = ["ioctl_tiocsti", "ioctl_tiocsti_high_bits", "ioctl_tioclinux"]
    assert answers(attacks, *tty) == dict.fromkeys(tty, "EPERM")
    assert attacks["ioctl_fionread"] == "EBADF"  # any other ioctl still reaches the kernel


@x86_64
def test_sockets_only_of_the_families_a_notebook_uses(attacks):
    """AF_VSOCK reached the virtual machine's host past the network namespace; AF_ALG is the kernel's crypto."""
    allowed = ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"]
    refused = ["AF_VSOCK", "AF_PACKET", "AF_ALG", "AF_KEY", "AF_BLUETOOTH", "AF_CAN", "AF_TIPC", "AF_RDS",
               "AF_XDP", "AF_APPLETALK", "AF_UNIX with high bits"]
    assert answers(attacks, *allowed) == dict.fromkeys(allowed, "ok")
    assert answers(attacks, *refused) == dict.fromkeys(refused, "EAFNOSUPPORT")


OTHER_ARCHITECTURE = r"""
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
if sys.argv[1] == "i386":  # i386's getpid through int 0x80: another system call table, past a filter of x86-64's
    page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(b"\xb8\x14\x00\x00\x00\xcd\x80\xc3")  # mov eax, 20; int 0x80; ret
    print(ctypes.CFUNCTYPE(ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(page)))())
else:  # x32's getpid: x86-64's number with bit 30 set
    print(libc.syscall(ctypes.c_long(0x40000000 | 39)))
"""


@x86_64
@pytest.mark.parametrize("architecture", ["i386", "x32"])
def test_a_system_call_of_another_architecture_kills_the_process(architecture):
    folders = Folders()
    try:
        jail = Sandbox(folders.jail, folders.work, limits=Limits(memory_bytes=2**30))
        done = jail.run([sys.executable, "-I", "-c", OTHER_ARCHITECTURE, architecture], timeout=60)
        jail.close()
    finally:
        folders.close()
    assert (done.returncode, done.stdout) == (128 + signal.SIGSYS, ""), (done.returncode, done.stdout, done.stderr)


KEY_HOLDER = r"""
import ctypes, json, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
marker, added = sys.argv[1], {}
for name, keyring in (("user", -4), ("session", -3)):
    payload = f"answers from A: {marker}".encode()
    ctypes.set_errno(0)
    serial = libc.syscall(ctypes.c_long(248), b"user", f"{marker}-{name}".encode(), payload,
                          ctypes.c_long(len(payload)), ctypes.c_long(keyring))
    added[name] = serial if serial >= 0 else -ctypes.get_errno()
    if serial >= 0:  # KEYCTL_SETPERM: every right to everyone, so that another jail may read it too
        libc.syscall(ctypes.c_long(250), ctypes.c_long(5), ctypes.c_long(serial), ctypes.c_long(0x3F3F3F3F))
open("added.json", "w").write(json.dumps(added))
time.sleep(120)
"""

KEY_SEEKER = r"""
import ctypes, json, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
marker, found = sys.argv[1], {"listed": [], "read": [], "searched": []}
try:
    keys = open("/proc/keys").read().splitlines()
except OSError:
    keys = []
found["listed"] = [line for line in keys if marker in line]
for line in keys:  # every key it can see, read
    buffer = ctypes.create_string_buffer(4096)
    n = libc.syscall(ctypes.c_long(250), ctypes.c_long(11), ctypes.c_long(int(line.split()[0], 16)), buffer,
                     ctypes.c_long(4096))  # KEYCTL_READ
    if n > 0 and marker.encode() in buffer.raw[:n]:
        found["read"].append(buffer.raw[:n].decode(errors="replace"))
for keyring in (-4, -3, -5):  # the user, session and user-session keyrings
    for name in ("user", "session"):
        serial = libc.syscall(ctypes.c_long(250), ctypes.c_long(10), ctypes.c_long(keyring), b"user",
                              f"{marker}-{name}".encode(), ctypes.c_long(0))  # KEYCTL_SEARCH
        if serial >= 0:
            found["searched"].append(serial)
    serial = libc.syscall(ctypes.c_long(249), b"user", f"{marker}-user".encode(), None, ctypes.c_long(0))
    if serial >= 0:
        found["searched"].append(serial)
print(json.dumps(found))
"""


@x86_64
def test_a_jail_finds_nothing_another_jail_put_in_the_kernel_keyring():
    """Red team: two notebooks graded side by side (both uid 65534), and B's kernel read the key A's kernel had
    added to the keyring ("answers from A: ..."); /proc/keys listed other jails' keyrings."""
    marker = f"autograder-{uuid.uuid4().hex[:12]}"
    first, second = Folders(), Folders()
    a = Sandbox(first.jail, first.work, limits=Limits(memory_bytes=2**30))
    b = Sandbox(second.jail, second.work, limits=Limits(memory_bytes=2**30))
    holder = subprocess.Popen(a.command([sys.executable, "-I", "-c", KEY_HOLDER, marker]), env=LAUNCH_ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, cwd="/")
    try:
        deadline = time.monotonic() + 60
        while not (first.work / "added.json").is_file() and holder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert holder.poll() is None, holder.stderr.read()  # A holds its keys while B looks
        time.sleep(0.2)  # A's file written in full
        added = json.loads((first.work / "added.json").read_text())
        done = b.run([sys.executable, "-I", "-c", KEY_SEEKER, marker], timeout=60)
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
        a.close()
        b.close()
        first.close()
        second.close()
    # -EPERM: A could not add a key at all, and B finds no trace of one
    assert (added, found) == ({"user": -1, "session": -1}, {"listed": [], "read": [], "searched": []})


FILL = r"""
import errno, json, os, sys
found = {}
for folder in sys.argv[1:]:
    written, error = 0, None
    try:
        fd = os.open(os.path.join(folder, "filled"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while written < 100 * 2**20:
                written += os.write(fd, b"x" * 2**20)
        finally:
            os.close(fd)
    except OSError as e:
        error = errno.errorcode.get(e.errno, str(e.errno))
    found[folder] = [written, error]
found["hidden listing"] = os.listdir(sys.argv[-1])
print(json.dumps(found))
"""


def test_every_tmpfs_in_the_jail_is_read_only_or_sized(tmp_path):
    """Red team: /dev, /sys/fs/cgroup and the tmpfs over each hidden folder took 1 GiB each (no size); the
    jail's memory was all the host's. /dev/shm keeps its own size (256 MB)."""
    course = tmp_path / "course"
    (course / "grader").mkdir(parents=True)
    (course / "grader" / "hidden.py").write_text("ANSWER = 42")
    folders = Folders()
    try:
        jail = Sandbox(folders.jail, folders.work, readable=[course], hidden=[course / "grader"],
                       limits=Limits(memory_bytes=2**30))
        done = jail.run([sys.executable, "-I", "-c", FILL, "/dev", "/sys/fs/cgroup", "/", str(course / "grader")],
                        timeout=120)
        jail.close()
    finally:
        folders.close()
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found.pop("hidden listing") == []
    assert found == {folder: [0, "EROFS"] for folder in ["/dev", "/sys/fs/cgroup", "/", str(course / "grader")]}


STILL_WORKS = r"""
import json, multiprocessing, os
from multiprocessing import shared_memory
import numpy
found = {}
with open("/dev/null", "w") as null:
    found["null"] = null.write("x")
found["zero"] = open("/dev/zero", "rb").read(4).hex()
found["urandom"] = len(open("/dev/urandom", "rb").read(16)) + len(os.urandom(16))
full = os.open("/dev/full", os.O_WRONLY)
try:
    os.write(full, b"x")
except OSError as e:
    found["full"] = e.errno
os.close(full)
master, follower = os.openpty()  # /dev/ptmx and /dev/pts
os.write(master, b"typed\n")
found["pty"] = os.read(follower, 6).decode()
memory = shared_memory.SharedMemory(create=True, size=2**20)  # /dev/shm
memory.buf[:3] = b"abc"
other = shared_memory.SharedMemory(memory.name)
found["shared_memory"] = bytes(other.buf[:3]).decode()
other.close()
memory.close()
memory.unlink()
lock = multiprocessing.Lock()  # a POSIX semaphore, in /dev/shm
with lock:
    with multiprocessing.get_context("fork").Pool(2) as pool:
        found["pool"] = pool.map(abs, [-1, -2, -3])
found["numpy"] = round(float(numpy.ones((200, 200)).dot(numpy.ones(200)).sum()))
info = os.statvfs("/dev/shm")
found["shm_bytes"] = info.f_blocks * info.f_frsize
print(json.dumps(found))
"""


def test_devices_shared_memory_and_terminals_still_work_for_python_and_numpy():
    folders = Folders()
    try:
        jail = Sandbox(folders.jail, folders.work, limits=Limits(memory_bytes=2**30))
        done = jail.run([sys.executable, "-I", "-c", STILL_WORKS], timeout=120)
        jail.close()
    finally:
        folders.close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"null": 1, "zero": "00000000", "urandom": 32, "full": 28, "pty": "typed\n",
                                       "shared_memory": "abc", "pool": [1, 2, 3], "numpy": 40000,
                                       "shm_bytes": Limits().shm_bytes}


def test_without_libseccomp_the_jail_does_not_start(monkeypatch, tmp_path):
    """A host without libseccomp must not run jails without the filter: the host's problem, in one sentence."""
    monkeypatch.setattr(syscall_filter, "LIBRARY", "libseccomp-missing.so.2")
    monkeypatch.setattr(syscall_filter, "_library", None)
    monkeypatch.setattr(syscall_filter, "_exported", {})
    assert jail_problem.__wrapped__() == ("libseccomp is not installed, so the jail could not filter system calls "
                                          "(apt-get install libseccomp2)")
    jail = Sandbox(tmp_path / "jail", tmp_path / "jail" / "work", limits=Limits(memory_bytes=None))
    jail.close()
    with pytest.raises(SandboxUnavailable, match="libseccomp is not installed"):
        jail.command(["/bin/true"])


def test_a_libseccomp_older_than_a_system_call_still_refuses_it(monkeypatch):
    """clone3, io_uring and the new mount API have one number on every architecture since Linux 5.1: a libseccomp
    that does not know them gets them by number, and the filter is the same; an unknown call of another kind
    stops the jail rather than leaving the call open."""
    expected = syscall_filter.compile_filter()
    library, unknown = syscall_filter._load(), set(syscall_filter.UNIFIED_NUMBERS)

    class Older:
        def __getattr__(self, name):
            return getattr(library, name)

        @staticmethod
        def seccomp_syscall_resolve_name(name):
            return -1 if name.decode() in unknown else library.seccomp_syscall_resolve_name(name)

    monkeypatch.setattr(syscall_filter, "_library", Older())
    assert syscall_filter.compile_filter() == expected
    monkeypatch.setattr(syscall_filter, "UNIFIED_NUMBERS", {})
    with pytest.raises(syscall_filter.FilterUnavailable, match="does not know the system call io_uring_setup"):
        syscall_filter.compile_filter()


def test_the_filter_file_is_the_graders_alone_and_comes_back_in_a_new_folder_if_removed():
    """The launcher opens the exported filter by its path: no other user may read it or put another in its place.
    A cleaner of /tmp that removes it costs a new folder, never one of the same name someone else could make."""
    path = syscall_filter.program_path()
    assert syscall_filter.program_path() == path  # once per process
    folder = os.path.dirname(path)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    program = open(path, "rb").read()
    shutil.rmtree(folder)
    again = syscall_filter.program_path()
    assert os.path.dirname(again) != folder and open(again, "rb").read() == program
    assert os.path.basename(os.path.dirname(again)).startswith(f"autograder-seccomp-{os.getpid()}-")


def test_a_filter_folder_left_by_a_process_that_is_gone_is_removed(monkeypatch, tmp_path):
    """A grading process killed for its time leaves its filter behind; the next process takes it away."""
    monkeypatch.setattr(syscall_filter.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(syscall_filter, "_exported", {})
    gone = int(open("/proc/sys/kernel/pid_max").read()) + 1  # no process ever has it
    (tmp_path / f"autograder-seccomp-{gone}-abc").mkdir()
    (tmp_path / f"autograder-seccomp-{os.getppid()}-abc").mkdir()  # a live process's: kept
    path = syscall_filter.program_path()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([os.path.basename(os.path.dirname(path)),
                                                                 f"autograder-seccomp-{os.getppid()}-abc"])
    shutil.rmtree(os.path.dirname(path))
