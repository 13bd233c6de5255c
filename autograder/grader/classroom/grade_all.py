"""`autograder grade-all`: a class's submissions, graded across machines with Dask, into nbgrader's gradebook.

Each submission goes once through nbgrader's own Autograde converter, in the
course folder, with the course's pipeline (autograder/run/pipeline.py): the
sanitize pass, then `GradingRun`, whose runner (`Dispatcher`) ships the
sanitized notebook, its files and the course's whole configuration to a Dask
worker and waits for the executed notebook, then the gradebook steps
(SaveAutoGrades, AssignLatePenalties with the timestamp and the configured
LateSubmissionPlugin, CheckCellMetadata).

The converter passes run in threads, one at a time (a lock), except while a
pass waits for its worker: only this process writes the gradebook, so
SQLite's single writer is respected (jupyter/nbgrader#174), while the workers
grade in parallel and need no shared file system. Without --scheduler, a
local cluster of --workers processes is started.

Before any student's notebook of a worksheet goes to a host, that host
grades the worksheet's reference solution (`reference`): it must reach full
marks, and its time sets the host's budget per notebook. A fault of the host
(no jail, no data, a reference short of full marks, a grading process that
failed) saves no score: the submission is recorded as a host fault, nothing
more goes to that host, grade-all exits non-zero, and the next run retries
it. Every submission is first copied safely (`safe_files`: links, special
files and oversized files refused, the notebook checked and repaired), and
nbgrader reads only that copy.

Every other submission ends with a row in the gradebook and grades.csv: a
fault in the student's notebook keeps the points of the cells that ran; a
malformed submission (no notebook, not a notebook, renamed) gets zero with its
reason. A second run regrades only what changed. Outcomes go to grade-all.json.
"""

import collections
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import nbformat

from ... import UserError
from ...run import safe_files
from ...run.jail import has_gpu
from ...run.pipeline import GRADEBOOK, GradingRun
from ...run.record import CourseProblem, HostFault, report, terminal_text
from ..course import (
    autograde_one,
    check_ids,
    nbgrader_api,
    nbgrader_config,
    nbgrader_failure,
    run_nbgrader,
    source_folder,
)
from ..hidden_tests.launch import course_secret
from .reference import ReferenceVerdict, reference, reference_payload
from .time_limits import checked, with_host_budgets, with_run_limit
from .worker import Answer, Payload, execute, executed_notebook, settle

STATE_FILE = "grade-all.json"
UNPROCESSABLE = "the grader could not process this notebook"


@dataclass
class Submission:
    student: str
    assignment: str
    folder: Path
    problem: str = ""  # why it cannot be graded, or ""
    notes: list = field(default_factory=list)  # files refused, repairs made
    digest: str = ""

    @property
    def key(self):
        return f"{self.student}/{self.assignment}"


def _folders(parent):
    """Sub-folders of ``parent`` that are real folders (a link is no student and no assignment)."""
    return sorted((p for p in parent.iterdir() if p.is_dir() and not p.is_symlink()), key=lambda p: p.name)


def find_submissions(root, known):
    """Every ``submitted/<student>/<assignment>/``, each with the problem that stops its grading, if any."""
    submitted = Path(root) / "submitted"
    if not submitted.is_dir():
        raise UserError(f"no submissions: {submitted} does not exist (nbgrader's submitted/<student>/<assignment>/).")
    found = []
    for student in _folders(submitted):
        for folder in _folders(student):
            sub = Submission(student.name, folder.name, folder)
            notebook = folder / f"{sub.assignment}.ipynb"
            others = sorted(p.name for p in folder.glob("*.ipynb") if p.name != notebook.name)
            if sub.assignment not in known:
                sub.problem = f"unknown assignment {sub.assignment!r}"
            elif not notebook.exists() and not notebook.is_symlink():
                sub.problem = f"missing notebook {notebook.name}" + (
                    f" (found {', '.join(others)}: renamed, or handed in to the wrong assignment?)" if others else "")
            found.append(sub)
    if not found:
        raise UserError(f"no submissions in {submitted}.")
    return found


def stage_submission(sub, staging):
    """Copy ``sub`` safely to ``staging/<student>/<assignment>/`` (`grade.stage`); its problem, notes and digest."""
    from .grade import stage

    dest = Path(staging) / sub.student / sub.assignment
    name = f"{sub.assignment}.ipynb"
    try:
        nb, repairs = safe_files.read_notebook(name, base=sub.folder)
    except (safe_files.Refused, OSError) as e:
        sub.problem = f"{name} cannot be graded: {e}"
        return
    sub.notes = repairs + stage(sub.folder / name, nb, dest)
    h = hashlib.sha256()
    for relative, path in safe_files.regular_files(dest):
        h.update(str(relative).encode() + b"\0" + path.read_bytes())
    sub.digest = h.hexdigest()


# --- the coordinator's runner: submissions out to hosts, executed notebooks back ----------------

@dataclass
class Host:
    name: str
    workers: list
    slots: int
    busy: int = 0
    fault: str = ""  # the first host fault seen there: nothing more goes to it
    verdicts: dict = field(default_factory=dict)  # assignment -> ReferenceVerdict, or None while it runs
    gpu_sharing: int = 0  # the most of its workers that see the same GPUs (0: not known, all of them)


def shared_gpu(config, host):
    """``config`` (a plain dict) where each grading on ``host`` keeps its share of a GPU's memory, unless the
    course set one: the workers that see the same GPUs share them, and one notebook holding all of it would make
    the classmates graded beside it fail (the jail watches it where nvidia-smi answers). Workers each given a GPU
    of their own (`CUDA_VISIBLE_DEVICES`) keep all of it."""
    sharing = host.gpu_sharing or host.slots
    if sharing > 1:
        config.setdefault("SandboxedExecute", {}).setdefault("gpu_memory_share", round(1 / sharing, 4))
    return config


def visible_gpus():
    """The GPUs a worker's kernels see (run on the worker): its `CUDA_VISIBLE_DEVICES`, None for all."""
    return os.environ.get("CUDA_VISIBLE_DEVICES")


class Dispatcher:
    """`GradingRun`'s runner for grade-all: each notebook to a Dask worker of a host that passed its reference run.

    Called from a converter thread that holds ``lock``; the lock is let go
    while the thread waits, so that other submissions are sanitized and saved
    meanwhile. At most one notebook per worker thread is in flight: a task
    merely queued on a worker that dies counts as killed too. A notebook
    whose worker died is run once more by the scheduler (allowed-failures 1).
    """

    def __init__(self, client, config, timeout, gpu, lock, say=lambda line: None, counts=None):
        self.client, self.config, self.timeout, self.gpu, self.lock = client, config, timeout, gpu, lock
        self.say = say  # a line for the instructor: which reference runs hold the class back
        self.counts = dict(counts or {})  # assignment -> submissions of it to grade (for the estimate)
        self.estimated = False
        self.resources = {"GPU": 1} if gpu else None
        self.hosts = {}
        self.course_problems = {}  # assignment -> why the course's own drawings stop its grading on every host
        self.changed = threading.Condition()
        self.running = 0
        self._refresh()

    def _refresh(self):
        workers = self.client.scheduler_info()["workers"]
        grouped = {}
        for address, info in workers.items():
            if self.gpu and not info.get("resources", {}).get("GPU"):
                continue
            grouped.setdefault(info.get("host") or address, []).append((address, info.get("nthreads", 1)))
        for name, members in grouped.items():
            host = self.hosts.setdefault(name, Host(name, [], 0))
            if sorted(host.workers) != sorted(a for a, _ in members):
                host.gpu_sharing = self._gpu_sharing(members)
            host.workers = [a for a, _ in members]
            host.slots = max(1, sum(n for _, n in members))
        return set(grouped)

    def _gpu_sharing(self, members):
        """The most slots among ``members`` (one host's workers and their threads) that see the same GPUs; 0 where
        they cannot tell."""
        threads = dict(members)
        try:
            seen = self.client.run(visible_gpus, workers=list(threads))
        except Exception:  # a worker gone meanwhile: every slot counts as sharing
            return 0
        sharing = collections.Counter()
        for address, gpus in seen.items():
            sharing[gpus] += threads.get(address, 1)
        return max(sharing.values(), default=0)

    def run(self, nb, resources):
        payload = Payload.of(nb, resources, self.config, self.timeout)
        self.lock.release()
        try:
            answer = self._grade(payload)
        finally:
            self.lock.acquire()
            # nbgrader's utils.setenv saves os.environ.get(value) instead of .get(key), so every
            # Autograde pass deletes NBGRADER_EXECUTION when it ends: another pass that ended while this
            # one waited deleted it already, and this pass's delete would raise KeyError. Put it back.
            os.environ["NBGRADER_EXECUTION"] = "autograde"
        return executed_notebook(answer), resources

    def _grade(self, payload):
        host = self._take_host(payload.assignment)
        payload = replace(payload, config=shared_gpu(with_host_budgets(payload.config,
                                                                        host.verdicts[payload.assignment]), host))
        try:
            answer = settle(self._on(host, execute, payload, "grade"), lambda: self._recheck(host, payload.assignment))
        finally:
            self._give_back(host)
        if answer.host_fault:
            self._fault(host, answer.host_fault)
        return answer

    def _recheck(self, host, assignment, wait=60):
        """``host`` checks itself after a run failed there: the reference solution again, uncached."""
        deadline = time.monotonic() + wait
        while True:
            with self.changed:  # a worker that died is replaced, at another address
                present = self._refresh()
            # workers a busy host left without a heartbeat for a while come back: only a host whose workers
            # stay away is gone (a hog beside a hung run had made that the host's fault at once)
            if host.name in present or time.monotonic() > deadline:
                break
            time.sleep(1)
        if host.name not in present:
            return ReferenceVerdict(False, host.name, f"its Dask workers are gone (none came back within {wait} s)")
        return self._reference(host, assignment, "recheck", fresh=True)

    def _reference(self, host, assignment, what, **options):
        """``host``'s `ReferenceVerdict` on ``assignment``: its reference run as a task there (or its cached
        verdict); a task that failed is a verdict against the host."""
        found = self._on(host, reference, self._reference_payload(host, assignment), what, **options)
        return ReferenceVerdict(**found) if isinstance(found, dict) else ReferenceVerdict(False, host.name,
                                                                                          found.host_fault)

    def _on(self, host, task, payload, what, **options):
        """``task(payload)`` on a worker of ``host``: its result, or an Answer saying why there is none."""
        from distributed.scheduler import KilledWorker

        with self.changed:
            self.running += 1
        future = self.client.submit(task, payload, **options,
                                    key=f"{what}-{payload.nbgrader['student']}-{time.time_ns()}",
                                    workers=host.workers, allow_other_workers=False, pure=False,
                                    resources=self.resources)
        try:
            return future.result()
        except KilledWorker:
            return Answer(host.name, "", host_fault="the Dask workers grading it died twice")
        except Exception as e:  # the task itself failed: the host's, reported, the others go on
            return Answer(host.name, "", host_fault=f"{type(e).__name__}: {str(e)[:300]}")
        finally:
            future.release()
            with self.changed:
                self.running -= 1

    def _take_host(self, assignment):
        """A slot on a host that passed ``assignment``'s reference run; runs that reference where needed."""
        with self.changed:
            while True:
                if assignment in self.course_problems:
                    raise CourseProblem(f"{assignment} cannot be graded with the course's drawings: "
                                        f"{self.course_problems[assignment]}")
                healthy = [h for h in self.hosts.values() if not h.fault]
                if not healthy:
                    reasons = "; ".join(sorted({h.fault for h in self.hosts.values()}))
                    raise HostFault(f"no grading host is left ({reasons})")
                for host in healthy:
                    verdict = host.verdicts.get(assignment)
                    if verdict is not None and host.busy < host.slots:
                        host.busy += 1
                        return host
                for host in healthy:
                    if assignment not in host.verdicts and host.busy < host.slots:
                        host.verdicts[assignment] = None  # running
                        host.busy += 1
                        threading.Thread(target=self._check, args=(host, assignment), daemon=True).start()
                self.changed.wait(timeout=2)
                self._refresh()

    def _check(self, host, assignment):
        """The host's reference run for ``assignment``; a host short of full marks is faulted."""
        self.say(f"{host.name}: grading the reference solution of {assignment} before its submissions "
                 "(once per host and version; a minute or more the first time)")
        try:
            verdict = self._reference(host, assignment, "reference")
        except CourseProblem as e:  # the course's drawings cannot be read: no host could grade with them
            self.say(f"{host.name}: the reference solution of {assignment} cannot run: {e}")
            with self.changed:
                host.busy -= 1
                host.verdicts.pop(assignment, None)
                self.course_problems[assignment] = str(e)
                self.changed.notify_all()
            return
        except Exception as e:
            verdict = ReferenceVerdict(False, host.name, f"{type(e).__name__}: {str(e)[:300]}")
        self.say(f"{host.name}: the reference solution of {assignment}: " + (
            f"{verdict.score:g}/{verdict.max_score:g}" + (" (this host's cached verdict)" if verdict.cached
                                                          else f" in {verdict.seconds:.0f} s")
            if verdict.ok else f"cannot grade with the course's drawings: {verdict.problem}" if verdict.drawings
            else f"FAILED, so this host grades none of it: {verdict.problem}"))
        with self.changed:
            host.busy -= 1
            if verdict.ok:
                host.verdicts[assignment] = verdict
            elif verdict.drawings:  # the course's drawings, not this host: it grades the other worksheets
                host.verdicts.pop(assignment, None)
                self.course_problems[assignment] = verdict.problem
            else:
                host.verdicts.pop(assignment, None)
                host.fault = host.fault or verdict.problem
            self.changed.notify_all()
        self._estimate()

    def _estimate(self):
        """Once each worksheet to grade has a reference verdict: how long the class should take at the pace of
        the reference runs (each timed with the share of its host a jail keeps when all the slots are busy)."""
        with self.changed:
            if self.estimated:
                return
            seconds = {}
            for assignment in self.counts:
                found = [h.verdicts[assignment].seconds for h in self.hosts.values() if h.verdicts.get(assignment)]
                if not found and assignment not in self.course_problems:
                    return
                if found:
                    seconds[assignment] = statistics.median(found)
            slots = sum(h.slots for h in self.hosts.values() if not h.fault)
            self.estimated = bool(seconds and slots)
        if self.estimated:
            count = sum(self.counts[a] for a in seconds)
            total = sum(self.counts[a] * s for a, s in seconds.items()) / slots
            self.say(f"at the pace of the reference runs, the {count} submission{'s' * (count != 1)} take about "
                     f"{duration(total)} on {slots} slot{'s' * (slots != 1)} ("
                     + ", ".join(f"{a}: {s:.0f} s each" for a, s in sorted(seconds.items())) + ")")

    def _reference_payload(self, host, assignment):
        """The reference run for ``host``, timed with the CPU share each of its jails keeps when all its slots
        are busy (a hog beside a student then takes no more than a neighbour's share from her budget)."""
        payload = reference_payload(self.config, assignment, self.timeout)
        if host.slots > 1:
            payload.config.setdefault("SandboxedExecute", {})["cpu_share"] = round(1 / host.slots, 4)
        return replace(payload, config=shared_gpu(payload.config, host))

    def _give_back(self, host):
        with self.changed:
            host.busy -= 1
            self.changed.notify_all()

    def _fault(self, host, reason):
        with self.changed:
            host.fault = host.fault or reason
            self.changed.notify_all()

    def references(self):
        return {h.name: {a: asdict(v) for a, v in h.verdicts.items() if v is not None} for h in self.hosts.values()}


# --- the cluster -------------------------------------------------------------------------

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
def dask_client(workers, scheduler, verbose, dashboard=False, gpu=False):
    """A client of the running cluster at ``scheduler``, else of a local one of ``workers`` processes, each
    offering one GPU with ``gpu`` (they share this machine's: every jail grows GPU memory as it needs it).

    The local cluster's web pages (task names, which carry the students', and the workers' logs) are
    off: on loopback every user of the machine could read them. With ``dashboard`` they are served on
    a Unix socket only the grader's user can open (`private_dashboard`)."""
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
    # their own (the jail sets the student's); nothing listens beyond localhost.
    settings |= {"distributed.scheduler.allowed-failures": 1}
    with tempfile.TemporaryDirectory(prefix="autograder-dask-") as scratch:
        # Dask's scratch folder goes first on the import path of its processes (the scheduler in this
        # one): left to its default, it is /tmp/dask-scratch-space, which any user of the machine can
        # make first and fill with modules named argparse or traitlets. Here it is a folder of ours, 0700.
        settings |= {"temporary-directory": scratch}
        if not dashboard:
            settings |= {"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}
        with dask.config.set(settings):
            cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address="127.0.0.1:0" if dashboard else None,
                                   local_directory=scratch, security=cluster_security(), memory_limit=0,
                                   resources={"GPU": 1} if gpu else None,
                                   silence_logs=logging.INFO if verbose else logging.CRITICAL)
            client = Client(cluster, security=cluster.security, set_as_default=False)
        try:
            if dashboard:
                socket_path, _server = private_dashboard(cluster, scratch)
                print(f"autograder: Dask's dashboard is on the Unix socket {socket_path}, "
                      "yours alone; from your own computer: ssh -L 8787:SOCKET this-host, then "
                      "http://localhost:8787/info/main/workers.html", file=sys.stderr, flush=True)
            yield client
        finally:
            client.close()
            cluster.close()


def private_dashboard(cluster, folder):
    """Serve the local scheduler's web pages on a Unix socket in ``folder`` (the grader's, 0700), and close
    the loopback port Dask opened for them, which any user of the machine could reach."""
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_unix_socket

    path = Path(folder) / "dashboard.sock"
    scheduler = cluster.scheduler

    async def serve():
        scheduler.http_server.stop()
        server = HTTPServer(scheduler.http_application)
        server.add_socket(bind_unix_socket(str(path), mode=0o600))
        return server

    return path, cluster.sync(serve)


def cluster_security():
    """TLS for the local cluster: a Dask scheduler on loopback runs whatever any local user sends it, as
    the grader. The course's own key when the environment sets one (`autograder hub` does, for its
    instructors), else a key made for this run and held in memory only (Dask's `Security.temporary`)."""
    import dask
    from distributed.security import Security

    if dask.config.get("distributed.comm.require-encryption", False):
        return Security()
    return Security.temporary()


# --- the gradebook -----------------------------------------------------------------------

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


def _known_submission(api, sub):
    from nbgrader.api import MissingEntry

    with api.gradebook as gb:
        try:
            gb.find_submission(sub.assignment, sub.student)
            return True
        except MissingEntry:
            return False


def _forget(api, sub):
    """A host fault on a submission the gradebook did not have: no row, not even a zero."""
    with api.gradebook as gb:
        gb.remove_submission(sub.assignment, sub.student)


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


def export_csv(api, path, root):
    """grades.csv, with each row's status and reason, and no score where none was saved (`grades_export`)."""
    from .grades_export import GradesCsvExport

    with api.gradebook as gb:
        GradesCsvExport(to=str(path), course_root=str(root)).export(gb)
    return path


def _scores(api, sub):
    """Each test cell's score as the gradebook holds it (manual grades included), and the submission's totals."""
    with api.gradebook as gb:
        submitted = gb.find_submission(sub.assignment, sub.student)
        cells = {g.name: (g.score, g.max_score) for n in submitted.notebooks for g in n.grades}
        return cells, submitted.score, submitted.max_score, submitted.late_submission_penalty


def _outcome(api, sub, root):
    """What grade-all.json records of a graded submission: the run's report, with the gradebook's scores."""
    nb = nbformat.read(Path(root) / "autograded" / sub.student / sub.assignment / f"{sub.assignment}.ipynb",
                       as_version=4)
    cells, score, max_score, penalty = _scores(api, sub)
    graded = report(nb, cells)
    record = nb.metadata.get("autograder", {})
    return {
        "status": "graded", "score": score, "max_score": max_score, "late_penalty": penalty,
        "fault": graded["fault"], "flags": graded["flags"], "notes": sub.notes + graded["notes"],
        "failed_tests": {c["name"]: c["message"] for c in graded["cells"] if c["message"]},
        "sandbox": graded["sandbox"], "limits": graded["limits"], "device": graded["device"], "host": record.get("host") or graded["host"],
        "seconds": graded["seconds"], "budget_seconds": graded["budget_seconds"], "versions": graded["versions"],
        "grader_peak_bytes": graded["grader_peak_bytes"],
        "seeds": graded["seeds"], "sha256": sub.digest,
    }


def _current_scores(api, outcomes, by_key):
    """The gradebook's scores now (a manual grade typed in Formgrader counts) for every graded row."""
    for key, outcome in outcomes.items():
        if outcome.get("status") == "graded" and key in by_key:
            _, outcome["score"], outcome["max_score"], outcome["late_penalty"] = _scores(api, by_key[key])


# --- the whole run -------------------------------------------------------------------------

def grade_all(root, workers=2, scheduler=None, gpu=False, timeout=None, force=False, sandbox=True,
              verbose=False, progress=True, dashboard=False, progress_file=None, **course_directory):
    """Grade every submission under ``root/submitted``; return the per-submission outcomes.

    ``course_directory`` holds nbgrader CourseDirectory settings (see
    `course.course_settings`), the gradebook's ``db_url`` among them;
    ``timeout`` sets `GradingRun.timeout`, the limit of each grading process
    (a submission's, or a host's reference run; the course's own by default);
    ``progress_file`` also receives the progress as JSON (Formgrader's page reads it).
    """
    # Absolute: nbgrader's converter changes the working folder while another submission's pass runs (red team:
    # a relative --root stopped the class with FileNotFoundError).
    root = Path(root).resolve()
    if dashboard and scheduler:
        raise UserError("--dashboard is for the local cluster; a cluster you started serves its own dashboard, "
                        "so keep it on a private address or behind a login.")
    if not root.is_dir():
        raise UserError(f"no course folder at {root}.")
    with course_lock(root):
        return _grade_all(root, workers, scheduler, gpu, timeout, force, sandbox, verbose, progress, dashboard,
                          progress_file, course_directory)


@contextlib.contextmanager
def course_lock(root):
    """One grade-all per course at a time (Formgrader's button and a terminal both start one): a second one would
    grade the same gradebook at once."""
    import fcntl

    fd = os.open(root / ".grade-all.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another grade-all is grading {root} now (from Formgrader or a terminal); wait for it "
                            "to end, then run this again.") from None
        yield
    finally:
        os.close(fd)


def _grade_all(root, workers, scheduler, gpu, timeout, force, sandbox, verbose, progress, dashboard, progress_file,
               course_directory):
    from .worker import host_problem

    config = nbgrader_config(root, **course_directory)
    if not sandbox:
        config.SandboxedExecute.sandbox = "none"
    config.SandboxedExecute.show_kernel_output = verbose
    config.PlanHiddenTests.secret = course_secret(root)  # the workers cannot read the course folder
    config = with_run_limit(config, timeout)
    limits = checked(config, lambda line: print(line, file=sys.stderr))
    known = set(check_ids([], source_folder(config)))
    submissions = find_submissions(root, known)
    if gpu and not scheduler and not has_gpu():
        raise UserError("--gpu with local workers needs an NVIDIA GPU on this machine, and it has none (no "
                        "/dev/nvidia0); leave --gpu out to grade on the CPU, or give --scheduler of workers started "
                        "with --resources GPU=1.")
    if sandbox and not scheduler and "cannot start the jail" in (problem := host_problem(config)):
        from .grade import no_jail_error

        raise no_jail_error(problem)  # one sentence: the fix for a missing bubblewrap, else the cause

    state_path = root / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    outcomes, pending = {}, []
    with tempfile.TemporaryDirectory(prefix="autograder-staged-") as staging:
        for sub in submissions:
            if not sub.problem:
                stage_submission(sub, staging)
            if sub.problem:
                outcomes[sub.key] = {"status": "malformed", "reason": sub.problem}
                continue
            previous = state.get(sub.key, {})
            # An unchanged submission keeps its outcome: graded, or one the grader could not process on a host
            # that passed its own check (--force tries again); a host's fault is always retried.
            if not force and previous.get("sha256") == sub.digest and previous.get("status") in ("graded",
                                                                                                 "unprocessable"):
                outcomes[sub.key] = previous
            else:
                pending.append(sub)

        tell = _progress(len(pending), progress, progress_file)
        if progress or progress_file:  # at once: the cluster takes seconds to start
            where = f"the Dask cluster at {scheduler}" if scheduler else f"{workers} local worker" + "s" * (workers != 1)
            malformed = sum(1 for sub in submissions if sub.problem)
            kept = len(submissions) - len(pending) - malformed
            besides = [f"{kept} unchanged, kept as graded"] * bool(kept) + [f"{malformed} that cannot be graded, "
                                                                           "listed at the end"] * bool(malformed)
            tell.line(f"{len(pending)} of {len(submissions)} submissions in {root} to grade"
                      + (f" ({'; '.join(besides)})" if besides else "") + (f", on {where}" if pending else "") + ".")
        # The cluster comes first: if it cannot be reached, the gradebook is left as it was.
        with dask_client(workers, scheduler, verbose, dashboard, gpu) if pending else contextlib.nullcontext() as client:
            if gpu and pending and not any(w.get("resources", {}).get("GPU")
                                           for w in client.scheduler_info()["workers"].values()):
                raise UserError("no Dask worker offers a GPU; start workers with `dask worker ... --resources GPU=1`.")
            config.CourseDirectory.submitted_directory = staging  # nbgrader reads the safe copies only
            api = nbgrader_api(root, config=config)
            _ensure_assignments(api, sorted({s.assignment for s in submissions if s.assignment in known}))
            for sub in submissions:
                if sub.problem and sub.assignment in known:
                    _zero_row(api, sub)
            lock = threading.Lock()
            if pending:
                tell.start()
            dispatcher = Dispatcher(client, config, limits.run, gpu, lock, tell.write,
                                    collections.Counter(s.assignment for s in pending)) if pending else None

            def grade_one(sub):
                with lock:
                    known_before = _known_submission(api, sub)
                    run = GradingRun(config=config, runner=dispatcher)
                    result = autograde_one(config, sub.assignment, sub.student, [run, *GRADEBOOK], verbose)
                    if run.host_fault:
                        if not known_before:
                            _forget(api, sub)
                        outcome = {"status": "host-fault", "reason": run.host_fault, "sha256": sub.digest}
                    elif run.course_problem:  # no score, and retried on the next run, once the course mends it
                        if not known_before:
                            _forget(api, sub)
                        outcome = {"status": "not-graded", "reason": run.course_problem, "sha256": sub.digest}
                    elif run.unprocessable or not result["success"]:
                        # The host was sound (it passed its own check) or nbgrader itself failed on this
                        # notebook: the submission's outcome, flagged, with no score (never a zero).
                        if not known_before:
                            _forget(api, sub)
                        why = run.unprocessable or f"nbgrader failed on it ({nbgrader_failure(result)})"
                        outcome = {"status": "unprocessable", "reason": f"{UNPROCESSABLE}: {why}",
                                   "flags": [f"{UNPROCESSABLE}; look at it, then regrade it with --force"],
                                   "notes": sub.notes, "sha256": sub.digest}
                    else:
                        outcome = _outcome(api, sub, root)
                    outcomes[sub.key] = outcome
                    tell.update(outcome, dispatcher.running)

            if pending:
                threads = max(2, 2 * sum(h.slots for h in dispatcher.hosts.values()))
                with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
                    for future in [pool.submit(grade_one, sub) for sub in pending]:
                        future.result()
            tell.close()
            config.CourseDirectory.submitted_directory = "submitted"
            api = nbgrader_api(root, config=config)
            _current_scores(api, outcomes, {s.key: s for s in submissions})

    outcomes = dict(sorted(outcomes.items()))
    state_path.write_text(json.dumps(outcomes, indent=1))
    export_csv(api, root / "grades.csv", root)
    if dispatcher is not None:
        (root / "grade-all-hosts.json").write_text(json.dumps(dispatcher.references(), indent=1))
    return outcomes


class _progress:
    """What grade-all tells while it runs: a tqdm bar with done / failed / running counts and lines above it
    (``shown``), and the same as JSON in ``path`` (``{"total", "done", "failed", "running", "lines"}``)."""

    def __init__(self, total, shown=True, path=None):
        self.total, self.shown, self.path = total, shown, path and Path(path)
        self.done = self.failed = self.running = 0
        self.lines = []
        self.bar = None
        self._save()

    def start(self):
        """The bar, once the cluster is there."""
        if self.shown and self.total:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc="grading", unit="submission", file=sys.stderr)
        return self

    def line(self, text):
        """A line before the bar exists (the cluster starts)."""
        if self.shown:
            print(terminal_text(f"autograder: {text}"), file=sys.stderr, flush=True)
        self.lines.append(text)
        self._save()

    def write(self, text):
        if self.bar is not None:
            self.bar.write(terminal_text(f"autograder: {text}"), file=sys.stderr)
        self.lines.append(text)
        self._save()

    def update(self, outcome, running):
        if outcome["status"] == "graded" and not outcome.get("fault"):
            self.done += 1
        else:
            self.failed += 1
        self.running = running
        if self.bar is not None:
            self.bar.set_postfix(done=self.done, failed=self.failed, running=running)
            self.bar.update(1)
        self._save()

    def close(self):
        if self.bar is not None:
            self.bar.close()

    def _save(self):
        if self.path is None:
            return
        staging = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        staging.write_text(json.dumps({"total": self.total, "done": self.done, "failed": self.failed,
                                       "running": self.running, "lines": self.lines[-20:]}))
        os.replace(staging, self.path)


def duration(seconds):
    """``seconds`` for a person: "40 s", "12 min", "2 h 05 min"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def format_outcomes(outcomes):
    lines = []
    for key, outcome in outcomes.items():
        if outcome["status"] == "graded":
            extra = f"  (stopped early: {outcome['fault']})" if outcome.get("fault") else ""
            extra += "".join(f"  [flag: {flag}]" for flag in outcome.get("flags", []))
            late = f"  late penalty {outcome['late_penalty']:g}" if outcome.get("late_penalty") else ""
            lines.append(f"  {key:<40} {outcome['score']:g} / {outcome['max_score']:g}{late}{extra}")
        elif outcome["status"] == "host-fault":
            lines.append(f"  {key:<40} HOST FAULT, no score saved (regraded on the next run): {outcome['reason']}")
        elif outcome["status"] == "unprocessable":
            lines.append(f"  {key:<40} NO SCORE, flagged for you: {outcome['reason']}")
        elif outcome["status"] == "not-graded":
            lines.append(f"  {key:<40} NOT GRADED, no score saved (the course's to mend): {outcome['reason']}")
        else:
            lines.append(f"  {key:<40} {outcome['status'].upper()}: {outcome['reason']}")
    graded = sum(o["status"] == "graded" for o in outcomes.values())
    lines.append(f"{graded} of {len(outcomes)} submissions graded.")
    return terminal_text("\n".join(lines))
