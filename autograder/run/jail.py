"""The one jail for everything that runs on a student's work: their kernel, and the grader's scoring process.

`Sandbox.command` wraps a command line in bubblewrap (`bwrap`), as Flatpak
uses it:

- no network (a private network namespace: not even the grader's loopback),
  a private PID, IPC and UTS namespace, a new terminal session;
- never a capability, never the grader's uid: as root, bubblewrap binds the
  folders and `setpriv` then becomes the jail's unprivileged uid and gid
  (65534 by default) with an empty bounding set; as another user, a user
  namespace maps that uid and gid, with no capabilities and no further user
  namespaces. bubblewrap always sets no-new-privileges;
- a minimal environment built on purpose (``env``), never inherited: neither
  bubblewrap nor what it runs sees the grader's variables;
- the file system read-only and reduced to what Python needs: system
  libraries, the interpreter and its packages, and the ``readable`` folders;
  the only writable place is the run's jail folder (``root``), which holds
  the working folder, the exchange folder, the kernel's sockets and /tmp, so
  that one disk quota covers everything the jail can write;
- GPU device nodes passed through when the host has them.

Limits on memory and processes come from a control group when the host lets
us create one (cgroup v1 or v2), else from rlimits; file size and core dumps
from rlimits.

The kernel talks to the grader over ZeroMQ IPC sockets in a folder of the
jail folder (`SandboxKernelManager`), since TCP on the grader's loopback is
out of reach from the private network namespace.
"""

import contextlib
import functools
import glob
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type, default

from . import syscall_filter

# What Python, numpy, TensorFlow and matplotlib read under /etc.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "passwd", "group",
             "ssl", "ca-certificates", "fonts", "alternatives", "mime.types", "matplotlibrc")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr/local/nvidia")
GPU_DEVICES = ("/dev/nvidia*", "/dev/dri")
# The only variables of the grader's environment a jail may take over: how to use the GPU and the backend.
PASSED_ENV = ("KERAS_BACKEND", "CUDA_VISIBLE_DEVICES", "LANG", "TZ", "LD_LIBRARY_PATH",
              "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION", "TF_FORCE_GPU_ALLOW_GROWTH")
# Unless the host says otherwise, a jail takes GPU memory as it needs it: JAX would take 75% of the GPU
# at its start and TensorFlow all of it, so a second worker (or the scoring process) could not start.
GPU_SHARING = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
# What bubblewrap itself runs with: its own /proc/1/environ is readable inside the jail.
LAUNCH_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
JAIL_UID = JAIL_GID = 65534  # nobody / nogroup
# The descriptor on which the launcher hands bubblewrap the seccomp filter (`syscall_filter`).
SECCOMP_FD = 9


def hand_over(folder, uid=JAIL_UID, gid=JAIL_GID):
    """As root, ``folder`` and everything in it belong to the jail's uid, and only it may enter: the run's
    folder must be open to that uid (o+x), and /tmp lists it, so on a shared machine (the course's
    JupyterHub) any user could otherwise read a notebook being graded, or the scoring job's hidden tests."""
    if not _as_root():
        return
    for parent, dirs, files in os.walk(folder):
        for name in [parent, *[os.path.join(parent, n) for n in dirs + files]]:
            os.lchown(name, uid, gid)
    os.chmod(folder, 0o700)


def gpu_devices():
    """The host's GPU device nodes, which a jail is given."""
    return [dev for pattern in GPU_DEVICES for dev in sorted(glob.glob(pattern))]


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot start a jail on this host: a fault of the host."""


def _gib(n):
    return f"{n / 2**30:g} GiB"


def tree_pids(pid):
    """The process ``pid`` and every process below it, from /proc (one that ended meanwhile is left out). The
    jail's PID namespace keeps every process it starts below its launcher: an orphan goes to the namespace's
    init, bubblewrap's child."""
    pending, seen = [pid], {}
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    pending += [int(child) for child in f.read().split()]
        except (OSError, ValueError):  # it ended meanwhile
            continue
        seen[current] = True
    return list(seen)


def tree_memory(pid):
    """Bytes of memory the process ``pid`` and everything below it hold, from /proc: their proportional set
    size (a page shared by several of them counted once in all), their page tables (a read-only mapping of
    terabytes touched every 2 MiB costs a page-table page each and no resident page: red team), and the pages
    of every memory file (`memfd_create`) one of them holds open, mapped or not, each file once. Not counted:
    a memory file only in flight in a Unix socket, pipe buffers (a few MB per uid), hugetlb pages; System V
    shared memory is refused by the jail's filter."""
    total, files = 0, {}
    for current in tree_pids(pid):
        try:
            with open(f"/proc/{current}/smaps_rollup") as f:
                total += next((int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:")), 0)
            with open(f"/proc/{current}/status") as f:
                total += next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmPTE:")), 0)
            for fd in os.listdir(f"/proc/{current}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{current}/fd/{fd}").startswith("/memfd:"):
                        info = os.stat(f"/proc/{current}/fd/{fd}")
                        files[(info.st_dev, info.st_ino)] = info.st_blocks * 512
        except (OSError, ValueError):  # it ended meanwhile
            continue
    return total + sum(files.values())


NVIDIA_SMI_PATH = "/usr/bin:/bin:/usr/local/nvidia/bin"  # where the driver puts it: not whatever PATH says


_LOOKS = {}  # query -> its nvidia-smi that did not end in time: no second one while it hangs


def _nvidia_smi(query):
    """Rows of ``nvidia-smi --query-QUERY`` as lists of fields, or None where it does not answer (no GPU, no
    driver, no answer within 5 s, output that is not the driver's). Never raises and never waits past 5 s: a look
    that fails is skipped, and while one hangs (a wedged driver: killing it may not end it) no other starts."""
    command = shutil.which("nvidia-smi", path=NVIDIA_SMI_PATH)
    stuck = _LOOKS.get(query)
    if not command or (stuck is not None and stuck.poll() is None):
        return None
    try:
        # A session of its own, so that whatever it started is killed with it past its time.
        proc = subprocess.Popen([command, f"--query-{query}", "--format=csv,noheader,nounits"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    except OSError:
        return None
    try:
        out, _ = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stdout.close()  # not waited for: it may never end
        _LOOKS[query] = proc
        return None
    if proc.returncode != 0:
        return None
    try:
        return [[field.strip() for field in line.split(",")] for line in out.decode("ascii").splitlines()
                if line.strip()]
    except UnicodeDecodeError:
        return None


def _mib(field):
    """Bytes of a field in MiB, or None ("[N/A]", anything but ASCII digits)."""
    return int(field) * 2**20 if re.fullmatch(r"[0-9]{1,12}", field) else None


def in_host_pid_namespace():
    """Whether this process sees the machine's own process ids, the ones the GPU's driver names: a grader in a
    container sees its own, and a number the driver gives may be another process there (NVIDIA/nvidia-docker#179).
    Only the machine's own namespace shows kthreadd, the kernel's process 2."""
    try:
        return Path("/proc/2/comm").read_text().strip() == "kthreadd"
    except OSError:
        return False


def gpu_memory_sizes():
    """``{GPU uuid: bytes}`` of this host's NVIDIA GPUs; empty where none answers."""
    sizes = {}
    for row in _nvidia_smi("gpu=uuid,memory.total") or []:
        if len(row) == 2 and _mib(row[1]):
            sizes[row[0]] = _mib(row[1])
    return sizes


def gpu_memory_of_processes():
    """``{(GPU uuid, process id): bytes}`` the driver counts now, or None where it does not answer. A row it
    could not fill ("[N/A]") counts nothing."""
    rows = _nvidia_smi("compute-apps=gpu_uuid,pid,used_memory")
    if rows is None:
        return None
    used = {}
    for row in rows:
        if len(row) == 3 and re.fullmatch(r"[0-9]{1,9}", row[1]) and _mib(row[2]) is not None:
            used[(row[0], int(row[1]))] = used.get((row[0], int(row[1])), 0) + _mib(row[2])
    return used


def tree_gpu_memory(pid, used):
    """``{GPU uuid: bytes}`` that the process ``pid`` and everything below it hold, from ``used``
    (`gpu_memory_of_processes`)."""
    tree, held = set(tree_pids(pid)), {}
    for (gpu, process), size in used.items():
        if process in tree:
            held[gpu] = held.get(gpu, 0) + size
    return held


def has_gpu():
    """Whether this machine has an NVIDIA GPU (/dev/nvidia0, ...), which jails are given; not a display's /dev/dri
    alone."""
    return bool(glob.glob("/dev/nvidia[0-9]*"))


@dataclass
class Limits:
    memory_bytes: int | None = 8 * 2**30
    max_processes: int | None = 512  # threads count too: TensorFlow starts dozens
    max_file_bytes: int | None = 1 * 2**30
    disk_bytes: int = 4 * 2**30  # everything under the jail folder together
    max_files: int = 100_000  # entries under the jail folder
    shm_bytes: int = 256 * 2**20  # the jail's /dev/shm
    cpu_cores: float | None = None  # at most this many CPUs (a control group's quota); None: a fair share only


class ControlGroups:
    """One control group per jail, for memory, process and CPU limits.

    cgroup v1 (a hierarchy per controller) and v2 (one unified hierarchy)
    are both handled. The groups go under the grader's own group, or under
    ``$AUTOGRADER_CGROUP`` (a path below each hierarchy's root): a subtree
    root delegated to the course's instructors (`autograder hub` makes one),
    so that grading has the course's limits whoever starts it. `available`
    is False where no group can be made (an ordinary user without a
    delegated subtree): rlimits then stand in.

    CPU: every jail's group has the same weight, so jails graded side by
    side share the CPUs fairly, whatever number of processes one of them
    starts (400 spinning processes are one share, not 400). ``cpu_cores``
    also caps a jail at that many CPUs (the reference run is timed so, see
    `reference`).
    """

    ROOT = Path("/sys/fs/cgroup")
    PARENT_VARIABLE = "AUTOGRADER_CGROUP"
    V1_CONTROLLERS = ("memory", "pids", "cpu")
    V2_CONTROLLERS = ("memory", "pids", "cpu")
    CFS_PERIOD_US = 100_000

    PREFIX_VARIABLE = "AUTOGRADER_CGROUP_PREFIX"

    def __init__(self, limits, create=True):
        self.limits = limits
        self.name = f"{self.prefix()}{uuid.uuid4().hex[:12]}"
        self.groups = {}  # controller -> group folder
        if not create:
            return
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

    @classmethod
    def _parent(cls, controller):
        """The group under which jails go, in ``controller``'s hierarchy, or None."""
        delegated = os.environ.get(cls.PARENT_VARIABLE, "").strip("/")
        own = cls._own_path(controller)
        if delegated and ".." not in delegated.split("/"):
            return delegated
        return own

    @classmethod
    def prefix(cls):
        """How this process names its groups: grade-all's worker gives each grading process a prefix of its
        own, to remove whatever that process left (killed for its time, say)."""
        prefix = os.environ.get(cls.PREFIX_VARIABLE, "")
        return prefix if prefix.startswith("autograder-") and prefix.replace("-", "").isalnum() else "autograder-"

    @classmethod
    def parents(cls):
        """The folders under which this process makes its groups, one per hierarchy."""
        if (cls.ROOT / "cgroup.controllers").is_file():
            parent = cls._parent("")
            return [] if parent is None else [cls.ROOT / parent]
        return [cls.ROOT / c / cls._parent(c) for c in cls.V1_CONTROLLERS
                if cls._parent(c) is not None and (cls.ROOT / c).is_dir()]

    @classmethod
    def remove_leftovers(cls, prefix):
        """Kill and remove the groups named ``prefix``... that a process left behind."""
        leftovers = cls(Limits(memory_bytes=None, max_processes=None), create=False)
        for parent in cls.parents():
            for group in parent.glob(f"{prefix}*"):
                if group.is_dir() and group.name.startswith(prefix):
                    leftovers.groups[str(group)] = group
        leftovers.remove()

    def _create(self):
        unified = self.ROOT / "cgroup.controllers"
        if unified.is_file():  # cgroup v2
            parent = self.ROOT / self._parent("")
            wanted = [c for c in self.V2_CONTROLLERS if c in (parent / "cgroup.controllers").read_text().split()]
            self._write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted), missing_ok=True)
            group = parent / self.name
            group.mkdir()
            enabled = (group / "cgroup.controllers").read_text().split()
            self.groups = {c: group for c in ("memory", "pids", "cpu") if c in enabled}
            if "memory" not in self.groups or "pids" not in self.groups:
                raise OSError("the memory and pids controllers are not delegated here")
            self._write(group / "memory.max", self.limits.memory_bytes)
            self._write(group / "memory.swap.max", 0 if self.limits.memory_bytes else None)
            self._write(group / "pids.max", self.limits.max_processes)
            if "cpu" in self.groups and self.limits.cpu_cores:
                self._write(group / "cpu.max", f"{self._quota_us()} {self.CFS_PERIOD_US}")
            return
        for controller in self.V1_CONTROLLERS:
            path = self._parent(controller)
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
        if "cpu" in self.groups and self.limits.cpu_cores:
            self._write(self.groups["cpu"] / "cpu.cfs_period_us", self.CFS_PERIOD_US)
            self._write(self.groups["cpu"] / "cpu.cfs_quota_us", self._quota_us())

    def _quota_us(self):
        return max(1000, int(self.limits.cpu_cores * self.CFS_PERIOD_US))

    @staticmethod
    def _write(path, value, missing_ok=False):
        if value is None or (missing_ok and not path.exists()):
            return
        try:
            path.write_text(value if isinstance(value, str) else str(int(value)))
        except OSError:
            if not missing_ok:
                raise

    @property
    def available(self):
        return "memory" in self.groups and "pids" in self.groups

    def describe(self):
        """What the report says of the jail's limits."""
        if not self.available:
            return ""
        cpu = ("; CPU: a fair share" + (f", at most {self.limits.cpu_cores:g} CPUs" if self.limits.cpu_cores else "")
               if "cpu" in self.groups else "")
        return "control group" + cpu

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

    def hit_memory_limit(self):
        """Whether the group's memory reached its own limit (not the host's running out of memory, whose OOM
        killer may kill in any group): cgroup v2's ``oom`` event; with v1, its peak at its limit (its
        ``failcnt`` stays 0 on this host's kernel when the OOM killer acts)."""
        group = self.groups.get("memory")
        if group is None:
            return False
        try:
            if (group / "memory.events").is_file():
                events = dict(line.split() for line in (group / "memory.events").read_text().splitlines())
                return int(events.get("oom", 0)) > 0
            peak, limit = (int((group / name).read_text()) for name in ("memory.max_usage_in_bytes",
                                                                        "memory.limit_in_bytes"))
            return int((group / "memory.failcnt").read_text()) > 0 or peak >= limit - 2 * 2**20
        except (OSError, ValueError):
            return False

    def _procs(self, group):
        try:
            return [int(pid) for pid in (group / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def kill_all(self):
        """SIGKILL whatever is left in the groups: children that outlived the jail."""
        for group in dict.fromkeys(self.groups.values()):
            kill = group / "cgroup.kill"
            if kill.exists():
                try:
                    kill.write_text("1")
                    continue
                except OSError:
                    pass
            for pid in self._procs(group):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def remove(self, patience=10.0):
        """Remove the groups once their processes are gone: right after a kill the kernel may still be
        reaping them (rmdir meets EBUSY), so kill and try again until empty, for up to ``patience`` s."""
        import time

        deadline = time.monotonic() + patience
        for group in dict.fromkeys(self.groups.values()):
            while True:
                try:
                    group.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    self.kill_all()
                    time.sleep(0.05)
        self.groups = {}

def cpu_cores(share):
    """The CPUs a jail may use when it may use ``share`` of this host's (None: no cap)."""
    return round(share * (os.cpu_count() or 1), 3) if share else None


def _as_root():
    return os.geteuid() == 0


@dataclass
class Sandbox:
    """The jail for one run of a kernel or of the scoring process.

    ``root`` is the jail folder, the one writable place (bound read-write at
    its own path; ``root/tmp`` is the jail's /tmp); ``workdir`` lies in it.
    ``readable`` folders or files are bound read-only at their own paths;
    ``hidden`` paths are covered by empty folders even where a bound folder
    contains them (the grader's own package, for a student's kernel). ``env``
    is the whole environment inside, on top of a few fixed variables.
    """

    root: Path
    workdir: Path
    readable: list = field(default_factory=list)
    hidden: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    network: bool = False
    uid: int = JAIL_UID
    gid: int = JAIL_GID
    groups: tuple = ()  # supplementary groups it keeps, as root: the grader's scoring process, for its package

    def __post_init__(self):
        self.root = Path(self.root)
        self.workdir = Path(self.workdir)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Beside the jail folder, where root stages what the jail's uid cannot reach by its path.
        self.stage = self.root.parent / f"{self.root.name}-staged"
        if _as_root():  # the jail's uid walks through the run's folder (it cannot list it); no one else may
            info = os.stat(self.root.parent)
            if info.st_gid != self.gid:
                os.chown(self.root.parent, info.st_uid, self.gid)
            os.chmod(self.root.parent, (info.st_mode & 0o7700) | 0o010)
        self.cgroups = ControlGroups(self.limits)

    # --- the command line -----------------------------------------------------------------

    @staticmethod
    def _system_binds():
        """System folders read-only; merged-/usr links (/bin -> usr/bin) recreated as links."""
        binds = []
        for path in SYSTEM_DIRS:
            if os.path.islink(path):
                binds.append(("--symlink", os.readlink(path), path))
            elif os.path.isdir(path):
                binds.append(("--ro-bind", path, path))
        prefixes = {sys.base_prefix, sys.prefix, sys.exec_prefix}
        prefixes |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)}
        prefixes |= {os.path.realpath(p) for p in prefixes}
        for path in sorted(prefixes):  # a folder inside another one bound is bound with it
            if not any(path.startswith(other.rstrip("/") + "/") for other in prefixes):
                binds.append(("--ro-bind", path, path))
        return binds

    def environment(self):
        """Everything the jailed program sees in its environment."""
        env = dict(GPU_SHARING)
        env.update({k: os.environ[k] for k in PASSED_ENV if k in os.environ})
        env.update({"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/tmp",
                    "MPLCONFIGDIR": "/tmp/matplotlib", "IPYTHONDIR": "/tmp/ipython", "PYTHONDONTWRITEBYTECODE": "1",
                    "TMPDIR": "/tmp", "LANG": env.get("LANG", "C.UTF-8")})
        env.update({k: str(v) for k, v in self.env.items()})
        return env

    def _binds(self):
        """``(op, source, dest)`` of everything bound into the jail, in order."""
        # The jail's /tmp first: anything bound below may live under the host's /tmp (a checkout there).
        binds = [("--bind", str(self.root / "tmp"), "/tmp")] + self._system_binds()
        binds += [("--ro-bind", f"/etc/{name}", f"/etc/{name}") for name in ETC_FILES if os.path.exists(f"/etc/{name}")]
        binds += [("--ro-bind", str(path), str(path)) for path in self.readable if os.path.exists(path)]
        binds.append(("--bind", str(self.root), str(self.root)))
        return binds

    def bwrap_args(self, staged):
        """bubblewrap's arguments; ``staged`` maps a source the jail's uid cannot reach to where it is staged.

        bubblewrap runs as the jail's uid, in a user namespace of its own that
        maps that uid and gid and nothing else: no capability can be kept and
        no further user namespace made. It loads the seccomp filter of
        `syscall_filter` from descriptor ``SECCOMP_FD`` (the launcher of
        `command` opens it) into the jail, its PID 1 included.

        Every tmpfs in the jail is read-only or sized: /dev (bubblewrap's, once
        its nodes are made: the nodes, /dev/pts and /dev/shm are mounts of their
        own and stay writable), /sys/fs/cgroup and the ``hidden`` folders are
        read-only, /dev/shm has ``shm_bytes``, the root is read-only.
        """
        args = ["bwrap", "--die-with-parent", "--new-session", "--clearenv", "--unshare-user", "--disable-userns",
                "--uid", str(self.uid), "--gid", str(self.gid), "--unshare-ipc", "--unshare-pid", "--unshare-uts",
                "--unshare-cgroup-try", "--cap-drop", "ALL", "--seccomp", str(SECCOMP_FD)]
        if not self.network:
            args.append("--unshare-net")
        bound, made = [], set()  # read-only binds (nothing can be made in them), folders made
        for op, source, dest in self._binds():
            args += self._parents(dest, bound, made) + [op, staged.get(source, source), dest]
            if op != "--bind":
                bound.append(dest)
        # /sys read-only: CUDA and XLA read the GPU's and NUMA's description there.
        # /dev/shm is the jail's own, bounded tmpfs (a /dev tmpfs could hold half the host's memory);
        # the host's control groups (other jails' among them) are out of sight.
        # /proc/keys and /proc/key-users list the keys of every process of the jail's uid, other jails' and
        # the host's (keys made before the filter refused them among them): masked, as Docker masks them.
        args += ["--proc", "/proc", "--ro-bind-try", "/dev/null", "/proc/keys",
                 "--ro-bind-try", "/dev/null", "/proc/key-users",
                 "--dev", "/dev", "--perms", "1777", "--size", str(self.limits.shm_bytes),
                 "--tmpfs", "/dev/shm", "--ro-bind-try", "/sys", "/sys",
                 "--tmpfs", "/sys/fs/cgroup", "--remount-ro", "/sys/fs/cgroup"]
        for dev in gpu_devices():
            args += ["--dev-bind", dev, dev]
        args += ["--remount-ro", "/dev"]  # after the last node is made in it
        for path in self.hidden:
            if Path(path).is_dir():
                args += ["--tmpfs", str(path), "--remount-ro", str(path)]
        for key, value in sorted(self.environment().items()):
            args += ["--setenv", key, value]
        # Everything not bound above lives on bubblewrap's own root tmpfs: read-only too.
        return args + ["--remount-ro", "/", "--chdir", str(self.workdir), "--"]

    def _reachable(self, path):
        """Whether the jail's uid may walk down to ``path`` (search permission on every folder above it)."""
        for folder in Path(path).parents:
            info = os.stat(folder)
            bits = 0o100 if info.st_uid == self.uid else 0o010 if info.st_gid == self.gid else 0o001
            if not info.st_mode & bits:
                return False
        return True

    @staticmethod
    def _parents(dest, bound, made):
        """``--dir`` for each folder above ``dest`` that is neither made nor inside a bound one: readable by
        the jail's user (bubblewrap would make them 0700, which shuts the uid out of /root/.pyenv, say)."""
        args = []
        for parent in reversed(Path(dest).parents):
            text = str(parent)
            if text == "/" or text in made or any(text == b or text.startswith(b.rstrip("/") + "/") for b in bound):
                continue
            args += ["--perms", "0755", "--dir", text]
            made.add(text)
        return args

    def rlimit_args(self):
        limits = ["--core=0"]
        if self.limits.max_file_bytes:
            limits.append(f"--fsize={lowered('RLIMIT_FSIZE', self.limits.max_file_bytes)}")
        if not self.cgroups.available:
            # rlimits stand in for the control group: RLIMIT_DATA counts heap and
            # private mappings (not the address space TF and CUDA reserve).
            # No RLIMIT_NPROC: it counts every process of the grader's uid on the host, so one jail's
            # threads would keep another from starting (an ordinary grader gets no process limit).
            # Not on a GPU: CUDA's libraries abort (SIGABRT in cuBLAS's and cuDNN's set-up) under
            # RLIMIT_DATA, so there only a control group can bound memory (`describe` says so).
            if self.limits.memory_bytes and not gpu_devices():
                limits.append(f"--data={lowered('RLIMIT_DATA', self.limits.memory_bytes)}")
        if not any(limit.startswith("--data=") for limit in limits):
            # The grading process bounds its own heap (`worker.execute_job`); the jail has its own bound:
            # the soft limit goes back up to the hard one, whatever the host set.
            limits.append(f"--data={_prlimit_value(resource.getrlimit(resource.RLIMIT_DATA)[1])}:")
        return ["prlimit", *limits, "--"] if shutil.which("prlimit") else []

    def command(self, cmd):
        """``cmd`` in the jail.

        A launcher joins the control groups; as root, it stages in a private
        mount namespace each folder the jail's uid could not reach by its path
        (a Python under /root/.pyenv, say), then becomes that uid for good.
        Then rlimits are set and bubblewrap starts, as that uid, with the
        seccomp filter open on ``SECCOMP_FD`` (exported once per process to a
        file only the grader's user can read); without libseccomp the jail
        does not start (`SandboxUnavailable`).
        """
        try:
            seccomp = syscall_filter.program_path()
        except (syscall_filter.FilterUnavailable, OSError) as e:
            raise SandboxUnavailable(str(e)) from e
        self._hand_over()
        script = [f"for f in {' '.join(shlex.quote(str(g / 'cgroup.procs')) for g in dict.fromkeys(self.cgroups.groups.values()))}; "
                  'do echo $$ > "$f" || exit 97; done'] if self.cgroups.available else []
        staged, drop = {}, []
        if _as_root():
            for op, source, _ in self._binds():
                if op != "--symlink" and source not in staged and not self._reachable(source):
                    staged[source] = str(self.stage / str(len(staged)))
            groups = [f"--groups={','.join(map(str, self.groups))}"] if self.groups else ["--clear-groups"]
            drop = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", *groups, "--inh-caps=-all",
                    "--bounding-set=-all", "--no-new-privs", "--"]
        for source, target in staged.items():
            if os.path.isdir(source):
                Path(target).mkdir(parents=True, exist_ok=True)
            else:  # a file is bound onto a file
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                Path(target).touch()
            script.append(f"mount --bind {shlex.quote(source)} {shlex.quote(target)} || exit 98")
        script.append(f'exec "$@" {SECCOMP_FD}< {shlex.quote(seccomp)}')
        launcher = ["/bin/sh", "-c", "; ".join(script), "jail"]
        if staged:
            launcher = ["unshare", "--mount", "--propagation", "private", "--"] + launcher
        return launcher + self.rlimit_args() + drop + self.bwrap_args(staged) + list(cmd)

    def _hand_over(self):
        """As root, the jail folder belongs to the jail's uid, which is the only one to write there."""
        hand_over(self.root, self.uid, self.gid)

    # --- running and describing -----------------------------------------------------------

    def start(self, cmd):
        """Start ``cmd`` in the jail, its stdin, stdout and stderr pipes to the caller (text): a `Popen`."""
        return subprocess.Popen(self.command(cmd), env=LAUNCH_ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True, cwd="/")

    def finish(self, proc, timeout, given=None):
        """Send ``given`` to a started ``proc``, then wait for its end; ``subprocess.CompletedProcess`` (raises
        TimeoutExpired once everything in the jail is killed)."""
        try:
            out, err = proc.communicate(given, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            proc.communicate()
            raise
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def kill(self, proc):
        """Everything ``proc`` started in the jail, killed."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        self.cgroups.kill_all()

    def run(self, cmd, timeout):
        """Run ``cmd`` in the jail to its end; ``subprocess.CompletedProcess`` (raises TimeoutExpired)."""
        return self.finish(self.start(cmd), timeout)

    def watches_memory(self):
        """Whether its memory is bounded by polling (`tree_memory`): wherever no control group counts it. On a
        GPU host RLIMIT_DATA would abort CUDA's and XLA's set-up; elsewhere it bounds the heap but not memory
        files (`memfd_create`), which held 1.2 GB under a 600 MiB limit."""
        return bool(self.limits.memory_bytes) and not self.cgroups.available

    def describe(self):
        """What the report records about the jail."""
        limits = self.cgroups.describe() or (
            "rlimits; memory watched each second (proportional set size)" if self.watches_memory() else "rlimits")
        return {"kind": "bwrap", "network": self.network, "limits": limits, "uid": self.uid,
                "memory_bytes": self.limits.memory_bytes, "max_processes": self.limits.max_processes,
                "disk_bytes": self.limits.disk_bytes, "syscall_filter": syscall_filter.summary()}

    def out_of_memory(self):
        return self.cgroups.out_of_memory()

    def hit_memory_limit(self):
        return self.cgroups.hit_memory_limit()

    def close(self):
        self.cgroups.kill_all()
        self.cgroups.remove()

    def memory_text(self):
        return _gib(self.limits.memory_bytes) if self.limits.memory_bytes else "the host's memory"


def jail_failure(stderr):
    """bubblewrap's or setpriv's own complaint (the jail did not start), or ''."""
    for line in (stderr or "").splitlines():
        if line.startswith(("bwrap: ", "setpriv: ", "prlimit: ", "mount: ", "unshare: ")):
            return line.strip()[:300]
    return ""


def lowered(name, wanted):
    """``wanted`` for the resource ``name``, never above the hard limit this process already has: the jail only
    ever lowers a limit (prlimit cannot raise one, and refused to start the jail under a host's lower FSIZE)."""
    hard = resource.getrlimit(getattr(resource, name))[1]
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


def _prlimit_value(value):
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


@functools.lru_cache(maxsize=1)
def jail_problem():
    """Why this host cannot start the jail, or '' when it can (checked once per process)."""
    import tempfile

    if not shutil.which("bwrap"):
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    if _as_root() and not shutil.which("setpriv"):
        return "setpriv (util-linux) is not installed, so a jail started as root could not drop root"
    no_filter = syscall_filter.problem()
    if no_filter:
        return no_filter
    with tempfile.TemporaryDirectory(prefix="autograder-probe-") as tmp:
        jail = Sandbox(Path(tmp) / "jail", Path(tmp) / "jail" / "work", limits=Limits(memory_bytes=None))
        try:
            done = jail.run([sys.executable, "-I", "-c", "import os; open('probe', 'w').write(str(os.getuid()))"],
                            timeout=60)
        except (OSError, subprocess.SubprocessError) as e:
            return f"bubblewrap could not start ({type(e).__name__})"
        finally:
            jail.close()
        if done.returncode != 0:
            reason = jail_failure(done.stderr) or (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            return f"bubblewrap cannot start a jail here ({reason[:200]})"
    return ""


def bwrap_works():
    """Whether `bwrap` is installed and can start a jail here."""
    return not jail_problem()


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager that starts the kernel inside ``self.sandbox`` over IPC sockets.

    The sockets and the connection file live in ``socket_dir``, in the jail
    folder. With ``sandbox`` None it behaves like AsyncKernelManager, with the
    same IPC transport, so sandboxed and plain runs differ only in the jail.
    """

    sandbox = None
    show_output = False  # the kernel process's own stdout/stderr (not cell output)
    extra_env = {}  # for a run without the jail: added to the inherited environment
    # What the kernel sends is bounded and checked before nbclient reads it (autograder/run/kernel_messages.py).
    client_class = DottedObjectName("autograder.run.kernel_messages.GuardedKernelClient")
    client_factory = Type("autograder.run.kernel_messages.GuardedKernelClient",
                          klass="jupyter_client.asynchronous.AsyncKernelClient", config=True)

    @default("session")
    def _session_default(self):
        from .kernel_messages import GuardedSession

        return GuardedSession(parent=self)

    @default("context")
    def _context_default(self):
        from .kernel_messages import MAX_MESSAGE_BYTES, bounded_context

        self._created_context = True  # its control socket gets the replies to interrupts and shutdowns
        return bounded_context(MAX_MESSAGE_BYTES)

    def __init__(self, **kwargs):
        import tempfile

        self._own_socket_dir = True
        self._socket_dir = tempfile.mkdtemp(prefix="autograder-kernel-")
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("connection_file", os.path.join(self._socket_dir, "kernel.json"))
        super().__init__(**kwargs)
        self.ip = os.path.join(self._socket_dir, "ipc")

    def use_socket_dir(self, folder):
        """Put the sockets and the connection file in ``folder`` (before the kernel starts)."""
        shutil.rmtree(self._socket_dir, ignore_errors=True)
        self._own_socket_dir = False
        self._socket_dir = str(folder)
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.connection_file = os.path.join(self._socket_dir, "kernel.json")
        self.ip = os.path.join(self._socket_dir, "ipc")

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        if not self.show_output:  # "Kernel is running over ...", absl lines: noise for the user
            kw["stdout"] = kw["stderr"] = subprocess.DEVNULL
        if self.sandbox is not None:
            kernel_cmd = self.sandbox.command(kernel_cmd)
            kw["env"] = dict(LAUNCH_ENV)  # the jail's own environment is set inside it
            kw.pop("cwd", None)  # bwrap --chdir sets it inside the jail
        else:
            kw["env"] = {**kw.get("env", os.environ), **self.extra_env}
            if shutil.which("prlimit"):  # not the grading process's own heap bound (`worker.bound_own_memory`)
                kernel_cmd = ["prlimit", f"--data={_prlimit_value(resource.getrlimit(resource.RLIMIT_DATA)[1])}:", "--",
                              *kernel_cmd]
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
        if not restart and self._own_socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources
