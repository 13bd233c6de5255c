"""Calibrate the hidden-test floors: run each solution on several seeds and collect what the checks measured.

    .venv/bin/python benchmarks/calibrate.py [--seeds 0 1 2 3 4] [--out benchmarks/CALIBRATION.md]

Each solution notebook runs, hidden tests included, with `SEED = n` for each
seed. The checks print what they measure (accuracy on held-out data, the
generalization gaps, accuracy on the hand-drawn set); this script collects
those lines per seed and writes a markdown table with the range over seeds
next to the floor, so that a floor can be checked to hold with a margin.
"""

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder import host  # noqa: E402
from autograder.course import SOLUTIONS, worksheet_ids  # noqa: E402

ACCURACY = re.compile(r"^(Accuracy on [^:]+): (-?[0-9.]+)(?: \(required: ([0-9.]+)\))?", re.M)
GAP = re.compile(r"^Generalization gap: (\S+) (-?[0-9.]+) < baseline (-?[0-9.]+)", re.M)


def run_seed(assignment_id, seed):
    nb = nbformat.read(SOLUTIONS / assignment_id / f"{assignment_id}.ipynb", as_version=4)
    for cell in nb.cells:
        cell.source = re.sub(r"^SEED = \d+", f"SEED = {seed}", cell.source, flags=re.M)
    started = time.perf_counter()
    NotebookClient(nb, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(SOLUTIONS / assignment_id)}}).execute()
    measured = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            for name, value, floor in ACCURACY.findall(text):
                measured[name] = (float(value), floor)
            for name, gap, baseline in GAP.findall(text):
                measured[f"over-fitting margin, baseline gap - {name} gap"] = (float(baseline) - float(gap), "> 0")
    return measured, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--worksheets", nargs="+", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "CALIBRATION.md")
    args = parser.parse_args()
    host.configure_kernels()
    lines = ["# Calibration of the hidden-test floors", "",
             f"Each solution run with `SEED` = {', '.join(map(str, args.seeds))} by `benchmarks/calibrate.py`; "
             "values are what the hidden checks printed.", "",
             "| worksheet | measure | " + " | ".join(f"seed {s}" for s in args.seeds) + " | min | max | floor |",
             "|---|---|" + "---:|" * (len(args.seeds) + 3)]
    for assignment_id in args.worksheets or worksheet_ids():
        runs = {}
        for seed in args.seeds:
            runs[seed], seconds = run_seed(assignment_id, seed)
            print(f"{assignment_id} seed {seed} ({seconds:.0f} s): {runs[seed]}", flush=True)
        for measure in runs[args.seeds[0]]:
            values = [runs[s].get(measure, (float("nan"), ""))[0] for s in args.seeds]
            floor = runs[args.seeds[0]][measure][1]
            lines.append(f"| {assignment_id} | {measure} | " + " | ".join(f"{v:.4f}" for v in values)
                         + f" | {min(values):.4f} | {max(values):.4f} | {floor} |")
    ran = set(args.worksheets or worksheet_ids())
    if args.out.is_file():  # keep the rows of worksheets not run this time
        for line in args.out.read_text().splitlines():
            cells = [c.strip() for c in line.split("|")]
            if len(cells) > 2 and cells[1] in set(worksheet_ids()) - ran:
                lines.append(line)
    lines[6:] = sorted(lines[6:])
    lines.append("")
    lines.append("A generalization gap is the binary cross-entropy on the test reviews minus that on the "
                 "15,000 training reviews, computed by the grader from predict; the check needs each "
                 "regularized model's gap below the baseline's of the same run, so the margin must stay above 0.")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
