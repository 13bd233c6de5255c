"""nbgrader's exchange as the course's hub configures it: `SafeCollect` and `StickyInboundRelease` (the
instructor's side) and `PrivateSubmit` (the students'), each on a real exchange folder in a temporary directory.

Submissions are made by the user running the tests, so they run without
root; classmates beside the test's user are folders of that user too, with
the owner check off. The tests that need a second Unix user (a folder in
someone else's name, a student renaming another's folder) use `nobody` and
`autograder-test-cy` and skip without root. Where a student's timing
matters (a folder removed, a file rewritten, while the instructor
collects), the test acts between nbgrader's listing of the submissions and
their copy. tests/test_hub.py runs the same steps in the browser with real
users.
"""

import datetime
import errno
import getpass
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from tiny_course import make_course, student_version, tiny_solution

ME = getpass.getuser()
COURSE_ID = "deep-learning-worksheets"  # the project's, which make_course's configuration keeps
LIMIT_KB = 1000  # the course's largest file: 1 MB


@pytest.fixture
def course(tmp_path):
    root = make_course(tmp_path / "course", config=(
        f'c.CourseDirectory.max_file_size = {LIMIT_KB}\n'
        f'c.Exchange.root = "{tmp_path / "exchange"}"\n'
        'c.ExchangeFactory.collect = "autograder.grader.hub.collect.SafeCollect"\n'
        'c.ExchangeFactory.submit = "autograder.nbgrader_exchange.private_submit.PrivateSubmit"\n'
        'c.ExchangeFactory.release_assignment = "autograder.nbgrader_exchange.private_submit.StickyInboundRelease"\n'))
    for folder in ("inbound", "outbound", "feedback"):
        (tmp_path / "exchange" / COURSE_ID / folder).mkdir(parents=True)
    return root


def inbound(course):
    return course.parent / "exchange" / COURSE_ID / "inbound"


def hand_in(course, student=ME, stamp="2030-01-01 10:00:00.000000 UTC", name=None):
    """A submission folder in the exchange as a student's own process could leave it."""
    folder = inbound(course) / (name or f"{student}+tiny+{stamp}+r4nd0m")
    folder.mkdir()
    nbformat.write(student_version(tiny_solution()), folder / "tiny.ipynb")
    (folder / "timestamp.txt").write_text(stamp)
    (folder / "submission_secret.txt").write_text("s" * 128)
    return folder


def collect(course):
    from autograder.grader.course import nbgrader_api

    result = nbgrader_api(course).collect("tiny")
    assert result["success"], result
    assert "Traceback" not in result["log"], result["log"]
    return result["log"], course / "submitted"


def report(course):
    return (course / "collect.log").read_text()


def refusals(course, folder):
    """{path in the submission: reason} of each entry of ``folder`` refused, from collect.log."""
    prefix = f"refused '{folder.name}/"
    return {line.split(prefix, 1)[1].split("': ", 1)[0]: line.split("': ", 1)[1]
            for line in report(course).splitlines() if prefix in line}


CLASSMATES = ("ada", "ben")


def with_classmates(course, names=CLASSMATES):
    """Honest classmates' submissions. Their folders are the test user's too, so the owner check is off
    (tests/test_hub.py collects real users'); the owner of every entry is still checked."""
    config = course / "nbgrader_config.py"
    if "check_owner" not in config.read_text():
        with open(config, "a") as f:
            f.write("c.ExchangeCollect.check_owner = False\n")
    return [hand_in(course, student=name) for name in names]


def assert_collected(submitted, student, answer="42"):
    mine = submitted / student / "tiny"
    assert f"answer = {answer}" in (mine / "tiny.ipynb").read_text(), student
    assert (mine / "timestamp.txt").is_file() and (mine / "submission_secret.txt").is_file(), student


def between_listing_and_copy(monkeypatch, action):
    """Run ``action`` after nbgrader has listed and timed the submissions, before it copies them:
    what a student racing the instructor's Collect can do."""
    from autograder.grader.hub.collect import SafeCollect

    listed = SafeCollect.init_src

    def init_src(self):
        listed(self)
        action()

    monkeypatch.setattr(SafeCollect, "init_src", init_src)


def fd_path(fd):
    return os.readlink(f"/proc/self/fd/{fd}")


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def ctime(path):
    return datetime.datetime.fromtimestamp(os.stat(path).st_ctime, datetime.timezone.utc).replace(tzinfo=None)


def test_only_files_and_folders_the_student_owns_are_collected(course):
    from autograder.grader.hidden_tests.launch import course_secret

    folder = hand_in(course)
    course_secret(course)  # made when the course first grades; here before
    secret = course / ".autograder-secret"
    (folder / "key.txt").symlink_to(secret)
    (folder / "solutions").symlink_to(course / "solutions")
    os.mkfifo(folder / "pipe")
    with open(folder / "huge.bin", "wb") as f:
        f.truncate(LIMIT_KB * 1000 + 1)  # one byte over, sparse
    (folder / "fits.bin").write_bytes(b"x" * LIMIT_KB * 1000)  # exactly the limit: kept
    (folder / "line\nbreak.txt").write_text("x")
    (folder / "\u202egnp.py").write_text("x")
    (folder / "data" / "deeper").mkdir(parents=True)
    (folder / "data" / "notes.txt").write_text("kept")
    (folder / "data" / "deeper" / "root").symlink_to("/")
    (folder / "data" / ".ipynb_checkpoints").mkdir()  # nbgrader's ignore list: skipped quietly

    log, submitted = collect(course)
    mine = submitted / ME / "tiny"
    assert sorted(str(p.relative_to(mine)) for p in mine.rglob("*")) == [
        "data", "data/deeper", "data/notes.txt", "fits.bin", "submission_secret.txt", "timestamp.txt", "tiny.ipynb"]
    assert secret.read_text() not in "".join(p.read_text(errors="replace") for p in mine.rglob("*") if p.is_file())
    refusals = {line.split("/", 1)[1].split("': ")[0]: line.split("': ", 1)[1]
                for line in report(course).splitlines() if "refused" in line}
    assert refusals == {
        "key.txt": f"it is a link to {str(secret)!r}; only files and folders are collected",
        "solutions": f"it is a link to {str(course / 'solutions')!r}; only files and folders are collected",
        "pipe": "it is a named pipe; only files and folders are collected",
        "huge.bin": f"it is {LIMIT_KB * 1000 + 1:,} bytes, over the course's limit of {LIMIT_KB * 1000:,} "
                    "(CourseDirectory.max_file_size)",
        "line\nbreak.txt".replace("\n", "\\n"): "its name holds control or invisible characters",
        "\u202egnp.py".encode("unicode_escape").decode(): "its name holds control or invisible characters",
        "data/deeper/root": "it is a link to '/'; only files and folders are collected",
    }
    assert "refused" in log  # also in nbgrader's log, which Formgrader shows after Collect


def test_the_exchange_time_counts_not_the_one_the_student_wrote(course):
    folder = hand_in(course, stamp="2000-01-01 00:00:00.000000 UTC")
    before = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    collect(course)
    from nbgrader.utils import parse_utc

    collected = parse_utc((course / "submitted" / ME / "tiny" / "timestamp.txt").read_text())
    assert abs((collected - before).total_seconds()) < 60, collected  # when the folder was made: now
    assert (folder / "timestamp.txt").read_text().startswith("2000")  # the exchange's copy is left as it was
    assert "its own timestamp says 2000-01-01 00:00:00" in report(course)


def test_the_latest_submission_is_the_latest_by_the_exchanges_time(course):
    """A resubmission made later but named earlier is still the one collected."""
    hand_in(course, stamp="2030-01-01 10:00:00.000000 UTC", name=f"{ME}+tiny+2030-01-01 10:00:00.000000 UTC+first")
    first = inbound(course) / f"{ME}+tiny+2030-01-01 10:00:00.000000 UTC+first"
    os.utime(first, (0, 0))
    later = hand_in(course, stamp="2000-01-01 00:00:00.000000 UTC")
    nbformat.write(student_version(tiny_solution(), answer="7"), later / "tiny.ipynb")
    collect(course)
    assert "answer = 7" in (course / "submitted" / ME / "tiny" / "tiny.ipynb").read_text()


def test_a_name_that_is_not_nbgraders_is_refused_alone(course):
    hand_in(course)
    (inbound(course) / f"{ME}+tiny+not a time+x").mkdir()
    (inbound(course) / f"{ME}+tiny").mkdir()
    collect(course)  # nbgrader's own collect fails for everyone on such a name
    assert (course / "submitted" / ME / "tiny" / "tiny.ipynb").is_file()
    assert report(course).count("its name is not nbgrader's") == 1  # the second does not match tiny's pattern


def test_a_submission_without_its_secret_gets_one_so_feedback_can_be_released(course):
    folder = hand_in(course)
    (folder / "submission_secret.txt").unlink()
    collect(course)
    secret = course / "submitted" / ME / "tiny" / "submission_secret.txt"
    assert len(secret.read_text()) == 128
    assert "it had no submission_secret.txt" in report(course)


def test_a_submission_that_is_a_link_is_refused(course):
    target = course.parent / "elsewhere"
    target.mkdir()
    nbformat.write(student_version(tiny_solution()), target / "tiny.ipynb")
    (inbound(course) / f"{ME}+tiny+2030-01-01 10:00:00.000000 UTC+link").symlink_to(target)
    collect(course)
    assert not (course / "submitted" / ME).exists()
    assert "it is a link, not a folder" in report(course)


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to own files as another user")


@root_only
def test_a_submission_in_another_students_name_is_refused_and_hides_nothing(course):
    """cy leaves a folder named after ada, dated later than hers: ada's own is collected."""
    hand_in(course, stamp="2030-01-01 10:00:00.000000 UTC")
    impostor = hand_in(course, stamp="2099-01-01 00:00:00.000000 UTC")
    nbformat.write(student_version(tiny_solution(), answer="-1"), impostor / "tiny.ipynb")
    nobody = pwd.getpwnam("nobody").pw_uid
    for path in (impostor, *impostor.iterdir()):
        os.chown(path, nobody, -1, follow_symlinks=False)
    collect(course)
    assert "answer = 42" in (course / "submitted" / ME / "tiny" / "tiny.ipynb").read_text()
    assert f"it names {ME!r} but belongs to 'nobody'" in report(course)


@root_only
def test_a_file_owned_by_someone_else_is_refused(course):
    """A hard link to a file the student does not own keeps its owner: it is not collected."""
    folder = hand_in(course)
    other = folder / "borrowed.txt"
    other.write_text("someone else's")
    os.chown(other, pwd.getpwnam("nobody").pw_uid, -1)
    collect(course)
    assert not (course / "submitted" / ME / "tiny" / "borrowed.txt").exists()
    assert "it belongs to 'nobody', not to the submission's owner" in report(course)


def test_private_submit_leaves_the_copy_to_its_owner_and_the_course(course, tmp_path, monkeypatch):
    """nbgrader's own submit leaves the submission's folder 0777 in the exchange."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from autograder.grader.course import nbgrader_config

    release(course)

    home = tmp_path / "home"
    (home / "tiny").mkdir(parents=True)
    nbformat.write(student_version(tiny_solution()), home / "tiny" / "tiny.ipynb")
    monkeypatch.chdir(home)
    config = nbgrader_config(course)
    config.Exchange.assignment_dir = str(home)
    config.Exchange.cache = str(tmp_path / "cache")
    config.CourseDirectory.course_id = COURSE_ID
    config.CourseDirectory.root = str(home)
    student = NbGraderAPI(CourseDirectory(config=config), config=config)
    result = student.exchange.Submit(coursedir=student.coursedir, authenticator=student.authenticator,
                                     config=config)
    result.coursedir.assignment_id = "tiny"
    result.start()
    [copy] = inbound(course).iterdir()
    modes = {str(p.relative_to(copy)): stat.S_IMODE(p.stat().st_mode) for p in [copy, *copy.rglob("*")]}
    assert modes == {".": 0o770, "tiny.ipynb": 0o644, "timestamp.txt": 0o644, "submission_secret.txt": 0o644}
    assert copy.stat().st_gid == inbound(course).stat().st_gid  # the exchange's group: the instructors


def release(course):
    """generate_assignment and release_assignment, as the instructor does in Formgrader."""
    from autograder.grader.course import nbgrader_api, run_nbgrader

    api = nbgrader_api(course)
    run_nbgrader(api.generate_assignment("tiny", force=True), "generate_assignment")
    run_nbgrader(api.release_assignment("tiny"), "release_assignment")


# --- one student's files never stop the collection of the class ---------------------------

ODD_KINDS = {
    "folder": (lambda path: path.mkdir(), "it is a folder"),
    "link": (lambda path: path.symlink_to("tiny.ipynb"), "it is a link to 'tiny.ipynb'"),
    "pipe": (os.mkfifo, "it is a named pipe"),
}


@pytest.mark.parametrize("kind", ODD_KINDS)
@pytest.mark.parametrize("name", ["submission_secret.txt", "timestamp.txt"])
def test_an_odd_exchange_file_is_refused_alone_and_the_class_is_collected(course, name, kind):
    """A submission_secret.txt folder stopped nbgrader's loop with IsADirectoryError: no one after her was
    collected, and Formgrader's Collect showed a traceback."""
    make, what = ODD_KINDS[kind]
    with_classmates(course)
    folder = hand_in(course)
    (folder / name).unlink()
    make(folder / name)
    log, submitted = collect(course)
    for student in (*CLASSMATES, ME):
        assert_collected(submitted, student)
    reason = f"{what}, not the file nbgrader's submit writes"
    assert refusals(course, folder) == {name: reason}
    assert reason in log
    secret = (submitted / ME / "tiny" / "submission_secret.txt").read_text()
    assert (secret != "s" * 128) == (name == "submission_secret.txt")  # hers is a new one, or the one she sent


@pytest.mark.parametrize("where", ["sub-folder", "submission"])
def test_a_folder_that_cannot_be_listed_is_refused_alone(course, monkeypatch, where):
    """As root every folder opens, so its listing fails here as an unreadable folder's does."""
    with_classmates(course, ["ada"])
    folder = hand_in(course)
    (folder / "locked").mkdir()
    (folder / "locked" / "notes.txt").write_text("x")
    locked = os.path.realpath(folder / "locked" if where == "sub-folder" else folder)
    hand_in(course, student="zed")  # after her, whatever the order
    listdir = os.listdir

    def failing_listdir(path="."):
        if (fd_path(path) if isinstance(path, int) else os.path.realpath(path)) == locked:
            raise PermissionError(errno.EACCES, "Permission denied")
        return listdir(path)

    monkeypatch.setattr(os, "listdir", failing_listdir)
    log, submitted = collect(course)
    for student in ("ada", "zed"):
        assert_collected(submitted, student)
    if where == "sub-folder":
        assert_collected(submitted, ME)
        assert not (submitted / ME / "tiny" / "locked").exists()
        assert refusals(course, folder) == {"locked": "its contents cannot be listed (Permission denied)"}
    else:
        assert not (submitted / ME).exists()
        assert (f"refused '{folder.name}': the whole submission was refused: its contents cannot be listed "
                "(Permission denied)") in report(course)


def test_a_copy_that_fails_half_way_is_refused_whole_and_keeps_the_earlier_one(course, monkeypatch):
    """nbgrader removes the collected submission before copying the newer one, then stops at the error."""
    with_classmates(course)
    hand_in(course, name=f"{ME}+tiny+2030-01-01 10:00:00.000000 UTC+first")
    collect(course)
    later = hand_in(course, stamp="2030-01-02 10:00:00.000000 UTC")
    nbformat.write(student_version(tiny_solution(), answer="7"), later / "tiny.ipynb")
    (later / "zz-data.bin").write_bytes(b"x" * 10)  # copied after the notebook
    hand_in(course, student="cy")  # a classmate not collected yet
    read = os.read

    def failing_read(fd, size):
        if fd_path(fd).endswith("/zz-data.bin"):
            raise OSError(errno.EIO, "Input/output error")
        return read(fd, size)

    monkeypatch.setattr(os, "read", failing_read)
    log, submitted = collect(course)
    assert_collected(submitted, ME)  # the earlier one, whole
    assert not (submitted / ME / "tiny" / "zz-data.bin").exists()
    assert [p.name for p in (submitted / ME).iterdir()] == ["tiny"]  # nothing of the failed copy left
    for student in (*CLASSMATES, "cy"):
        assert_collected(submitted, student)
    reason = (f"'{later.name}': the whole submission was refused: copying it failed (OSError: Input/output error)")
    assert f"refused {reason}" in report(course) and f"[WARNING]     {reason}" in log


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_a_submission_removed_or_replaced_while_collected_is_refused_and_keeps_the_earlier_one(
        course, monkeypatch, how):
    hand_in(course, name=f"{ME}+tiny+2030-01-01 10:00:00.000000 UTC+first")
    collect(course)
    later = hand_in(course, stamp="2030-01-02 10:00:00.000000 UTC")
    nbformat.write(student_version(tiny_solution(), answer="7"), later / "tiny.ipynb")
    [honest] = with_classmates(course, ["ada"])

    def act():
        if how == "removed":
            shutil.rmtree(later)
        else:  # another folder under the timed one's name: its contents were never timed
            later.rename(later.with_name("elsewhere"))
            later.mkdir()
            nbformat.write(student_version(tiny_solution(), answer="-1"), later / "tiny.ipynb")

    between_listing_and_copy(monkeypatch, act)
    log, submitted = collect(course)
    assert_collected(submitted, ME)
    assert [p.name for p in (submitted / ME).iterdir()] == ["tiny"]
    assert_collected(submitted, "ada")
    why = {"removed": "it cannot be opened any more (No such file or directory)",
           "replaced": "it was replaced while it was being collected"}[how]
    assert f"refused '{later.name}': the whole submission was refused: {why}" in report(course)


# --- what is copied is what is timed --------------------------------------------------------

def test_a_late_change_behind_a_thousand_ignored_files_is_late(course):
    """On time: the notebook, a helper module in a sub-folder, and 1,001 empty *.pyc (nbgrader's ignore
    list skips them); after the due date she rewrites the module. The scan for the latest change stopped
    after 1,000 names, before the sub-folder, and the late rewrite went unpenalised."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins import LateSubmissionPlugin
    from nbgrader.utils import parse_utc

    folder = hand_in(course)
    for i in range(1001):
        (folder / f"cache{i:04}.pyc").write_bytes(b"")
    (folder / "helper").mkdir()
    module = folder / "helper" / "helper.py"
    module.write_text("ANSWER = 42\n")
    time.sleep(1.1)
    due = utc_now()
    db = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db, COURSE_ID) as gb:
        gb.update_or_create_assignment("tiny", duedate=due)
    time.sleep(1.1)
    module.write_text("ANSWER = 7\n")  # in place: only the module's ctime moves, not its folder's
    rewritten = ctime(module)
    assert rewritten > due

    log, submitted = collect(course)
    mine = submitted / ME / "tiny"
    assert (mine / "helper" / "helper.py").read_text() == "ANSWER = 7\n"
    assert not list(mine.glob("*.pyc"))
    collected = parse_utc((mine / "timestamp.txt").read_text())
    assert collected >= rewritten, (collected, rewritten)
    with Gradebook(db, COURSE_ID) as gb:  # what autograde records from timestamp.txt
        gb.update_or_create_student(ME)
        late = gb.update_or_create_submission("tiny", ME, timestamp=collected).total_seconds_late
    assert late > 1
    assert LateSubmissionPlugin(penalty_method="zero").late_submission_penalty(ME, 3, late) == 3


def test_entries_past_the_limit_are_refused_and_do_not_count(course):
    """Only what is collected times the submission: a late change to a refused file makes nothing late."""
    from nbgrader.utils import parse_utc

    with open(course / "nbgrader_config.py", "a") as f:
        f.write("c.SafeCollect.max_files = 3\n")
    folder = hand_in(course)  # submission_secret.txt and tiny.ipynb, and timestamp.txt, not collected
    for name in ("zz1.txt", "zz2.txt", "zz3.txt"):
        (folder / name).write_text("on time")
    time.sleep(1.1)
    (folder / "zz3.txt").write_text("late")
    collect(course)
    mine = course / "submitted" / ME / "tiny"
    assert sorted(p.name for p in mine.iterdir()) == ["submission_secret.txt", "timestamp.txt", "tiny.ipynb",
                                                      "zz1.txt"]
    assert parse_utc((mine / "timestamp.txt").read_text()) < ctime(folder / "zz3.txt")
    assert refusals(course, folder) == {
        "zz2.txt": "it and the 1 after it are past the course's limit of 3 files and folders in a submission"}


def test_a_file_changed_after_the_collection_timed_it_is_not_collected(course, monkeypatch):
    """Rewritten while the instructor collects, after the submission's time was taken: its new contents would
    be later than that time."""
    folder = hand_in(course)
    (folder / "helper").mkdir()
    (folder / "helper" / "helper.py").write_text("ANSWER = 42\n")
    between_listing_and_copy(monkeypatch, lambda: (folder / "helper" / "helper.py").write_text("ANSWER = 7\n"))
    collect(course)
    mine = course / "submitted" / ME / "tiny"
    assert (mine / "tiny.ipynb").is_file() and (mine / "helper").is_dir()
    assert not (mine / "helper" / "helper.py").exists()
    assert refusals(course, folder) == {
        "helper/helper.py": "it changed after the collection had timed the submission"}


# --- inbound/ is sticky: no student renames another's submission -----------------------------

@pytest.mark.parametrize("inbound_before", [True, False], ids=["inbound made before", "inbound made by release"])
def test_release_leaves_inbound_sticky(course, inbound_before):
    if not inbound_before:
        inbound(course).rmdir()
    release(course)
    mode = stat.S_IMODE(inbound(course).stat().st_mode)
    assert mode & stat.S_ISVTX
    if not inbound_before:
        assert mode == 0o3733  # nbgrader's S_ISGID|0733, and sticky


def test_the_hubs_instructors_release_with_the_sticky_release():
    from autograder.grader.hub.course_hub import instructor_nbgrader_config

    hub = SimpleNamespace(course_id=COURSE_ID, course=Path("/srv/course"), exchange=Path("/srv/hub/exchange"))
    config = instructor_nbgrader_config(hub, "/srv/course/nbgrader_config.py")
    assert 'c.ExchangeFactory.release_assignment = "autograder.nbgrader_exchange.private_submit.StickyInboundRelease"' in config


def ensure_user(name):
    if subprocess.run(["id", name], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--no-create-home", name], check=True)
    return name


@root_only
def test_in_the_hubs_inbound_no_student_renames_or_removes_anothers_submission():
    """Without the sticky bit, cy, knowing ada's folder name, renames it away, or away and back to make it
    look late."""
    from autograder.grader.hub.course_hub import make_exchange

    cy = ensure_user("autograder-test-cy")
    top = Path(tempfile.mkdtemp(prefix="autograder-inbound-test-"))  # pytest's own is closed to other users
    try:
        os.chmod(top, 0o755)
        (top / "course").mkdir()
        hub = SimpleNamespace(course=top / "course", instructors_group="root", exchange=top / "exchange",
                              course_exchange=top / "exchange" / COURSE_ID)
        box = make_exchange(hub) / "inbound"
        assert stat.S_IMODE(box.stat().st_mode) == 0o3733
        nobody = pwd.getpwnam("nobody").pw_uid
        adas = [box / f"ada+tiny+2030-01-01 10:00:00.000000 UTC+{tail}" for tail in ("full", "empty")]
        for folder in adas:
            folder.mkdir()
        (adas[0] / "tiny.ipynb").write_text("{}")
        for path in (*adas, adas[0] / "tiny.ipynb"):
            os.chown(path, nobody, -1)
        os.chmod(adas[0], 0o770)  # as PrivateSubmit leaves it
        attacks = [["mv", adas[0], f"{adas[0]}-renamed"], ["mv", adas[1], top / "away"], ["rmdir", adas[1]]]
        for attack in attacks:
            done = subprocess.run(["runuser", "-u", cy, "--", *map(str, attack)], capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode != 0 and "Operation not permitted" in done.stderr, (attack, done)
        assert all(folder.is_dir() for folder in adas)
        own = box / f"{cy}+tiny+2030-01-01 11:00:00.000000 UTC+x"  # her own submission still goes in
        subprocess.run(["runuser", "-u", cy, "--", "mkdir", str(own)], check=True, timeout=60)
        assert own.stat().st_uid == pwd.getpwnam(cy).pw_uid
    finally:
        shutil.rmtree(top)


def test_collect_tells_the_instructor_one_line_each_grouped_by_student(course):
    """Issue 22: Formgrader's Collect dialog shows nbgrader's log: the refusals came one by one among the
    other lines, with the whole inbound folder name, and a traceback where one was logged for debugging."""
    ada, ben = with_classmates(course)
    os.symlink("/etc/passwd", ada / "passwd")
    (ada / "huge.bin").write_bytes(b"x" * 2_000_000)
    os.mkfifo(ben / "pipe")
    log, _ = collect(course)
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("[WARNING] ada (tiny): 2 things to know"))
    assert sorted(lines[start + 1:start + 3]) == [
        "[WARNING]     'huge.bin' refused: it is 2,000,000 bytes, over the course's limit of 1,000,000 "
        "(CourseDirectory.max_file_size)",
        "[WARNING]     'passwd' refused: it is a link to '/etc/passwd'; only files and folders are collected"], lines
    assert lines[start + 3].startswith("[WARNING] ben (tiny): 1 thing to know")
    assert lines[start + 4] == "[WARNING]     'pipe' refused: it is a named pipe; only files and folders are collected"
    assert "[DEBUG]" not in log and "Traceback" not in log


def test_due_dates_reach_the_students_through_the_exchange(course):
    """Issue 22: nothing told a student that their submission was late. The instructor's server publishes the
    gradebook's due dates and the late penalty in the course's exchange folder; the students' server reads them."""
    from autograder.grader.course import nbgrader_api, nbgrader_config
    from autograder.grader.hub.due_dates import publish
    from autograder.nbgrader_exchange.assignment_list import due_dates

    with open(course / "nbgrader_config.py", "a") as f:
        f.write('c.LateSubmissionPlugin.penalty_method = "zero"\n')
    config = nbgrader_config(course)
    assert publish(config) is None  # no gradebook yet: nothing to say
    with nbgrader_api(course).gradebook as gb:
        gb.update_or_create_assignment("tiny", duedate="2030-01-01 10:00:00 UTC")
        gb.update_or_create_assignment("later", duedate="2031-01-01 10:00:00 UTC")  # not released: not shown
    (course.parent / "exchange" / COURSE_ID / "outbound" / "tiny").mkdir()
    path = publish(config)
    assert path == course.parent / "exchange" / COURSE_ID / "due-dates.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    expected = {COURSE_ID: {"late_penalty": "zero", "assignments": {"tiny": "2030-01-01T10:00:00Z"}}}
    assert due_dates(config) == expected
    # Whatever lies there, the student's server answers at once, without a traceback (red team).
    for planted in ("[not json", "[" * 100_000 + "]" * 100_000):
        path.write_text(planted)
        assert due_dates(config) == {}
    path.unlink()
    os.mkfifo(path)  # read after a check, a pipe would hang the server
    assert due_dates(config) == {}
