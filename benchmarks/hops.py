"""The hops of one grading run between the coordinating process and its grading process (issue 24).

    python benchmarks/hops.py            # the table for benchmarks/RESULTS.md

A notebook crosses from the process that runs nbgrader's converter to the
grading process (`worker.execute`) and back. Release 0.2 nested it as a
string inside the job's JSON, and read the executed notebook twice on the way
back: once whole, only to learn from its record who owns a fault
(`claimed_host_fault`), then again for nbgrader. Now the notebook travels in
a file of its own and the record beside it. This replays both sequences of
serialisations, as the two versions' code performs them, in one process, on
notebooks whose outputs hold 1 and 20 MB (the course caps a notebook's
outputs at 20 MB), and prints the median of 5 timings of each.
"""

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

CONFIG = {"SandboxedExecute": {"sandbox": "bwrap"}, "GradingRun": {"steps": []}}
RECORD = {"version": 1, "execution": {"fault": None, "seconds": 1.0}, "hidden": {}, "flags": [], "notes": []}


def notebook(megabytes):
    line = "epoch 1/1 - loss: 0.1234 - accuracy: 0.9876\n"
    cells = [new_code_cell(f"print({i})", outputs=[new_output("stream", name="stdout",
                                                               text=line * (megabytes * 2**20 // len(line) // 20))])
             for i in range(20)]
    return new_notebook(cells=cells)


def release_0_2(nb, tmp):
    """Payload.of, the job file, the child's read and write, the parent's two reads (0.2)."""
    payload = nbformat.writes(nb)
    job = tmp / "job.json"
    job.write_text(json.dumps({"notebook": payload, "config": CONFIG, "path": str(tmp)}))
    child = nbformat.reads(json.loads(job.read_text())["notebook"], as_version=4)  # the grading process
    child.metadata["autograder"] = RECORD
    (tmp / "out.ipynb").write_text(nbformat.writes(child))
    answer = (tmp / "out.ipynb").read_text()
    json.loads(answer).get("metadata", {}).get("autograder")  # claimed_host_fault
    return nbformat.reads(answer, as_version=4)  # executed_notebook


def now(nb, tmp):
    """The same crossing now: the notebook in its own file, the record beside the executed one."""
    payload = nbformat.writes(nb)
    job = tmp / "job.json"
    job.with_suffix(".ipynb").write_text(payload)
    job.write_text(json.dumps({"config": CONFIG, "path": str(tmp)}))
    json.loads(job.read_text())  # the grading process
    child = nbformat.read(job.with_suffix(".ipynb"), as_version=4)
    child.metadata["autograder"] = RECORD
    (tmp / "out.record.json").write_text(json.dumps(child.metadata["autograder"]))
    (tmp / "out.ipynb").write_text(nbformat.writes(child))
    answer = (tmp / "out.ipynb").read_text()
    json.loads((tmp / "out.record.json").read_text())  # claimed_host_fault
    return nbformat.reads(answer, as_version=4)  # executed_notebook


def median_seconds(fn, nb, repeats=5):
    times = []
    with tempfile.TemporaryDirectory(prefix="autograder-hops-") as tmp:
        for _ in range(repeats):
            started = time.perf_counter()
            fn(nb, Path(tmp))
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    print("| notebook outputs | release 0.2: notebook-sized (de)serialisations, median s | now | saved |")
    print("|---|---|---|---|")
    for megabytes in (1, 20):
        nb = notebook(megabytes)
        old, new = median_seconds(release_0_2, nb), median_seconds(now, nb)
        print(f"| {megabytes} MB | 7 (two of them JSON-in-JSON), {old:.3f} | 4, {new:.3f} | {old - new:.3f} s "
              f"({1 - new / old:.0%}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
