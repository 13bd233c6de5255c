"""The grading pipeline: the one list of steps that every way of grading uses.

nbgrader's Autograde converter runs two passes over a submission. The first
(`SANITIZE`: nbgrader's steps, and RestoreCellMetadata before OverwriteCells)
restores locked and hidden cells and their metadata from the gradebook; the
second (`AUTOGRADE`) is set here and in nbgrader_config.py:

1. PlanHiddenTests   - what each hidden test needs from the kernel (grader only)
2. SandboxedExecute  - the notebook runs in a jailed kernel, faults recorded
3. ScoreHiddenTests  - hidden tests decided in a fresh grader process (grader only)
4. FilterStderr      - framework log lines out of stderr, in linear time
5. ClearMetadataPreprocessor, LimitOutput - nbgrader's tidying
6. RecordReport      - what happened, kept in the notebook's metadata
7. SaveAutoGrades, AssignLatePenalties, CheckCellMetadata - the gradebook

`nbgrader autograde` and `autograder grade` run them all in one process.
`grade-all` runs steps 1-6 on a Dask worker and steps 7 in the coordinating
process, the only one that writes the gradebook (`split`). `autograder
check` runs the steps a student's laptop can run on a released notebook:
hidden tests out first, then 2, 4, 5 and 6 (`check_steps`).
"""

SANITIZE = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "autograder.grader.sanitize.RestoreCellMetadata",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]

AUTOGRADE = [
    "autograder.grader.trusted.PlanHiddenTests",
    "autograder.execute.SandboxedExecute",
    "autograder.grader.trusted.ScoreHiddenTests",
    "autograder.execute.FilterStderr",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "autograder.execute.RecordReport",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

FIRST_GRADEBOOK_STEP = "SaveAutoGrades"


def _name(step):
    return step if isinstance(step, str) else f"{step.__module__}.{step.__qualname__}"


def split(steps=AUTOGRADE):
    """``(execution steps, gradebook steps)``: where the worker stops and the coordinator goes on."""
    names = [_name(s) for s in steps]
    cut = next((i for i, n in enumerate(names) if n.rsplit(".", 1)[1] == FIRST_GRADEBOOK_STEP), len(steps))
    return list(steps[:cut]), list(steps[cut:])


def check_steps(steps=AUTOGRADE):
    """What `autograder check` runs on a student's notebook: no hidden tests, no gradebook."""
    execution, _ = split(steps)
    kept = [s for s in execution if not _name(s).startswith("autograder.grader.")]
    return ["nbgrader.preprocessors.ClearHiddenTests"] + kept
