"""What `autograder hub` writes and refuses, without starting a hub: the students' and instructors'
configuration, the instructors' Dask over TLS, the refusals in one sentence.
(tests/test_hub.py starts a real one.)"""

import os

import pytest
from tiny_course import make_course

from autograder import UserError


@pytest.fixture
def hub(tmp_path):
    from autograder.grader.hub.course_hub import Hub

    return Hub(make_course(tmp_path / "course"), tmp_path / "hub")


def test_students_get_the_exchange_and_private_submit_and_not_the_instructors_tools(hub):
    import json

    from autograder.grader.hub.course_hub import student_environment, write_configs

    config_path, _ = write_configs(hub, authenticator="dummy")
    student = (hub.student_config / "nbgrader_config.py").read_text()
    assert f"c.Exchange.root = {str(hub.exchange)!r}" in student
    assert 'c.ExchangeFactory.submit = "autograder.nbgrader_exchange.private_submit.PrivateSubmit"' in student
    assert "c.CourseDirectory.course_id = 'deep-learning-worksheets'" in student
    assert "autograder.grader" not in student  # nothing the student kit lacks
    server = json.loads((hub.student_config / "jupyter_server_config.json").read_text())
    assert server["ServerApp"]["jpserver_extensions"] == {"nbgrader.server_extensions.formgrader": False,
                                                          "nbgrader.server_extensions.course_list": False,
                                                          # Validate speaks like `autograder check`
                                                          "nbgrader.server_extensions.validate_assignment": False,
                                                          "autograder.validate": True,
                                                          # the due dates in the Assignment List
                                                          "autograder.nbgrader_exchange.assignment_list": True}
    assert 'c.ValidateAssignment.validator_class = "autograder.validate.CheckValidator"' in student
    lab = json.loads((hub.student_config / "labconfig" / "page_config.json").read_text())
    assert set(lab["disabledExtensions"]) == {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                                              "@jupyter/nbgrader:course-list"}
    instructor = (hub.instructor_config / "nbgrader_config.py").read_text()
    assert 'c.ExchangeFactory.collect = "autograder.grader.hub.collect.SafeCollect"' in instructor
    env = student_environment(hub)
    assert env["PATH"].startswith(str(hub.student_env / "bin")) and env["AUTOGRADER_DATA_DIR"] == str(hub.datasets)
    hub_config = config_path.read_text()
    assert 'c.Spawner.env_keep = ["LANG", "LC_ALL", "TZ"]' in hub_config  # nothing else of the hub's environment
    assert oct(config_path.stat().st_mode & 0o777) == "0o600"


# A student's process: no key, a certificate of its own, or plain TCP.
ATTACK = """
import sys
from distributed import Client
from distributed.security import Security

address = sys.argv[1]
for name, target, security in (("own certificate", address, Security.temporary()),
                               ("plain tcp", address.replace("tls://", "tcp://"), None)):
    try:
        Client(target, security=security, timeout=5, set_as_default=False)
        print(name + ": let in")
    except (OSError, TimeoutError):
        print(name + ": refused")
"""
# The instructor's: grade-all's own cluster and client, then the student's attempts against it.
CLUSTER = """
import os, subprocess, sys
from autograder.grader.classroom.grade_all import dask_client

with dask_client(1, None, False) as client:
    address = client.scheduler.address
    print(address)
    print("own client:", client.submit(sum, [1, 2], pure=False).result())
    student = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    print(subprocess.run([sys.executable, "-c", sys.argv[1], address], env=student, capture_output=True,
                         text=True).stdout, end="")
"""


def test_the_instructors_dask_clusters_admit_only_holders_of_the_course_key(hub):
    """grade-all's local cluster listens on 127.0.0.1, where students can connect too."""
    import subprocess
    import sys

    from autograder.grader.hub.course_hub import dask_tls, dask_tls_environment

    key = dask_tls(hub)
    assert oct(key.stat().st_mode & 0o777) == "0o640"
    env = {**os.environ, **dask_tls_environment(key)}  # as in the instructors' servers
    result = subprocess.run([sys.executable, "-c", CLUSTER, ATTACK], env=env, capture_output=True, text=True,
                            timeout=300)
    lines = result.stdout.splitlines()
    assert lines[:1] and lines[0].startswith("tls://127.0.0.1:"), result.stdout + result.stderr
    assert lines[1:] == ["own client: 3", "own certificate: refused", "plain tcp: refused"], result.stderr


def test_the_dummy_authenticator_stays_on_localhost(hub):
    from autograder.grader.hub.course_hub import open_hub

    with pytest.raises(UserError, match="dummy authenticator lets anyone log in as anyone"):
        open_hub(hub.course, hub.folder, ip="0.0.0.0", authenticator="dummy")


def test_the_hub_needs_root(hub, monkeypatch):
    from autograder.grader.hub.course_hub import open_hub

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(UserError, match="must run as root: JupyterHub starts each user's server as that user"):
        open_hub(hub.course, hub.folder)


def test_the_gradebook_autograder_grade_caches_in_tmp_is_its_users_alone(hub):
    """It holds the hidden tests, and on the course's hub every student shares /tmp."""
    import stat

    from autograder.grader.course import prepared_gradebook

    cached = prepared_gradebook("tiny", solutions=hub.course / "solutions")
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600 and cached.stat().st_uid == os.getuid()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to make a folder as another user")
def test_a_kit_folder_someone_else_left_in_tmp_is_not_imported_by_graded_kernels():
    """On the hub /tmp is shared: a student could leave a kit of theirs where the grader's would go."""
    import pwd
    import shutil

    from autograder.run import kit

    planted = kit.package_for_kernel.__wrapped__()  # where the grader's kit goes
    shutil.rmtree(planted)
    (planted / "autograder").mkdir(parents=True)
    (planted / "autograder" / "__init__.py").write_text("raise SystemExit('a planted kit')\n")
    os.chown(planted, pwd.getpwnam("nobody").pw_uid, -1)
    try:
        used = kit.package_for_kernel.__wrapped__()
        assert used != planted and "planted" not in (used / "autograder" / "__init__.py").read_text()
    finally:
        shutil.rmtree(planted)


def test_a_course_id_that_is_not_a_folder_name_is_refused(hub):
    """Red team: the course id names the course's folder in the exchange, which root makes and hands to the
    course; "/etc" made root hand a system folder to the instructor."""
    with open(hub.course / "nbgrader_config.py", "a") as f:
        f.write('c.CourseDirectory.course_id = "/etc"\n')
    with pytest.raises(UserError, match=r"the course id '/etc' \(CourseDirectory.course_id\) must be letters, digits"):
        hub.course_id


PROFESSOR = "autograder-test-prof"


@pytest.mark.skipif(os.geteuid() != 0, reason="root reads a course folder another user owns")
def test_root_reads_the_courses_own_configuration_as_the_courses_owner():
    """Red team: `autograder hub` (root) ran the instructor's nbgrader_config.py as root."""
    import pwd
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from autograder.grader.hub.course_hub import Hub

    scratch = Path(tempfile.mkdtemp(prefix="autograder-hub-owner-"))  # pytest's own is closed to other users
    try:
        os.chmod(scratch, 0o777)
        marker = scratch / "ran-as"
        course = make_course(scratch / "course", config=f"import os\nopen({str(marker)!r}, 'w').write(str(os.getuid()))\n")
        # The course's owner, an instructor: on the hub's machine the checkout is open to the instructors' group.
        subprocess.run(["groupadd", "-f", "instructors"], check=True)
        if subprocess.run(["id", PROFESSOR], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "--no-create-home", "-G", "instructors", PROFESSOR], check=True)
        subprocess.run(["chown", "-R", PROFESSOR, str(course)], check=True)
        hub = Hub(course, scratch / "hub")
        assert hub.course_id == "deep-learning-worksheets"
        assert marker.read_text() == str(pwd.getpwnam(PROFESSOR).pw_uid)
    finally:
        shutil.rmtree(scratch)
