"""`autograder grade-all`: a class's submissions, graded across machines with Dask, into nbgrader's gradebook.

Each submission goes through nbgrader's own Autograde converter, in the real
course folder, twice, with the course's pipeline (autograder/pipeline.py)
split where the gradebook begins:

1. here: the sanitize pass (locked and hidden cells restored from the
   gradebook, timestamp.txt recorded), then `SendToWorker`, which ships the
   sanitized notebook and the files beside it, as bytes, to a Dask worker;
2. on a worker: the execution steps (plan hidden tests, the jailed kernel,
   hidden tests scored, output tidied), in a subprocess with a time limit;
3. here again, as each result arrives: the sanitize pass once more, then
   `TakeFromWorker`, which puts the executed notebook in place, then
   SaveAutoGrades, AssignLatePenalties (timestamp, due date, the configured
   LateSubmissionPlugin) and CheckCellMetadata.

Only this process writes the gradebook, so SQLite's single writer is
respected (jupyter/nbgrader#174), and workers need no shared file system.
Without --scheduler, a local cluster of --workers processes is started.

Every submission ends with a row in the gradebook and grades.csv: a fault in
the student's notebook keeps the points of the cells that ran; a malformed
submission (no notebook, not JSON, renamed) gets zero with its reason. A
second run regrades only what changed. Outcomes go to grade-all.json.
"""

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade
from traitlets import Any

from .. import UserError, host, pipeline
from ..sandbox import bwrap_works
from ..student_check import cell_messages
from .course import SOLUTIONS, check_ids, nbgrader_api, nbgrader_failure, run_nbgrader, show_log

STATE_FILE = "grade-all.json"
CONFIG_SECTIONS = ("Execute", "SandboxedExecute", "PlanHiddenTests", "ScoreHiddenTests", "FilterStderr",
                   "IgnorePattern", "LimitOutput", "ClearMetadataPreprocessor")


@dataclass
class Submission:
    student: str
    assignment: str
    folder: Path
    problem: str = ""  # why it cannot be graded, or ""

    @property
    def key(self):
        return f"{self.student}/{self.assignment}"

    @property
    def notebook(self):
        return self.folder / f"{self.assignment}.ipynb"

    def digest(self):
        """What a regrade depends on: the notebook, timestamp.txt and every other file handed in."""
        h = hashlib.sha256()
        for path in sorted(p for p in self.folder.rglob("*") if p.is_file()):
            h.update(str(path.relative_to(self.folder)).encode() + b"\0" + path.read_bytes())
        return h.hexdigest()


def find_submissions(root, known):
    """Every ``submitted/<student>/<assignment>/``, each with the problem that stops its grading, if any."""
    submitted = Path(root) / "submitted"
    if not submitted.is_dir():
        raise UserError(f"no submissions: {submitted} does not exist (nbgrader's submitted/<student>/<assignment>/).")
    found = []
    for student in sorted(p for p in submitted.iterdir() if p.is_dir()):
        for folder in sorted(p for p in student.iterdir() if p.is_dir()):
            sub = Submission(student.name, folder.name, folder)
            others = sorted(p.name for p in folder.glob("*.ipynb") if p.name != sub.notebook.name)
            if sub.assignment not in known:
                sub.problem = f"unknown assignment {sub.assignment!r}"
            elif not sub.notebook.is_file():
                sub.problem = f"missing notebook {sub.notebook.name}" + (
                    f" (found {', '.join(others)}: renamed, or handed in to the wrong assignment?)" if others else "")
            else:
                try:
                    nbformat.read(sub.notebook, as_version=4)
                except Exception as e:
                    reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                    sub.problem = f"{sub.notebook.name} is not a valid notebook ({reason})"
            found.append(sub)
    if not found:
        raise UserError(f"no submissions in {submitted}.")
    return found


# --- the worker side -------------------------------------------------------------------

def pack(folder, skip=()):
    """The files of ``folder`` as zip bytes, without the names in ``skip``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and not path.is_symlink() and path.name not in skip:
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def unpack(data, dest):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.infolist():
            target = (Path(dest) / member.filename).resolve()
            if Path(dest).resolve() not in target.parents:
                continue  # no path outside the folder
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))


def missing_data():
    """Why this host cannot grade (its dataset cache is incomplete), or ''."""
    from ..datasets import download

    for name, entry in download.manifest().items():
        for fname in entry["files"]:
            if not download.cached_path(name, fname).is_file():
                return f"{socket.gethostname()} lacks the {name} dataset (run `autograder data fetch` there)"
    return ""


def grade_on_worker(payload):
    """Run the execution steps on one sanitized notebook; return the executed notebook (a Dask task).

    The steps run in a child process with a hard time limit, so a submission
    never takes a worker down with it. A problem of the host, not of the
    submission, is returned as ``host_problem``.
    """
    started = time.perf_counter()
    answer = {"host": socket.gethostname(), "device": host.device(), "notebook": None, "error": "",
              "host_problem": missing_data()}
    if answer["host_problem"]:
        return answer
    if payload["config"].get("SandboxedExecute", {}).get("sandbox") == "bwrap" and not bwrap_works():
        answer["host_problem"] = f"{answer['host']} cannot run the sandbox (install bubblewrap)"
        return answer
    with tempfile.TemporaryDirectory(prefix="autograder-worker-") as tmp:
        job = Path(tmp) / "job.json"
        work = Path(tmp) / payload["assignment"]
        work.mkdir()
        unpack(payload["files"], work)
        job.write_text(json.dumps({k: v for k, v in payload.items() if k != "files"} | {"path": str(work)}))
        out = Path(tmp) / "out.ipynb"
        command = [sys.executable, "-I", "-m", "autograder.grader.grade_all", str(job), str(out)]
        # setpriv: the grading process dies if this worker does, instead of grading on as an orphan.
        prefix = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []
        proc = subprocess.Popen(prefix + command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, cwd=tmp)
        try:
            _, err = proc.communicate(timeout=payload["timeout"])
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            answer["error"] = f"grading took over {payload['timeout']:g} s and was stopped"
            return answer
        if payload["config"].get("SandboxedExecute", {}).get("show_kernel_output"):
            sys.stderr.write(err)  # --verbose: the kernel's and the frameworks' lines, in the worker's log
        if proc.returncode != 0 or not out.is_file():
            lines = [line for line in err.strip().splitlines() if line.strip()]
            answer["error"] = lines[-1] if lines else f"the grading process exited with status {proc.returncode}"
        else:
            answer["notebook"] = out.read_text()
    answer["seconds"] = round(time.perf_counter() - started, 1)
    return answer


def execute_job(job_file, out_file):
    """In the worker's child process: the execution steps over the unpacked submission."""
    from nbconvert.exporters import NotebookExporter
    from traitlets.config import Config

    job = json.loads(Path(job_file).read_text())
    config = Config(job["config"])
    exporter = NotebookExporter(config=config)
    for step in job["steps"]:
        exporter.register_preprocessor(step)
    nb = nbformat.reads(job["notebook"], as_version=4)
    resources = {"metadata": {"path": job["path"]}, "unique_key": job["assignment"], "nbgrader": job["nbgrader"]}
    output, _ = exporter.from_notebook_node(nb, resources=resources)
    Path(out_file).write_text(output)


# --- the coordinator side: two steps around the worker -----------------------------------

class Dispatcher:
    """The Dask side of grading: submissions out, executed notebooks back.

    A submission goes out as soon as it is sanitized and a worker slot is
    free, so the workers grade while the coordinator sanitizes the rest. At
    most one submission per worker slot is in flight: a task merely queued
    on a worker that dies counts as killed too, so queueing here keeps the
    others safe. A submission whose worker died is run once more by the
    scheduler (allowed-failures 1), then recorded as failed.
    """

    def __init__(self, client, config, timeout, gpu):
        self.client = client
        self.config = config
        self.timeout = timeout
        self.resources = {"GPU": 1} if gpu else None
        self.queue, self.futures, self.results = [], {}, {}
        self._keys, self._finished = {}, None

    def submit(self, key, payload):
        self.queue.append((key, payload))
        self._fill()

    def _slots(self):
        workers = self.client.scheduler_info()["workers"].values()
        if self.resources:
            workers = [w for w in workers if w.get("resources", {}).get("GPU")]
        return max(1, sum(w.get("nthreads", 1) for w in workers))

    def _fill(self):
        from distributed import as_completed

        if self._finished is None:
            self._finished = as_completed([], loop=self.client.loop)
        while self.queue and len(self._keys) < self._slots():
            key, payload = self.queue.pop(0)
            future = self.client.submit(grade_on_worker, payload, key=f"grade-{key}-{time.time_ns()}",
                                        pure=False, resources=self.resources)
            self.futures[key] = future
            self._keys[future.key] = key
            self._finished.add(future)

    def completed(self, wait=True):
        """Keys as their results arrive: all of them, or (``wait=False``) those that are in now."""
        from distributed.scheduler import KilledWorker

        while self._keys:
            if not wait and not self._finished.has_ready():
                return
            future = next(self._finished)
            key = self._keys.pop(future.key)
            try:
                self.results[key] = future.result()
            except KilledWorker:
                self.results[key] = {"error": "the Dask workers grading it died twice", "notebook": None}
            except Exception as e:  # the task itself failed: reported, the others go on
                self.results[key] = {"error": f"{type(e).__name__}: {e}", "notebook": None}
            future.release()
            self._fill()
            yield key

    def running(self):
        return sum(not f.done() for f in self.futures.values())


class HostProblem(RuntimeError):
    """The grading host, not the submission, is at fault: nothing is saved for it this time."""


class SendToWorker(NbGraderPreprocessor):
    """In place of the execution steps: ship the sanitized notebook and its folder to a worker."""

    dispatcher = Any()

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        key = f"{info['student']}/{info['assignment']}"
        steps, _ = pipeline.split(self.dispatcher.config.Autograde.autograde_preprocessors)
        self.dispatcher.submit(key, {
            "assignment": info["assignment"],
            "nbgrader": {k: info[k] for k in ("student", "assignment", "notebook")},
            "notebook": nbformat.writes(nb),
            "files": pack(resources["metadata"]["path"], skip={f"{info['notebook']}.ipynb"}),
            "steps": [pipeline._name(s) for s in steps],
            "config": {s: dict(self.dispatcher.config[s]) for s in CONFIG_SECTIONS if s in self.dispatcher.config},
            "timeout": self.dispatcher.timeout,
        })
        return nb, resources


class TakeFromWorker(NbGraderPreprocessor):
    """In place of the execution steps: the worker's executed notebook, or the reason there is none."""

    dispatcher = Any()

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        answer = self.dispatcher.results[f"{info['student']}/{info['assignment']}"]
        if answer.get("host_problem"):
            raise HostProblem(answer["host_problem"])
        if answer.get("notebook"):
            executed = nbformat.reads(answer["notebook"], as_version=4)
            executed.metadata.setdefault("autograder", {})["host"] = answer.get("host")
            return executed, resources
        for cell in nb.cells:  # nothing ran: every test scores 0, with the reason
            if cell.cell_type == "code" and is_grade(cell):
                cell.outputs = [new_output("error", ename="NotRun", evalue=f"not run: {answer['error']}",
                                           traceback=[])]
        nb.metadata["autograder"] = {"execution": {"fault": {"reason": answer["error"]}}, "host": answer.get("host")}
        return nb, resources


def _autograde(config, assignment, student, steps):
    """nbgrader's Autograde converter on one submission with these autograde steps; its log (shown with --verbose)."""
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id, coursedir.student_id = assignment, student
    converter = Autograde(coursedir=coursedir, config=config)
    converter.force = True
    converter.create_student = True
    converter.autograde_preprocessors = steps
    result = capture_log(converter)
    show_log(result, config.SandboxedExecute.get("show_kernel_output", False))
    return result


# --- the whole run ---------------------------------------------------------------------------

def _reachable(address, timeout):
    """Connect and hand-shake with a scheduler within ``timeout``; Client() alone can hang.

    Client(address, timeout=...) bounds only the TCP connect: a port that
    accepts connections but never answers Dask's handshake (an HTTP server,
    such as a dashboard) makes it wait forever (distributed/comm/core.py, connect).
    """
    import asyncio

    from distributed.comm import connect

    async def probe():
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
        await comm.close()

    asyncio.run(probe())


@contextlib.contextmanager
def dask_client(workers, scheduler, verbose):
    """A client of the running cluster at ``scheduler``, else of a local one of ``workers`` processes."""
    import dask
    from distributed import Client, LocalCluster

    # Payloads are whole submission folders; a few MB is normal here.
    settings = {"distributed.admin.large-graph-warning-threshold": "64MB"}
    if scheduler:
        try:
            _reachable(scheduler, 10)
            with dask.config.set(settings):
                client = Client(scheduler, timeout=10, set_as_default=False)
        except ValueError as e:
            raise UserError(f"{scheduler!r} is not a Dask scheduler address ({e}); give tcp://HOST:8786.") from None
        except Exception as e:  # OSError, TimeoutError, a garbled handshake
            raise UserError(f"cannot reach a Dask scheduler at {scheduler} ({type(e).__name__}); start it with "
                            "`dask scheduler` there, or check the address.") from None
        try:
            try:
                client.wait_for_workers(1, timeout=60)
            except TimeoutError:
                raise UserError(f"no Dask worker is connected to the scheduler at {scheduler}; start one with "
                                f"`dask worker {scheduler} --nthreads 1`.") from None
            yield client
        finally:
            client.close()
        return
    # A worker that dies takes its submission with it: the scheduler runs it once
    # more elsewhere, then reports KilledWorker. Workers have no memory limit of
    # their own (the sandbox sets the student's); nothing listens beyond localhost.
    settings |= {"distributed.scheduler.allowed-failures": 1}
    with dask.config.set(settings):
        cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address="127.0.0.1:0", memory_limit=0,
                               silence_logs=logging.INFO if verbose else logging.CRITICAL)
        client = Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _zero_row(api, sub):
    """A submission that cannot be graded still gets its row: zero on every cell."""
    with api.gradebook as gb:
        gb.update_or_create_student(sub.student)
        submission = gb.update_or_create_submission(sub.assignment, sub.student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
        gb.db.commit()


def _ensure_assignments(api, assignment_ids):
    """Make sure the gradebook knows each assignment's notebooks and grade cells."""
    from nbgrader.api import MissingEntry

    for assignment_id in assignment_ids:
        with api.gradebook as gb:
            try:
                known = bool(gb.find_assignment(assignment_id).notebooks)
            except MissingEntry:
                known = False
        if not known:
            run_nbgrader(api.generate_assignment(assignment_id, force=True), f"generate_assignment {assignment_id}")


def export_csv(api, path):
    from nbgrader.plugins import CsvExportPlugin

    with api.gradebook as gb:
        CsvExportPlugin(to=str(path)).export(gb)
    return path


def _outcome(api, sub, digest, root):
    """What grade-all.json records of a graded submission, read from the gradebook and the notebook."""
    nb = nbformat.read(Path(root) / "autograded" / sub.student / sub.assignment / f"{sub.assignment}.ipynb",
                       as_version=4)
    record = nb.metadata.get("autograder", {})
    execution = record.get("execution") or {}
    messages = cell_messages(nb)
    with api.gradebook as gb:
        submitted = gb.find_submission(sub.assignment, sub.student)
        score, max_score, penalty = submitted.score, submitted.max_score, submitted.late_submission_penalty
    failed = {name: message for name, message in messages.items() if message}
    return {
        "status": "graded", "score": score, "max_score": max_score, "late_penalty": penalty,
        "fault": (execution.get("fault") or {}).get("reason"), "flags": record.get("flags", []),
        "failed_tests": failed, "sandbox": (execution.get("sandbox") or {}).get("kind", "none"),
        "device": record.get("device", "unknown"), "host": record.get("host"),
        "seconds": (execution.get("seconds")), "versions": record.get("versions", {}),
        "seeds": record.get("seeds", []), "sha256": digest,
    }


def grade_all(root, workers=2, scheduler=None, gpu=False, timeout=3600, force=False, sandbox=True,
              verbose=False, progress=True, **course_directory):
    """Grade every submission under ``root/submitted``; return the per-submission outcomes.

    ``course_directory`` holds nbgrader CourseDirectory settings (see
    `course.course_settings`), the gradebook's ``db_url`` among them.
    """
    from .course import nbgrader_config

    root = Path(root)
    config = nbgrader_config(root, **course_directory)
    if not sandbox:
        config.SandboxedExecute.sandbox = "none"
    config.SandboxedExecute.show_kernel_output = verbose
    solutions = root / course_directory.get("source_directory", SOLUTIONS.name)
    known = set(check_ids([], solutions))
    submissions = find_submissions(root, known)
    if sandbox and not scheduler and not bwrap_works():
        from .grading import NO_SANDBOX

        raise UserError(NO_SANDBOX)
    state_path = root / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    outcomes, digests, pending = {}, {}, []
    for sub in submissions:
        if sub.problem:
            outcomes[sub.key] = {"status": "malformed", "reason": sub.problem}
            continue
        digests[sub.key] = digest = sub.digest()
        previous = state.get(sub.key, {})
        if not force and previous.get("sha256") == digest and previous.get("status") == "graded":
            outcomes[sub.key] = previous
        else:
            pending.append(sub)

    # The cluster comes first: if it cannot be reached, the gradebook is left as it was.
    with dask_client(workers, scheduler, verbose) if pending else contextlib.nullcontext() as client:
        if gpu and pending and not any(w.get("resources", {}).get("GPU")
                                       for w in client.scheduler_info()["workers"].values()):
            raise UserError("no Dask worker offers a GPU; start workers with `dask worker ... --resources GPU=1`.")
        host.configure_kernels()
        api = nbgrader_api(root, config=config)
        _ensure_assignments(api, sorted({s.assignment for s in submissions if s.assignment in known}))
        for sub in submissions:
            if sub.problem and sub.assignment in known:
                _zero_row(api, sub)
        dispatcher = Dispatcher(client, config, timeout, gpu)
        _, gradebook_steps = pipeline.split(config.Autograde.autograde_preprocessors)
        bar = _progress(len(pending)) if progress and pending else None
        by_key = {s.key: s for s in pending}

        def record(key, outcome):
            outcomes[key] = outcome
            if bar is not None:
                bar.update(outcome, dispatcher.running())

        def save(key):
            """The gradebook steps on a notebook a worker sent back, in this process only."""
            sub = by_key[key]
            result = _autograde(config, sub.assignment, sub.student,
                                [TakeFromWorker(dispatcher=dispatcher)] + gradebook_steps)
            record(key, _outcome(api, sub, digests[key], root) if result["success"] else
                   {"status": "failed", "reason": nbgrader_failure(result), "sha256": digests[key]})

        for sub in pending:
            result = _autograde(config, sub.assignment, sub.student, [SendToWorker(dispatcher=dispatcher)])
            if not result["success"]:
                _zero_row(api, sub)
                record(sub.key, {"status": "failed", "reason": nbgrader_failure(result), "sha256": digests[sub.key]})
            for key in dispatcher.completed(wait=False):
                save(key)
        for key in dispatcher.completed():
            save(key)
        if bar is not None:
            bar.close()

    outcomes = dict(sorted(outcomes.items()))
    state_path.write_text(json.dumps(outcomes, indent=1))
    export_csv(api, root / "grades.csv")
    return outcomes


class _progress:
    """A tqdm bar with done / failed / running counts."""

    def __init__(self, total):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="grading", unit="submission", file=sys.stderr)
        self.done = self.failed = 0

    def update(self, outcome, running):
        if outcome["status"] == "graded" and not outcome.get("fault"):
            self.done += 1
        else:
            self.failed += 1
        self.bar.set_postfix(done=self.done, failed=self.failed, running=running)
        self.bar.update(1)

    def close(self):
        self.bar.close()


def format_outcomes(outcomes):
    lines = []
    for key, outcome in outcomes.items():
        if outcome["status"] == "graded":
            extra = f"  (stopped early: {outcome['fault']})" if outcome.get("fault") else ""
            extra += "".join(f"  [flag: {flag}]" for flag in outcome.get("flags", []))
            late = f"  late penalty {outcome['late_penalty']:g}" if outcome.get("late_penalty") else ""
            lines.append(f"  {key:<40} {outcome['score']:g} / {outcome['max_score']:g}{late}{extra}")
        else:
            lines.append(f"  {key:<40} {outcome['status'].upper()}: {outcome['reason']}")
    graded = sum(o["status"] == "graded" for o in outcomes.values())
    lines.append(f"{graded} of {len(outcomes)} submissions graded.")
    return "\n".join(lines)


if __name__ == "__main__":
    execute_job(sys.argv[1], sys.argv[2])
