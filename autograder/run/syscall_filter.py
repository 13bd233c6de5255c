"""The jail's seccomp filter: the system calls a notebook never needs, refused.

Built with libseccomp (through ctypes: no compiler, no new package) in the
shape of Flatpak's ``setup_seccomp`` (common/flatpak-run.c): every system
call is allowed except a blocklist, which returns an error rather than
killing, so a notebook that tries one gets an exception it can print. Most
entries are what Docker's default profile refuses too. `program_path` exports
the filter once per process to a file only the grader can read; the jail's
launcher opens it as a descriptor and hands it to ``bwrap --seccomp``, which
loads it in the jail just before the jailed command starts (bubblewrap's PID
1 included).

What it refuses, and why:

- the kernel keyring (``add_key``, ``keyctl``, ``request_key``): keys are not
  confined by the jail's namespaces, so two jails with the same uid could
  pass answers through them (red team: "answers from A");
- ``io_uring``: the operations it performs are never seen by seccomp, and it
  has been a steady source of kernel exploits (Docker refuses it too);
- reaching into another process (``ptrace``, ``process_vm_readv``/``writev``);
- kernel interfaces that exploits are built on and a notebook never uses
  (``bpf``, ``perf_event_open``, ``userfaultfd``);
- namespaces (``unshare``, ``setns``, ``clone`` with a ``CLONE_NEW*`` flag;
  ``clone3``, whose flags seccomp cannot read, answers ENOSYS so that glibc
  falls back to ``clone``), mounts (old and new mount API) and ``chroot``;
- what needs a capability the jail never holds (modules, kexec, reboot, swap,
  accounting, quotas, the kernel log, port I/O, ``open_by_handle_at``): refused
  anyway, so that a bug in the kernel's checks stays out of reach;
- System V shared memory (``shmget``): a segment outlives every process and is
  charged to none, so where no control group counts the jail's memory nothing
  bounded it; Python's multiprocessing and PyTorch share memory through
  /dev/shm, the jail's own 256 MB;
- another personality than Linux's (disables ASLR, say; the query
  ``personality(0xffffffff)`` too, as in Flatpak: libseccomp compares an
  argument once per rule, and nothing a notebook runs asks), ``TIOCSTI`` and
  ``TIOCLINUX`` (typing into a terminal), and every socket family but Unix,
  IPv4, IPv6 and netlink (``AF_VSOCK`` would reach the virtual machine's host,
  which no network namespace covers).

A blocklist lets through a system call newer than this list (or than
libseccomp): Flatpak's trade, for a filter that never breaks what a notebook
runs; Docker's allowlist is the stricter other way.

Only the host's own architecture is filtered: a system call made through
another one (x86-64's ``int 0x80`` table for i386, or x32's) kills the
process, libseccomp's bad-architecture action. Flatpak adds i386 and filters
it too because it runs 32-bit games; nothing in a notebook is 32-bit, and
i386's ``socketcall`` cannot be filtered by family anyway.

Not refused, on purpose: NUMA and scheduling calls (``mbind``,
``get_mempolicy``, ``set_mempolicy``, ``sched_*``: TensorFlow, oneDNN and
CUDA use them), memory protection keys (``pkey_*``: they act on the caller's
own pages only), ``seccomp`` and ``landlock_*`` (they can only take more away).
"""

import atexit
import ctypes
import errno
import os
import platform
import shutil
import socket
import stat
import tempfile
import threading
from dataclasses import dataclass

LIBRARY = "libseccomp.so.2"
INSTALL = "apt-get install libseccomp2"
FOLDER_PREFIX = "autograder-seccomp-"  # then the process's id: a folder whose process is gone is removed

# libseccomp's actions, attributes and comparisons (seccomp.h)
ACT_ALLOW = 0x7FFF0000
ACT_KILL_PROCESS = 0x80000000
FLTATR_ACT_BADARCH = 2
FLTATR_CTL_OPTIMIZE = 8  # libseccomp 2.5: 2 = a binary tree of system calls, not a list
CMP_NE, CMP_EQ, CMP_GE, CMP_MASKED_EQ = 1, 4, 5, 7


def ACT_ERRNO(number):
    return 0x00050000 | (number & 0xFFFF)


CLONE_NEW = {"CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
             "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
             "CLONE_NEWNET": 0x40000000}  # CLONE_NEWTIME (0x80) is only unshare's and clone3's: both refused
# s390's clone takes the stack first and the flags second (CONFIG_CLONE_BACKWARDS2).
CLONE_FLAGS_ARG = 1 if platform.machine() in ("s390", "s390x") else 0
PER_LINUX = 0
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
# System calls since Linux 5.1 have one number on every architecture (but alpha): where libseccomp is older
# than the call, the rule is added by number, as Flatpak does (flatpak-syscalls-private.h).
UNIFIED_NUMBERS = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
                   "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "clone3": 435,
                   "mount_setattr": 442, "quotactl_fd": 443}
# The socket families a notebook and its kernel use: ZeroMQ's sockets to the grader (Unix), the jail's own
# loopback (IPv4, IPv6), and netlink, which glibc's getaddrinfo and getifaddrs ask about addresses.
SOCKET_FAMILIES = (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK)


@dataclass(frozen=True)
class Rule:
    """``name`` refused with ``error`` (where ``args`` hold: ``(arg, op, a, b)`` each, all together)."""

    name: str
    error: int
    why: str
    args: tuple = ()
    exact: bool = False  # seccomp_rule_add_exact: as written, or not at all


def _rules():
    E, N = errno.EPERM, errno.ENOSYS
    groups = [
        (E, "the kernel keyring: not confined by namespaces, so jails of one uid could share keys",
         ["add_key", "keyctl", "request_key"]),
        (N, "io_uring: seccomp never sees the operations it runs; a large attack surface (Docker refuses it)",
         ["io_uring_setup", "io_uring_enter", "io_uring_register"]),
        (E, "reading or steering another process", ["ptrace", "process_vm_readv", "process_vm_writev"]),
        (E, "kernel interfaces exploits are built on; a notebook never uses them",
         ["bpf", "perf_event_open", "userfaultfd"]),
        (E, "namespaces of its own", ["unshare", "setns"]),
        (N, "clone3: seccomp cannot read its flags; ENOSYS makes glibc fall back to clone", ["clone3"]),
        (E, "mounts", ["mount", "umount", "umount2", "pivot_root", "chroot"]),
        (N, "the new mount API (Flatpak: ENOSYS)",
         ["open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"]),
        (E, "the kernel and the machine: needs a capability the jail never holds",
         ["kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
          "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog", "ioperm", "iopl"]),
        (E, "files opened by handle, past the jail's bind mounts (the 'shocker' escape)",
         ["open_by_handle_at", "name_to_handle_at"]),
        (E, "obsolete", ["uselib", "lookup_dcookie", "vm86", "vm86old"]),
        (E, "System V shared memory: a segment outlives every process and is charged to none of them, so without "
            "a control group nothing bounded it (red team: 3 GiB under a 2 GiB limit); multiprocessing uses /dev/shm",
         ["shmget"]),
    ]
    rules = [Rule(name, error, why) for error, why, names in groups for name in names]
    rules += [Rule("clone", errno.EPERM, f"a new namespace ({flag})", ((CLONE_FLAGS_ARG, CMP_MASKED_EQ, bit, bit),))
              for flag, bit in CLONE_NEW.items()]
    rules.append(Rule("personality", errno.EPERM, "another personality than Linux's (no ASLR, say)",
                      ((0, CMP_NE, PER_LINUX, 0),)))
    # The kernel reads an ioctl's command as 32 bits: the upper half must not hide TIOCSTI (CVE-2019-10063).
    rules += [Rule("ioctl", errno.EPERM, why, ((1, CMP_MASKED_EQ, 0xFFFFFFFF, request),))
              for why, request in (("TIOCSTI: typing into the terminal", TIOCSTI),
                                   ("TIOCLINUX: a virtual console's copy and paste", TIOCLINUX))]
    # Every family outside the allowlist, as Flatpak does: each gap one by one, then all above the last.
    allowed, last = sorted(SOCKET_FAMILIES), -1
    for family in allowed:
        rules += [Rule("socket", errno.EAFNOSUPPORT, "socket family", ((0, CMP_EQ, gap, 0),), exact=True)
                  for gap in range(last + 1, family)]
        last = family
    rules.append(Rule("socket", errno.EAFNOSUPPORT, "socket family", ((0, CMP_GE, last + 1, 0),), exact=True))
    return tuple(rules)


RULES = _rules()


class FilterUnavailable(RuntimeError):
    """libseccomp is missing or could not build the filter: the jail must not start without it."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


_lock = threading.Lock()
_library = None
_exported = {}  # pid -> (folder, path, program): forked children export their own


def _load():
    """libseccomp, its functions typed (the ``_array`` forms of rule_add: ctypes passes no struct through ``...``)."""
    global _library
    if _library is not None:
        return _library
    try:
        lib = ctypes.CDLL(LIBRARY)
    except OSError as e:
        raise FilterUnavailable(f"libseccomp is not installed, so the jail could not filter system calls "
                                f"({INSTALL})") from e
    ctx, u32 = ctypes.c_void_p, ctypes.c_uint32
    lib.seccomp_version.restype = ctypes.POINTER(_Version)
    lib.seccomp_version.argtypes = []
    lib.seccomp_init.restype, lib.seccomp_init.argtypes = ctx, [u32]
    lib.seccomp_attr_set.restype, lib.seccomp_attr_set.argtypes = ctypes.c_int, [ctx, ctypes.c_int, u32]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    for name in ("seccomp_rule_add_array", "seccomp_rule_add_exact_array"):
        function = getattr(lib, name)
        function.restype = ctypes.c_int
        function.argtypes = [ctx, u32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_export_bpf.restype, lib.seccomp_export_bpf.argtypes = ctypes.c_int, [ctx, ctypes.c_int]
    lib.seccomp_release.restype, lib.seccomp_release.argtypes = None, [ctx]
    _library = lib
    return lib


def version():
    """libseccomp's version, 'major.minor.micro'."""
    found = _load().seccomp_version().contents
    return f"{found.major}.{found.minor}.{found.micro}"


def compile_filter():
    """The filter as a classic BPF program for the host's architecture (bytes, as ``bwrap --seccomp`` reads it)."""
    lib = _load()
    context = lib.seccomp_init(ACT_ALLOW)
    if not context:
        raise FilterUnavailable("libseccomp could not start a filter")
    try:
        _check(lib.seccomp_attr_set(context, FLTATR_ACT_BADARCH, ACT_KILL_PROCESS), "set the bad-arch action")
        lib.seccomp_attr_set(context, FLTATR_CTL_OPTIMIZE, 2)  # before 2.5 a plain list: as safe, only slower
        for rule in RULES:
            number = _number(lib, rule.name)
            if number is None:  # the host's architecture has no such call (vm86 on x86-64)
                continue
            args = (_ArgCmp * len(rule.args))(*[_ArgCmp(*cmp) for cmp in rule.args]) if rule.args else None
            add = lib.seccomp_rule_add_exact_array if rule.exact else lib.seccomp_rule_add_array
            _check(add(context, ACT_ERRNO(rule.error), number, len(rule.args), args), f"refuse {rule.name}")
        with tempfile.TemporaryFile() as out:
            _check(lib.seccomp_export_bpf(context, out.fileno()), "export the filter")
            out.seek(0)
            program = out.read()
    finally:
        lib.seccomp_release(context)
    if not program or len(program) % 8:  # struct sock_filter is 8 bytes
        raise FilterUnavailable("libseccomp exported no filter")
    return program


def _number(lib, name):
    """``name``'s number on the host's architecture, or None where it has no such call."""
    number = lib.seccomp_syscall_resolve_name(name.encode())
    if number == -1:  # __NR_SCMP_ERROR: a call newer than this libseccomp
        number = UNIFIED_NUMBERS.get(name, -1)
        if number == -1 or platform.machine() == "alpha":
            raise FilterUnavailable(f"libseccomp {version()} does not know the system call {name}, so the jail "
                                    f"could not refuse it (libseccomp 2.5 or later knows every one)")
    return number if number >= 0 else None  # a negative pseudo number: not a call of this architecture


def _check(result, what):
    if result < 0:
        raise FilterUnavailable(f"libseccomp could not {what} ({os.strerror(-result)})")


def program_path():
    """A file holding the filter in a folder of its own (mode 0700, so only this process's user can read it or
    put another file in its place), exported once per process: the jail's launcher opens it for bubblewrap.
    If something removed it (a cleaner of /tmp), it is written again in a new folder, never one of the same
    name that someone else could have made meanwhile."""
    with _lock:
        pid = os.getpid()
        folder, path, program = _exported.get(pid, (None, None, None))
        if program is None:
            program = compile_filter()
            _remove_stale()
            atexit.register(_remove, pid)
        if path is None or not os.path.isfile(path):
            folder = tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{pid}-")
            path = os.path.join(folder, "filter.bpf")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(program)
            _exported[pid] = (folder, path, program)
        return path


def _remove(pid):
    if os.getpid() == pid and pid in _exported:
        shutil.rmtree(_exported.pop(pid)[0], ignore_errors=True)


def _remove_stale():
    """This user's filter folders whose process ended without removing them (killed, or ``os._exit``)."""
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        pid = entry.name[len(FOLDER_PREFIX):].split("-", 1)[0] if entry.name.startswith(FOLDER_PREFIX) else ""
        if not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
            shutil.rmtree(entry.path, ignore_errors=True)


def problem():
    """Why the filter cannot be built here (one sentence), or ''."""
    try:
        program_path()
    except (FilterUnavailable, OSError) as e:
        return str(e)
    return ""


def summary():
    """What a report records about the filter."""
    try:
        lib = _load()
        names = {rule.name for rule in RULES if _number(lib, rule.name) is not None}
    except FilterUnavailable as e:
        return f"none: {e}"
    return (f"seccomp (libseccomp {version()}): {len(names)} system calls refused or restricted, sockets other "
            f"than unix, inet, inet6 and netlink refused, other architectures' calls kill the process")
