"""The fixed cost of a grading (issue 25): an untouched release graded, against a bare nbconvert of it.

    .venv/bin/python benchmarks/fixed_cost.py [--repeat 3] [--worksheets ID ...]

An untouched release is what a student hands in who answered nothing: every
answer cell raises at once, so what its grading costs is the kit's own work
(the throwaway course and nbgrader's passes, the grading process, the jail,
the kernel and its imports, the exports, the scoring process, the gradebook)
plus whatever the given cells do (imports, loading the data). `jupyter
nbconvert --execute --allow-errors` of the same notebook, in the same run,
is the floor: a kernel, the same cells, nothing else. Each host's reference
verdict is made first and cached, as a grading host keeps it.

From the autograded notebook's record it splits the grading into: before
the run (the `grade` process's start and imports, the throwaway course,
nbgrader's sanitize pass, the payload), the kernel's start in the jail, the
cells and the exports, the scoring process, and after the run (the gradebook
pass, the report). Medians of --repeat runs, each kind in turn.
"""

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
sys.path.insert(0, str(ROOT))

from autograder.grader.course import ASSIGNMENTS, worksheet_ids  # noqa: E402


def graded(assignment_id, work):
    """``(wall seconds, phases)`` of one `autograder grade` of the untouched release."""
    keep, report = work / "keep", work / "report.json"
    started = time.perf_counter()
    subprocess.run([str(PYTHON), "-m", "autograder", "grade", str(ASSIGNMENTS / assignment_id / f"{assignment_id}.ipynb"),
                    "--quiet", "--json", str(report), "--keep", str(keep)], check=False, capture_output=True)
    wall = time.perf_counter() - started
    record = json.loads((keep / f"{assignment_id}.ipynb").read_text())["metadata"]["autograder"]
    execution, scoring = record["execution"], record["scoring"]
    run = execution["seconds"]
    kernel = execution.get("kernel_start_seconds") or 0.0
    scored = scoring.get("seconds") or 0.0
    inside = json.loads(report.read_text())["seconds"]  # grade_submission's own time, the process's start excluded
    return wall, {"process start and imports": wall - inside, "course, reference lookup, nbgrader passes, grading process start": inside - run,
                  "jail and kernel start": kernel, "cells and exports": run - kernel - scored, "scoring": scored}


def bare(assignment_id, work):
    """Seconds of `jupyter nbconvert --execute --allow-errors` of the untouched release, in its folder."""
    source = ASSIGNMENTS / assignment_id
    started = time.perf_counter()
    subprocess.run([str(ROOT / ".venv" / "bin" / "jupyter"), "nbconvert", "--execute", "--allow-errors",
                    "--to", "notebook", "--output-dir", str(work), str(source / f"{assignment_id}.ipynb")],
                   check=True, capture_output=True, cwd=source)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worksheets", nargs="*", default=None)
    args = parser.parse_args()
    ids = args.worksheets or worksheet_ids()
    rows = []
    with tempfile.TemporaryDirectory(prefix="autograder-fixed-cost-") as tmp:
        for assignment_id in ids:
            work = Path(tmp) / assignment_id
            work.mkdir()
            graded(assignment_id, work)  # this host's reference verdict, made and cached if it is not yet
            walls, phases, floors = [], [], []
            for _ in range(args.repeat):
                wall, split = graded(assignment_id, work)
                walls.append(wall)
                phases.append(split)
                floors.append(bare(assignment_id, work))
            median = {k: statistics.median(p[k] for p in phases) for k in phases[0]}
            rows.append((assignment_id, statistics.median(walls), statistics.median(floors), median))
            print(assignment_id, f"{rows[-1][1]:.1f} s graded, {rows[-1][2]:.1f} s bare", flush=True)
    print()
    print(f"`benchmarks/fixed_cost.py --repeat {args.repeat}`, {datetime.date.today()}, "
          f"{platform.processor() or platform.machine()}, medians:")
    print()
    names = list(rows[0][3])
    print("| worksheet (untouched release) | graded (s) | bare nbconvert (s) | ratio | " + " | ".join(names) + " |")
    print("|---|---:|---:|---:|" + "---:|" * len(names))
    for assignment_id, wall, floor, median in rows:
        print(f"| {assignment_id} | {wall:.1f} | {floor:.1f} | {wall / floor:.1f}x | "
              + " | ".join(f"{median[n]:.1f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
