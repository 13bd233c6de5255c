"""Timing of the four solution notebooks: execution, grading, and parallel class grading.

    .venv/bin/python benchmarks/benchmark.py [--repeat N] [--out benchmarks/RESULTS.md]

For each solution it measures the wall time of plain
`jupyter nbconvert --to notebook --execute` and of `autograder grade` on the
same notebook (hidden tests included in both), interleaved run by run so that
a slow spell of the machine hits both, and the grading overhead as the median
of the per-pair differences.
Then it grades 8 submissions (4 students x worksheets 01 and 02) with
`grade-all --workers 1` and `--workers 2` from scratch. Timings are medians
over --repeat runs. It writes a markdown table with the machine described.
Run it on an otherwise idle machine.
"""

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder import host  # noqa: E402
from autograder.course import SOLUTIONS, worksheet_ids  # noqa: E402
from autograder.demo import student_copy  # noqa: E402

BIN = Path(sys.executable).parent


def timed(command, **kwargs):
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - started


def execute_seconds(assignment_id, work):
    folder = work / f"exec-{assignment_id}"
    shutil.copytree(SOLUTIONS / assignment_id, folder, dirs_exist_ok=True)
    return timed([BIN / "jupyter", "nbconvert", "--to", "notebook", "--execute",
                  "--ExecutePreprocessor.timeout=1800", "--output", "executed.ipynb",
                  folder / f"{assignment_id}.ipynb"])


def grade_seconds(assignment_id):
    return timed([BIN / "autograder", "grade", SOLUTIONS / assignment_id / f"{assignment_id}.ipynb", "--quiet"])


def class_grading_seconds(workers, work):
    import nbformat

    root = work / f"class-{workers}"
    shutil.rmtree(root, ignore_errors=True)
    for student in ("s1", "s2", "s3", "s4"):
        for assignment_id in ("01_handdrawn_digits", "02_fashion_mnist"):
            folder = root / "submitted" / student / assignment_id
            shutil.copytree(ROOT / "assignments" / assignment_id, folder)
            nb = nbformat.read(SOLUTIONS / assignment_id / f"{assignment_id}.ipynb", as_version=4)
            nbformat.write(student_copy(nb), folder / f"{assignment_id}.ipynb")
    return timed([BIN / "autograder", "grade-all", "--root", root, "--workers", str(workers)])


def machine():
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    if Path("/proc/meminfo").is_file():
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    versions = host.versions()
    return (f"{os.cpu_count()} cores ({cpu}){memory}; device: {host.device()}; "
            f"Python {versions['python']}, TensorFlow {versions.get('tensorflow')}, "
            f"Keras {versions.get('keras')}, nbgrader {versions.get('nbgrader')}; {platform.system()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    host.configure_kernels()

    rows, total_grade = [], 0.0
    with tempfile.TemporaryDirectory(prefix="benchmark-") as tmp:
        work = Path(tmp)
        for assignment_id in worksheet_ids():
            pairs = [(execute_seconds(assignment_id, work), grade_seconds(assignment_id)) for _ in range(args.repeat)]
            execute = statistics.median(e for e, _ in pairs)
            grade = statistics.median(g for _, g in pairs)
            overhead = statistics.median(g - e for e, g in pairs)
            total_grade += grade
            rows.append((assignment_id, execute, grade, overhead))
            print(f"{assignment_id}: execute {execute:.1f} s, grade {grade:.1f} s, pairs {pairs}", flush=True)
        sequential = class_grading_seconds(1, work)
        parallel = class_grading_seconds(2, work)
        print(f"grade-all, 8 submissions: 1 worker {sequential:.1f} s, 2 workers {parallel:.1f} s", flush=True)

    lines = [
        "# Benchmark results",
        "",
        f"Measured {datetime.date.today()} by `benchmarks/benchmark.py --repeat {args.repeat}` "
        f"(medians of {args.repeat} run{'s' if args.repeat > 1 else ''}).",
        "",
        f"Machine: {machine()}.",
        "",
        "## Solution notebooks",
        "",
        "| worksheet | `nbconvert --execute` (s) | `autograder grade` (s) | overhead, median of pairs (s) | overhead |",
        "|---|---:|---:|---:|---:|",
    ]
    for assignment_id, execute, grade, overhead in rows:
        lines.append(f"| {assignment_id} | {execute:.1f} | {grade:.1f} | {overhead:+.1f} | {100 * overhead / execute:+.1f}% |")
    total_exec = sum(r[1] for r in rows)
    total_overhead = sum(r[3] for r in rows)
    lines += [
        f"| **all four** | {total_exec:.1f} | {total_grade:.1f} | {total_overhead:+.1f} | {100 * total_overhead / total_exec:+.1f}% |",
        "",
        "Targets on 2 CPU cores: overhead at most 5% per notebook; all four graded in at most 5 minutes "
        f"(measured: {total_grade / 60:.1f} min).",
        "",
        "## Class grading",
        "",
        "8 submissions (4 students x worksheets 01 and 02, full solutions), graded from scratch:",
        "",
        "| `grade-all` | wall time (s) | speed-up |",
        "|---|---:|---:|",
        f"| `--workers 1` | {sequential:.1f} | 1.00x |",
        f"| `--workers 2` | {parallel:.1f} | {sequential / parallel:.2f}x |",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
