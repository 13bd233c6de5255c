"""What grading costs: the five solutions, trusted scoring and the jail, class grading with Dask.

    .venv/bin/python benchmarks/benchmark.py [--repeat N] [--class-size 16] [--parts solutions trusted class]
                                             [--worksheets ID ...] [--out benchmarks/RESULTS.md]

1. solutions: `autograder grade` on each worksheet's solution (hidden tests
   removed, as a student hands it in): the time of all five together.
2. trusted: each solution graded three ways, interleaved run by run so a
   slow spell hits all three: hidden tests in the student's kernel as plain
   nbgrader runs them (no jail, no grader process); trusted scoring in a
   fresh grader process; trusted scoring and the bubblewrap jail. The cost
   of trusted scoring is the median difference of the first two, in percent;
   the jail's, the median difference of the last two, in seconds.
3. class: --class-size submissions of the cheapest worksheet graded by the
   real `nbgrader autograde` CLI one after the other, by `grade-all` with 1
   and 2 local Dask workers, and by `grade-all --scheduler` on a `dask
   scheduler` with two `dask worker` processes on this machine.

Run it on an otherwise idle machine; it writes a markdown report.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder import host, pipeline  # noqa: E402
from autograder.grader.course import ASSIGNMENTS, CONFIG_FILE, SOLUTIONS, worksheet_ids  # noqa: E402
from autograder.grader.demo import student_copy  # noqa: E402
from autograder.grader.grading import grade_submission  # noqa: E402

BIN = Path(sys.executable).parent
CHEAPEST = "02_fashion_mnist"


def handed_in(assignment_id, folder):
    """The solution as a student hands it in, with the files beside it."""
    shutil.copytree(ASSIGNMENTS / assignment_id, folder, dirs_exist_ok=True)
    nb = student_copy(nbformat.read(SOLUTIONS / assignment_id / f"{assignment_id}.ipynb", as_version=4))
    nbformat.write(nb, folder / f"{assignment_id}.ipynb")
    return folder / f"{assignment_id}.ipynb"


def in_kernel_sources(work):
    """The solutions with each hidden block importing its checks, so the kernel itself can run it."""
    target = work / "in-kernel-solutions"
    shutil.copytree(SOLUTIONS, target)
    for path in target.glob("*/*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            cell.source = cell.source.replace("### BEGIN HIDDEN TESTS\n",
                                              "### BEGIN HIDDEN TESTS\nfrom autograder.grader import hidden\n")
        nbformat.write(nb, path)
    return target


def variant(name):
    """nbgrader settings for one way of grading."""
    from traitlets.config import Config

    config = Config()
    if name == "in kernel":
        execution, gradebook = pipeline.split()
        config.Autograde.autograde_preprocessors = [
            s for s in execution if not s.startswith("autograder.grader.")] + gradebook
        config.SandboxedExecute.run_hidden_tests = True
        config.SandboxedExecute.sandbox = "none"
    elif name == "trusted":
        config.SandboxedExecute.sandbox = "none"
    return config


def grade_seconds(path, assignment_id, solutions=SOLUTIONS, config=None):
    started = time.perf_counter()
    report = grade_submission(path, assignment_id, solutions=solutions, config=config,
                              sandbox=config is None or config.SandboxedExecute.get("sandbox") != "none")
    seconds = time.perf_counter() - started
    assert report["score"] == report["max_score"], (assignment_id, report["cells"])
    return seconds


def solutions_part(work, repeat, ids):
    rows = {}
    for assignment_id in ids:
        path = handed_in(assignment_id, work / f"solution-{assignment_id}")
        rows[assignment_id] = statistics.median(grade_seconds(path, assignment_id) for _ in range(repeat))
        print(f"{assignment_id}: {rows[assignment_id]:.1f} s", flush=True)
    return rows


def trusted_part(work, repeat, ids):
    sources = in_kernel_sources(work)
    rows = {}
    for assignment_id in ids:
        path = handed_in(assignment_id, work / f"trusted-{assignment_id}")
        runs = []
        for _ in range(repeat):
            runs.append((grade_seconds(path, assignment_id, sources, variant("in kernel")),
                         grade_seconds(path, assignment_id, config=variant("trusted")),
                         grade_seconds(path, assignment_id)))
        rows[assignment_id] = runs
        print(f"{assignment_id}: in kernel / trusted / trusted + jail: {runs}", flush=True)
    return rows


def class_course(root, size):
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    shutil.copy(CONFIG_FILE, root / CONFIG_FILE.name)  # rooted where it lies: a course of its own
    shutil.copytree(SOLUTIONS / CHEAPEST, root / "solutions" / CHEAPEST)
    for i in range(size):
        handed_in(CHEAPEST, root / "submitted" / f"s{i:02d}" / CHEAPEST)
    return root


def timed(command, cwd, env=None):
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def class_part(work, size):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    rows = {}
    root = class_course(work / "class-nbgrader", size)
    subprocess.run([BIN / "nbgrader", "generate_assignment", CHEAPEST, "--force"], cwd=root, env=env, check=True,
                   capture_output=True)
    rows["`nbgrader autograde` (the CLI, one at a time)"] = timed([BIN / "nbgrader", "autograde", CHEAPEST],
                                                                  root, env)
    for workers in (1, 2):
        root = class_course(work / f"class-{workers}", size)
        rows[f"`grade-all --workers {workers}`"] = timed(
            [BIN / "autograder", "grade-all", "--root", root, "--workers", str(workers)], root, env)
    root = class_course(work / "class-scheduler", size)
    scheduler_file = work / "scheduler.json"
    procs = [subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--dashboard-address", "127.0.0.1:0", "--scheduler-file", scheduler_file],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    while not scheduler_file.is_file():
        time.sleep(0.5)
    address = json.loads(scheduler_file.read_text())["address"]
    for i in range(2):
        folder = work / f"worker-{i}"
        folder.mkdir()
        procs.append(subprocess.Popen([BIN / "dask", "worker", address, "--nthreads", "1", "--local-directory",
                                       folder, "--dashboard-address", "127.0.0.1:0"], cwd=folder,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    try:
        rows["`grade-all --scheduler` (2 `dask worker` processes)"] = timed(
            [BIN / "autograder", "grade-all", "--root", root, "--scheduler", address], root, env)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
    for name, seconds in rows.items():
        print(f"{name}: {seconds:.1f} s", flush=True)
    return rows


def machine():
    cpu = "unknown CPU"
    if Path("/proc/cpuinfo").is_file():
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = match.group(1) if match else cpu
    memory = ""
    if Path("/proc/meminfo").is_file():
        memory = f", {int(Path('/proc/meminfo').read_text().split()[1]) / 2**20:.0f} GiB RAM"
    versions = host.versions()
    return (f"{os.cpu_count()} cores ({cpu}){memory}; device: {host.device()}; "
            f"Python {versions['python']}, TensorFlow {versions.get('tensorflow')}, Keras {versions.get('keras')}, "
            f"nbgrader {versions.get('nbgrader')}; {platform.system()}")


def report(args, solutions, trusted, classes):
    lines = ["# Benchmark results", "",
             f"Measured {datetime.date.today()} by `benchmarks/benchmark.py --repeat {args.repeat} "
             f"--class-size {args.class_size}` (medians of {args.repeat} runs).", "",
             f"Machine: {machine()}.", ""]
    if solutions:
        total = sum(solutions.values())
        lines += ["## The five solutions", "",
                  "`autograder grade` (the jail on, hidden tests scored outside the kernel) on each solution:", "",
                  "| worksheet | seconds |", "|---|---:|",
                  *[f"| {a} | {s:.1f} |" for a, s in solutions.items()],
                  f"| **all {len(solutions)}** | **{total:.1f}** ({total / 60:.1f} min; target 4 min) |", ""]
    if trusted:
        lines += ["## Trusted scoring and the jail", "",
                  "| worksheet | hidden tests in the kernel (s) | trusted scoring (s) | + jail (s) | "
                  "trusted scoring, median of pairs | jail, median of pairs |", "|---|---:|---:|---:|---:|---:|"]
        costs, jails = [], []
        for a, runs in trusted.items():
            base, scored, jailed = (statistics.median(r[i] for r in runs) for i in range(3))
            cost = statistics.median((r[1] - r[0]) / r[0] for r in runs)
            jail = statistics.median(r[2] - r[1] for r in runs)
            costs.append(cost)
            jails.append(jail)
            lines.append(f"| {a} | {base:.1f} | {scored:.1f} | {jailed:.1f} | {100 * cost:+.1f}% | {jail:+.1f} s |")
        totals = [sum(statistics.median(r[i] for r in runs) for runs in trusted.values()) for i in range(3)]
        lines.append(f"| **all {len(trusted)}** | {totals[0]:.1f} | {totals[1]:.1f} | **{totals[2]:.1f}** "
                     f"({totals[2] / 60:.1f} min; target 4 min) | | |")
        lines += ["", f"Targets: trusted scoring at most +10% per worksheet (worst {100 * max(costs):+.1f}%), "
                  f"the jail at most 2 s per notebook (worst {max(jails):+.1f} s). The last column is "
                  "`autograder grade` as it grades by default.", ""]
    if classes:
        first = next(iter(classes.values()))
        lines += ["## Class grading", "", f"{args.class_size} submissions of {CHEAPEST} (full solutions), "
                  "graded from scratch:", "", "| how | wall time (s) | speed-up |", "|---|---:|---:|",
                  *[f"| {how} | {s:.1f} | {first / s:.2f}x |" for how, s in classes.items()], ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--class-size", type=int, default=16)
    parser.add_argument("--parts", nargs="+", default=["solutions", "trusted", "class"])
    parser.add_argument("--worksheets", nargs="+", metavar="ID", help="for solutions and trusted (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    host.configure_kernels()
    with tempfile.TemporaryDirectory(prefix="benchmark-") as tmp:
        work = Path(tmp)
        ids = args.worksheets or worksheet_ids()
        solutions = solutions_part(work, args.repeat, ids) if "solutions" in args.parts else {}
        trusted = trusted_part(work, args.repeat, ids) if "trusted" in args.parts else {}
        classes = class_part(work, args.class_size) if "class" in args.parts else {}
    args.out.write_text(report(args, solutions, trusted, classes))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
