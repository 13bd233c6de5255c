"""`autograder grade`: one submission, graded as `nbgrader autograde` grades it, without a course set-up.

A throwaway course in a temporary folder holds a copy of a gradebook with the
assignment's source (`course.prepared_gradebook`) and a safe copy of the
submission under ``submitted/student/<id>/`` (links, special files and
oversized files refused; the notebook checked against nbformat's schema and
repaired where it can be). First this host grades the worksheet's reference
solution (`reference`): it must reach full marks, and its time sets the
budget. Then nbgrader's Autograde converter runs with the course's pipeline,
the execution steps in a child process (`LocalRunner`): the scores are
the ones SaveAutoGrades writes, read back from that gradebook.

A fault of the host (no jail, no data, a reference short of full marks, a
scorer that could not start) saves no score: `HostFaultError`, exit status 3.
A run that failed on a host that then passed its own check saves no score
either: `UnprocessableError`, exit status 4.
"""

import contextlib
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from ... import UserError
from ...run import safe_files
from ...run.pipeline import GRADEBOOK, GradingRun
from ...run.record import CourseProblem, report
from ...visible_tests import read_notebook
from ..course import (
    SOLUTIONS,
    autograde_one,
    check_ids,
    nbgrader_config,
    nbgrader_failure,
    prepared_gradebook,
)
from ..hidden_tests.launch import course_secret
from .reference import check_here
from .time_limits import checked, with_host_budgets, with_run_limit
from .worker import Payload, execute, executed_notebook, host_problem, settle

STUDENT_ID = "student"  # the one student of the throwaway course
NO_SANDBOX = ("grading needs bubblewrap (`apt-get install bubblewrap`) to jail the student's code; "
              "pass --no-sandbox to grade without it, with the student's code able to read and write "
              "everything you can.")


def no_jail_error(problem):
    """The error for a host that cannot grade: the fix where the cause is a missing bubblewrap, else the cause
    itself (a jail that fails for another reason is the host's fault, not a missing package)."""
    if "bubblewrap is not installed" in problem:
        return UserError(NO_SANDBOX)
    return HostFaultError(f"this host cannot grade: {problem}; no score was saved.")


class LocalRunner:
    """`pipeline.GradingRun`'s runner for `autograder grade`, `nbgrader autograde` and Formgrader's Autograde:
    the payload runs in a child process here."""

    def __init__(self, config, timeout):
        self.config, self.timeout = config, timeout
        # nbgrader autograde and Formgrader start here, not in `grade`: their limits are checked here too.
        checked(config, logging.getLogger("autograder").warning)

    def run(self, nb, resources):
        payload = Payload.of(nb, resources, self.config, self.timeout)
        answer = settle(execute(payload), lambda: check_here(self.config, payload.assignment, fresh=True))
        return executed_notebook(answer), resources


class GradingFailed(UserError):
    """nbgrader could not grade the submission; the message is its real cause."""


class HostFaultError(UserError):
    """The grading host failed: nothing was saved as a score."""

    exit_status = 3


class UnprocessableError(UserError):
    """The grader could not process the notebook on a host that then passed its own check: no score."""

    exit_status = 4


def guess_assignment(path, solutions=SOLUTIONS):
    """The worksheet id from the file name, or from the folder it sits in."""
    path = Path(path)
    for candidate in (path.stem, path.parent.name):
        if (Path(solutions) / candidate / f"{candidate}.ipynb").is_file():
            return candidate
    raise UserError(
        f"cannot tell which worksheet {path.name} is; pass --assignment with one of "
        f"{', '.join(check_ids([], solutions))}."
    )


def stage(notebook_path, nb, dest, name=None):
    """The submission's folder, copied safely into ``dest`` (the only copy nbgrader reads), with ``nb``, its
    notebook as read and repaired, as ``name`` (the worksheet's notebook; its own name by default); the
    refusals. `grade` and `grade-all` both stage this way."""
    copied = safe_files.copy_tree(Path(notebook_path).parent, dest,
                                  skip={Path(notebook_path).name, ".ipynb_checkpoints", "__pycache__"})
    for _, stray in safe_files.regular_files(dest):  # other notebooks of the folder are not graded
        if stray.suffix == ".ipynb":
            stray.unlink()
    nbformat.write(nb, Path(dest) / (name or Path(notebook_path).name))
    return copied.reasons()


def gradebook_scores(config, assignment_id, student):
    from ..course import nbgrader_api

    with nbgrader_api(config=config).gradebook as gb:
        submission = gb.find_submission_notebook(assignment_id, assignment_id, student)
        return {g.name: (g.score, g.max_score) for g in submission.grades}


@contextlib.contextmanager
def throwaway_course(assignment_id, solutions=SOLUTIONS, sandbox=True, config=None, verbose=False, timeout=None,
                     say=None):
    """``(root, settings)``: a course in a temporary folder, grading ``solutions`` as the course does.

    Raises before anything runs when this host cannot grade at all (no jail, no data); ``say`` (else stderr) is
    told when the course's time limits do not fit together (``timeout``: `GradingRun.timeout`, else the course's).
    """
    solutions = Path(solutions).resolve()
    check_ids([assignment_id], solutions)
    with tempfile.TemporaryDirectory(prefix="autograde-") as tmp:
        root = Path(tmp)
        # The configuration of the course the solutions belong to (the project's, unless it has its own).
        settings = nbgrader_config(root, course=solutions.parent, source_directory=str(solutions),
                                   release_directory="release")
        if config is not None:
            settings.merge(config)
        settings = with_run_limit(settings, timeout)
        checked(settings, say or (lambda line: print(line, file=sys.stderr)))
        settings.PlanHiddenTests.secret = course_secret(solutions.parent)  # the course's, so a regrade agrees
        settings.SandboxedExecute.show_kernel_output = verbose
        if not sandbox:
            settings.SandboxedExecute.sandbox = "none"
        problem = host_problem(settings)
        if problem:
            raise no_jail_error(problem) if sandbox else HostFaultError(
                f"this host cannot grade: {problem}; no score was saved.")
        shutil.copyfile(prepared_gradebook(assignment_id, solutions), root / "gradebook.db")
        yield root, settings


def reference_verdict(assignment_id, solutions=SOLUTIONS, timeout=None, **options):
    """This host's verdict on ``assignment_id``'s reference solution (cached per host and version)."""
    with throwaway_course(assignment_id, solutions, timeout=timeout, **options) as (_, settings):
        return check_here(settings, assignment_id)


def grade_submission(notebook, assignment_id=None, keep=None, solutions=SOLUTIONS, sandbox=True, config=None,
                     verbose=False, timeout=None, say=None):
    """Grade ``notebook`` like nbgrader autograde; return the report dict.

    ``keep``, a folder, receives the autograded notebook; ``solutions`` holds
    the source notebooks, hidden tests included; ``sandbox`` False grades
    without the jail (the report says so); ``config`` adds nbgrader settings;
    ``timeout`` sets `GradingRun.timeout`, the limit of each grading process
    (the reference's, then the submission's; the course's own by default);
    ``say`` is told of a long wait (the host's first reference run).
    """
    notebook = Path(notebook)
    nb, notes = read_notebook(notebook, with_notes=True)
    assignment_id = assignment_id or guess_assignment(notebook, solutions)
    started = time.perf_counter()
    with throwaway_course(assignment_id, solutions, sandbox, config, verbose, timeout, say) as (root, settings):
        # As nbgrader finds it: hw.ipynb graded with --assignment tiny is tiny.ipynb (red team: "No notebooks found")
        notes += stage(notebook, nb, root / "submitted" / STUDENT_ID / assignment_id, f"{assignment_id}.ipynb")
        try:
            verdict = check_here(settings, assignment_id, say=say)
        except CourseProblem as e:
            raise UserError(f"{assignment_id} cannot be graded with the course's drawings: {e}; no score was saved.")
        if not verdict.ok:
            if verdict.drawings:  # the course's, not the host's: said as such, and nothing was saved either
                raise UserError(f"{assignment_id} cannot be graded with the course's drawings: {verdict.problem}; "
                                "no score was saved.")
            raise HostFaultError(f"this host cannot grade {assignment_id}: {verdict.problem}; no score was saved.")
        settings = with_host_budgets(settings, verdict)
        run = GradingRun(config=settings)
        result = autograde_one(settings, assignment_id, STUDENT_ID, [run, *GRADEBOOK], verbose)
        if run.host_fault:
            raise HostFaultError(f"the grading host failed: {run.host_fault}; no score was saved.")
        if run.unprocessable:
            raise UnprocessableError(f"the grader could not process {notebook.name}: {run.unprocessable}; this host "
                                     "then passed its own check, so no score was saved and the notebook needs a look.")
        if not result.get("success"):
            raise GradingFailed(f"nbgrader could not grade {notebook.name}: {nbgrader_failure(result)}")
        autograded_path = root / "autograded" / STUDENT_ID / assignment_id / f"{assignment_id}.ipynb"
        autograded = nbformat.read(autograded_path, as_version=4)
        graded = report(autograded, gradebook_scores(settings, assignment_id, STUDENT_ID))
        if keep is not None:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(autograded_path, Path(keep) / autograded_path.name)
    graded["notes"] = notes + graded["notes"]
    return {"assignment": assignment_id, "notebook": str(notebook), **graded,
            "reference": {"host": verdict.host, "seconds": verdict.seconds, "budget_seconds": verdict.budget,
                          "cached": verdict.cached},
            "seconds": round(time.perf_counter() - started, 1)}


def format_report(report):
    from ...run.record import cell_lines, terminal_text

    lines = [f"{report['assignment']}: {report['score']:g} / {report['max_score']:g} points "
             f"({report['seconds']:.0f} s on {report['device']}"
             + ("" if report["sandbox"] != "none" else ", NOT sandboxed") + ")"]
    if report.get("fault"):
        lines.append(f"  stopped early: {report['fault']}")
    lines += cell_lines(report)
    for flag in report.get("flags", []):
        lines.append(f"  flag for the instructor: {flag}")
    for note in report.get("notes", []):
        lines.append(f"  note: {note}")
    return terminal_text("\n".join(lines))


def write_json(report, path):
    Path(path).write_text(json.dumps(report, indent=2))
