"""`autograder hub`: the course on a JupyterHub, with nbgrader's exchange between instructors and students.

JupyterHub runs as root on 127.0.0.1 (by default) and starts each user's
server as that Unix user (`LocalProcessSpawner`). Everything the hub needs
lives in the course's hub folder (``/srv/autograder`` by default):

| path | owner, mode | what |
|---|---|---|
| ``state/`` | root, 0700 | ``jupyterhub_config.py`` (written here on each start), the hub's database and cookie secret |
| ``exchange/`` | root, 1777 | nbgrader's ``Exchange.root``; ``exchange/<course_id>/`` belongs to the course: the course folder's owner and the instructors' group, with nbgrader's ``outbound/`` (0755), ``inbound/`` (2733: students write, cannot list) and ``feedback/`` (0711) |
| ``student/`` | root, 0755 | the students' Jupyter configuration: nbgrader's exchange for the course, `PrivateSubmit`, Formgrader and Create Assignment off |
| ``instructor/`` | root, 0755 | the instructors' nbgrader configuration: the course's own, plus the exchange and `SafeCollect` |
| ``student-env/`` | root, 0755 | the students' Python: the student kit's wheel and JupyterHub, built by ``scripts/hub-setup.sh`` |
| ``datasets/`` | root, read-only | the dataset cache the students' kernels read (``AUTOGRADER_DATA_DIR``) |

Instructors (members of the instructors' group) get this project's Python,
with Formgrader on the course folder; students (members of the students'
group) get the student environment in their home folder, with the
Assignment List and Validate. The hub refuses to start while a student could
read the course folder or the grader's package.
"""

import grp
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ... import UserError
from ...run import kit
from ...run.kit import SERVER_EXTENSIONS
from ..course import COURSE_VARIABLE, PROJECT_ROOT, course_settings, nbgrader_config
from ..hidden_tests.launch import SECRET_FILE
from .lab import (
    QUIET_LAB_SETTINGS,
    course_config_file,
    instructor_server_files,
    server_root,
)

DEFAULT_HUB_DIR = Path("/srv/autograder")
INSTRUCTORS_GROUP = "instructors"
STUDENTS_GROUP = "students"
SETUP_SCRIPT = PROJECT_ROOT / "scripts" / "hub-setup.sh"
DASK_TLS_FILE = ".dask-tls.pem"
MARKER = "# Written by `autograder hub` on each start: edit the course's nbgrader_config.py, or pass --config."
# What the students' Jupyter leaves out: the instructors' tools.
STUDENT_SERVER_EXTENSIONS_OFF = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")
STUDENT_LAB_PLUGINS_OFF = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                           "@jupyter/nbgrader:course-list")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# Terminals run bash as a plain interactive shell: a login shell's /etc/profile would reset PATH and
# lose `autograder` (the kit's Python for students, this project's for instructors).
TERMINAL = {"shell_command": ["/bin/bash"]}


# What `Hub._course` runs as the course's owner: the course's configuration and settings, as JSON.
READ_COURSE = """\
import json, sys
from autograder.grader.course import course_settings, nbgrader_config
root = sys.argv[1]
config = nbgrader_config(root, **course_settings(root))
print(json.dumps({"config": json.loads(json.dumps(config, default=str)), "settings": course_settings(root)}))
"""


@dataclass
class Hub:
    """The course's hub folder and who uses it."""

    course: Path
    folder: Path
    instructors_group: str = INSTRUCTORS_GROUP
    students_group: str = STUDENTS_GROUP

    def __post_init__(self):
        self.course = Path(self.course).resolve()
        self.folder = Path(self.folder).resolve()

    state = property(lambda self: self.folder / "state")
    exchange = property(lambda self: self.folder / "exchange")
    student_config = property(lambda self: self.folder / "student")
    instructor_config = property(lambda self: self.folder / "instructor")
    student_env = property(lambda self: self.folder / "student-env")
    datasets = property(lambda self: self.folder / "datasets")

    @property
    def course_id(self):
        course_id = str(self.config().CourseDirectory.course_id)
        # a folder name in the shared exchange, made by root: nothing else ("/etc", "..")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", course_id):
            raise UserError(f"the course id {course_id!r} (CourseDirectory.course_id) must be letters, digits, '_', "
                            "'-' and '.', starting with a letter or digit: it names the course's folder in the "
                            "exchange.")
        return course_id

    def config(self):
        """The course's configuration, as every command reads it (`course.nbgrader_config`)."""
        from traitlets.config import Config

        return Config(self._course()["config"])

    def settings(self):
        """The CourseDirectory settings the course's folder gets (`course.course_settings`)."""
        return dict(self._course()["settings"])

    def _course(self):
        """Read once. The course's own nbgrader_config.py is its owner's Python: as root (`autograder hub`), it
        runs in a process of that owner's, never as root (red team: a course_id of "/etc" made root hand a
        system folder to the instructor, and the file ran as root)."""
        if getattr(self, "_read", None) is None:
            owner = self.course.stat().st_uid
            if os.geteuid() != 0 or owner == 0:
                config = nbgrader_config(self.course, **course_settings(self.course))
                self._read = {"config": json.loads(json.dumps(config, default=str)),
                              "settings": course_settings(self.course)}
            else:
                done = as_user(pwd.getpwuid(owner).pw_name, [sys.executable, "-c", READ_COURSE, str(self.course)],
                               cwd="/", capture_output=True, text=True)
                if done.returncode != 0:
                    why = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
                    raise UserError(f"the course's configuration in {self.course} could not be read as its owner: "
                                    f"{why}")
                self._read = json.loads(done.stdout)
        return self._read

    @property
    def instructors(self):
        return members(self.instructors_group)

    @property
    def students(self):
        return members(self.students_group) - self.instructors

    @property
    def course_exchange(self):
        return self.exchange / self.course_id


def members(group):
    """The users in a Unix group, as a supplementary or as their primary group."""
    try:
        entry = grp.getgrnam(group)
    except KeyError:
        return set()
    return set(entry.gr_mem) | {p.pw_name for p in pwd.getpwall() if p.pw_gid == entry.gr_gid}


def as_user(user, command, env=None, cwd=None, **kwargs):
    """Run ``command`` as the Unix ``user`` (from root), in their home unless ``cwd``, with ``env`` only."""
    home = pwd.getpwnam(user).pw_dir
    environment = {"HOME": home, "USER": user, "LOGNAME": user, "PATH": SYSTEM_PATH, "LANG": "C.UTF-8"}
    environment.update(env or {})
    runuser = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin") or "runuser"
    return subprocess.run([runuser, "-u", user, "--", *map(str, command)], env=environment, cwd=cwd or home, **kwargs)


def readable_by(user, paths):
    """Those of ``paths`` that ``user`` could list, read or enter, asked of the system as that user."""
    script = 'for p in "$@"; do if [ -r "$p" ] || [ -x "$p" ]; then printf "%s\\n" "$p"; fi; done'
    result = as_user(user, ["sh", "-c", script, "sh", *paths], cwd="/", capture_output=True, text=True)
    return [line for line in result.stdout.splitlines() if line]


# --- the checks before starting -------------------------------------------------------------

def check_host(hub):
    """One sentence for the first thing that stops the hub from serving the course safely."""
    if os.geteuid() != 0:
        raise UserError("`autograder hub` must run as root: JupyterHub starts each user's server as that user "
                        "(sudo .venv/bin/autograder hub ...).")
    if not shutil.which("configurable-http-proxy"):
        raise UserError("JupyterHub's proxy is missing; install it with `npm install -g configurable-http-proxy`.")
    if not hub.course.is_dir():
        raise UserError(f"no course folder at {hub.course}.")
    for group in (hub.instructors_group, hub.students_group):
        if not members(group):
            raise UserError(f"no user in the Unix group {group!r}; create the course's users with "
                            f"`sudo bash {SETUP_SCRIPT} --course {hub.course} ...`.")
    singleuser = hub.student_env / "bin" / "jupyterhub-singleuser"
    if not singleuser.is_file() or not (hub.datasets / "mnist").is_dir():
        raise UserError(f"the students' environment is not in {hub.folder} (no {singleuser.name} or datasets); "
                        f"build it with `sudo bash {SETUP_SCRIPT} --course {hub.course} --hub-dir {hub.folder} ...`.")
    student, instructor = sorted(hub.students)[0], sorted(hub.instructors)[0]
    for user, python in ((student, singleuser.parent / "python"), (instructor, Path(sys.executable))):
        if as_user(user, [python, "-c", "import autograder"], cwd="/", capture_output=True).returncode != 0:
            raise UserError(f"{user} cannot run {python}; its interpreter must be open to all users (rebuild .venv "
                            f"on a system Python, then run {SETUP_SCRIPT} again).")
    source = Path(hub.course, hub.config().CourseDirectory.source_directory)
    exposed = readable_by(student, [hub.course, source, kit.GRADER])
    if exposed:
        raise UserError(f"the student {student!r} can open {exposed[0]}; make the course folder, its solutions and "
                        f"the grader's package private to the instructors with "
                        f"`sudo bash {SETUP_SCRIPT} --course {hub.course}`.")


# --- the exchange and the configuration files ------------------------------------------------

def make_exchange(hub):
    """``exchange/`` (1777) and the course's own folder in it, owned by the course, with nbgrader's modes.

    Made here, as root, before anyone logs in, so that no student can take
    the course's name in the shared exchange first. ``inbound/`` is nbgrader's
    2733 plus the sticky bit: every student writes in it, and without the bit
    one could rename or remove a classmate's submission folder.
    """
    owner = hub.course.stat().st_uid
    group = grp.getgrnam(hub.instructors_group).gr_gid
    hub.exchange.mkdir(parents=True, exist_ok=True)
    os.chown(hub.exchange, 0, 0)
    os.chmod(hub.exchange, 0o1777)  # nbgrader wants it writable by all; sticky: no one renames another's folder
    course = hub.course_exchange
    for path, mode in ((course, 0o2755), (course / "outbound", 0o2755), (course / "inbound", 0o3733),
                       (course / "feedback", 0o2711)):
        if path.is_symlink() or path.exists() and (not path.is_dir() or path.stat().st_uid not in (0, owner)):
            raise UserError(f"{path} was made by someone else ({path.lstat().st_uid}) before the hub; remove it, "
                            "then start the hub again.")
        path.mkdir(exist_ok=True)
        os.chown(path, owner, group)
        os.chmod(path, mode)
    return course


def student_nbgrader_config(hub):
    config = hub.config()
    execute = config.Execute.get("extra_arguments", [])
    limits = {key: config.CourseDirectory[key] for key in ("max_file_size", "max_dir_size")
              if key in config.CourseDirectory}
    lines = [
        f'"""nbgrader for the students of {hub.course_id}."""',
        MARKER,
        "c = get_config()  # noqa: F821",
        f"c.CourseDirectory.course_id = {hub.course_id!r}",
        f"c.Exchange.root = {str(hub.exchange)!r}",
        "# The copy in the exchange is readable by its owner and the instructors only.",
        'c.ExchangeFactory.submit = "autograder.nbgrader_exchange.private_submit.PrivateSubmit"',
        *(f"c.CourseDirectory.{key} = {value!r}" for key, value in limits.items()),
        "# As at grading: TensorFlow's C++ log stays out of the cells, so Validate agrees with `autograder check`.",
        f"c.Execute.extra_arguments = {list(execute)!r}",
        "# Validate runs `autograder check` with the course's settings the kit carries, and speaks like it.",
        'c.ValidateAssignment.validator_class = "autograder.validate.CheckValidator"',
    ]
    return "\n".join(lines) + "\n"


def instructor_nbgrader_config(hub, course_config):
    lines = [
        f'"""nbgrader for the instructors of {hub.course_id}: the course\'s configuration and the exchange."""',
        MARKER,
        "c = get_config()  # noqa: F821",
        f"load_subconfig({str(course_config)!r})  # noqa: F821",
        f"c.CourseDirectory.root = {str(hub.course)!r}",
        f"c.CourseDirectory.course_id = {hub.course_id!r}",
        f"c.Exchange.root = {str(hub.exchange)!r}",
        "# Only plain files and folders the student owns, timed by the exchange (autograder/grader/hub/collect.py).",
        'c.ExchangeFactory.collect = "autograder.grader.hub.collect.SafeCollect"',
        "# Release keeps inbound/ sticky: no student renames another's submission",
        "# (autograder/nbgrader_exchange/private_submit.py).",
        'c.ExchangeFactory.release_assignment = "autograder.nbgrader_exchange.private_submit.StickyInboundRelease"',
    ]
    return "\n".join(lines) + "\n"


HUB_CONFIG = '''\
"""JupyterHub for the course {course_id} in {course}."""
{marker}
import pwd

c = get_config()  # noqa: F821

c.JupyterHub.ip = {ip!r}
c.JupyterHub.port = {port!r}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.db_url = {db_url!r}
c.JupyterHub.cookie_secret_file = {cookie_secret!r}
c.ConfigurableHTTPProxy.pid_file = {proxy_pid!r}
c.ConfigurableHTTPProxy.command = [{proxy!r}]

c.JupyterHub.authenticator_class = {authenticator!r}
{authenticator_settings}
INSTRUCTORS = {instructors!r}
STUDENTS = {students!r}
c.Authenticator.allowed_users = INSTRUCTORS | STUDENTS

# Each server runs as its user; it inherits nothing of the hub's environment but these.
c.Spawner.env_keep = ["LANG", "LC_ALL", "TZ"]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
# The page that says the server is starting, at once: by default a log-in waits 10 s in silence first.
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}

INSTRUCTOR = dict(
    cmd=[{instructor_singleuser!r}],
    notebook_dir={server_root!r},
    environment={instructor_env!r},
)
STUDENT = dict(
    cmd=[{student_singleuser!r}],
    environment={student_env!r},
)


def pre_spawn_hook(spawner):
    """Instructors: the project's Python on the course folder. Students: the student kit in their home."""
    name = spawner.user.name
    settings = INSTRUCTOR if name in INSTRUCTORS else STUDENT
    spawner.cmd = settings["cmd"]
    spawner.notebook_dir = settings.get("notebook_dir") or pwd.getpwnam(name).pw_dir
    spawner.environment = dict(settings["environment"])


c.Spawner.pre_spawn_hook = pre_spawn_hook

# Grading started by an instructor runs with the course's limits: her server starts inside the control groups
# the hub delegates to the course (cgroup v2; '' with v1, where no move needs it).
c.JupyterHub.spawner_class = "autograder.grader.hub.spawner.CourseSpawner"
c.CourseSpawner.members = INSTRUCTORS
c.CourseSpawner.server_group = {server_group!r}
{extra}'''


def authenticator_settings(hub, authenticator):
    if authenticator == "shared-password":
        password_file = hub.state / "password"
        if not password_file.is_file():
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(12))
        password = password_file.read_text().strip()
        return f"c.SharedPasswordAuthenticator.user_password = {password!r}\n", password
    return "", None


def hand_back(hub, paths):
    """Files this root process made in the course folder go to the course's owner and the instructors."""
    owner = hub.course.stat().st_uid
    try:
        group = grp.getgrnam(hub.instructors_group).gr_gid
    except KeyError:  # no hub on this machine: the owner alone
        group = -1
    for path in paths:
        if path.is_file() and not path.is_symlink() and path.stat().st_uid == 0:
            os.chown(path, owner, group)


def dask_tls(hub):
    """The course's key and certificate for Dask, made once, readable by the instructors only.

    `grade-all`'s local cluster listens on 127.0.0.1, where every student of
    the machine can connect: a Dask scheduler runs whatever task it is sent,
    as the instructor. With this key in the instructors' environment every
    cluster they start speaks TLS and admits only holders of the key.
    """
    path = hub.course / DASK_TLS_FILE
    if not path.is_file():
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"autograder-{hub.course_id}")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                       .serial_number(x509.random_serial_number()).not_valid_before(now)
                       .not_valid_after(now + datetime.timedelta(days=3650)).sign(key, hashes.SHA256()))
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()) + certificate.public_bytes(serialization.Encoding.PEM)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    hand_back(hub, [path])
    return path


def dask_tls_environment(path):
    """Dask's settings, as environment variables, for clusters and clients that require ``path``'s TLS."""
    env = {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True", "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(path)}
    for role in ("SCHEDULER", "WORKER", "CLIENT"):
        env[f"DASK_DISTRIBUTED__COMM__TLS__{role}__CERT"] = env[f"DASK_DISTRIBUTED__COMM__TLS__{role}__KEY"] = str(path)
    return env


def grading_control_groups(hub):
    """The control-group subtree the course's grading runs in, delegated to its instructors; its path below
    each hierarchy's root, or '' where the host has no control groups to delegate.

    An instructor grades from her own terminal (`grade-all`) or from Formgrader, as herself: an ordinary
    user, who could make no control group, so her jails had rlimits only (600 processes from one cell, no
    CPU share). As root, the hub makes ``autograder-hub-<course>`` in each hierarchy (memory, pids, cpu;
    or the unified one) and gives it to the course's owner and instructors' group, as cgroup v2's
    delegation model does (the folder and its cgroup.procs, cgroup.subtree_control and cgroup.threads).
    The kit's jails then make their groups, with the course's limits, under it (`ControlGroups`, through
    AUTOGRADER_CGROUP). With cgroup v2 a process may only be moved between groups it can write the
    common ancestor of, so the instructors' servers start inside it (`spawner.CourseSpawner`)."""
    from ...run.jail import ControlGroups

    name = f"autograder-hub-{hub.course_id}"
    owner, group = hub.course.stat().st_uid, grp.getgrnam(hub.instructors_group).gr_gid
    unified = ControlGroups.ROOT / "cgroup.controllers"
    if unified.is_file():
        folders = [ControlGroups.ROOT / name]
        wanted = [c for c in ControlGroups.V2_CONTROLLERS if c in unified.read_text().split()]
        try:
            (ControlGroups.ROOT / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
        except OSError:
            return ""
    else:
        folders = [ControlGroups.ROOT / c / name for c in ControlGroups.V1_CONTROLLERS
                   if (ControlGroups.ROOT / c).is_dir()]
    try:
        for folder in folders:
            folder.mkdir(exist_ok=True)
            for path in [folder, *[folder / f for f in ("cgroup.procs", "cgroup.subtree_control", "cgroup.threads",
                                                        "tasks")]]:
                if path.exists():
                    os.chown(path, owner, group)
                    os.chmod(path, 0o775 if path == folder else 0o664)
        if unified.is_file():
            servers = folders[0] / "servers"
            servers.mkdir(exist_ok=True)
            os.chown(servers, owner, group)
            os.chmod(servers, 0o775)
            (folders[0] / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
    except OSError:
        return ""
    return name


def server_control_group(instructor_env):
    """The cgroup.procs the instructors' servers start in (cgroup v2, a subtree delegated), else ''."""
    from ...run.jail import ControlGroups

    delegated = instructor_env.get(ControlGroups.PARENT_VARIABLE)
    servers = ControlGroups.ROOT / str(delegated) / "servers" / "cgroup.procs"
    return str(servers) if delegated and (ControlGroups.ROOT / "cgroup.controllers").is_file() and servers.exists() \
        else ""


def instructor_environment(hub):
    """What an instructor's server and terminals run with: this project's Python, the course's nbgrader,
    Dask over TLS, and the control groups grading runs in."""
    from ...run.jail import ControlGroups

    env = {"PATH": f"{Path(sys.executable).parent}:{SYSTEM_PATH}", "JUPYTER_CONFIG_PATH": str(hub.instructor_config),
           "TF_CPP_MIN_LOG_LEVEL": "3", COURSE_VARIABLE: str(hub.course), **dask_tls_environment(dask_tls(hub))}
    groups = grading_control_groups(hub)
    if groups:
        env[ControlGroups.PARENT_VARIABLE] = groups
    if os.environ.get("AUTOGRADER_DATA_DIR"):
        env["AUTOGRADER_DATA_DIR"] = os.environ["AUTOGRADER_DATA_DIR"]
    return env


def student_environment(hub):
    """What a student's server, kernels and terminals run with: the student kit, the read-only data."""
    return {"PATH": f"{hub.student_env / 'bin'}:{SYSTEM_PATH}", "JUPYTER_CONFIG_PATH": str(hub.student_config),
            "AUTOGRADER_DATA_DIR": str(hub.datasets), "TF_CPP_MIN_LOG_LEVEL": "3"}


def write_configs(hub, ip="127.0.0.1", port=8000, authenticator="pam", extra_config=None):
    """The students', the instructors' and the hub's configuration; returns the hub's, and the shared password."""
    course_config = course_config_file(hub.course, hub.instructor_config, hub.settings())
    hand_back(hub, [course_config, hub.course / SECRET_FILE])
    for folder in (hub.student_config, hub.instructor_config, hub.student_config / "labconfig",
                   hub.instructor_config / "labconfig", hub.instructor_config / "jupyter_server_config.d"):
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o755)
    hub.state.mkdir(parents=True, exist_ok=True)
    os.chmod(hub.state, 0o700)

    files = {
        hub.student_config / "nbgrader_config.py": student_nbgrader_config(hub),
        hub.student_config / "jupyter_server_config.json": json.dumps(
            {"ServerApp": {"jpserver_extensions": {**{name: False for name in STUDENT_SERVER_EXTENSIONS_OFF},
                                                   **SERVER_EXTENSIONS},
                           "terminado_settings": TERMINAL}}, indent=1),
        hub.student_config / "labconfig" / "page_config.json": json.dumps(
            {"disabledExtensions": {name: True for name in STUDENT_LAB_PLUGINS_OFF}}, indent=1),
        **{hub.student_config / relative: text for relative, text in QUIET_LAB_SETTINGS.items()},
        hub.instructor_config / "nbgrader_config.py": instructor_nbgrader_config(hub, course_config),
        # JupyterHub's servers forbid all framing; Formgrader is a frame of the instructor's own Lab. The
        # policy of Formgrader's pages is added to this one per response (autograder/grader/hub/formgrader_csp.py),
        # and jupyter_server adds "sandbox allow-scripts" to it for what /files/ serves (feedback pages).
        **{hub.instructor_config / relative: text for relative, text in instructor_server_files(
            tornado_settings={"headers": {"Content-Security-Policy": "frame-ancestors 'self'"}},
            terminado_settings=TERMINAL).items()},
    }
    for path, text in files.items():
        path.write_text(text)
        os.chmod(path, 0o644)

    bin_dir = Path(sys.executable).parent
    instructor_env, student_env = instructor_environment(hub), student_environment(hub)
    settings, password = authenticator_settings(hub, authenticator)
    extra = f"load_subconfig({str(Path(extra_config).resolve())!r})  # noqa: F821\n" if extra_config else ""
    text = HUB_CONFIG.format(
        course_id=hub.course_id, course=hub.course, marker=MARKER, ip=ip, port=port,
        db_url=f"sqlite:///{hub.state / 'jupyterhub.sqlite'}", cookie_secret=str(hub.state / "jupyterhub_cookie_secret"),
        proxy_pid=str(hub.state / "jupyterhub-proxy.pid"), proxy=shutil.which("configurable-http-proxy"),
        authenticator=authenticator, authenticator_settings=settings,
        instructors=hub.instructors, students=hub.students,
        instructor_singleuser=str(bin_dir / "jupyterhub-singleuser"), server_root=str(server_root(hub.course)),
        instructor_env=instructor_env, student_singleuser=str(hub.student_env / "bin" / "jupyterhub-singleuser"),
        student_env=student_env, server_group=server_control_group(instructor_env), extra=extra)
    path = hub.state / "jupyterhub_config.py"
    path.write_text(text)
    os.chmod(path, 0o600)
    return path, password


def hub_command(config_path, extra=()):
    return [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(config_path), *extra]


def open_hub(root, hub_dir=DEFAULT_HUB_DIR, ip="127.0.0.1", port=8000, authenticator="pam", extra_config=None,
             instructors_group=INSTRUCTORS_GROUP, students_group=STUDENTS_GROUP, extra=()):
    """Check the host, write the configuration, then replace this process with JupyterHub."""
    hub = Hub(root, hub_dir, instructors_group, students_group)
    if authenticator == "dummy" and ip not in ("127.0.0.1", "localhost"):
        raise UserError("the dummy authenticator lets anyone log in as anyone: use it on 127.0.0.1 only, or choose "
                        "pam or shared-password.")
    check_host(hub)
    make_exchange(hub)
    config_path, password = write_configs(hub, ip, port, authenticator, extra_config)
    if not grading_control_groups(hub):
        print("autograder: this host has no control groups to delegate to the course, so grading that the "
              "instructors start has rlimits only (no process limit, no fair CPU share); see the README.",
              file=sys.stderr, flush=True)
    login = f" (password {password})" if password else ""
    print(f"autograder: JupyterHub for {hub.course_id} at http://{ip}:{port}/; log in as "
          f"{', '.join(sorted(hub.instructors))} (instructors) or {', '.join(sorted(hub.students))} "
          f"(students){login}. Exchange: {hub.course_exchange}.", flush=True)
    os.chdir(hub.state)
    os.execv(hub_command(config_path)[0], hub_command(config_path, extra))
