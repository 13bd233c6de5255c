"""Issue 25's measurements on one grading host, GPU or CPU, within a time budget: what a lent GPU machine is
asked for, in one call (`benchmarks/gpu_measure.sh --session`, ../shared/gpu/README.md).

    python benchmarks/gpu_session.py [--budget 480] [--parts references class fixed workers]
                                     [--workers 16] [--class-size 16] [--sizes 1 4 8 16] [--worksheets ID ...]
                                     [--out DIR]

The parts, in this order (the issue's goals first); each says so and is left out when less time is left
than it needs, and no command runs past the budget:

1. references: each worksheet's reference solution graded one after another, as a grading host does
   before a class (`reference.judge` of `worker.execute`, in the jail), with the phases of each run
   (kernel start, cells, exports, the scoring after the kernel, the scoring process's warm-up beside it).
   Goal on an H100/H200: the six in 60 s.
2. class: --class-size students for each worksheet (a third each the solution, the untouched release and
   the worksheet's common mistake, `demo.COMMON_MISTAKES`) graded by `grade-all --workers N` (`--gpu`
   where this machine has one), from scratch: its reference runs included. Goal: 16 x 6 with 16 workers
   in 4 min, which puts 300 x 6 under 30 min.
3. fixed: the untouched release against a bare `nbconvert --execute` of it (`fixed_cost.graded`, with the
   host's reference made first), worksheet by worksheet while time is left. Goal: 4 s on a GPU host.
4. workers: throughput of N = --sizes workers on worksheet 2's solution: one course, its reference made
   first, then N new submissions graded by `grade-all --workers N` for each N (one wave each).

It prints a markdown report, also written to DIR/gpu_session.md with the raw figures in DIR/gpu_session.json.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import fixed_cost  # noqa: E402

from autograder.grader.classroom.demo import student_copy, with_mistake  # noqa: E402
from autograder.grader.course import ASSIGNMENTS, SOLUTIONS, worksheet_ids  # noqa: E402
from autograder.run.jail import has_gpu  # noqa: E402

CHEAPEST = "02_fashion_mnist"
KINDS = ("solution", "untouched", "mistake")


class Budget:
    """The seconds left of the session; a part that needs more is left out, and a command gets what is left."""

    def __init__(self, seconds):
        self.ends = time.monotonic() + seconds

    def left(self):
        return self.ends - time.monotonic()

    def allows(self, seconds, what, skipped):
        if self.left() >= seconds:
            return True
        skipped.append(f"{what}: left out, {self.left():.0f} s left of the budget and it needs about {seconds:.0f} s")
        print(skipped[-1], flush=True)
        return False


def machine():
    gpu = "none"
    if shutil.which("nvidia-smi"):
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        gpu = done.stdout.strip().replace("\n", "; ") or "none"
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    return (f"{platform.node()}, {os.cpu_count()} cores ({platform.processor() or platform.machine()}), GPU: {gpu}, "
            f"Keras backend {backend}, Python {platform.python_version()}")


def handed_in(assignment_id, kind, folder):
    """``folder`` as a student of ``kind`` hands it in: the release's files, and the notebook."""
    shutil.copytree(ASSIGNMENTS / assignment_id, folder, dirs_exist_ok=True)
    if kind != "untouched":
        nb = student_copy(nbformat.read(SOLUTIONS / assignment_id / f"{assignment_id}.ipynb", as_version=4))
        if kind == "mistake":
            nb = with_mistake(nb, assignment_id)
        nbformat.write(nb, folder / f"{assignment_id}.ipynb")


def grade_all(course, workers, budget):
    """``(seconds, outcomes, stderr)`` of `autograder grade-all` on ``course``, never past the budget."""
    command = [sys.executable, "-m", "autograder", "grade-all", "--root", str(course), "--workers", str(workers)]
    if has_gpu():
        command.append("--gpu")
    started = time.perf_counter()
    # A session of its own: cut at the budget's end, it is interrupted (its folders and control groups cleaned
    # up), then killed with its workers and their kernels if it has not ended within 20 s.
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            _, stderr = proc.communicate(timeout=max(1.0, budget.left()))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
            return time.perf_counter() - started, None, "cut at the budget's end"
    seconds = time.perf_counter() - started
    state = course / "grade-all.json"
    outcomes = json.loads(state.read_text()) if state.is_file() else None
    return seconds, outcomes, stderr


# --- the parts ----------------------------------------------------------------------------------------------

def references_part(ids, budget, skipped):
    """Each reference run one after another, in this process, as `reference.reference` makes it."""
    from autograder.grader.classroom.grade import throwaway_course
    from autograder.grader.classroom.reference import judge, reference_payload
    from autograder.grader.classroom.worker import execute

    rows = []
    for assignment_id in ids:
        if not budget.allows(90, f"references: {assignment_id}", skipped):
            break
        with throwaway_course(assignment_id) as (_, settings):
            payload = reference_payload(settings, assignment_id, max(30, budget.left()))
            started = time.perf_counter()
            answer = execute(payload)
            wall = time.perf_counter() - started
            verdict = judge(answer, payload.config)
        row = {"assignment": assignment_id, "wall": wall, "ok": verdict.ok, "score": verdict.score,
               "max_score": verdict.max_score, "reason": verdict.reason[:300]}
        if answer.notebook:
            phases, cells, checks, warm = fixed_cost.run_phases(json.loads(answer.notebook))
            row.update(phases=phases, warm=warm, slowest=sorted(cells, key=lambda c: -c[1])[:3], checks=checks)
        rows.append(row)
        print("references", assignment_id, f"{wall:.1f} s", f"{verdict.score:g}/{verdict.max_score:g}",
              "" if verdict.ok else verdict.reason[:200], flush=True)
    return rows


def class_part(ids, size, workers, budget, skipped, work):
    if not budget.allows(120, "class", skipped):
        return None
    course = work / "class"
    for assignment_id in ids:
        for i in range(size):
            handed_in(assignment_id, KINDS[i % 3], course / "submitted" / f"s{i:02d}" / assignment_id)
    seconds, outcomes, stderr = grade_all(course, workers, budget)
    result = {"workers": workers, "submissions": size * len(ids), "seconds": seconds,
              "estimate": next((line for line in stderr.splitlines() if "at the pace of the reference runs" in line), ""),
              "references": [line for line in stderr.splitlines() if ": the reference solution of " in line]}
    if outcomes is None:
        result["cut"] = stderr[-300:]
    else:
        by_kind = {}
        for key, outcome in outcomes.items():
            kind = KINDS[int(key.split("/")[0][1:]) % 3]
            got = (f"{outcome['score']:g}/{outcome['max_score']:g}" if outcome["status"] == "graded"
                   else outcome["status"])
            by_kind.setdefault(kind, {}).setdefault(key.split("/")[1], set()).add(got)
        result["scores"] = {kind: {a: sorted(s) for a, s in found.items()} for kind, found in by_kind.items()}
        result["graded"] = sum(o["status"] == "graded" for o in outcomes.values())
    print("class", json.dumps({k: v for k, v in result.items() if k != "scores"}), flush=True)
    return result


def fixed_part(ids, budget, skipped, work):
    rows = []
    for assignment_id in ids:
        if not budget.allows(120, f"fixed: {assignment_id}", skipped):
            break
        release = ASSIGNMENTS / assignment_id / f"{assignment_id}.ipynb"
        folder = work / "fixed" / assignment_id
        folder.mkdir(parents=True)
        fixed_cost.graded(release, folder)  # this host's reference verdict for `grade`, made and cached
        wall, phases, _, _, score, warm = fixed_cost.graded(release, folder)
        floor = fixed_cost.bare(release, folder)
        rows.append({"assignment": assignment_id, "graded": wall, "bare": floor, "phases": phases, "warm": warm,
                     "score": score})
        print("fixed", assignment_id, f"graded {wall:.1f} s, bare {floor:.1f} s", flush=True)
    return rows


def workers_part(sizes, budget, skipped, work):
    if not budget.allows(90, "workers: the reference run", skipped):
        return []
    course = work / "workers"
    handed_in(CHEAPEST, "solution", course / "submitted" / "warm" / CHEAPEST)
    seconds, outcomes, stderr = grade_all(course, 1, budget)  # the course's reference first, and one submission
    rows = [{"workers": 1, "submissions": 1, "seconds": seconds, "note": "with the course's reference run"}]
    for n in sizes:
        if not budget.allows(rows[-1]["seconds"] / max(rows[-1]["submissions"], 1) * 1.5 + 30, f"workers: N={n}",
                             skipped):
            break
        for i in range(n):
            handed_in(CHEAPEST, "solution", course / "submitted" / f"n{n:02d}s{i:02d}" / CHEAPEST)
        seconds, outcomes, stderr = grade_all(course, n, budget)
        graded = sum(1 for key, o in (outcomes or {}).items() if key.startswith(f"n{n:02d}s") and o["status"] == "graded")
        each = sorted(o["seconds"] for key, o in (outcomes or {}).items()
                      if key.startswith(f"n{n:02d}s") and o.get("seconds"))
        rows.append({"workers": n, "submissions": n, "graded": graded, "seconds": seconds,
                     "per_minute": 60 * graded / seconds if seconds else 0.0,
                     "median_grading": each[len(each) // 2] if each else None})
        print("workers", json.dumps(rows[-1]), flush=True)
    return rows


# --- the report ---------------------------------------------------------------------------------------------

def report(args, found, skipped):
    lines = [f"`benchmarks/gpu_session.py --budget {args.budget:g}`, {datetime.date.today()}: {machine()}", ""]
    references = found.get("references") or []
    if references:
        lines += ["### The references, one after another", "",
                  "| worksheet | wall (s) | score | " + " | ".join(fixed_cost.PHASES[2:]) + " | warm-up beside the kernel |",
                  "|---|---:|---:|" + "---:|" * (len(fixed_cost.PHASES) - 1)]
        for r in references:
            phases = r.get("phases") or {}
            lines.append(f"| {r['assignment']} | {r['wall']:.1f} | {r['score']:g}/{r['max_score']:g} | "
                         + " | ".join(f"{phases.get(p, 0):.1f}" for p in fixed_cost.PHASES[2:])
                         + (f" | {r['warm']:.1f} |" if r.get("warm") is not None else " | - |"))
        total = sum(r["wall"] for r in references)
        lines += ["", f"In all: {total:.1f} s for {len(references)} references (goal on an H100/H200: the six in 60 s).",
                  ""]
        for r in references:
            if not r["ok"]:
                lines.append(f"- {r['assignment']} short of full marks: {r['reason']}")
            lines.append(f"- {r['assignment']}: cells " + ", ".join(f"{n} {s:.1f}" for n, s in r.get("slowest", []))
                         + "; checks " + ", ".join(f"{n} {s:.2f}" for n, s in (r.get("checks") or {}).items()))
        lines.append("")
    klass = found.get("class")
    if klass:
        lines += ["### A class", "",
                  f"{klass['submissions']} submissions ({args.class_size} per worksheet: a third each the solution, "
                  f"the untouched release, the common mistake) by `grade-all --workers {klass['workers']}`, from "
                  f"scratch, the reference runs included: **{klass['seconds']:.1f} s** "
                  f"({klass['seconds'] / klass['submissions']:.1f} s a submission; at that pace 300 x 6 take "
                  f"{klass['seconds'] / klass['submissions'] * 1800 / 60:.0f} min). Goal: 16 x 6 with 16 workers in 4 min."]
        if klass.get("cut"):
            lines.append(f"Cut: {klass['cut']}")
        if klass.get("estimate"):
            lines.append(f"grade-all's estimate: {klass['estimate'].strip()}")
        for line in klass.get("references", []):
            lines.append(f"- {line.strip()}")
        for kind, by_id in (klass.get("scores") or {}).items():
            lines.append(f"- {kind}: " + "; ".join(f"{a} {', '.join(s)}" for a, s in sorted(by_id.items())))
        lines.append("")
    fixed = found.get("fixed") or []
    if fixed:
        lines += ["### The untouched release against a bare nbconvert", "",
                  "| worksheet | graded (s) | bare (s) | ratio | " + " | ".join(fixed_cost.PHASES) + " |",
                  "|---|---:|---:|---:|" + "---:|" * len(fixed_cost.PHASES)]
        for r in fixed:
            lines.append(f"| {r['assignment']} | {r['graded']:.1f} | {r['bare']:.1f} | {r['graded'] / r['bare']:.2f}x | "
                         + " | ".join(f"{r['phases'][p]:.1f}" for p in fixed_cost.PHASES) + " |")
        lines += ["", "Goal on a GPU host: 4 s.", ""]
    workers = found.get("workers") or []
    if len(workers) > 1:
        lines += ["### Workers sharing the host", "",
                  "| workers | submissions | graded | wall (s) | submissions a minute | median grading (s) |",
                  "|---:|---:|---:|---:|---:|---:|"]
        for r in workers[1:]:
            median = f"{r['median_grading']:.1f}" if r.get("median_grading") else "-"
            lines.append(f"| {r['workers']} | {r['submissions']} | {r['graded']} | {r['seconds']:.1f} | "
                         f"{r['per_minute']:.1f} | {median} |")
        lines += ["", f"(worksheet 2's solution; first the course's reference run and one submission, "
                      f"{workers[0]['seconds']:.1f} s, with one worker)", ""]
    if skipped:
        lines += ["Left out for the budget:", ""] + [f"- {s}" for s in skipped] + [""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=480, help="seconds for the whole session (default 480)")
    parser.add_argument("--parts", nargs="+", default=["references", "class", "fixed", "workers"],
                        choices=["references", "class", "fixed", "workers"])
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--class-size", type=int, default=16)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--worksheets", nargs="+", metavar="ID", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    ids = args.worksheets or worksheet_ids()
    budget, skipped, found = Budget(args.budget), [], {}
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="autograder-gpu-session-") as tmp:
        work = Path(tmp)
        if "references" in args.parts:
            found["references"] = references_part(ids, budget, skipped)
        if "class" in args.parts:
            found["class"] = class_part(ids, args.class_size, args.workers, budget, skipped, work)
        if "fixed" in args.parts:
            found["fixed"] = fixed_part(ids, budget, skipped, work)
        if "workers" in args.parts:
            found["workers"] = workers_part(args.sizes, budget, skipped, work)
    text = report(args, found, skipped)
    print("\n" + text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_session.md").write_text(text)
        (args.out / "gpu_session.json").write_text(json.dumps(found, indent=1, default=str))


if __name__ == "__main__":
    main()
