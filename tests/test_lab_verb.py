"""`autograder lab`: which configuration and which folder JupyterLab gets (the server itself: test_lab.py)."""

import json
import sys

from traitlets.config.loader import PyFileConfigLoader

from autograder.cli import run
from autograder.grader.course import CONFIG_FILE, PROJECT_ROOT, SOLUTIONS, course_settings, nbgrader_config
from autograder.grader.lab import config_dir, lab_command, server_root
from autograder.pipeline import AUTOGRADE
from tiny_course import make_course


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
                                                          "autograder.validate": True}


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
    course = make_course(tmp_path / "course")  # its own solutions/ and nbgrader_config.py
    assert not (config_dir(course) / "nbgrader_config.py").exists()
    assert course_settings(course) == {}
    assert not (config_dir(PROJECT_ROOT) / "nbgrader_config.py").exists()
    assert "Written by" not in CONFIG_FILE.read_text()


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
