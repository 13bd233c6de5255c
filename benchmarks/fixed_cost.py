"""Where a grading's time goes (issue 25): each worksheet's reference and untouched release, by phase, and the
untouched release against a bare nbconvert of it.

    .venv/bin/python benchmarks/fixed_cost.py [--repeat 3] [--worksheets ID ...]

An untouched release is what a student hands in who answered nothing: every
answer cell raises at once, so what its grading costs is the kit's own work
plus whatever the given cells do (imports, loading the data). `jupyter
nbconvert --execute --allow-errors` of the same notebook, in the same run,
is the floor: a kernel, the same cells, nothing else. The reference is the
worksheet's solution handed in as a student would. Each host's reference
verdict is made first and cached, as a grading host keeps it.

The phases come from the graded notebook's record (each step's, cell's,
export's and hidden check's seconds) and the report: the `grade` process's
start and imports; the course, nbgrader's passes (sanitize, then the
gradebook) and the grading process's start; the jail and the kernel's start;
the cells; the exports; the kernel's stop; the scoring process's warm-up
(beside the kernel, so not on the way) and the scoring after the kernel, of
which the hidden checks. Medians of --repeat runs of the untouched release
(one of the reference), each kind in turn.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = Path(sys.executable)  # this installation's: .venv's, or a GPU host's own
sys.path.insert(0, str(ROOT))

from autograder.grader.course import ASSIGNMENTS, SOLUTIONS, worksheet_ids  # noqa: E402

PHASES = ["grade process start", "course, nbgrader passes, grading process start", "jail and kernel start",
          "cells", "exports", "kernel stop, steps", "scoring after the kernel", "of which checks"]


def cell_seconds(nb):
    """``[(cell label, seconds)]`` of each executed code cell, from nbclient's timing in its metadata."""
    found = []
    for number, cell in enumerate(nb["cells"], 1):
        timing = cell.get("metadata", {}).get("execution") or {}
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            began, ended = (datetime.datetime.fromisoformat(timing[k].replace("Z", "+00:00")).timestamp()
                            for k in ("iopub.execute_input", "shell.execute_reply"))
            label = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {number}"
            found.append((label, ended - began))
    return found


def run_phases(nb):
    """``({phase: seconds}, [(cell, seconds)], {check: seconds}, warm-up seconds)`` of one grading run, from the
    graded notebook's record: the phases from the jail and the kernel's start on (`PHASES[2:]`)."""
    record = nb["metadata"]["autograder"]
    execution, scoring = record["execution"], record["scoring"]
    steps, cells = execution.get("step_seconds") or {}, cell_seconds(nb)
    kernel, exports = execution.get("kernel_start_seconds") or 0.0, sum((execution.get("export_seconds") or {}).values())
    checks = scoring.get("check_seconds") or {}
    ran = sum(s for _, s in cells)
    phases = {
        PHASES[2]: kernel,
        PHASES[3]: ran,
        PHASES[4]: exports,
        PHASES[5]: execution["seconds"] - kernel - ran - exports - (steps.get("ScoreHiddenTests") or 0.0),
        PHASES[6]: steps.get("ScoreHiddenTests") or 0.0,
        PHASES[7]: sum(checks.values()),
    }
    return phases, cells, checks, scoring.get("start_seconds")


def graded(notebook, work):
    """``(wall seconds, {phase: seconds}, [(cell, seconds)], {check: seconds}, score)`` of one `autograder grade`."""
    keep, report = work / "keep", work / "report.json"
    started = time.perf_counter()
    subprocess.run([str(PYTHON), "-m", "autograder", "grade", str(notebook), "--quiet", "--json", str(report),
                    "--keep", str(keep)], check=False, capture_output=True)
    wall = time.perf_counter() - started
    nb = json.loads((keep / notebook.name).read_text())
    seen = json.loads(report.read_text())
    inner, cells, checks, warm = run_phases(nb)
    phases = {
        PHASES[0]: wall - seen["seconds"],  # the report's seconds are grade_submission's own, the start excluded
        PHASES[1]: seen["seconds"] - nb["metadata"]["autograder"]["execution"]["seconds"],
        **inner,
    }
    return wall, phases, cells, checks, (seen.get("score"), seen.get("max_score")), warm


def bare(notebook, work):
    """Seconds of `jupyter nbconvert --execute --allow-errors` of ``notebook``, in its folder."""
    started = time.perf_counter()
    subprocess.run([str(PYTHON), "-m", "nbconvert", "--execute", "--allow-errors",
                    "--to", "notebook", "--output-dir", str(work), str(notebook)],
                   check=True, capture_output=True, cwd=notebook.parent)
    return time.perf_counter() - started


def table(rows, title):
    print(f"\n{title}\n")
    print("| worksheet | graded (s) | score | " + " | ".join(PHASES) + " | scoring warm-up, beside the kernel |")
    print("|---|---:|---:|" + "---:|" * (len(PHASES) + 1))
    for assignment_id, wall, phases, score, warm in rows:
        print(f"| {assignment_id} | {wall:.1f} | {score[0]:g}/{score[1]:g} | "
              + " | ".join(f"{phases[p]:.1f}" for p in PHASES) + f" | {warm if warm is not None else '-'} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worksheets", nargs="*", default=None)
    args = parser.parse_args()
    ids = args.worksheets or worksheet_ids()
    references, untouched, details = [], [], []
    with tempfile.TemporaryDirectory(prefix="autograder-fixed-cost-") as tmp:
        for assignment_id in ids:
            release = ASSIGNMENTS / assignment_id / f"{assignment_id}.ipynb"
            solution = SOLUTIONS / assignment_id / f"{assignment_id}.ipynb"
            work = Path(tmp) / assignment_id
            work.mkdir()
            graded(release, work)  # this host's reference verdict, made and cached if it is not yet
            wall, phases, cells, checks, score, warm = graded(solution, work)
            references.append((assignment_id, wall, phases, score, warm))
            slowest = sorted(cells, key=lambda c: -c[1])[:3]
            details.append((assignment_id, slowest, checks))
            runs, floors = [], []
            for _ in range(args.repeat):
                runs.append(graded(release, work))
                floors.append(bare(release, work))
            median = {p: statistics.median(r[1][p] for r in runs) for p in PHASES}
            warm_runs = [r[5] for r in runs if r[5] is not None]
            untouched.append((assignment_id, statistics.median(r[0] for r in runs), median, runs[0][4],
                              round(statistics.median(warm_runs), 1) if warm_runs else None,
                              statistics.median(floors)))
            print(assignment_id, f"reference {wall:.1f} s, untouched {untouched[-1][1]:.1f} s, "
                                 f"bare {untouched[-1][5]:.1f} s", flush=True)
    print(f"\n`benchmarks/fixed_cost.py --repeat {args.repeat}`, {datetime.date.today()}, {os.cpu_count()} cores "
          f"({platform.processor() or platform.machine()}), in seconds")
    table(references, "Each reference solution, handed in as a student would (one run):")
    print(f"\nIn all: {sum(r[1] for r in references):.1f} s for the {len(references)} references, one after another.")
    print("\nTheir slowest cells and each hidden test's checks (s):\n")
    for assignment_id, slowest, checks in details:
        print(f"- {assignment_id}: cells " + ", ".join(f"{n} {s:.1f}" for n, s in slowest)
              + "; checks " + ", ".join(f"{n} {s:.2f}" for n, s in checks.items()))
    table([r[:5] for r in untouched], f"Each untouched release (medians of {args.repeat}):")
    print("\n| worksheet (untouched release) | graded (s) | bare nbconvert (s) | ratio | the kit's own (s) |")
    print("|---|---:|---:|---:|---:|")
    for assignment_id, wall, _, _, _, floor in untouched:
        print(f"| {assignment_id} | {wall:.1f} | {floor:.1f} | {wall / floor:.2f}x | {wall - floor:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
