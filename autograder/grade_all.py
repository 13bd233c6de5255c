"""`autograder grade-all`: a class's submissions, graded in parallel, into nbgrader's gradebook.

nbgrader autogrades one submission at a time (jupyter/nbgrader#174, open
since 2015), and its default gradebook is SQLite, which takes one writer at a
time. So the work is split:

1. N workers grade submissions in parallel, each one `autograder grade` in
   its own process and its own throwaway course (`grading.grade_submission`),
   under a timeout that kills the process group, kernel included;
2. this process alone writes each result into the course gradebook, with
   nbgrader's own SaveAutoGrades step on the autograded notebook, and copies
   that notebook to `autograded/<student>/<assignment>/` for feedback;
3. nbgrader's CSV export writes `grades.csv`.

A crash, a timeout or a malformed submission is recorded with its reason in
`grade-all.json` and the others go on. A second run regrades only the
submissions whose notebook changed since, so it is idempotent.
"""

import concurrent.futures
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from . import host
from .course import SOLUTIONS, UserError, check_ids, nbgrader_api, run_nbgrader

STATE_FILE = "grade-all.json"


def find_submissions(root):
    """``(student, assignment, folder)`` for every ``submitted/<student>/<assignment>/``."""
    submitted = Path(root) / "submitted"
    if not submitted.is_dir():
        raise UserError(f"no submissions: {submitted} does not exist (nbgrader's submitted/<student>/<assignment>/).")
    found = [(s.name, a.name, a) for s in sorted(submitted.iterdir()) if s.is_dir()
             for a in sorted(s.iterdir()) if a.is_dir()]
    if not found:
        raise UserError(f"no submissions in {submitted}.")
    return found


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _grade_in_subprocess(notebook, assignment_id, out_dir, timeout, solutions):
    """Run `autograder grade` in its own process group; return (report or None, reason)."""
    report_path = out_dir / "report.json"
    command = [sys.executable, "-m", "autograder", "grade", str(notebook), "--assignment", assignment_id,
               "--json", str(report_path), "--keep", str(out_dir), "--solutions", str(solutions), "--quiet"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the kernel is in the same group
        proc.communicate()
        return None, f"timed out after {timeout:g} s"
    if proc.returncode != 0 or not report_path.is_file():
        lines = [line for line in err.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"grader exited with status {proc.returncode}"
        return None, reason.removeprefix("autograder: ")
    return json.loads(report_path.read_text()), ""


def _save(api, student, assignment_id, report, autograded_nb, root):
    """Record one graded submission in the gradebook with nbgrader's SaveAutoGrades."""
    from nbgrader.preprocessors import SaveAutoGrades

    with api.gradebook as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment_id, student)
    target = Path(root) / "autograded" / student / assignment_id
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(autograded_nb, target / autograded_nb.name)
    nb = nbformat.read(autograded_nb, as_version=4)
    resources = {"nbgrader": {"notebook": assignment_id, "assignment": assignment_id,
                              "student": student, "db_url": api.coursedir.db_url}}
    SaveAutoGrades(config=api.config).preprocess(nb, resources)


def _ensure_assignments(api, assignment_ids):
    """Make sure the gradebook knows each assignment's notebooks and grade cells."""
    from nbgrader.api import MissingEntry

    for assignment_id in assignment_ids:
        with api.gradebook as gb:
            try:
                known = bool(gb.find_assignment(assignment_id).notebooks)
            except MissingEntry:
                known = False
        if not known:
            run_nbgrader(api.generate_assignment(assignment_id, force=True), f"generate_assignment {assignment_id}")


def export_csv(api, path):
    from nbgrader.plugins import CsvExportPlugin

    with api.gradebook as gb:
        CsvExportPlugin(to=str(path)).export(gb)
    return path


def grade_all(root, workers=2, timeout=1800, force=False, progress=True, **course_directory):
    """Grade every submission under ``root/submitted``; return the per-submission outcomes.

    ``course_directory`` holds nbgrader CourseDirectory settings (see
    `course.course_settings`), the gradebook's ``db_url`` among them.
    """
    root = Path(root)
    solutions = root / course_directory.get("source_directory", SOLUTIONS.name)
    submissions = find_submissions(root)
    api = nbgrader_api(root, **course_directory)
    known = set(check_ids([], solutions))
    _ensure_assignments(api, sorted({a for _, a, _ in submissions if a in known}))
    host.configure_kernels()
    host.cpu_notice()

    state_path = root / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    outcomes, pending = {}, []
    for student, assignment_id, folder in submissions:
        key = f"{student}/{assignment_id}"
        notebook = folder / f"{assignment_id}.ipynb"
        digest = _digest(notebook)
        if assignment_id not in known:
            outcomes[key] = {"status": "malformed", "reason": f"unknown assignment {assignment_id!r}"}
        elif digest is None:
            outcomes[key] = {"status": "malformed", "reason": f"missing notebook {notebook.name}"}
        elif not force and state.get(key, {}).get("sha256") == digest and state[key]["status"] == "graded":
            outcomes[key] = state[key]
        else:
            pending.append((key, student, assignment_id, notebook, digest))

    with tempfile.TemporaryDirectory(prefix="grade-all-") as tmp, \
            concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {}
        for key, student, assignment_id, notebook, digest in pending:
            out_dir = Path(tmp) / key.replace("/", "__")
            out_dir.mkdir()
            future = pool.submit(_grade_in_subprocess, notebook, assignment_id, out_dir, timeout, solutions)
            futures[future] = (key, student, assignment_id, digest, out_dir)
        done = concurrent.futures.as_completed(futures)
        if progress:
            from tqdm import tqdm

            done = tqdm(done, total=len(futures), desc="grading", unit="submission", file=sys.stderr)
        for future in done:
            key, student, assignment_id, digest, out_dir = futures[future]
            report, reason = future.result()
            if report is None:
                outcomes[key] = {"status": "failed", "reason": reason, "sha256": digest}
                continue
            _save(api, student, assignment_id, report, out_dir / f"{assignment_id}.ipynb", root)
            outcomes[key] = {"status": "graded", "score": report["score"], "max_score": report["max_score"],
                             "seconds": report["seconds"], "device": report["device"], "seeds": report["seeds"],
                             "versions": report["versions"], "sha256": digest}

    outcomes = dict(sorted(outcomes.items()))
    state_path.write_text(json.dumps(outcomes, indent=1))
    export_csv(api, root / "grades.csv")
    return outcomes


def format_outcomes(outcomes):
    lines = []
    for key, outcome in outcomes.items():
        if outcome["status"] == "graded":
            lines.append(f"  {key:<40} {outcome['score']:g} / {outcome['max_score']:g}")
        else:
            lines.append(f"  {key:<40} {outcome['status'].upper()}: {outcome['reason']}")
    graded = sum(o["status"] == "graded" for o in outcomes.values())
    lines.append(f"{graded} of {len(outcomes)} submissions graded.")
    return "\n".join(lines)
