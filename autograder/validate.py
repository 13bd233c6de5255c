"""nbgrader's Validate with the stderr filter of the grading pipeline.

JupyterLab's Validate button (nbgrader's validate_assignment server
extension) and `nbgrader validate` run nbgrader's `Validator`, whose steps
are fixed (its `preprocessors` is not configurable): CheckCellMetadata,
ClearOutput and nbgrader's plain Execute. A test cell that first touches
TensorFlow gets its absl lines on stderr ("I0000 ... oneDNN custom
operations are on"), and nbgrader fails any test cell with stderr output, so
Validate said "VALIDATION FAILED" where `autograder check`, which drops
those lines (`execute.FilterStderr`), passes. `use_filtered_validator`,
called from nbgrader_config.py (which both read), swaps in a Validator
whose Execute applies that filter to each cell as it finishes.
"""

import sys

from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, Execute
from nbgrader.validator import Validator
from traitlets import List

from .execute import FilterStderr


class FilteredExecute(Execute):
    """nbgrader's Execute, then FilterStderr on the cell, as `check` and grading filter it."""

    def preprocess_cell(self, cell, resources, index):
        cell, resources = super().preprocess_cell(cell, resources, index)
        # In place: nbconvert's loop over the cells ignores what this returns.
        return FilterStderr(parent=self, enabled=True).preprocess_cell(cell, resources, index)


class FilteredValidator(Validator):
    preprocessors = List([CheckCellMetadata, ClearOutput, FilteredExecute])


USERS = ("nbgrader.server_extensions.validate_assignment.handlers", "nbgrader.apps.validateapp")


def use_filtered_validator():
    """Make the Validate button and `nbgrader validate` use `FilteredValidator`.

    Both load nbgrader_config.py right before they make their Validator (the
    button on every request), so patching the modules already imported is
    enough, and other nbgrader commands import nothing more.
    """
    for name in USERS:
        module = sys.modules.get(name)
        if module is not None:
            module.Validator = FilteredValidator
