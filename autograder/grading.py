"""Grade one submission with nbgrader, without an exchange or a course set-up.

`grade_submission` builds a throwaway nbgrader course in a temporary folder:
`solutions/<id>` is a copy of the course's (so nbgrader restores the hidden
tests from it, as its OverwriteCells step does), `submitted/student/<id>`
holds the notebook and the files beside it. Then nbgrader's own
generate_assignment and autograde run, and the scores are read back from
the gradebook, so they are the per-cell scores `nbgrader autograde` gives.
"""

import json
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from . import host
from .course import SOLUTIONS, UserError, check_ids, nbgrader_api, run_nbgrader

STUDENT = "student"
IGNORED = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.ipynb")


def read_notebook(path):
    """The notebook at ``path``, or a UserError saying in one sentence what is wrong."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"no notebook at {path}.")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give the path of a .ipynb notebook.")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as e:  # nbformat raises json, unicode and validation errors alike
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path} is not a Jupyter notebook ({reason}).") from None


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


def cell_messages(autograded_nb):
    """grade_id -> what the student should read: the error, or stderr, of each test cell."""
    messages = {}
    for cell in autograded_nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if not grade_id or cell.cell_type != "code":
            continue
        text = ""
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                text = f"{output.ename}: {output.evalue}".strip()
                break
            if output.output_type == "stream" and output.name == "stderr":
                text = "the cell wrote to stderr: " + output.text.strip().splitlines()[-1]
        messages[grade_id] = text
    return messages


def read_scores(api, assignment_id, messages):
    with api.gradebook as gb:
        submission = gb.find_submission_notebook(assignment_id, assignment_id, STUDENT)
        cells = [
            {
                "name": grade.name,
                "score": float(grade.score),
                "max_score": float(grade.max_score),
                "message": messages.get(grade.name, ""),
            }
            for grade in submission.grades
        ]
    order = {name: i for i, name in enumerate(messages)}
    return sorted(cells, key=lambda c: order.get(c["name"], len(order)))


def grade_submission(notebook, assignment_id=None, workdir=None, keep=None, solutions=SOLUTIONS, notice=False):
    """Grade ``notebook`` like nbgrader autograde; return the report dict.

    ``keep``, a folder, receives the autograded notebook; ``solutions`` holds
    the source notebooks, hidden tests included; ``notice`` says on stderr
    when there is no GPU.
    """
    notebook = Path(notebook)
    nb = read_notebook(notebook)
    assignment_id = assignment_id or guess_assignment(notebook, solutions)
    check_ids([assignment_id], solutions)
    if notice:
        host.cpu_notice()
    host.configure_kernels()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="autograde-", dir=workdir) as tmp:
        root = Path(tmp)
        shutil.copytree(Path(solutions) / assignment_id, root / SOLUTIONS.name / assignment_id, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        submitted = root / "submitted" / STUDENT / assignment_id
        shutil.copytree(notebook.parent, submitted, ignore=IGNORED)
        nbformat.write(nb, submitted / f"{assignment_id}.ipynb")

        api = nbgrader_api(root)
        run_nbgrader(api.generate_assignment(assignment_id, force=True), "generate_assignment")
        run_nbgrader(api.autograde(assignment_id, STUDENT, force=True), "autograde")
        autograded_path = root / "autograded" / STUDENT / assignment_id / f"{assignment_id}.ipynb"
        autograded = nbformat.read(autograded_path, as_version=4)
        cells = read_scores(api, assignment_id, cell_messages(autograded))
        if keep is not None:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(autograded_path, Path(keep) / autograded_path.name)
    return {
        "assignment": assignment_id,
        "notebook": str(notebook),
        "score": sum(c["score"] for c in cells),
        "max_score": sum(c["max_score"] for c in cells),
        "cells": cells,
        "device": host.device(),
        "versions": host.versions(),
        "seeds": host.seeds(nb),
        "seconds": round(time.perf_counter() - started, 1),
    }


def format_report(report):
    lines = [f"{report['assignment']}: {report['score']:g} / {report['max_score']:g} points "
             f"({report['seconds']:.0f} s on {report['device']})"]
    for cell in report["cells"]:
        mark = "pass" if cell["score"] == cell["max_score"] else "FAIL"
        lines.append(f"  {mark}  {cell['name']:<28} {cell['score']:g}/{cell['max_score']:g}")
        if cell["message"] and mark == "FAIL":
            lines.extend("        " + line for line in cell["message"].splitlines()[:6])
    return "\n".join(lines)


def write_json(report, path):
    Path(path).write_text(json.dumps(report, indent=2))
