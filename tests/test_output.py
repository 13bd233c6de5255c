"""What `autograder check`, `grade` and `grade-all` print: results and progress, not logs.

The worksheet here is the tiny one with Keras imported in its first answer
cell, so the kernel's TensorFlow prints its absl lines (oneDNN, CUDA), and
with a Python warning raised in a test cell; nbgrader logs as it grades and
Dask as its cluster starts. By default none of that reaches the terminal;
--verbose shows it. Each command runs in a process of its own, as a user
runs it, so output written straight to a file descriptor counts too.
"""

import os
import re
import subprocess
import sys

import pytest
from tiny_course import make_course, student_version, submit, tiny_solution

NOISE = {
    "kernel log": re.compile(r"\[IPKernelApp\]|Kernel is running over"),
    "absl line": re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog", re.M),
    "TensorFlow start-up": re.compile(r"oneDNN|cuda", re.I),
    "Python warning": re.compile(r"\w*Warning: "),
    "nbgrader log": re.compile(r"\[\w*App\b|^\[(DEBUG|INFO|WARNING)\] ", re.M),
    "Dask log": re.compile(r"distributed\.[\w.]+ - [A-Z]+ - "),
}
# What --verbose adds, per command.
VERBOSE = {
    "check": ["absl line"],
    "grade": ["absl line", "nbgrader log"],
    "grade-all": ["absl line", "nbgrader log", "Dask log"],
}
RESULTS = {
    "check": ["FAIL  test_answer", "AssertionError: answer should be positive", "Visible tests: 2 / 3 points."],
    "grade": ["tiny: 2 / 3 points", "HiddenTestFailed: Expected the value 42, found -1."],
    "grade-all": ["ada/tiny", "2 / 3", "1 of 1 submissions graded."],
}


def noisy_solution():
    nb = tiny_solution()
    nb.cells[1].source = "import keras\n" + nb.cells[1].source
    nb.cells[2].source = 'import warnings\nwarnings.warn("a library warning")\n' + nb.cells[2].source
    return nb


def autograder(*args):
    """``autograder ARGS`` in a process of its own: exit status, and stdout and stderr together."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}  # as outside pytest (see ipykernel)
    done = subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=900)
    return done.returncode, done.stdout + done.stderr


def noise_in(text):
    return sorted(name for name, pattern in NOISE.items() if pattern.search(text))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("output") / "course", noisy_solution())
    submit(course, "ada", student_version(noisy_solution(), answer="-1"))
    return course


@pytest.mark.parametrize("verb", list(VERBOSE))
def test_output_is_results_only_and_verbose_shows_the_logs(course, verb):
    notebook = course / "submitted" / "ada" / "tiny" / "tiny.ipynb"
    args = {"check": [notebook], "grade": [notebook, "--solutions", course / "solutions"],
            "grade-all": ["--root", course, "--workers", 1, "--force"]}[verb]

    status, out = autograder(verb, *args)
    assert noise_in(out) == [], out
    assert all(result in out for result in RESULTS[verb]), out

    status, out = autograder(verb, *args, "--verbose")
    assert set(VERBOSE[verb]) <= set(noise_in(out)), out
    assert all(result in out for result in RESULTS[verb]), out


def test_check_on_an_untouched_release_names_the_empty_answer_cell(tmp_path, capsys):
    """Not the NameError the test cell raised: the answer cell above it was left as released."""
    from autograder.cli import run
    from autograder.grader.course import nbgrader_api, run_nbgrader

    course = make_course(tmp_path)
    run_nbgrader(nbgrader_api(course).generate_assignment("tiny", force=True), "generate_assignment")
    assert run(["check", str(course / "assignments" / "tiny" / "tiny.ipynb")]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[1:5] == [
        "  FAIL  test_answer                  0/1",
        "        the answer cell above (1. The answer) was not filled in",
        "  FAIL  test_double                  0/2",
        "        the answer cell above (2. Doubling) was not filled in",
    ]
    assert "NameError" not in out and "Visible tests: 0 / 3 points." in out


def test_a_students_text_cannot_drive_the_instructors_terminal():
    """Red team: an answer cell raising ValueError("\\x1b]0;PWNED\\x07\\x1b]52;c;...\\x07\\x1b[2J\\x1b[Hfake: 3 / 3")
    cleared the instructor's screen, retitled her terminal and printed a fake score through `grade`."""
    from autograder.grader.classroom.grade import format_report
    from autograder.grader.classroom.grade_all import format_outcomes

    hostile = "\x1b]0;PWNED\x07\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b[2J\x1b[Hfake: tiny: 3 / 3 points\u202e\x9b"
    report = {"assignment": "tiny", "score": 2, "max_score": 3, "seconds": 1, "device": "CPU", "sandbox": "bwrap",
              "fault": hostile, "cells": [{"name": "test_double", "score": 0, "max_score": 2, "message": hostile}],
              "flags": [hostile], "notes": [hostile]}
    outcomes = {"ada/tiny": {"status": "unprocessable", "reason": hostile},
                "ben/tiny": {"status": "graded", "score": 2, "max_score": 3, "fault": hostile, "flags": [hostile]}}
    for text in (format_report(report), format_outcomes(outcomes)):
        assert not any(ch not in "\n\t" and not ch.isprintable() for ch in text), repr(text)
        assert "\\x1b]0;PWNED" in text
