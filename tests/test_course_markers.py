"""A course that marks its hidden tests its own way (nbgrader's ClearHiddenTests setting) keeps them hidden in
every copy the kit makes: the sample students' work, the published pages, otter's export, the grading run."""

import json

import nbformat
from tiny_course import MARKER, make_course, tiny_solution

from autograder.grader.classroom.demo import student_copy
from autograder.grader.course import course_of
from autograder.grader.tools.otter_export import worksheet_questions
from autograder.grader.tools.publish import executed
from autograder.run.hidden_regions import Markers

OWN_MARKERS = ('c.ClearHiddenTests.begin_test_delimeter = "BEGIN PRIVATE CHECKS"\n'
               'c.ClearHiddenTests.end_test_delimeter = "END PRIVATE CHECKS"\n')


def own_course(tmp_path):
    nb = tiny_solution()
    text = json.dumps(nb).replace("BEGIN HIDDEN TESTS", "BEGIN PRIVATE CHECKS").replace(
        "END HIDDEN TESTS", "END PRIVATE CHECKS")
    return make_course(tmp_path / "course", nbformat.from_dict(json.loads(text)), config=OWN_MARKERS) / "solutions"


def test_the_courses_markers_are_read_from_its_configuration(tmp_path):
    solutions = own_course(tmp_path)
    assert Markers.from_config(course_of(solutions)) == Markers("BEGIN PRIVATE CHECKS", "END PRIVATE CHECKS")


def test_a_students_copy_and_a_published_page_hold_no_hidden_test(tmp_path):
    solutions = own_course(tmp_path)
    nb = nbformat.read(solutions / "tiny" / "tiny.ipynb", as_version=4)
    assert MARKER in json.dumps(nb)
    assert MARKER not in json.dumps(student_copy(nb, solutions))
    assert MARKER not in json.dumps(executed("tiny", solutions))


def test_otter_finds_the_hidden_blocks_by_the_courses_markers(tmp_path):
    solutions = own_course(tmp_path)
    _, found = worksheet_questions("tiny", solutions)
    assert [q.name for q in found if q.hidden] == ["test_answer", "test_double"]
    assert all(MARKER not in q.visible for q in found)
