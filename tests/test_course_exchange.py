"""nbgrader's exchange as the course's hub configures it: `SafeCollect` (the instructor's side) and
`PrivateSubmit` (the students'), each on a real exchange folder in a temporary directory.

Submissions are made by the user running the tests, so they run without
root; the two tests that need a second Unix user (a folder in someone
else's name) use `nobody` and skip without root. tests/test_hub.py runs the
same steps in the browser with real users.
"""

import datetime
import getpass
import os
import pwd
import stat

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
        'c.ExchangeFactory.collect = "autograder.grader.collect.SafeCollect"\n'
        'c.ExchangeFactory.submit = "autograder.course_exchange.PrivateSubmit"\n'))
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
    return result["log"], course / "submitted"


def report(course):
    return (course / "collect.log").read_text()


def test_only_files_and_folders_the_student_owns_are_collected(course):
    from autograder.grader.steps import course_secret

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

    from autograder.grader.course import nbgrader_config, run_nbgrader

    api = NbGraderAPI(CourseDirectory(config=nbgrader_config(course)), config=nbgrader_config(course))
    run_nbgrader(api.generate_assignment("tiny", force=True), "generate_assignment")
    run_nbgrader(api.release_assignment("tiny"), "release_assignment")

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
