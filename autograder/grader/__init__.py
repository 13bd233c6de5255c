"""The grader: left out of the student kit (hidden tests, reference runs, grading a class, the hub)."""

from ..moved import MOVED

# Release 0.2's module paths of the grader, still importable for one release (autograder/moved.py).
MOVED.update({
    "autograder.grader.hidden": "autograder.grader.hidden_tests.vocabulary",
    "autograder.grader.trusted": "autograder.grader.hidden_tests.scorer",
    "autograder.grader.steps": "autograder.grader.hidden_tests.launch",
    "autograder.grader.heldout": "autograder.grader.hidden_tests.heldout",
    "autograder.grader.artifacts": "autograder.grader.hidden_tests.artifacts",
    "autograder.grader.drawings": "autograder.grader.hidden_tests.drawings",
    "autograder.grader.grading": "autograder.grader.classroom.grade",
    "autograder.grader.grade_all": "autograder.grader.classroom.grade_all",
    "autograder.grader.worker": "autograder.grader.classroom.worker",
    "autograder.grader.reference": "autograder.grader.classroom.reference",
    "autograder.grader.sanitize": "autograder.grader.classroom.cell_metadata",
    "autograder.grader.grades_export": "autograder.grader.classroom.grades_export",
    "autograder.grader.demo": "autograder.grader.classroom.demo",
    "autograder.grader.feedback": "autograder.grader.pages.feedback",
    "autograder.grader.offline_pages": "autograder.grader.pages.offline",
    "autograder.grader.inert": "autograder.grader.pages.inert",
    "autograder.grader.publish": "autograder.grader.tools.publish",
    "autograder.grader.otter_export": "autograder.grader.tools.otter_export",
    "autograder.grader.drawings_check": "autograder.grader.tools.drawings_check",
    "autograder.grader.hub_demo": "autograder.grader.hub.hub_demo",
    "autograder.grader.hub_spawner": "autograder.grader.hub.spawner",
    "autograder.grader.lab": "autograder.grader.hub.lab",
    "autograder.grader.collect": "autograder.grader.hub.collect",
    "autograder.grader.due_dates": "autograder.grader.hub.due_dates",
    "autograder.grader.formgrader_csp": "autograder.grader.hub.formgrader_csp",
    "autograder.grader.formgrader_grading": "autograder.grader.hub.formgrader_grading",
    "autograder.grader.formgrader_log": "autograder.grader.hub.formgrader_log",
})
