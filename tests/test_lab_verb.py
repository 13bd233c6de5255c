"""`autograder lab`: which configuration and which folder JupyterLab gets (the server itself: test_lab.py)."""

import sys

from traitlets.config.loader import PyFileConfigLoader

from autograder.cli import run
from autograder.datasets.download import PROJECT_ROOT
from autograder.grader.course import CONFIG_FILE, SOLUTIONS
from autograder.grader.lab import lab_command, server_root, write_course_config
from autograder.pipeline import AUTOGRADE
from tiny_course import make_course


def load(path):
    return PyFileConfigLoader(path.name, str(path.parent)).load_config()


def test_a_course_folder_gets_the_project_configuration_rooted_there(tmp_path):
    """Like demo/: the project's worksheets, released into the folder, graded there."""
    config = load(write_course_config(tmp_path))
    assert config.CourseDirectory.root == str(tmp_path)
    assert config.CourseDirectory.source_directory == str(SOLUTIONS)
    assert config.CourseDirectory.release_directory == "release"
    assert config.Autograde.autograde_preprocessors == AUTOGRADE  # the grading pipeline came along


def test_a_course_with_its_own_worksheets_keeps_the_project_layout(tmp_path):
    course = make_course(tmp_path / "course")
    config = load(write_course_config(course))
    assert config.CourseDirectory.root == str(course)
    assert (config.CourseDirectory.source_directory, config.CourseDirectory.release_directory) == (
        "solutions", "assignments")


def test_an_instructors_own_configuration_is_kept(tmp_path):
    own = tmp_path / "nbgrader_config.py"
    own.write_text("c = get_config()\nc.CourseDirectory.course_id = 'mine'\n")
    assert write_course_config(tmp_path) == own and "mine" in own.read_text()
    assert write_course_config(PROJECT_ROOT) == CONFIG_FILE and "Written by" not in CONFIG_FILE.read_text()


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
