"""The module paths of release 0.2, still importable for one release (they go in 0.4).

A course's nbgrader_config.py, a hub's generated configuration and a kit
already installed name the kit's classes by dotted path
(``"autograder.pipeline.GradingRun"``, ``"autograder.course_exchange.PrivateSubmit"``).
Each old path imports the module that now holds its code, the same module
object, so a class named either way is one class, configured under one name.
Importing an old path warns (DeprecationWarning) with the new one.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "autograder.student_check": "autograder.visible_tests",
    "autograder.course_exchange": "autograder.nbgrader_exchange.private_submit",
    "autograder.assignment_list": "autograder.nbgrader_exchange.assignment_list",
    "autograder.grading_run": "autograder.run.record",
    "autograder.pipeline": "autograder.run.pipeline",
    "autograder.execute": "autograder.run.execute",
    "autograder.sandbox": "autograder.run.jail",
    "autograder.syscall_filter": "autograder.run.syscall_filter",
    "autograder.kernel_messages": "autograder.run.kernel_messages",
    "autograder.exchange": "autograder.run.exports",
    "autograder.safe_files": "autograder.run.safe_files",
    "autograder.course_config": "autograder.run.course_config",
    "autograder.hidden_regions": "autograder.run.hidden_regions",
    "autograder.host": "autograder.run.host",
    "autograder.kit": "autograder.run.kit",
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
}
REMOVED_IN = "0.4"


class _Alias(importlib.abc.Loader):
    def __init__(self, new):
        self.new = new

    def create_module(self, spec):
        warnings.warn(f"{spec.name} is now {self.new}; the old path goes in autograder {REMOVED_IN}",
                      DeprecationWarning, stacklevel=2)
        module = importlib.import_module(self.new)
        self.spec = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = self.spec  # the import system stamped the alias's spec on it: the module keeps its own


class MovedModules(importlib.abc.MetaPathFinder):
    """Last on ``sys.meta_path``: consulted only for a name no real module has."""

    def find_spec(self, name, path=None, target=None):
        new = MOVED.get(name)
        return importlib.util.spec_from_loader(name, _Alias(new)) if new else None


def install():
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())
