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

# The kit's own (the grader's are in autograder/grader/__init__.py: the kit names no module it does not hold).
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
