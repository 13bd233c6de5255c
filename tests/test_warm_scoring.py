"""The scoring process starts beside the kernel and is handed the exports after it (issue 25)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from traitlets.config import Config

from autograder.grader.hidden_tests.kinds import ScoringTooSlow
from autograder.grader.hidden_tests.launch import (
    PlanHiddenTests,
    ScoreHiddenTests,
    ScoringProcess,
    StartScoringProcess,
)
from autograder.run.jail import jail_problem
from autograder.run.record import RUN_PARENT_VARIABLE, Record, build_steps, run_steps

JAIL = "none" if jail_problem() else "bwrap"


def plans_for(kept, block="hidden.expect_value(answer, 42)"):
    return {"t": {"block": block, "seed": 0, "folder": str(kept / "00"), "where": "test t"}}


def test_the_scoring_process_warms_up_before_any_export_exists_and_scores_what_it_is_handed(tmp_path):
    kept = tmp_path / "kept"
    kept.mkdir()
    process = ScoringProcess(plans_for(kept), kept, jail=JAIL)
    try:
        time.sleep(0.5)  # the kernel runs meanwhile; its exports are kept only afterwards
        (kept / "00" / "out").mkdir(parents=True)
        np.save(kept / "00" / "out" / "answer.npy", np.array(42))
        assert process.ready()
        answer = process.score(timeout=60)
        assert process.proc.returncode == 0  # it ended: no later student's exports can ever be handed to it
    finally:
        process.close()
    assert answer["verdicts"]["t"]["failures"] == []
    assert answer["start_seconds"] > 0 and set(answer["check_seconds"]) == {"t"}
    assert not Path(process._tmp.name).exists()


def test_a_scoring_process_not_ready_in_time_is_the_hosts_fault_and_never_the_students(tmp_path):
    """Until it says it is ready it has read nothing of the student's: a slow start is the host's, and says so."""
    kept = tmp_path / "kept"
    kept.mkdir()
    process = ScoringProcess(plans_for(kept), kept, jail=JAIL)
    try:
        assert not process.ready(0)
        assert str(process.start_failure(0)) == "the scoring process could not start (not ready after 0 s)"
    finally:
        process.close()


def hidden_test_notebook():
    cell = new_code_cell("### BEGIN HIDDEN TESTS\nhidden.expect_value(answer, 42)\n### END HIDDEN TESTS",
                         metadata={"nbgrader": {"grade": True, "locked": True, "solution": False,
                                                "grade_id": "t", "points": 1}})
    config = Config()
    config.PlanHiddenTests.secret = "s"
    config.SandboxedExecute.sandbox = JAIL
    return new_notebook(cells=[cell]), config, {"nbgrader": {"assignment": "a", "student": "s", "notebook": "n"}}


def kill_the_warm_process(nb, resources):
    """What a student's kernel could do where no control group shares the machine: starve the scoring process
    warming up beside it, or have the host's OOM killer take it."""
    process = Record.of(resources).scoring_process
    process.sandbox.kill(process.proc)
    process.proc.wait()
    return nb, resources


def test_a_warm_scoring_process_lost_beside_the_kernel_is_started_again_and_the_zero_stays_a_zero():
    """Red team: 100 busy `setsid` children in a kernel without control groups kept the warm process from getting
    ready within its limit; the run became a host fault, then "could not process": no score for a notebook that
    earned 0. Now the kernel can cost it only its warm start."""
    nb, config, resources = hidden_test_notebook()
    steps = build_steps([PlanHiddenTests, StartScoringProcess], config=config) + [kill_the_warm_process] + \
        build_steps([ScoreHiddenTests], config=config)
    run_steps(nb, resources, steps)
    record = resources["autograder"]
    assert record.fault is None
    assert record.verdicts["t"].failures and "answer" in record.verdicts["t"].failures[0]


def test_scoring_past_its_budget_once_handed_the_exports_is_the_students(tmp_path):
    kept = tmp_path / "kept"
    (kept / "00" / "out").mkdir(parents=True)
    np.save(kept / "00" / "out" / "answer.npy", np.zeros(8 * 2**20))  # 64 MB to read and compare
    process = ScoringProcess(plans_for(kept), kept, jail=JAIL)
    try:
        assert process.ready()
        with pytest.raises(ScoringTooSlow, match="scoring your work took over 0.001 s"):
            process.score(timeout=0.001)
    finally:
        process.close()


class KeepTheProcess:
    """A step that notes the run's started scoring process, then ends the run as a failed kernel would."""

    def __init__(self):
        self.seen = []

    def __call__(self, nb, resources):
        self.seen.append(Record.of(resources).scoring_process)
        raise RuntimeError("the run ends before scoring")


def test_a_warm_scoring_process_still_not_ready_after_the_kernel_is_the_hosts_fault():
    """Once the kernel and all it started are gone, nothing of the student's competes with it: a process still
    not ready then is the host's fault (not started again: that would double the wait)."""
    nb, config, resources = hidden_test_notebook()
    config.ScoreHiddenTests.startup_timeout = 0
    steps = build_steps([PlanHiddenTests, StartScoringProcess, ScoreHiddenTests], config=config)
    run_steps(nb, resources, steps)
    fault = resources["autograder"].fault
    assert (fault.owner, fault.reason) == ("host", "the scoring process could not start (not ready after 0 s)")


def test_a_run_that_ends_before_scoring_leaves_no_scoring_process_and_no_folder():
    nb, config, resources = hidden_test_notebook()
    keep = KeepTheProcess()
    steps = build_steps([PlanHiddenTests, StartScoringProcess], config=config) + [keep]
    with pytest.raises(RuntimeError, match="before scoring"):
        run_steps(nb, resources, steps)
    process = keep.seen[-1]
    assert process is not None and process.proc.returncode is not None
    assert not Path(process._tmp.name).exists()
    assert resources["autograder"].scoring_process is None


def test_the_scoring_folder_lies_in_the_run_parent_that_the_worker_removes(tmp_path, monkeypatch):
    """A grading process killed at its limit while the kernel ran left the warm process's folder, with the job
    naming the hidden checks, in /tmp; the worker removes its run parent however the process ends."""
    monkeypatch.setenv(RUN_PARENT_VARIABLE, str(tmp_path))
    kept = tmp_path / "kept"
    kept.mkdir()
    process = ScoringProcess(plans_for(kept), kept, jail=JAIL)
    try:
        assert Path(process._tmp.name).parent == tmp_path
    finally:
        process.close()


def test_reading_a_notebook_builds_no_iri_grammar():
    """jsonschema >= 4.25 imports rfc3987_syntax, which builds ~35 Lark parsers at import time (0.7 s here, in
    every process that reads a notebook: `grade`, each grading process, nbconvert); pinned below it until
    python-jsonschema/jsonschema#1428 is fixed upstream (pyproject.toml)."""
    loaded = subprocess.run([sys.executable, "-c", "import sys, nbformat; print('rfc3987_syntax' in sys.modules)"],
                            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert loaded.stdout.strip() == "False"


def launched(code):
    """A `ScoringProcess` whose process is ``code`` (a Python program), to see how the grader reads it."""
    process = ScoringProcess.__new__(ScoringProcess)
    process.early_stderr = b""
    process.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
    return process


def test_a_warm_up_that_logs_much_is_never_blocked_on_its_pipe():
    """Red team: nothing read the scoring process's stderr until it was handed the exports; a warm-up that
    logged more than a pipe holds (64 KB) would have hung there, and its run become a host fault."""
    process = launched("import sys\nsys.stderr.write('x' * 200_000)\nsys.stderr.flush()\nprint('ready', flush=True)\n"
                       "sys.stdin.readline()")
    try:
        assert process.ready(20)
        assert len(process.early_stderr) == 65536
    finally:
        process.proc.kill()
        process.proc.communicate()


def test_a_process_that_ended_before_it_was_ready_is_known_to_have_ended():
    """Red team: `poll` right after the end of its output could still say it ran, which made a process that died
    beside the kernel a host fault instead of a process started again."""
    process = launched("import sys; sys.exit(3)")
    assert not process.ready(20)
    assert process.proc.poll() == 3
