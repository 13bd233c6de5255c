"""A jail for a student's kernel: what it can see and how much it can use.

`Sandbox.command` wraps the kernel's command line in bubblewrap (`bwrap`):

- no network (a private network namespace: not even the grader's loopback);
- a private PID namespace, so every process the notebook starts dies with it;
- the file system read-only and reduced to what Python needs: system
  libraries, the interpreter and its packages, the dataset cache, and the
  student package; the only writable places are the submission's working
  copy, the exchange folder the grader reads back, and a private /tmp;
- GPU device nodes passed through when the host has them.

Limits on memory and processes come from a control group when the host lets
us create one (cgroup v1 or v2), else from rlimits; file size and core dumps
from rlimits. `Sandbox.diagnose` turns what happened into one sentence.

The kernel talks to the grader over ZeroMQ IPC sockets in a folder bound
into the jail (`SandboxKernelManager`), since TCP on the grader's loopback is
out of reach from the private network namespace.
"""

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

# What Python, numpy, TensorFlow and matplotlib read under /etc.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "passwd", "group",
             "ssl", "ca-certificates", "fonts", "alternatives", "mime.types", "matplotlibrc")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr/local/nvidia")
GPU_DEVICES = ("/dev/nvidia*", "/dev/dri")
# Variables the kernel may inherit; everything else (tokens, the grader's paths) is dropped.
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES",
            "TF_CPP_MIN_LOG_LEVEL", "TF_FORCE_GPU_ALLOW_GROWTH", "XLA_PYTHON_CLIENT_PREALLOCATE",
            "OMP_NUM_THREADS", "NBGRADER_EXECUTION", "PYTHONHASHSEED", "MPLBACKEND",
            "AUTOGRADER_DATA_DIR", "PYDEVD_DISABLE_FILE_VALIDATION")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces on this host."""


def bwrap_works():
    """Whether `bwrap` is installed and can start a jail here (user namespaces allowed)."""
    if not shutil.which("bwrap"):
        return False
    try:
        return subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-all", "--", "true"],
                              capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _gib(n):
    return f"{n / 2**30:g} GiB"


@dataclass
class Limits:
    memory_bytes: int | None = 8 * 2**30
    max_processes: int | None = 512  # threads count too: TensorFlow starts dozens
    max_file_bytes: int | None = 2 * 2**30
    tmp_bytes: int = 2 * 2**30


class ControlGroups:
    """One control group per kernel under the grader's own, for memory and process limits.

    cgroup v1 (separate memory and pids hierarchies) and v2 (one unified
    hierarchy) are both handled. `available` is False where the hierarchy is
    read-only, as for most non-root users: rlimits then stand in.
    """

    ROOT = Path("/sys/fs/cgroup")

    def __init__(self, limits):
        self.limits = limits
        self.name = f"autograder-{uuid.uuid4().hex[:12]}"
        self.groups = {}  # controller -> group folder
        try:
            self._create()
        except OSError:
            self.remove()
            self.groups = {}

    @staticmethod
    def _own_path(controller):
        """Our process's group in ``controller``'s hierarchy ('' for cgroup v2)."""
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(",") or (controller == "" and controllers == ""):
                return path.lstrip("/")
        return None

    def _create(self):
        unified = self.ROOT / "cgroup.controllers"
        if unified.is_file():  # cgroup v2
            parent = self.ROOT / self._own_path("")
            group = parent / self.name
            group.mkdir()
            self.groups = {"memory": group, "pids": group}
            self._write(group / "memory.max", self.limits.memory_bytes)
            self._write(group / "memory.swap.max", 0 if self.limits.memory_bytes else None)
            self._write(group / "pids.max", self.limits.max_processes)
            return
        for controller in ("memory", "pids"):
            path = self._own_path(controller)
            base = self.ROOT / controller
            if path is None or not base.is_dir():
                continue
            group = base / path / self.name
            group.mkdir()
            self.groups[controller] = group
        if "memory" in self.groups:
            self._write(self.groups["memory"] / "memory.limit_in_bytes", self.limits.memory_bytes)
            # Swap must not stretch the limit where the host has swap accounting.
            self._write(self.groups["memory"] / "memory.memsw.limit_in_bytes", self.limits.memory_bytes,
                        missing_ok=True)
        if "pids" in self.groups:
            self._write(self.groups["pids"] / "pids.max", self.limits.max_processes)

    @staticmethod
    def _write(path, value, missing_ok=False):
        if value is None or (missing_ok and not path.exists()):
            return
        try:
            path.write_text(str(int(value)))
        except OSError:
            if not missing_ok:
                raise

    @property
    def available(self):
        return bool(self.groups)

    def join_command(self):
        """A shell prefix that moves itself into the groups, then runs the rest of the command."""
        if not self.groups:
            return []
        targets = " ".join(f"'{g / 'cgroup.procs'}'" for g in dict.fromkeys(self.groups.values()))
        return ["/bin/sh", "-c", f'for f in {targets}; do echo $$ > "$f" || exit 97; done; exec "$@"', "sandbox"]

    def out_of_memory(self):
        group = self.groups.get("memory")
        if group is None:
            return False
        for name in ("memory.oom_control", "memory.events"):
            events = group / name
            if events.is_file():
                for line in events.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value) > 0:
                        return True
        return False

    def kill_all(self):
        """SIGKILL whatever is left in the groups: children that outlived the kernel."""
        for group in dict.fromkeys(self.groups.values()):
            kill = group / "cgroup.kill"
            if kill.exists():
                try:
                    kill.write_text("1")
                    continue
                except OSError:
                    pass
            procs = group / "cgroup.procs"
            if procs.exists():
                for pid in procs.read_text().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (OSError, ValueError):
                        pass

    def remove(self):
        for group in dict.fromkeys(self.groups.values()):
            try:
                group.rmdir()
            except OSError:
                pass


@dataclass
class Sandbox:
    """The jail for one kernel run.

    ``workdir`` is the kernel's working folder; ``writable`` folders are bound
    read-write at the same path (the exchange folder); ``readable`` extra
    folders read-only (the dataset cache, the student package). ``hidden``
    paths are covered by empty folders even where a bound folder contains
    them (the grader's own package, the course's sources).
    """

    workdir: Path
    writable: list = field(default_factory=list)
    readable: list = field(default_factory=list)
    hidden: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    network: bool = False

    def __post_init__(self):
        self.cgroups = ControlGroups(self.limits)

    @staticmethod
    def _system_args():
        """System folders read-only; merged-/usr links (/bin -> usr/bin) recreated as links."""
        args = []
        for path in SYSTEM_DIRS:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        prefixes = {sys.base_prefix, sys.prefix, sys.exec_prefix}
        prefixes |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)}
        for path in sorted(prefixes | {os.path.realpath(p) for p in prefixes}):
            args += ["--ro-bind", path, path]
        return args

    def bwrap_args(self):
        args = ["bwrap", "--die-with-parent", "--unshare-all", "--clearenv"]
        if self.network:
            args.append("--share-net")
        # The private /tmp first: anything bound below may live under the host's /tmp.
        args += ["--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp"]
        args += self._system_args()
        for name in ETC_FILES:
            path = f"/etc/{name}"
            if os.path.exists(path):
                args += ["--ro-bind", path, path]
        # /sys read-only: CUDA and XLA read the GPU's and NUMA's description there.
        args += ["--proc", "/proc", "--dev", "/dev", "--ro-bind-try", "/sys", "/sys"]
        for pattern in GPU_DEVICES:
            for dev in glob.glob(pattern):
                args += ["--dev-bind", dev, dev]
        for path in self.readable:
            args += ["--ro-bind-try", str(path), str(path)]
        for path in [self.workdir, *self.writable]:
            args += ["--bind", str(path), str(path)]
        for path in self.hidden:
            if Path(path).is_dir():
                args += ["--tmpfs", str(path)]
        env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
        env.update({"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib", "JPY_PARENT_PID": "1",
                    "IPYTHONDIR": "/tmp/ipython", "PYTHONDONTWRITEBYTECODE": "1", **self.env})
        for key, value in sorted(env.items()):
            args += ["--setenv", key, str(value)]
        # ipykernel's parent poller takes PID 1 (bubblewrap's reaper) for a dead parent
        # unless JPY_PARENT_PID is 1; --die-with-parent stands in for it.
        # Everything not bound above lives on bubblewrap's own root tmpfs: read-only too.
        return args + ["--remount-ro", "/", "--chdir", str(self.workdir), "--"]

    def rlimit_args(self):
        limits = ["--core=0"]
        if self.limits.max_file_bytes:
            limits.append(f"--fsize={self.limits.max_file_bytes}")
        if not self.cgroups.available:
            # rlimits stand in for the control group: RLIMIT_DATA counts heap and
            # private mappings (not the address space TF and CUDA reserve);
            # RLIMIT_NPROC is ignored for root, which the report says.
            if self.limits.memory_bytes:
                limits.append(f"--data={self.limits.memory_bytes}")
            if self.limits.max_processes and os.geteuid() != 0:
                limits.append(f"--nproc={self.limits.max_processes}")
        return ["prlimit", *limits, "--"] if shutil.which("prlimit") else []

    def command(self, cmd):
        """``cmd`` wrapped: join the control groups, set rlimits, enter the jail."""
        return self.cgroups.join_command() + self.rlimit_args() + self.bwrap_args() + list(cmd)

    def describe(self):
        """What the report records about the jail."""
        limits = "control group" if self.cgroups.available else "rlimits"
        return {"kind": "bwrap", "network": self.network, "limits": limits,
                "memory_bytes": self.limits.memory_bytes, "max_processes": self.limits.max_processes}

    def out_of_memory(self):
        return self.cgroups.out_of_memory()

    def close(self):
        self.cgroups.kill_all()
        self.cgroups.remove()

    def memory_text(self):
        return _gib(self.limits.memory_bytes) if self.limits.memory_bytes else "the host's memory"


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager that starts the kernel inside ``self.sandbox`` over IPC sockets.

    With ``sandbox`` None it behaves like AsyncKernelManager, with the same
    IPC transport, so sandboxed and plain runs differ only in the jail.
    """

    sandbox = None
    show_output = False  # the kernel process's own stdout/stderr (not cell output)

    def __init__(self, **kwargs):
        self._socket_dir = tempfile.mkdtemp(prefix="autograder-kernel-")
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("connection_file", os.path.join(self._socket_dir, "kernel.json"))
        super().__init__(**kwargs)
        self.ip = os.path.join(self._socket_dir, "ipc")

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        if not self.show_output:  # "Kernel is running over ...", absl lines: noise for the user
            kw["stdout"] = kw["stderr"] = subprocess.DEVNULL
        if self.sandbox is not None:
            self.sandbox.writable.append(Path(self._socket_dir))
            kernel_cmd = self.sandbox.command(kernel_cmd)
            kw.pop("cwd", None)  # bwrap --chdir sets it inside the jail
        return await super()._async_launch_kernel(kernel_cmd, **kw)

    async def _async_interrupt_kernel(self):
        # A signal to the process group would also reach bubblewrap, which dies of
        # SIGINT and takes the kernel with it; ipykernel's interrupt_request
        # message makes the kernel signal itself instead.
        if self.sandbox is None:
            return await super()._async_interrupt_kernel()
        msg = self.session.msg("interrupt_request", content={})
        self._connect_control_socket()
        self.session.send(self._control_socket, msg)

    interrupt_kernel = _async_interrupt_kernel

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources
