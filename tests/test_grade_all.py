"""`grade-all` on Dask: the same scores as nbgrader autograde, late penalties, faults, other machines."""

import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from tiny_course import make_course, student_version, submit, tiny_solution

from autograder.cli import run
from autograder.grader.classroom.grade_all import grade_all
from autograder.grader.course import nbgrader_api
from autograder.run.safe_files import remove_tree

DUE = "2026-01-10 12:00:00 UTC"


def set_due_date(course):
    from nbgrader.utils import parse_utc

    api = nbgrader_api(course)
    with api.gradebook as gb:
        gb.update_or_create_assignment("tiny", duedate=parse_utc(DUE))


@pytest.fixture
def course(tmp_path):
    """The four submissions of the issue: full, untouched, partly wrong, late; late work scores zero."""
    course = make_course(tmp_path / "course", config='c.LateSubmissionPlugin.penalty_method = "zero"\n')
    untouched = student_version(tiny_solution())
    untouched.cells[1].source = untouched.cells[4].source = "# YOUR CODE HERE\nraise NotImplementedError()"
    submit(course, "ada", student_version(tiny_solution()), timestamp="2026-01-09 10:00:00 UTC")
    submit(course, "ben", untouched, timestamp="2026-01-09 10:00:00 UTC")
    submit(course, "cy", student_version(tiny_solution(), answer="7"), timestamp="2026-01-09 10:00:00 UTC")
    submit(course, "dee", student_version(tiny_solution()), timestamp="2026-01-12 09:00:00 UTC")
    set_due_date(course)
    return course


def gradebook_scores(course):
    with nbgrader_api(course).gradebook as gb:
        return {(s.student.id, g.name): g.score for s in gb.find_assignment("tiny").submissions
                for n in s.notebooks for g in n.grades} | \
               {(s.student.id, "penalty"): s.late_submission_penalty for s in gb.find_assignment("tiny").submissions}


def csv_rows(course):
    return {r["student_id"]: (float(r["raw_score"]), float(r["late_submission_penalty"]), float(r["score"]))
            for r in csv.DictReader((course / "grades.csv").open())}


def test_local_cluster_scores_equal_nbgrader_autograde_with_late_penalties(course, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(course, plain)

    outcomes = grade_all(course, workers=2, progress=False)
    assert {k: (o["score"], o["late_penalty"]) for k, o in outcomes.items()} == {
        "ada/tiny": (3.0, 0.0), "ben/tiny": (0.0, 0.0), "cy/tiny": (2.0, 0.0), "dee/tiny": (3.0, 3.0)}
    assert csv_rows(course) == {"ada": (3.0, 0.0, 3.0), "ben": (0.0, 0.0, 0.0), "cy": (2.0, 0.0, 2.0),
                                "dee": (3.0, 3.0, 0.0)}
    assert {o["sandbox"] for o in outcomes.values()} == {"bwrap"}
    assert all(o["device"] for o in outcomes.values())
    assert outcomes["ben/tiny"]["failed_tests"]["test_answer"] == "the answer cell above (1. The answer) was not filled in"

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for command in (["generate_assignment", "tiny", "--force"], ["autograde", "tiny"]):
        done = subprocess.run([sys.executable, "-m", "nbgrader", *command], cwd=plain, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    assert gradebook_scores(plain) == gradebook_scores(course)


def test_a_second_run_regrades_only_what_changed(course, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = grade_all(course, workers=1, progress=False)
    verdicts = sorted((tmp_path / "cache").rglob("tiny-*.json"))
    submit(course, "cy", student_version(tiny_solution()), timestamp="2026-01-09 11:00:00 UTC")
    second = grade_all(course, workers=1, progress=False)
    assert second["cy/tiny"]["score"] == 3.0
    # The host's reference verdict is reused: each run stages the submissions in a new folder, whose path was
    # part of the cache key, so every run graded the reference again and a regrade got another run's budgets.
    assert len(verdicts) == 1 and sorted((tmp_path / "cache").rglob("tiny-*.json")) == verdicts
    assert second["cy/tiny"]["budget_seconds"] == int(json.loads(verdicts[0].read_text())["budget"])
    assert {k: v for k, v in second.items() if k != "cy/tiny"} == {k: v for k, v in first.items() if k != "cy/tiny"}
    again = grade_all(course, workers=1, progress=False)
    assert again == second
    assert json.loads((course / "grade-all.json").read_text()) == again


def test_faults_keep_every_row_and_the_honest_points(tmp_path, request):
    course = make_course(tmp_path)
    submit(course, "ok", student_version(tiny_solution()))
    submit(course, "dies", student_version(tiny_solution(), double="2 * x\nimport os; os._exit(3)"))
    (course / "submitted" / "json" / "tiny").mkdir(parents=True)
    (course / "submitted" / "json" / "tiny" / "tiny.ipynb").write_text('{"cells": [')
    renamed = submit(course, "renamed", student_version(tiny_solution()))
    renamed.rename(renamed.with_name("my_homework.ipynb"))
    submit(course, "nothing", None)
    # Valid JSON that breaks nbformat's schema: an integer source, a code cell without outputs.
    broken = json.loads(nbformat.writes(student_version(tiny_solution())))
    broken["cells"][0]["source"] = 7
    del broken["cells"][1]["outputs"]
    (course / "submitted" / "schema" / "tiny").mkdir(parents=True)
    (course / "submitted" / "schema" / "tiny" / "tiny.ipynb").write_text(json.dumps(broken))
    # Files that are not plain: a link to the course's own files, a pipe, a big file.
    odd = submit(course, "odd", student_version(tiny_solution())).parent
    (odd / "solution.ipynb").symlink_to(course / "solutions" / "tiny" / "tiny.ipynb")
    (odd / "secret").symlink_to("/etc/hostname")
    os.mkfifo(odd / "pipe")
    (odd / "big.bin").write_bytes(b"x" * (70 * 2**20))
    # Found by the red team: 1,200 nested folders crashed grade-all (recursion in rglob and rmtree);
    # an nbgrader_config.py beside the notebook was run by the grader; a kernel launcher of the
    # student's stopped the kernel from starting, which was counted as the host's fault.
    deep = odd
    for _ in range(1200):
        deep = deep / "a"
        deep.mkdir()
    request.addfinalizer(lambda: remove_tree(odd / "a"))  # pytest's own clean-up would recurse past its limit
    (odd / "nbgrader_config.py").write_text("open('/tmp/pwned-by-a-submission', 'w')\n")
    (odd / "ipykernel_launcher.py").write_text("import sys\nsys.exit(1)\n")
    outcomes = grade_all(course, workers=2, progress=False)
    assert outcomes["ok/tiny"]["score"] == 3.0
    assert outcomes["dies/tiny"]["score"] == 1.0  # test_answer ran before the kernel died
    assert outcomes["dies/tiny"]["fault"] == "the kernel exited with status 3 (os._exit or a crash in a library)"
    assert outcomes["json/tiny"]["reason"].startswith("tiny.ipynb cannot be graded: it is not valid JSON (")
    assert outcomes["schema/tiny"]["status"] == "graded" and outcomes["schema/tiny"]["score"] == 3.0
    assert "cell 1's source was not text and was emptied" in outcomes["schema/tiny"]["notes"]
    assert outcomes["odd/tiny"]["score"] == 3.0
    notes = "\n".join(outcomes["odd/tiny"]["notes"])
    for name, why in (("solution.ipynb", "link"), ("secret", "link"), ("pipe", "not a regular file"),
                      ("big.bin", "over the"), ("nbgrader_config.py", "configuration files are not taken"),
                      ("a/a/a", "deeper than")):
        assert f"{name}: " in notes and why in notes.split(f"{name}: ")[1].split("\n")[0], notes
    autograded = course / "autograded" / "odd" / "tiny"
    # nothing of theirs was followed; their plain file is kept, as nbgrader keeps a submission's files
    assert sorted(p.name for p in autograded.iterdir()) == ["ipykernel_launcher.py", "tiny.ipynb"]
    assert not os.path.exists("/tmp/pwned-by-a-submission")
    assert outcomes["renamed/tiny"]["reason"] == \
        "missing notebook tiny.ipynb (found my_homework.ipynb: renamed, or handed in to the wrong assignment?)"
    assert outcomes["nothing/tiny"]["reason"] == "missing notebook tiny.ipynb"
    rows = csv_rows(course)
    assert set(rows) == {"ok", "dies", "json", "renamed", "nothing", "schema", "odd"}
    assert rows["dies"][2] == 1.0 and rows["json"][2] == 0.0


# --- several machines: a scheduler and two workers in their own folders ----------------

def start(command, cwd, env=None):
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


@pytest.fixture
def cluster(tmp_path):
    """`dask scheduler` and two `dask worker` processes, each in its own empty folder."""
    dask = str(Path(sys.executable).parent / "dask")
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}
    procs = [start([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
                    "--scheduler-file", str(scheduler_file)], tmp_path, env)]
    for name in ("host-a", "host-b"):
        folder = tmp_path / name
        folder.mkdir()
        procs.append(start([dask, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                            "--no-nanny", "--name", name, "--local-directory", str(folder),
                            "--dashboard-address", "127.0.0.1:0"], folder))
    for _ in range(120):
        if scheduler_file.is_file():
            break
        time.sleep(0.5)
    from distributed import Client

    address = json.loads(scheduler_file.read_text())["address"]
    with Client(address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=120)
    yield address
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass


def test_a_remote_cluster_survives_a_worker_killed_mid_run(tmp_path, cluster):
    from distributed import Client

    course = make_course(tmp_path / "course")
    for student in ("s1", "s2", "s3", "s4"):
        submit(course, student, student_version(tiny_solution(), extra="\nimport time; time.sleep(6)"))
    result = {}
    thread = threading.Thread(target=lambda: result.update(grade_all(course, scheduler=cluster, progress=False)))
    thread.start()
    with Client(cluster, set_as_default=False) as client:
        pids = client.run(os.getpid)
        busy = []
        for _ in range(300):
            busy = [addr for addr, tasks in client.processing().items() if tasks]
            if busy:
                break
            time.sleep(0.2)
        assert busy, "no submission started"
        time.sleep(2)
        os.kill(pids[busy[0]], signal.SIGKILL)
    thread.join(timeout=600)
    assert set(result) == {"s1/tiny", "s2/tiny", "s3/tiny", "s4/tiny"}
    assert all(o["status"] == "graded" and o["score"] == 3.0 for o in result.values()), result
    assert {o["host"] for o in result.values()} <= {os.uname().nodename}


@pytest.mark.parametrize("setup, args, message", [
    (lambda c: None, ["--scheduler", "tcp://127.0.0.1:9"], "autograder: cannot reach a Dask scheduler at tcp://127.0.0.1:9"),
    (lambda c: (c / "submitted").mkdir(), [], "autograder: no submissions in "),
    (lambda c: None, [], "autograder: no submissions: "),
])
def test_grade_all_errors_are_one_sentence_and_leave_the_gradebook(tmp_path, capsys, setup, args, message):
    course = make_course(tmp_path)
    if "scheduler" in " ".join(args):
        submit(course, "ada", student_version(tiny_solution()))
        set_due_date(course)
    setup(course)
    gradebook = course / "gradebook.db"
    before = hashlib.sha256(gradebook.read_bytes()).hexdigest() if gradebook.exists() else None
    assert run(["grade-all", "--root", str(course), *args]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(message), err  # after, at most, the line that says what it starts on
    assert len(err) <= 2 and all(line.startswith("autograder: ") for line in err), err
    after = hashlib.sha256(gradebook.read_bytes()).hexdigest() if gradebook.exists() else None
    assert before == after


def test_grade_all_cli_names_what_could_not_be_graded(tmp_path, capsys):
    course = make_course(tmp_path)
    submit(course, "ada", student_version(tiny_solution()))
    submit(course, "fay", student_version(tiny_solution()), assignment="99_unknown")
    submit(course, "gus", None)
    assert run(["grade-all", "--root", str(course), "--workers", "1"]) == 1
    captured = capsys.readouterr()
    assert "ada/tiny                                 3 / 3" in captured.out
    assert "fay/99_unknown                           MALFORMED: unknown assignment '99_unknown'" in captured.out
    assert "done=1, failed=0" in captured.err  # the progress bar
    # Issue 22: every wait says what it is for: the cluster's start, then the reference run before the class.
    assert captured.err.startswith(f"autograder: 1 of 3 submissions in {course} to grade (2 that cannot be graded, "
                                   "listed at the end), on 1 local worker.\n")
    assert ": grading the reference solution of tiny before its submissions (once per host and version" in captured.err
    assert ": the reference solution of tiny: 3/3 in " in captured.err
    assert captured.err.splitlines()[-1] == ("autograder: 2 of 3 submissions could not be graded (fay/99_unknown, "
                                             "gus/tiny); the reasons are above and in grade-all.json.")


def test_local_gpu_grading_needs_a_gpu_on_this_machine(tmp_path, capsys, monkeypatch):
    from autograder.grader.classroom import grade_all as module

    monkeypatch.setattr(module, "has_gpu", lambda: False)
    course = make_course(tmp_path)
    submit(course, "ada", student_version(tiny_solution()))
    assert run(["grade-all", "--root", str(course), "--workers", "1", "--gpu"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["autograder: --gpu with local workers needs an NVIDIA GPU on this machine, and it has none "
                   "(no /dev/nvidia0); leave --gpu out to grade on the CPU, or give --scheduler of workers started "
                   "with --resources GPU=1."]
    assert not (course / "gradebook.db").exists()


def test_local_workers_offer_this_machines_gpu(tmp_path, monkeypatch):
    """Issue 25: `grade-all --workers N --gpu` on one GPU host. Before, its local workers offered no GPU, so
    the run stopped with "no Dask worker offers a GPU" (a GPU is faked here; the jails see the real devices)."""
    from autograder.grader.classroom import grade_all as module

    monkeypatch.setattr(module, "has_gpu", lambda: True)
    course = make_course(tmp_path)
    submit(course, "ada", student_version(tiny_solution()))
    assert run(["grade-all", "--root", str(course), "--workers", "1", "--gpu"]) == 0
    outcome = json.loads((course / "grade-all.json").read_text())["ada/tiny"]
    assert (outcome["status"], outcome["score"]) == ("graded", 3.0)


def test_each_slot_of_a_host_keeps_its_share_of_the_gpus_memory():
    """The workers of a host share its GPU: each grading there is watched against 1 / its slots (the jail's
    `gpu_memory_share`), unless the course set its own; a host of one slot has the GPU to itself."""
    from autograder.grader.classroom.grade_all import Host, shared_gpu

    assert shared_gpu({}, Host("gpu-host", ["a", "b", "c", "d"], slots=4)) == {
        "SandboxedExecute": {"gpu_memory_share": 0.25}}
    assert shared_gpu({"SandboxedExecute": {"gpu_memory_share": 0.5}}, Host("gpu-host", [], slots=16)) == {
        "SandboxedExecute": {"gpu_memory_share": 0.5}}
    assert shared_gpu({}, Host("alone", ["a"], slots=1)) == {}
    # Red team: workers each given a GPU of their own (CUDA_VISIBLE_DEVICES) were held to 1/4 of it.
    assert shared_gpu({}, Host("four-gpus", ["a", "b", "c", "d"], slots=4, gpu_sharing=1)) == {}
    assert shared_gpu({}, Host("two-pairs", ["a", "b", "c", "d"], slots=4, gpu_sharing=2)) == {
        "SandboxedExecute": {"gpu_memory_share": 0.5}}


def test_a_host_knows_which_of_its_workers_share_gpus(tmp_path):
    """What each worker's kernels see, asked of the workers themselves: two workers given GPU 0, one GPU 1."""
    from distributed import Client, LocalCluster

    from autograder.grader.classroom.grade_all import Dispatcher

    with LocalCluster(n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None,
                      local_directory=str(tmp_path)) as cluster, Client(cluster, set_as_default=False) as client:
        addresses = sorted(client.scheduler_info()["workers"])
        for address, gpus in zip(addresses, ["0", "0", "1"]):
            client.run(lambda value=gpus: os.environ.update(CUDA_VISIBLE_DEVICES=value), workers=[address])
        dispatcher = Dispatcher(client, {}, None, False, threading.Lock())
        (host,) = dispatcher.hosts.values()
        assert (host.slots, host.gpu_sharing) == (3, 2)


def test_gpu_grading_on_a_cluster_needs_a_gpu_worker(tmp_path, capsys, cluster):
    course = make_course(tmp_path / "course")
    submit(course, "ada", student_version(tiny_solution()))
    assert run(["grade-all", "--root", str(course), "--scheduler", cluster, "--gpu"]) == 2
    err = capsys.readouterr().err.splitlines()  # after the line that says what it starts on
    assert err[-1] == "autograder: no Dask worker offers a GPU; start workers with `dask worker ... --resources GPU=1`."
    assert len(err) == 2 and err[0].startswith("autograder: 1 of 1 submissions in ")


def test_a_host_without_datasets_saves_nothing_and_says_why(tmp_path, monkeypatch, capsys):
    course = make_course(tmp_path / "course")
    submit(course, "ada", student_version(tiny_solution()))
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(tmp_path / "empty"))  # the workers inherit it
    assert run(["grade-all", "--root", str(course), "--workers", "1"]) == 3
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("autograder: the grading hosts failed on 1 of 1 submissions (ada/tiny); no score was saved")
    outcome = json.loads((course / "grade-all.json").read_text())["ada/tiny"]
    assert outcome["status"] == "host-fault" and "lacks the mnist dataset" in outcome["reason"]
    with nbgrader_api(course).gradebook as gb:  # no submission saved, not even a zero
        assert gb.find_assignment("tiny").submissions == []
    monkeypatch.delenv("AUTOGRADER_DATA_DIR")
    assert grade_all(course, workers=1, progress=False)["ada/tiny"]["score"] == 3.0  # retried once mended


def test_one_autograde_pass_per_submission_and_the_table_shows_manual_grades(tmp_path, capsys):
    """Issue 15: grade-all ran nbgrader's converter twice per submission, and its table ignored a
    manual grade that grades.csv kept."""
    course = make_course(tmp_path / "course")
    submit(course, "ada", student_version(tiny_solution()))
    submit(course, "ben", student_version(tiny_solution(), answer="7"))
    assert run(["grade-all", "--root", str(course), "--workers", "1", "--verbose"]) == 0
    err = capsys.readouterr().err
    assert err.count("Sanitizing ") == 2 and err.count("Autograding ") == 2
    with nbgrader_api(course).gradebook as gb:
        grade = gb.find_grade("test_answer", "tiny", "tiny", "ben")
        grade.manual_score = 1.0
        gb.db.commit()
    assert run(["grade-all", "--root", str(course), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "ben/tiny                                 3 / 3" in out  # 2 automatic + 1 manual
    assert csv_rows(course)["ben"][0] == 3.0


# --- issue 21: one student never stops the class, costs a classmate a point, or passes as the host's fault ---

HOG = """
# Four hundred processes spinning, each in a session of its own, while my classmates are graded beside me.
import os, time
for _ in range(400):
    if os.fork() == 0:
        os.setsid()
        end = time.time() + 15
        while time.time() < end:
            pass
        os._exit(0)
"""
HANG = "import time\ntime.sleep(600)"  # holds the grading process past grade-all's --timeout


def control_groups(root="/sys/fs/cgroup", depth=4):
    """The jails' control groups on this host, whoever made them (a walk a few levels down the hierarchies)."""
    found, pending = [], [(root, 0)]
    while pending:
        folder, level = pending.pop()
        try:
            entries = [e for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        found += [e.path for e in entries if e.name.startswith("autograder-") and "hub" not in e.name]
        pending += [(e.path, level + 1) for e in entries if level < depth and not e.name.startswith("autograder-")]
    return sorted(found)


@pytest.mark.skipif(os.geteuid() != 0, reason="fair CPU shares need control groups, which only root makes here")
def test_a_hog_and_a_hung_run_cost_no_classmate_a_point_and_no_score_appears_where_none_was_saved(tmp_path, capsys):
    """Before: 400 spinning processes beside an honest solution cost her 3 of 6 points, or all of them,
    saved as her own fault; a grading process that did not finish was the host's fault, which stopped
    the host for everyone after her; and grades.csv gave 0.0 to every student without a saved score."""
    from hostile import with_cells

    course = make_course(tmp_path / "course", config="c.ReferenceRun.startup_allowance = 120\n")
    submit(course, "a-hog", with_cells(student_version(tiny_solution()), HOG, at=1))
    submit(course, "b-ada", student_version(tiny_solution()))
    submit(course, "c-hangs", with_cells(student_version(tiny_solution()), HANG, at=1))
    submit(course, "d-ben", student_version(tiny_solution()))
    with nbgrader_api(course).gradebook as gb:
        gb.update_or_create_student("e-absent")  # on the class list, handed in nothing
    groups = control_groups()
    assert run(["grade-all", "--root", str(course), "--workers", "3", "--timeout", "25"]) == 1
    out = capsys.readouterr().out
    outcomes = json.loads((course / "grade-all.json").read_text())
    assert {k: o["score"] for k, o in outcomes.items() if k in ("b-ada/tiny", "d-ben/tiny")} == \
           {"b-ada/tiny": 3.0, "d-ben/tiny": 3.0}, outcomes
    assert outcomes["a-hog/tiny"]["status"] in ("graded", "unprocessable")  # its own cells starve: its business
    hung = outcomes["c-hangs/tiny"]
    assert hung["status"] == "unprocessable" and "grading took over 25 s" in hung["reason"], hung
    assert hung["flags"] and "NO SCORE, flagged for you: the grader could not process this notebook" in out
    assert "HOST FAULT" not in out
    rows = {r["student_id"]: r for r in csv.DictReader((course / "grades.csv").open())}
    assert (rows["c-hangs"]["raw_score"], rows["c-hangs"]["status"]) == ("", "could not process")
    assert (rows["e-absent"]["score"], rows["e-absent"]["status"]) == ("", "not submitted")
    assert (rows["b-ada"]["score"], rows["b-ada"]["status"]) == ("3.0", "graded")
    assert control_groups() == groups  # none left behind, the killed run's included


# --- issue 20: nothing a student leaves on the machine runs as the grader; nothing the grader keeps is hers to read

MALLORY = "autograder-test-mallory"  # another student of the course's machine, with a terminal
PLANT = r"""
import os, sys
names = ["argparse", "shlex", "traitlets", "jupyter_client", "json", "dask", "distributed", "autograder", "nbformat"]
for folder in sys.argv[2:]:
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o777)
    for name in names:
        with open(os.path.join(folder, name + ".py"), "w") as f:
            f.write(f"open({sys.argv[1]!r} + '/imported-{name}', 'w').write(__file__)\n")
"""
SNOOP = r"""
# Read whatever the grader leaves where /tmp lists it, walking down, and trying the run folder's known names.
import glob, os, sys, time
seen, end = set(), time.time() + float(sys.argv[2])
def found(path):
    if path not in seen:
        seen.add(path)
        with open(sys.argv[1], "a") as log:
            log.write(path + "\n")
while time.time() < end:
    for root in glob.glob("/tmp/autograder-*") + glob.glob("/tmp/dask-*"):
        for known in ("kept", "jail", "jail/work", "jail/exchange", "kept/00/out", "kept/01/out"):
            try:
                os.listdir(os.path.join(root, known))
                found(os.path.join(root, known) + "/")
            except OSError:
                pass
        for folder, dirs, files in os.walk(root):
            for name in files:
                try:
                    with open(os.path.join(folder, name), "rb") as f:
                        f.read(1)
                    found(os.path.join(folder, name))
                except OSError:
                    pass
    time.sleep(0.05)
"""
SLOW_AFTER_A_TEST = "import time\ntime.sleep(6)"  # the exports of the test above sit in the grader's folder


def as_another_user(user, script, *args, wait=True):
    if subprocess.run(["id", user], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/bash", user], check=True)
    command = ["runuser", "-u", user, "--", "/usr/bin/python3", "-c", script, *map(str, args)]
    if not wait:
        return subprocess.Popen(command, cwd="/")
    return subprocess.run(command, check=True, cwd="/", capture_output=True, text=True).stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="it needs a second Unix user, which only root makes here")
def test_another_user_plants_nothing_the_grader_runs_and_reads_nothing_it_keeps(tmp_path):
    """Before: a student made /tmp/dask-scratch-space[-<uid>] first and filled it with modules named argparse,
    traitlets, ...; grade-all imported four of them as the grader, which copied the course's secret. As
    root, the run folder was open to all (o+x) and its kept/ 755/644: another user copied 54 exports of
    classmates while they were graded, 36 of them trained models."""
    from hostile import with_cells

    markers = tmp_path / "imported"
    markers.mkdir(mode=0o777)
    os.chmod(markers, 0o777)
    scratch = ["/tmp/dask-scratch-space", f"/tmp/dask-scratch-space-{os.getuid()}"]
    for folder in scratch:
        remove_tree(folder)
    as_another_user(MALLORY, PLANT, markers, *scratch)
    course = make_course(tmp_path / "course")
    submit(course, "ada", with_cells(student_version(tiny_solution()), SLOW_AFTER_A_TEST, at=3))
    log = tmp_path / "seen.txt"
    log.touch()
    os.chmod(log, 0o666)
    snooper = as_another_user(MALLORY, SNOOP, log, 60, wait=False)
    try:
        outcomes = grade_all(course, workers=1, progress=False)
    finally:
        snooper.terminate()
        snooper.wait()
        for folder in scratch:
            remove_tree(folder)
    assert outcomes["ada/tiny"]["score"] == 3.0
    assert sorted(p.name for p in markers.iterdir()) == []  # nothing planted was imported
    seen = [p for p in log.read_text().splitlines() if p and "/autograder-kit-" not in p]  # the kit is public
    assert seen == [], seen


def http_status(url=None, unix_socket=None):
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"]
    command += ["--unix-socket", str(unix_socket), "http://localhost/info/main/workers.html"] if unix_socket else [url]
    return subprocess.run(command, capture_output=True, text=True).stdout


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("curl"), reason="it needs a second Unix user and curl")
def test_the_local_cluster_speaks_tls_and_its_pages_are_off_or_the_graders_alone(tmp_path):
    """Before: grade-all's scheduler took plain TCP on loopback, where any user of the machine could send it
    work to run as the grader, and its web pages showed the class's task names and the workers' logs."""
    from distributed import Client

    from autograder.grader.classroom.grade_all import dask_client

    with dask_client(1, None, False) as client:
        info = client.scheduler_info()
        assert info["address"].startswith("tls://")
        with pytest.raises(Exception):  # a client without the run's key cannot talk to it
            Client(info["address"].replace("tls://", "tcp://"), timeout=3, set_as_default=False)
        port = info["services"]["dashboard"]
        assert http_status(f"http://127.0.0.1:{port}/info/main/workers.html") == "404"
    with dask_client(1, None, False, dashboard=True) as client:
        port = client.scheduler_info()["services"]["dashboard"]
        [sock] = [p for p in Path(tempfile_dir()).glob("autograder-dask-*/dashboard.sock")]
        assert http_status(unix_socket=sock) == "200"
        assert http_status(f"http://127.0.0.1:{port}/info/main/workers.html") == "000"  # the port is closed
        probe = as_another_user(MALLORY, "import socket, sys\ns = socket.socket(socket.AF_UNIX)\n"
                                         "try:\n    s.connect(sys.argv[1]); print('connected')\n"
                                         "except OSError as e:\n    print(type(e).__name__)\n", sock)
        assert probe.strip() == "PermissionError"


def tempfile_dir():
    import tempfile

    return tempfile.gettempdir()


def test_nbgrader_export_writes_no_score_where_none_was_saved_and_no_formula(tmp_path):
    """nbgrader's own export wrote 0.0 for every student without a saved score, and its rows were not quoted."""
    course = make_course(tmp_path / "course")
    api = nbgrader_api(course)
    from autograder.grader.course import run_nbgrader

    run_nbgrader(api.generate_assignment("tiny", force=True), "generate_assignment")
    with api.gradebook as gb:
        for student in ("ann", "bo", "cal", "dee"):
            gb.update_or_create_student(student, first_name="=HYPERLINK(\"http://x\")" if student == "bo" else "")
        gb.update_or_create_submission("tiny", "dee")  # as nbgrader autograde leaves it when it fails: no score
    (course / "grade-all.json").write_text(json.dumps({
        "ann/tiny": {"status": "host-fault", "reason": "the grading host failed, then failed its own check"},
        "bo/tiny": {"status": "unprocessable", "reason": "the grader could not process this notebook: x, y"}}))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-m", "nbgrader", "export"], cwd=course, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {r["student_id"]: r for r in csv.DictReader((course / "grades.csv").open())}
    assert {s: (r["score"], r["status"]) for s, r in rows.items()} == {
        "ann": ("", "host fault"), "bo": ("", "could not process"), "cal": ("", "not submitted"),
        "dee": ("", "no score saved")}
    assert rows["bo"]["reason"] == "the grader could not process this notebook: x, y"
    assert rows["bo"]["first_name"] == "'=HYPERLINK(\"http://x\")"


def test_formgrader_starts_grade_all_once_and_reads_its_progress(tmp_path, monkeypatch):
    """The run Formgrader's button starts (autograder/grader/hub/formgrader_grading.py): one at a time per course,
    its progress as grade-all writes it, and its last lines; tests/test_hub.py clicks the button itself."""
    from autograder.grader.hub import formgrader_grading

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    course = make_course(tmp_path / "course")
    submit(course, "ada", student_version(tiny_solution()))
    submit(course, "ben", student_version(tiny_solution(), answer="7"))
    root = str(course)
    # The run's working folder is the course's: a module left at its top is not imported (python -I).
    (course / "argparse.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').write('argparse')\n")
    assert formgrader_grading.start(root)
    assert not formgrader_grading.start(root)  # a second click while it runs starts nothing
    deadline = time.monotonic() + 300
    while formgrader_grading.state(root)["running"] and time.monotonic() < deadline:
        time.sleep(1)
    state = formgrader_grading.state(root)
    assert state["exit"] == 0, state
    assert {k: state["progress"][k] for k in ("total", "done", "failed", "running")} == \
        {"total": 2, "done": 2, "failed": 0, "running": 0}
    assert state["progress"]["lines"][0] == f"2 of 2 submissions in {course} to grade, on 2 local workers."
    # Once the reference verdict is there: how long the class should take, at its pace.
    assert any(re.fullmatch(r"at the pace of the reference runs, the 2 submissions take about \d+ s on 2 slots "
                            r"\(tiny: \d+ s each\)", line) for line in state["progress"]["lines"]), state["progress"]
    assert any(line.strip().startswith("ada/tiny") and line.endswith("3 / 3") for line in state["log"]), state["log"]
    assert not (tmp_path / "imported").exists()


def test_a_second_grade_all_on_the_same_course_waits_its_turn(tmp_path, capsys):
    """Red team: Formgrader's button and a terminal could each start grade-all on the same gradebook at once."""
    import fcntl

    course = make_course(tmp_path / "course")
    submit(course, "ada", student_version(tiny_solution()))
    with open(course / ".grade-all.lock", "w") as held:  # what the first run holds while it grades
        fcntl.flock(held, fcntl.LOCK_EX)
        assert run(["grade-all", "--root", str(course)]) == 2
    assert capsys.readouterr().err == (f"autograder: another grade-all is grading {course} now (from Formgrader or "
                                       "a terminal); wait for it to end, then run this again.\n")
    assert not (course / "grade-all.json").exists()



@pytest.mark.parametrize("seconds, said", [(40, "40 s"), (89.6, "90 s"), (720, "12 min"), (7500, "2 h 05 min")])
def test_an_estimate_reads_as_a_person_would_say_it(seconds, said):
    from autograder.grader.classroom.grade_all import duration

    assert duration(seconds) == said
