"""What grading costs, and what a change to the grader costs: paired runs of two installations.

    .venv/bin/python benchmarks/benchmark.py [--before PYTHON] [--repeat N] [--class-size 16]
                                             [--parts solutions hold class imports] [--worksheets ID ...]
                                             [--out benchmarks/RESULTS.md]

Each part runs `autograder` as a command of this checkout's interpreter ("after") and, with
--before, of another installation's ("before", e.g. a virtualenv of an earlier commit), one run of
each in turn, so that a slow spell of the machine hits both:

1. solutions: `autograder grade` on each worksheet's solution as a student hands it in (hidden
   tests removed), with the jail. This host's reference run is made first and cached, as a grading
   host makes it once per version; its time is reported apart. Reported: seconds per worksheet,
   the ratio after/before, and the scoring process's peak memory.
2. hold: worksheet 2's solution with an endless loop in a cell of its own, the way a hostile
   submission holds a grading worker: the time it held it, against the solution's own time.
3. class: --class-size copies of worksheet 2's solution graded by `grade-all --workers 2`, from
   scratch: seconds per submission.
4. imports: what the scoring process imports before it scores (`python -I -X importtime`).

Run it on an otherwise idle machine; it writes a markdown report.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.grader.classroom.demo import student_copy  # noqa: E402
from autograder.grader.course import ASSIGNMENTS, SOLUTIONS, worksheet_ids  # noqa: E402
from autograder.run import host  # noqa: E402

CHEAPEST = "02_fashion_mnist"
ENDLESS = "while True:\n    pass"


def handed_in(assignment_id, folder, extra_cell=None):
    """The solution as a student hands it in, with the files beside it (and one more cell, if given)."""
    shutil.copytree(ASSIGNMENTS / assignment_id, folder, dirs_exist_ok=True)
    nb = student_copy(nbformat.read(SOLUTIONS / assignment_id / f"{assignment_id}.ipynb", as_version=4))
    if extra_cell:
        nb.cells.append(nbformat.v4.new_code_cell(extra_cell))
    nbformat.write(nb, folder / f"{assignment_id}.ipynb")
    return folder / f"{assignment_id}.ipynb"


def grade(python, path, assignment_id, work):
    """``(seconds, report)`` of `autograder grade` run by ``python`` (the report's JSON, the kept notebook)."""
    report, keep = work / "report.json", work / "keep"
    shutil.rmtree(keep, ignore_errors=True)
    started = time.perf_counter()
    done = subprocess.run([python, "-m", "autograder", "grade", str(path), "--assignment", assignment_id,
                           "--json", str(report), "--keep", str(keep), "--quiet"], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{python} grade {assignment_id}: {done.stderr.strip()[-500:]}")
    found = json.loads(report.read_text())
    kept = nbformat.read(keep / f"{assignment_id}.ipynb", as_version=4).metadata.get("autograder", {})
    found["scoring_peak_bytes"] = (kept.get("scoring") or {}).get("peak_bytes")
    return seconds, found


def installations(args):
    found = {"after": sys.executable}
    if args.before:
        found = {"before": args.before, **found}
    return found


def solutions_part(work, args):
    results = {}
    for assignment_id in args.worksheets:
        folder = work / "solutions" / assignment_id
        path = handed_in(assignment_id, folder)
        for name, python in installations(args).items():  # a first run makes (and caches) the reference
            started = time.perf_counter()
            grade(python, path, assignment_id, folder)
            results.setdefault(assignment_id, {}).setdefault(f"{name} first", time.perf_counter() - started)
        for _ in range(args.repeat):
            for name, python in installations(args).items():
                seconds, report = grade(python, path, assignment_id, folder)
                assert report["score"] == report["max_score"], (name, assignment_id, report["cells"])
                entry = results[assignment_id]
                entry.setdefault(name, []).append(seconds)
                if name == "after":
                    entry["peak"] = max(entry.get("peak", 0), report["scoring_peak_bytes"] or 0)
                    entry["reference"] = report.get("reference", {})
        print(assignment_id, json.dumps(results[assignment_id], default=str), flush=True)
    return results


def hold_part(work, args):
    results = {}
    for name, python in installations(args).items():
        folder = work / "hold" / name
        solution = handed_in(CHEAPEST, folder / "solution")
        endless = handed_in(CHEAPEST, folder / "endless", ENDLESS)
        grade(python, solution, CHEAPEST, folder / "solution")  # warm: the reference, the caches
        results[name] = {"solution": grade(python, solution, CHEAPEST, folder / "solution")[0]}
        seconds, report = grade(python, endless, CHEAPEST, folder / "endless")
        results[name].update(endless=seconds, fault=report["fault"], score=report["score"])
        print("hold", name, results[name], flush=True)
    return results


def class_part(work, args):
    results = {}
    for name, python in installations(args).items():
        course = work / "class" / name
        (course / "submitted").mkdir(parents=True)
        for i in range(args.class_size):
            handed_in(CHEAPEST, course / "submitted" / f"s{i:02d}" / CHEAPEST)
        autograder = str(Path(python).parent / "autograder")
        started = time.perf_counter()
        done = subprocess.run([autograder, "grade-all", "--root", str(course), "--workers", "2"],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{name} grade-all: {done.stderr.strip()[-500:]}")
        results[name] = {"seconds": seconds, "per_submission": seconds / args.class_size}
        print("class", name, results[name], flush=True)
    if args.nbgrader_cli:
        results["nbgrader autograde"] = nbgrader_cli(work / "class" / "nbgrader", args.class_size)
        print("class nbgrader autograde", results["nbgrader autograde"], flush=True)
    return results


def nbgrader_cli(course, size):
    """The same class graded by nbgrader's own `nbgrader autograde`, one submission after another, with this
    checkout's configuration (the same pipeline, jail and reference); the assignment released first, untimed."""
    (course / "submitted").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(ROOT / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.source_directory = {str(SOLUTIONS)!r}\n")
    for i in range(size):
        handed_in(CHEAPEST, course / "submitted" / f"s{i:02d}" / CHEAPEST)
    nbgrader = str(Path(sys.executable).parent / "nbgrader")
    subprocess.run([nbgrader, "generate_assignment", CHEAPEST, "--force"], cwd=course, check=True, capture_output=True)
    started = time.perf_counter()
    done = subprocess.run([nbgrader, "autograde", CHEAPEST], cwd=course, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader autograde: {done.stderr.strip()[-500:]}")
    return {"seconds": seconds, "per_submission": seconds / size}


def imports_part(work, args):
    results = {}
    for name, python in installations(args).items():
        done = subprocess.run([python, "-I", "-X", "importtime", "-c",
                               "import autograder.grader.hidden_tests.scorer, autograder.grader.hidden_tests.vocabulary"],
                              capture_output=True, text=True)
        cumulative = {}
        for line in done.stderr.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[1].isdigit():
                cumulative[parts[2].strip()] = int(parts[1])
        top = {k: v for k, v in cumulative.items() if not k.startswith(" ") and "." not in k}
        started = time.perf_counter()
        subprocess.run([python, "-I", "-c", "import autograder.grader.hidden_tests.scorer, autograder.grader.hidden_tests.vocabulary"], check=True)
        results[name] = {"seconds": time.perf_counter() - started,
                         "nbgrader": "nbgrader" in top, "nbformat": "nbformat" in top,
                         "nbgrader_ms": top.get("nbgrader", 0) / 1000, "nbformat_ms": top.get("nbformat", 0) / 1000}
        print("imports", name, results[name], flush=True)
    return results


def machine():
    versions = host.versions()
    return (f"{os.cpu_count()} cores, {platform.machine()}; device: {host.device()}; Python {versions['python']}, "
            f"TensorFlow {versions.get('tensorflow')}, Keras {versions.get('keras')}, nbgrader {versions.get('nbgrader')}")


def report(args, parts):
    lines = [f"# Benchmark results\n\nMeasured {datetime.date.today()} by `benchmarks/benchmark.py "
             f"--repeat {args.repeat} --class-size {args.class_size}`"
             + (" --before <the virtualenv of the commit before>" if args.before else "") + ".\n",
             f"Machine: {machine()}.\n"]
    solutions = parts.get("solutions")
    if solutions:
        lines += ["## The solutions, graded with the jail\n",
                  "| worksheet | before (s) | after (s) | after / before | reference run, first grade (s) | "
                  "scoring process peak (GB) |", "|---|---:|---:|---:|---:|---:|"]
        for assignment_id, r in solutions.items():
            before = statistics.median(r["before"]) if "before" in r else None
            after = statistics.median(r["after"])
            lines.append(f"| {assignment_id} | {before and f'{before:.1f}' or '-'} | {after:.1f} | "
                         f"{f'{after / before:.3f}' if before else '-'} | {r.get('after first', 0):.1f} | "
                         f"{r.get('peak', 0) / 1e9:.2f} |")
        if all("before" in r for r in solutions.values()):
            b = sum(statistics.median(r["before"]) for r in solutions.values())
            a = sum(statistics.median(r["after"]) for r in solutions.values())
            lines.append(f"| **all** | {b:.1f} | {a:.1f} | {a / b:.3f} | | |")
        lines.append("")
    hold = parts.get("hold")
    if hold:
        lines += ["## An endless loop against the solution's time (worksheet 2)\n",
                  "| installation | solution (s) | endless loop held the worker (s) | ratio | outcome |",
                  "|---|---:|---:|---:|---|"]
        for name, r in hold.items():
            lines.append(f"| {name} | {r['solution']:.1f} | {r['endless']:.1f} | {r['endless'] / r['solution']:.1f} | "
                         f"{r['score']:g} points; {r['fault'] or 'no fault'} |")
        lines.append("")
    classes = parts.get("class")
    if classes:
        lines += [f"## A class of {args.class_size} (worksheet 2, `grade-all --workers 2`, from scratch)\n",
                  "| installation | wall time (s) | per submission (s) | speed-up over `nbgrader autograde` |",
                  "|---|---:|---:|---:|"]
        cli = classes.get("nbgrader autograde", {}).get("seconds")
        for name, r in classes.items():
            speedup = f"{cli / r['seconds']:.2f}x" if cli else "-"
            lines.append(f"| {name} | {r['seconds']:.1f} | {r['per_submission']:.1f} | {speedup} |")
        lines.append("")
    imports = parts.get("imports")
    if imports:
        lines += ["## What the scoring process imports before it scores\n",
                  "| installation | import time (s) | imports nbgrader | imports nbformat |", "|---|---:|---|---|"]
        for name, r in imports.items():
            lines.append(f"| {name} | {r['seconds']:.2f} | {'yes' if r['nbgrader'] else 'no'} "
                         f"({r['nbgrader_ms']:.0f} ms) | {'yes' if r['nbformat'] else 'no'} ({r['nbformat_ms']:.0f} ms) |")
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", metavar="PYTHON", help="the interpreter of the installation to compare with")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--class-size", type=int, default=16)
    parser.add_argument("--nbgrader-cli", action="store_true",
                        help="also grade the class with `nbgrader autograde` (one at a time), the speed-ups' baseline")
    parser.add_argument("--parts", nargs="+", default=["solutions", "hold", "class", "imports"])
    parser.add_argument("--worksheets", nargs="+", metavar="ID", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    args.worksheets = args.worksheets or worksheet_ids()
    parts = {}
    with tempfile.TemporaryDirectory(prefix="autograder-bench-") as tmp:
        for part in args.parts:
            parts[part] = globals()[f"{part}_part"](Path(tmp), args)
    args.out.write_text(report(args, parts))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
