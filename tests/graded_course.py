"""The demo course in small: the tiny worksheet released, three students' work graded, feedback written.

As in `autograder demo`: ada hands in the solution, ben the untouched
release, cy one mistake (an answer the visible test accepts and the hidden
test does not). Grading and feedback go through the public functions the
commands use, so it takes about a minute instead of the demo's many.
"""

import shutil
from pathlib import Path

from tiny_course import make_course, student_version, submit, tiny_solution

ASSIGNMENT = "tiny"
EXPECTED_SCORES = {"ada": 3.0, "ben": 0.0, "cy": 2.0}
# The class list an instructor imports (`nbgrader db student import`); grade-all adds students without names.
ROSTER = {"ada": ("Ada", "Able"), "ben": ("Ben", "Baker"), "cy": ("Cy", "Carter")}


def released(course):
    return Path(course) / "assignments" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def build_graded_course(root):
    """Release, submit, grade-all and feedback in ``root``; returns ``root``."""
    import nbformat

    from autograder.grader.classroom.grade_all import grade_all
    from autograder.grader.course import nbgrader_api, run_nbgrader
    from autograder.grader.pages.feedback import generate_all

    course = make_course(root)
    api = nbgrader_api(course)
    run_nbgrader(api.generate_assignment(ASSIGNMENT, force=True), "generate_assignment")
    with api.gradebook as gb:
        for student, (first, last) in ROSTER.items():
            gb.update_or_create_student(student, first_name=first, last_name=last)
    submit(course, "ada", student_version(tiny_solution()))
    shutil.copytree(released(course).parent, course / "submitted" / "ben" / ASSIGNMENT)
    submit(course, "cy", student_version(tiny_solution(), answer="7"))
    outcomes = grade_all(course, workers=1, progress=False)
    assert {key.split("/")[0]: o["score"] for key, o in outcomes.items()} == EXPECTED_SCORES, outcomes
    generate_all(course)
    assert nbformat.read(released(course), as_version=4).cells  # the release is there to open
    return course
