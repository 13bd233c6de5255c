"""The grading pipeline: the one list of steps that every way of grading uses.

nbgrader's Autograde converter runs two passes over a submission. The first
(`SANITIZE`: nbgrader's steps, and RestoreCellMetadata before OverwriteCells)
restores locked and hidden cells and their metadata from the gradebook; the
second (`AUTOGRADE`) is `GradingRun`, then nbgrader's gradebook steps:

1. GradingRun, which runs the execution steps (`EXECUTION`, the setting
   `GradingRun.steps` in nbgrader_config.py) with `record.run_steps`:
   PlanHiddenTests     - what each hidden test needs from the kernel (grader only)
   StartScoringProcess - the run's own scoring process starts, warming up beside the kernel (grader only)
   SandboxedExecute    - the notebook runs in the jailed kernel, faults recorded
   ScoreHiddenTests    - that process is handed the exports and decides the hidden tests (grader only)
   FilterStderr        - framework log lines out of stderr, in linear time
   LimitOutput         - nbgrader's cap on what each cell keeps
2. SaveAutoGrades, AssignLatePenalties, CheckCellMetadata - the gradebook; then MakeInert -
   the student's markdown and outputs made inert for whoever views them.

`nbgrader autograde`, Formgrader's Autograde and `autograder grade` run the
execution steps in a child process (`GradingRun.local_runner`): its heap is
bounded, and a failure it did not foresee is settled by evidence about the
host (`worker.settle`). `grade-all` runs the same Autograde pass once per
submission in the coordinating process, where `GradingRun`'s runner sends
the execution steps to a Dask worker and waits for the executed notebook.
A host's reference run is the same payload in the same child process.
`autograder check` and JupyterLab's Validate run the execution steps a
student's laptop can run (`check_steps`): hidden tests out first, no
grader-only step. Otter's clean process runs the hidden-test steps around
the student's live objects (`launch.check_in_clean_process`). All of them
call `record.run_steps`.
"""

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Any, Float, Integer, List, Type

from .record import (
    HOST,
    CourseProblem,
    HostFault,
    Record,
    RecordVersionError,
    Unprocessable,
)

SANITIZE = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "autograder.grader.classroom.cell_metadata.RestoreCellMetadata",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]

EXECUTION = [
    "autograder.grader.hidden_tests.launch.PlanHiddenTests",
    "autograder.grader.hidden_tests.launch.StartScoringProcess",
    "autograder.run.execute.SandboxedExecute",
    "autograder.grader.hidden_tests.launch.ScoreHiddenTests",
    "autograder.run.execute.FilterStderr",
    "nbgrader.preprocessors.LimitOutput",
]

GRADEBOOK = [
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
    # Last, once the scores are saved: the notebook kept in autograded/ (what Formgrader and feedback
    # show) holds no script, event handler or active link of the student's (autograder/grader/pages/inert.py).
    "autograder.grader.pages.inert.MakeInert",
]

AUTOGRADE = ["autograder.run.pipeline.GradingRun", *GRADEBOOK]

GRADER_ONLY = "autograder.grader."


class GradingRun(NbGraderPreprocessor):
    """One grading run, as a step of nbgrader's Autograde: the execution steps, here or on a worker.

    A run that fails in a way the kit did not foresee is settled by evidence
    about the host (`worker.settle`: the host runs the reference solution
    again). Raises `HostFault` when the host failed its own check, and
    `Unprocessable` when it passed, so the failure was this submission's;
    either way nbgrader saves no score, and the caller records the reason.
    """

    steps = List(EXECUTION, help="The execution steps of a grading run, in order (dotted class names)."
                 ).tag(config=True)
    runner = Any(None, allow_none=True,
                 help="Runs the steps: grade-all's Dask dispatcher; None: a `local_runner` here.")
    # Named, not imported: the engine does not depend on the grader (the student kit has none), as nbgrader
    # names its exchange's classes.
    local_runner = Type("autograder.grader.classroom.grade.LocalRunner", klass=object,
                        help="The runner of `nbgrader autograde`, Formgrader's Autograde and `autograder grade`: a "
                             "child process here, whose heap is bounded and whose failures the host settles."
                        ).tag(config=True)
    timeout = Float(3600, help="Seconds the child process of a run may take, the host's own check included."
                    ).tag(config=True)
    grader_memory_limit = Integer(2 * 2**30, help="Bytes of heap the grading process itself may take (RLIMIT_DATA, "
                                                  "soft): what a kernel sends it can never take the host's memory."
                                  ).tag(config=True)
    host_fault = ""  # the host's reason, when it failed the run: the caller records it, nbgrader saves nothing
    unprocessable = ""  # why the grader could not process the submission on a sound host: flagged, no score
    course_problem = ""  # why the course's own material (its drawings) stops the worksheet's grading: no score

    def preprocess(self, nb, resources):
        try:
            nb, resources = self._run(nb, resources)
            try:
                fault = Record.from_metadata(nb.metadata.get("autograder")).fault
            except RecordVersionError as e:  # a grading host that runs another version of the grader
                raise HostFault(f"{e}: the grading host runs another version of autograder") from None
            if fault is not None and fault.owner == HOST:  # a runner that left it unsettled
                raise HostFault(fault.reason)
        except HostFault as e:
            self.host_fault = str(e)
            raise
        except Unprocessable as e:
            self.unprocessable = str(e)
            raise
        except CourseProblem as e:
            self.course_problem = str(e)
            raise
        return nb, resources

    def _run(self, nb, resources):
        runner = self.runner
        if runner is None:  # nbgrader autograde, Formgrader's Autograde: a child process here, as `grade` does
            runner = self.local_runner(self.config, self.timeout)
        return runner.run(nb, resources)

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
