"""The grading pipeline: the one list of steps that every way of grading uses.

nbgrader's Autograde converter runs two passes over a submission. The first
(`SANITIZE`: nbgrader's steps, and RestoreCellMetadata before OverwriteCells)
restores locked and hidden cells and their metadata from the gradebook; the
second (`AUTOGRADE`) is `GradingRun`, then nbgrader's gradebook steps:

1. GradingRun, which runs the execution steps (`EXECUTION`, the setting
   `GradingRun.steps` in nbgrader_config.py) with `grading_run.run_steps`:
   PlanHiddenTests   - what each hidden test needs from the kernel (grader only)
   SandboxedExecute  - the notebook runs in the jailed kernel, faults recorded
   ScoreHiddenTests  - hidden tests decided in a fresh, jailed scoring process (grader only)
   FilterStderr      - framework log lines out of stderr, in linear time
   LimitOutput       - nbgrader's cap on what each cell keeps
2. SaveAutoGrades, AssignLatePenalties, CheckCellMetadata - the gradebook.

`nbgrader autograde` and `autograder grade` run it all in one process.
`grade-all` runs the same Autograde pass once per submission in the
coordinating process, where `GradingRun`'s runner sends the execution steps
to a Dask worker and waits for the executed notebook. `autograder check` and
JupyterLab's Validate run the execution steps a student's laptop can run
(`check_steps`): hidden tests out first, no grader-only step.
"""

import socket

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Any, List

from .grading_run import HOST, HostFault, Record, build_steps, run_steps

SANITIZE = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "autograder.grader.sanitize.RestoreCellMetadata",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]

EXECUTION = [
    "autograder.grader.steps.PlanHiddenTests",
    "autograder.execute.SandboxedExecute",
    "autograder.grader.steps.ScoreHiddenTests",
    "autograder.execute.FilterStderr",
    "nbgrader.preprocessors.LimitOutput",
]

GRADEBOOK = [
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

AUTOGRADE = ["autograder.pipeline.GradingRun", *GRADEBOOK]

GRADER_ONLY = "autograder.grader."


class GradingRun(NbGraderPreprocessor):
    """One grading run, as a step of nbgrader's Autograde: the execution steps, here or on a worker.

    Raises `HostFault` when the host failed the run, so that nbgrader saves no score for it.
    """

    steps = List(EXECUTION, help="The execution steps of a grading run, in order (dotted class names)."
                 ).tag(config=True)
    runner = Any(None, allow_none=True,
                 help="Runs the steps elsewhere (a child process, grade-all's Dask dispatcher); None: here.")
    host_fault = ""  # the host's reason, when it failed the run: the caller records it, nbgrader saves nothing

    def preprocess(self, nb, resources):
        try:
            nb, resources = self._run(nb, resources)
            fault = Record.from_metadata(nb.metadata.get("autograder")).fault
            if fault is not None and fault.owner == HOST:
                raise HostFault(fault.reason)
        except HostFault as e:
            self.host_fault = str(e)
            raise
        return nb, resources

    def _run(self, nb, resources):
        if self.runner is not None:
            return self.runner.run(nb, resources)
        try:
            return run_steps(nb, resources, build_steps(self.steps, self))
        except HostFault:
            raise
        except Exception as e:  # the grader's own code failed on this host: nothing may be saved
            raise HostFault(f"the grader failed on {socket.gethostname()} ({type(e).__name__}: "
                            f"{str(e).strip()[:300]})") from e

    def preprocess_cell(self, cell, resources, index):
        return cell, resources


def _name(step):
    return step if isinstance(step, str) else f"{step.__module__}.{step.__qualname__}"


def execution_steps(config):
    """The course's execution steps (``GradingRun.steps``), as names."""
    return [_name(s) for s in config.get("GradingRun", {}).get("steps", EXECUTION)]


def check_steps(config):
    """What `autograder check` and Validate run on a student's notebook: no hidden tests, no grader step."""
    kept = [s for s in execution_steps(config) if not s.startswith(GRADER_ONLY)]
    return ["nbgrader.preprocessors.ClearHiddenTests"] + kept
