"""`autograder grade`: one submission, graded as `nbgrader autograde` grades it, without a course set-up.

A throwaway course in a temporary folder holds a copy of a gradebook with the
assignment's source (`course.prepared_gradebook`) and the submission under
``submitted/student/<id>/``. nbgrader's Autograde converter runs there with
the course's own pipeline (nbgrader_config.py, autograder/pipeline.py): the
scores are the ones SaveAutoGrades writes, read back from that gradebook,
and the record of the run comes from the autograded notebook's metadata.
"""

import json
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from .. import UserError, host
from ..sandbox import bwrap_works
from ..student_check import cell_messages, read_notebook
from .course import (SOLUTIONS, check_ids, nbgrader_api, nbgrader_config, nbgrader_failure, prepared_gradebook,
                     show_log)

STUDENT = "student"
IGNORED = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.ipynb")
NO_SANDBOX = ("grading needs bubblewrap (`apt-get install bubblewrap`) to jail the student's code; "
              "pass --no-sandbox to grade without it, with the student's code able to read and write "
              "everything you can.")


class GradingFailed(UserError):
    """nbgrader could not grade the submission; the message is its real cause."""


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


def read_scores(api, assignment_id, student, messages):
    with api.gradebook as gb:
        submission = gb.find_submission_notebook(assignment_id, assignment_id, student)
        cells = [{"name": g.name, "score": float(g.score), "max_score": float(g.max_score),
                  "message": messages.get(g.name, "")} for g in submission.grades]
    order = {name: i for i, name in enumerate(messages)}
    return sorted(cells, key=lambda c: order.get(c["name"], len(order)))


def report_from(nb, cells, assignment_id, notebook, seconds):
    """The report of one graded notebook: scores, messages and the run's record."""
    record = nb.metadata.get("autograder", {})
    execution = record.get("execution") or {}
    return {
        "assignment": assignment_id,
        "notebook": str(notebook),
        "score": sum(c["score"] for c in cells),
        "max_score": sum(c["max_score"] for c in cells),
        "cells": cells,
        "fault": (execution.get("fault") or {}).get("reason"),
        "flags": record.get("flags", []),
        "sandbox": (execution.get("sandbox") or {}).get("kind", "none"),
        "device": record.get("device") or host.device(),
        "versions": record.get("versions") or host.versions(),
        "seeds": record.get("seeds", []),
        "seconds": round(seconds, 1),
    }


def grade_submission(notebook, assignment_id=None, keep=None, solutions=SOLUTIONS, sandbox=True, config=None,
                     verbose=False):
    """Grade ``notebook`` like nbgrader autograde; return the report dict.

    ``keep``, a folder, receives the autograded notebook; ``solutions`` holds
    the source notebooks, hidden tests included; ``sandbox`` False grades
    without the jail (the report says so); ``config`` adds nbgrader settings.
    """
    notebook = Path(notebook)
    nb = read_notebook(notebook)
    assignment_id = assignment_id or guess_assignment(notebook, solutions)
    check_ids([assignment_id], solutions)
    if sandbox and not bwrap_works():
        raise UserError(NO_SANDBOX)
    from .grade_all import missing_data

    problem = missing_data()
    if problem:  # the student would lose points for the host's fault
        raise UserError(f"{problem}.")
    host.configure_kernels()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="autograde-") as tmp:
        root = Path(tmp)
        shutil.copyfile(prepared_gradebook(assignment_id, solutions), root / "gradebook.db")
        submitted = root / "submitted" / STUDENT / assignment_id
        shutil.copytree(notebook.parent, submitted, ignore=IGNORED)
        nbformat.write(nb, submitted / f"{assignment_id}.ipynb")
        settings = nbgrader_config(root, source_directory=str(Path(solutions).resolve()), release_directory="release")
        if not sandbox:
            settings.SandboxedExecute.sandbox = "none"
        settings.SandboxedExecute.show_kernel_output = verbose
        if config is not None:
            settings.merge(config)
        api = nbgrader_api(root, config=settings)
        result = api.autograde(assignment_id, STUDENT, force=True)
        show_log(result, verbose)
        if not result.get("success"):
            raise GradingFailed(f"nbgrader could not grade {notebook.name}: {nbgrader_failure(result)}")
        autograded_path = root / "autograded" / STUDENT / assignment_id / f"{assignment_id}.ipynb"
        autograded = nbformat.read(autograded_path, as_version=4)
        cells = read_scores(api, assignment_id, STUDENT, cell_messages(autograded))
        if keep is not None:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(autograded_path, Path(keep) / autograded_path.name)
    return report_from(autograded, cells, assignment_id, notebook, time.perf_counter() - started)


def format_report(report):
    lines = [f"{report['assignment']}: {report['score']:g} / {report['max_score']:g} points "
             f"({report['seconds']:.0f} s on {report['device']}"
             + ("" if report["sandbox"] != "none" else ", NOT sandboxed") + ")"]
    if report.get("fault"):
        lines.append(f"  stopped early: {report['fault']}")
    for cell in report["cells"]:
        mark = "pass" if cell["score"] == cell["max_score"] else "FAIL"
        lines.append(f"  {mark}  {cell['name']:<28} {cell['score']:g}/{cell['max_score']:g}")
        if cell["message"] and mark == "FAIL":
            lines.extend("        " + line for line in cell["message"].splitlines()[:6])
    for flag in report.get("flags", []):
        lines.append(f"  flag for the instructor: {flag}")
    return "\n".join(lines)


def write_json(report, path):
    Path(path).write_text(json.dumps(report, indent=2))
