"""`autograder lab`: which configuration and which folder JupyterLab gets (the server itself: test_lab.py)."""

import json
import os
import sys

import pytest
from tiny_course import make_course
from traitlets.config.loader import PyFileConfigLoader

from autograder import UserError
from autograder.cli import run
from autograder.grader.course import (
    CONFIG_FILE,
    PROJECT_ROOT,
    SOLUTIONS,
    course_settings,
    nbgrader_config,
    source_folder,
    start_course,
)
from autograder.grader.hub.lab import config_dir, lab_command, server_root
from autograder.run.pipeline import AUTOGRADE


def load(path):
    return PyFileConfigLoader(path.name, str(path.parent)).load_config()


def test_a_course_folder_gets_the_project_configuration_rooted_there_and_stays_untouched(tmp_path, monkeypatch):
    """Like demo/: the project's worksheets, released into the folder, graded there; nothing written into it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    course = tmp_path / "demo"
    course.mkdir()
    config = load(config_dir(course) / "nbgrader_config.py")
    assert config.CourseDirectory.root == str(course)
    assert config.CourseDirectory.source_directory == str(SOLUTIONS)
    assert config.CourseDirectory.release_directory == "release"
    assert config.Autograde.autograde_preprocessors == AUTOGRADE  # the grading pipeline came along
    assert list(course.iterdir()) == []
    server = json.loads((config_dir(course) / "jupyter_server_config.json").read_text())
    assert server["ServerApp"]["jpserver_extensions"] == {"nbgrader.server_extensions.validate_assignment": False,
                                                          "autograder.validate": True,
                                                          "autograder.nbgrader_exchange.assignment_list": True}


def test_the_readme_sequence_demo_lab_demo_keeps_the_demo_a_course_of_the_project(tmp_path, monkeypatch):
    """Issue 15: `lab --root demo` wrote nbgrader_config.py into demo/, which then passed for a course of its
    own, so the next `autograder demo` and `grade-all --root demo` lost the project's solutions."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    course = tmp_path / "demo"
    course.mkdir()
    before = course_settings(course)
    config_dir(course)  # what `autograder lab --root demo` does to the folders
    config_dir(course)  # and a second start
    assert course_settings(course) == before == {"source_directory": str(SOLUTIONS), "release_directory": "release"}
    assert nbgrader_config(course, **course_settings(course)).CourseDirectory.source_directory == str(SOLUTIONS)
    # A folder an earlier version wrote into is read as the demo it is.
    (course / "nbgrader_config.py").write_text("# Written by `autograder lab`: it is rewritten on each start\n")
    assert course_settings(course) == before


def test_a_course_with_its_own_worksheets_or_configuration_is_served_with_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    course = make_course(tmp_path / "course", config="c.Execute.timeout = 77\n")  # its own solutions/ and config
    config = load(config_dir(course) / "nbgrader_config.py")
    assert (config.CourseDirectory.root, config.CourseDirectory.source_directory) == (str(course), "solutions")
    assert config.Execute.timeout == 77
    assert course_settings(course) == {}
    assert "Written by" not in CONFIG_FILE.read_text()


def test_a_course_file_that_sets_only_a_late_penalty_keeps_the_kit_and_the_worksheets(tmp_path, monkeypatch):
    """Issue 22: the hub's course folder had no nbgrader_config.py; one with only a late penalty made
    grade-all stop on a missing <course>/solutions, and left Formgrader without the kit's pipeline."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text('c = get_config()\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    for config in (nbgrader_config(course, **course_settings(course)), load(config_dir(course) / "nbgrader_config.py")):
        assert config.LateSubmissionPlugin.penalty_method == "zero"
        assert config.CourseDirectory.source_directory == str(SOLUTIONS)
        assert config.CourseDirectory.release_directory == "release"
        assert config.Autograde.autograde_preprocessors == AUTOGRADE
    assert source_folder(nbgrader_config(course, **course_settings(course))) == SOLUTIONS


def test_the_course_hub_setup_starts_has_its_sources_and_a_file_naming_the_settings_to_change(tmp_path, monkeypatch):
    """Issue 22: the hub's course folder showed the instructor only gradebook.db, and had no configuration."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    kit = make_course(tmp_path / "kit")
    course = tmp_path / "course"
    course.mkdir()
    path = start_course(course, kit / "solutions")
    assert (course / "source" / "tiny" / "tiny.ipynb").read_bytes() == (kit / "solutions" / "tiny" / "tiny.ipynb").read_bytes()
    text = path.read_text()
    assert "# c.LateSubmissionPlugin.penalty_method" in text and "# c.PlanHiddenTests.drawings" in text
    path.write_text(text.replace('# c.LateSubmissionPlugin.penalty_method = "zero"',
                                 'c.LateSubmissionPlugin.penalty_method = "zero"'))
    config = nbgrader_config(course, **course_settings(course))
    assert (config.LateSubmissionPlugin.penalty_method, config.Autograde.autograde_preprocessors) == ("zero", AUTOGRADE)
    assert source_folder(config) == course / "source"
    (course / "source" / "tiny" / "tiny.ipynb").write_text("{}")  # the instructor's edits
    start_course(course, kit / "solutions")  # hub-setup.sh again, to add students
    assert "penalty_method = \"zero\"\n" in path.read_text() and (course / "source" / "tiny" / "tiny.ipynb").read_text() == "{}"


def test_a_course_file_that_names_a_missing_source_folder_is_one_sentence(tmp_path, capsys):
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.source_directory = "sources"\n')
    assert run(["grade-all", "--root", str(course)]) == 2
    err = capsys.readouterr().err
    assert "sources, which is not a folder; set c.CourseDirectory.source_directory" in err
    assert "Traceback" not in err


def test_the_server_serves_the_project_when_the_course_lies_in_it(tmp_path):
    """Then Formgrader's links to solutions/ and assignments/ open; demo/ is in the project."""
    assert server_root(PROJECT_ROOT / "demo") == PROJECT_ROOT
    assert server_root(tmp_path) == tmp_path.resolve()
    command = lab_command(tmp_path, port=9999, browser=False, extra=["--ServerApp.ip=127.0.0.1"])
    assert command[:3] == [sys.executable, "-m", "jupyterlab"]
    assert {f"--ServerApp.root_dir={tmp_path.resolve()}", "--ServerApp.port=9999", "--no-browser",
            "--ServerApp.ip=127.0.0.1"} <= set(command)


def test_lab_on_a_missing_folder_is_one_sentence(tmp_path, capsys):
    assert run(["lab", "--root", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == f"autograder: no course folder at {tmp_path / 'nowhere'}.\n"


def test_loading_the_course_configuration_has_no_side_effect(tmp_path, monkeypatch):
    """Issue 15: loading nbgrader_config.py wrote .autograder-secret into the project and changed
    os.environ; any course configured from it shared that secret."""
    import os

    from autograder.grader.course import CONFIG_FILE, PROJECT_ROOT
    from autograder.grader.hidden_tests.launch import PlanHiddenTests
    from autograder.run.course_config import load

    before_env, before_files = dict(os.environ), sorted(p.name for p in PROJECT_ROOT.iterdir())
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    before_env = dict(os.environ)
    config = load(CONFIG_FILE)
    assert dict(os.environ) == before_env and sorted(p.name for p in PROJECT_ROOT.iterdir()) == before_files
    # The key is each course's own, made when that course first grades.
    config.CourseDirectory.root = str(tmp_path)
    secret = PlanHiddenTests(config=config).secret
    assert (tmp_path / ".autograder-secret").read_text().strip() == secret
    other = tmp_path / "other"
    other.mkdir()
    config.CourseDirectory.root = str(other)
    assert PlanHiddenTests(config=config).secret != secret


def test_the_demo_stops_loudly_when_its_reference_student_is_short():
    from autograder.grader.classroom.demo import reference_student_problem
    from autograder.grader.course import worksheet_ids

    full = {f"ada/{i}": {"status": "graded", "score": 3, "max_score": 3, "failed_tests": {}} for i in worksheet_ids()}
    assert reference_student_problem(full) == ""
    first = worksheet_ids()[0]
    short = {**full, f"ada/{first}": {"status": "graded", "score": 2, "max_score": 3,
                                        "failed_tests": {"test_x": "HiddenTestFailed: ..."}}}
    assert reference_student_problem(short) == f"{first}: 2/3 (test_x)"
    faulted = {**full, f"ada/{first}": {"status": "host-fault", "reason": "no jail"}}
    assert reference_student_problem(faulted) == f"{first}: host-fault (no jail)"


def test_a_course_without_any_configuration_is_one_sentence(tmp_path, monkeypatch):
    """A copy of the kit without the project's nbgrader_config.py, grading a course without its own:
    traitlets' OSError came out as a traceback from deep in `grade`."""
    from autograder import UserError
    from autograder.grader import course as course_module

    monkeypatch.setattr(course_module, "CONFIG_FILE", tmp_path / "missing" / "nbgrader_config.py")
    with pytest.raises(UserError, match=r"^no nbgrader_config.py for the course at .*, nor the project's at "):
        course_module.nbgrader_config(tmp_path / "root", course=tmp_path / "course")


def test_a_lab_settings_folder_someone_else_prepared_is_refused(tmp_path, monkeypatch):
    """JupyterLab reads its server settings (and the course's nbgrader_config.py) from this folder:
    one that another user made first, here a link to their own folder, would run their code as the instructor."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o777)
    (tmp_path / "cache" / "autograder").mkdir(parents=True)
    (tmp_path / "cache" / "autograder" / "lab").symlink_to(theirs)
    course = tmp_path / "demo"
    course.mkdir()
    with pytest.raises(UserError, match="not a folder of yours"):
        config_dir(course)
    assert list(theirs.iterdir()) == []


def test_formgrader_dialogs_show_nbgraders_log_without_the_servers_debug_lines(tmp_path):
    """Issue 22: the Generate dialog was full of the language servers' DEBUG probes, and Collect's showed the
    tracebacks it logs for debugging: Formgrader handed nbgrader the logger's level, 0."""
    from lab_server import LabServer

    (tmp_path / "jupyter").mkdir()
    server = LabServer(make_course(tmp_path / "course"), tmp_path / "jupyter").start()
    try:
        generated = server.api("POST", "/formgrader/api/assignment/tiny/assign")
    finally:
        server.stop()
    assert generated["success"], generated
    assert "[INFO] Converting notebook" in generated["log"]
    assert "[DEBUG]" not in generated["log"], generated["log"][:2000]


@pytest.mark.parametrize("planted", ["nbgrader_config.py", "source"])
def test_starting_a_course_never_writes_through_a_link_the_folder_holds(tmp_path, planted):
    """Red team: hub-setup.sh starts the course as root, in a folder the instructor may own; a link left there
    (to a file that does not exist yet) made root create that file wherever it pointed."""
    course = tmp_path / "course"
    course.mkdir()
    target = tmp_path / "elsewhere" / "planted"
    (course / planted).symlink_to(target)
    with pytest.raises(UserError, match="is a link; remove it"):
        start_course(course, make_course(tmp_path / "kit") / "solutions")
    assert not target.exists() and not target.parent.exists()


def test_a_cache_folder_other_users_can_write_is_refused(tmp_path, monkeypatch):
    """Red team: with XDG_CACHE_HOME in a folder others could write, another user swapped `lab`'s settings
    folder after its check and the instructor's server ran their nbgrader_config.py."""
    shared = tmp_path / "shared-cache"
    shared.mkdir()
    os.chmod(shared, 0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
    course = tmp_path / "demo"
    course.mkdir()
    with pytest.raises(UserError, match="is not a folder of yours that only you can write"):
        config_dir(course)


def test_a_course_secret_that_is_a_link_is_refused(tmp_path):
    """Red team: hub-setup.sh (root) changed the group and mode of the course's .autograder-secret, following
    a link an instructor left there (to /etc/shadow, say); root also read the link's target as the secret."""
    from autograder.grader.hidden_tests.launch import course_secret

    target = tmp_path / "private"
    target.write_text("not the course's")
    (tmp_path / ".autograder-secret").symlink_to(target)
    with pytest.raises(UserError, match="is a link; the course's secret must be a file of its own"):
        course_secret(tmp_path)
