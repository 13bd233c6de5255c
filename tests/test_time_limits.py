"""One road for time: every limit a course setting, checked at start-up, each overrun named by its budget; the
run's record crossing processes whole and versioned; what nbgrader tells a graded notebook."""

import json
import time
from types import SimpleNamespace

import pytest
from test_execute import notebook, outputs, run
from tiny_course import make_course, tiny_solution
from traitlets.config import Config

from autograder.grader.classroom.time_limits import (
    TimeLimits,
    checked,
    with_host_budgets,
    with_run_limit,
)
from autograder.run.pipeline import GradingRun
from autograder.run.record import (
    HOST,
    STUDENT,
    Fault,
    HostFacts,
    HostFault,
    Record,
    RecordVersionError,
    Verdict,
    report,
)


def test_the_projects_limits_fit_and_name_their_settings(capsys):
    from autograder.grader.course import nbgrader_config

    said = []
    limits = checked(nbgrader_config(), said.append)
    assert said == []
    assert (limits.notebook, limits.scoring, limits.startup, limits.run) == (1200, 900, 30, 3600)


def test_limits_that_do_not_fit_are_said_at_start_up_naming_each_setting():
    config = with_run_limit(Config({"SandboxedExecute": {"notebook_timeout": 1200}}), 600)
    said = []
    limits = checked(config, said.append)
    assert limits.run == 600
    assert len(said) == 1 and said[0].startswith("warning: the course's time limits do not fit: ")
    for setting in ("SandboxedExecute.notebook_timeout, 1200 s", "ScoreHiddenTests.timeout, 900 s",
                    "ReferenceRun.startup_allowance, 30 s", "GradingRun.timeout, --timeout: 600 s",
                    "raise --timeout to 2130"):
        assert setting in said[0], said[0]


def test_the_flag_sets_the_setting_and_leaves_the_callers_config_alone():
    course = Config({"GradingRun": {"timeout": 1800}})
    assert TimeLimits.of(with_run_limit(course, 2400)).run == 2400
    assert TimeLimits.of(with_run_limit(course, None)).run == 1800
    assert course.GradingRun.timeout == 1800
    assert GradingRun(config=with_run_limit(course, 2400)).timeout == 2400


@pytest.mark.parametrize("plain", [False, True])
def test_a_hosts_budgets_are_returned_not_written_into_the_callers_config(plain):
    course = {"Execute": {"timeout": 600}, "SandboxedExecute": {"notebook_timeout": 1200}}
    config = json.loads(json.dumps(course)) if plain else Config(json.loads(json.dumps(course)))
    verdict = SimpleNamespace(budget=95.0, scoring_budget=40.0)
    host = with_host_budgets(config, verdict)
    assert (host["SandboxedExecute"]["notebook_timeout"], host["Execute"]["timeout"],
            host["ScoreHiddenTests"]["timeout"]) == (95, 95, 40)
    assert json.loads(json.dumps(config)) == course  # the caller's, untouched


def test_grade_says_when_its_timeout_cannot_hold_the_courses_budgets(tmp_path, capsys):
    """`grade --timeout 60` with a notebook budget of 1200 s: said before anything runs, naming each setting."""
    from autograder.grader.classroom.grade import throwaway_course

    course = make_course(tmp_path / "course", tiny_solution())
    said = []
    with throwaway_course("tiny", course / "solutions", timeout=60, say=said.append) as (_, settings):
        assert settings.GradingRun.timeout == 60
    assert said and "GradingRun.timeout, --timeout: 60 s" in said[0]


def test_the_budget_that_ran_out_is_in_the_record(tmp_path):
    nb = notebook(*["import time; time.sleep(2)"] * 10, ("pass", "last"))
    nb, execution = run(nb, tmp_path, sandbox="auto", notebook_timeout=5)
    assert execution.fault.budget == "notebook"
    assert report(nb)["fault_budget"] == "notebook"


def test_a_cell_that_ignores_its_limit_is_named_by_the_cells_budget(tmp_path):
    nb = notebook("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass", ("pass", "after"))
    started = time.monotonic()
    nb, execution = run(nb, tmp_path, sandbox="auto", timeout=2, interrupt_grace=1)
    assert time.monotonic() - started < 30
    assert (execution.fault.owner, execution.fault.budget) == (STUDENT, "cell")


def full_record():
    return Record(jail={"kind": "bwrap", "limits": "8 GiB"}, verdicts={"t": Verdict(["no"], ["f"], ["n"])},
                  fault=Fault(STUDENT, "the notebook used up its 5 s time budget", 3, "notebook"),
                  flags=["possibly trained on the test split"], notes=["repaired"],
                  host=HostFacts("host-1", "cpu", {"keras": "3"}), budget_seconds=120.0, seconds=12.5,
                  kernel_start_seconds=1.5, scoring_seconds=2.0, scoring_peak_bytes=10, grader_peak_bytes=20)


def test_the_record_crosses_processes_whole():
    metadata = json.loads(json.dumps(full_record().to_metadata()))
    assert metadata["version"] == 1
    back = Record.from_metadata(metadata)
    assert back.to_metadata() == metadata
    assert back.fault == full_record().fault and back.host == full_record().host


def test_a_record_of_release_0_2_still_reads_and_another_version_does_not():
    metadata = full_record().to_metadata()
    del metadata["version"]  # 0.2 wrote the same layout without one
    assert Record.from_metadata(metadata).fault.reason == "the notebook used up its 5 s time budget"
    with pytest.raises(RecordVersionError, match="version 2; this grader reads version 1"):
        Record.from_metadata({**metadata, "version": 2})


def test_a_grading_host_of_another_version_is_the_hosts_fault():
    class OtherVersion:
        def run(self, nb, resources):
            nb.metadata["autograder"] = {**full_record().to_metadata(), "version": 2}
            return nb, resources

    step = GradingRun(runner=OtherVersion())
    with pytest.raises(HostFault, match="another version of autograder"):
        step.preprocess(notebook("x = 1"), {})
    assert "version 2" in step.host_fault and HOST == "host"


@pytest.mark.parametrize("sandbox", ["auto", "none"])
def test_a_graded_kernel_sees_nbgraders_execution_variable(tmp_path, sandbox):
    """nbgrader documents NBGRADER_EXECUTION for notebooks that behave differently when graded."""
    probe = "import os; print(os.environ.get('NBGRADER_EXECUTION'))"
    nb, _ = run(notebook(probe), tmp_path, sandbox=sandbox)
    assert outputs(nb.cells[0]) == [("stream", None, "autograde\n")]
    nb, _ = run(notebook(probe), tmp_path, sandbox=sandbox, nbgrader_execution="validate")
    assert outputs(nb.cells[0]) == [("stream", None, "validate\n")]


def test_check_tells_the_kernel_it_validates(tmp_path):
    from autograder.visible_tests import check_config

    (tmp_path / "n.ipynb").write_text("{}")
    assert check_config(tmp_path / "n.ipynb").SandboxedExecute.nbgrader_execution == "validate"


def test_a_record_of_another_version_is_the_hosts_claim_which_it_then_checks():
    """Red team: a record of another version read as "an unreadable notebook", settled as the submission's."""
    from autograder.grader.classroom.worker import Answer, claimed_host_fault, settle

    answer = Answer("host-1", "cpu", notebook="{}", record={**full_record().to_metadata(), "version": 2})
    assert claimed_host_fault(answer).endswith("the grading host runs another version of autograder")
    failing = SimpleNamespace(ok=False, problem="its reference returned a record of version 2")
    settled = settle(answer, lambda: failing)
    assert settled.host_fault.startswith("the graded notebook's record is of version 2") and not settled.unprocessable


def test_nbgraders_own_autograde_checks_the_limits_too(caplog):
    """Red team: Formgrader's Autograde and `nbgrader autograde` start in `LocalRunner`, never in `grade`."""
    from autograder.grader.classroom.grade import LocalRunner

    config = Config({"SandboxedExecute": {"notebook_timeout": 4000}, "GradingRun": {"timeout": 1000}})
    with caplog.at_level("WARNING", logger="autograder"):
        LocalRunner(config, 1000)
    assert "SandboxedExecute.notebook_timeout, 4000 s" in caplog.text


def run_folders():
    import tempfile
    from pathlib import Path

    return {p.name for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith("autograder-run")}


def test_a_grading_process_killed_for_its_time_leaves_no_run_folder(tmp_path, monkeypatch):
    """Red team: the killed process never closed its run folder, and the student's files and exports stayed in
    /tmp (as root: open to the jail's group)."""
    from dataclasses import replace

    import nbformat
    from nbformat.v4 import new_code_cell

    from autograder.grader.classroom import reference
    from autograder.grader.classroom.grade import throwaway_course
    from autograder.grader.classroom.worker import execute

    course = make_course(tmp_path / "course", tiny_solution())
    (course / "solutions" / "tiny" / "student-data.txt").write_text("a classmate's file")
    before = run_folders()
    with throwaway_course("tiny", course / "solutions") as (_, settings):
        payload = reference.reference_payload(settings, "tiny", 10)
        nb = nbformat.reads(payload.notebook, as_version=4)
        nb.cells.insert(0, new_code_cell("import time\ntime.sleep(600)"))
        answer = execute(replace(payload, notebook=nbformat.writes(nb)))
    assert answer.host_fault.startswith("grading took over 10 s"), answer
    assert run_folders() - before == set()
