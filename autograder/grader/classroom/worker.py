"""What a grading host does with one sanitized notebook: here for `grade`, on a Dask worker for `grade-all`.

A `Payload` carries everything a run needs, as bytes and plain data, so a
host needs no shared file system: the sanitized notebook, the files beside
it, the course's whole configuration, the instructor's drawings when the
course names its own, and a time limit. `execute` runs the grading run's
execution steps (`record.run_steps`) in a child process with a hard
time limit and returns an `Answer`: the executed notebook, or the reason
there is none, with the owner of that reason. `reference` runs the same for
the worksheet's reference solution and keeps the verdict on the host.

Runners (`grade.LocalRunner`, grade-all's Dask dispatcher) put a payload
through `execute` from inside nbgrader's Autograde pass (`pipeline.GradingRun`).

A run that fails in a way the kit did not foresee (the grading process
dies or runs past its limit, its record blames the host, the Dask task
fails) is not taken as the host's word: `settle` has the host check itself
again with a fresh reference run. A host that passes keeps grading, and the
outcome is the submission's: "the grader could not process this notebook"
(`Unprocessable`: no score, flagged). Only a host that fails its own check
is at fault (`HostFault`) and takes no more work.
"""

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ...run import host
from ...run.jail import ControlGroups, jail_problem
from ...run.record import (
    HOST,
    RUN_PARENT_VARIABLE,
    HostFault,
    Record,
    RecordVersionError,
    Unprocessable,
)
from ...run.safe_files import ZipSink, copy_tree, remove_tree

MAX_UNPACKED_BYTES = 2 * 2**30


@dataclass
class Payload:
    assignment: str
    nbgrader: dict  # student, assignment, notebook
    notebook: str  # the sanitized notebook, as JSON
    files: bytes  # zip of the files beside it
    config: dict  # the course's whole configuration
    timeout: float  # seconds the whole run may take on the host
    drawings: bytes = b""  # zip of the instructor's drawings, when the course names a folder of its own

    @classmethod
    def of(cls, nb, resources, config, timeout):
        """The payload of the notebook an Autograde pass is at (``resources`` from nbgrader)."""
        import nbformat

        info = resources["nbgrader"]
        drawings = config.get("PlanHiddenTests", {}).get("drawings")
        return cls(
            assignment=info["assignment"],
            nbgrader={k: info[k] for k in ("student", "assignment", "notebook")},
            notebook=nbformat.writes(nb),
            files=pack(resources["metadata"]["path"], skip={f"{info['notebook']}.ipynb"}),
            config=plain_config(config),
            timeout=timeout,
            drawings=pack(drawings) if drawings else b"",
        )

    def digest(self):
        import hashlib

        h = hashlib.sha256()
        for part in (self.assignment, json.dumps(self.nbgrader, sort_keys=True), self.notebook, self.files,
                     json.dumps(self.config, sort_keys=True, default=str), self.drawings):
            h.update(part if isinstance(part, bytes) else part.encode())
            h.update(b"\0")
        return h.hexdigest()


@dataclass
class Answer:
    host: str
    device: str
    notebook: str | None = None
    record: dict | None = None  # the run's record (`Record.to_metadata`), sent beside the notebook: read without it
    error: str = ""  # why there is no notebook
    host_fault: str = ""  # the host's reason: nothing may be saved
    unprocessable: str = ""  # the run failed, then the host passed its own check: the submission's, no score
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def plain_config(config):
    """A traitlets Config as plain JSON data (what a worker rebuilds it from)."""
    return json.loads(json.dumps(config, default=str))


def pack(folder, skip=()):
    """The regular files of ``folder`` as zip bytes (links and special files left out), without ``skip`` names.

    The same files give the same bytes: a reference's payload is part of its cache key, and the copies made
    here are new files (a zip stamped with their times had made every `grade` run the reference again)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:  # straight in: no copy on the way
        copy_tree(folder, ZipSink(archive), skip=set(skip) | {".ipynb_checkpoints"})
    return buffer.getvalue()


def unpack(data, dest, max_bytes=MAX_UNPACKED_BYTES):
    """Write a payload zip into ``dest``: no path outside it, no more than ``max_bytes`` in all."""
    dest = Path(dest).resolve()
    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.infolist():
            target = (dest / member.filename).resolve()
            if dest not in target.parents or member.is_dir():
                continue
            total += member.file_size
            if total > max_bytes:
                raise ValueError(f"the payload unpacks to more than {max_bytes:,} bytes")
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)


def host_problem(config):
    """Why this host cannot grade with ``config``: its data or its jail, or ''."""
    from ..hidden_tests.heldout import data_problem

    problem = data_problem()
    if not problem and config.get("SandboxedExecute", {}).get("sandbox", "bwrap") != "none":
        jail = jail_problem()
        problem = f"{socket.gethostname()} cannot start the jail: {jail}" if jail else ""
    return problem


def execute(payload):
    """Run the execution steps over ``payload`` in a child process; an `Answer` (never raises)."""
    started = time.perf_counter()
    answer = Answer(host=socket.gethostname(), device=host.device())
    answer.host_fault = host_problem(payload.config)
    if answer.host_fault:
        return answer
    with tempfile.TemporaryDirectory(prefix="autograder-worker-") as tmp:
        work = Path(tmp) / payload.assignment
        work.mkdir()
        config = dict(payload.config)
        try:
            unpack(payload.files, work)
            if payload.drawings:
                drawings = Path(tmp) / "drawings"
                unpack(payload.drawings, drawings)
                config["PlanHiddenTests"] = {**config.get("PlanHiddenTests", {}), "drawings": str(drawings)}
        except (ValueError, zipfile.BadZipFile, OSError) as e:
            answer.host_fault = f"the payload could not be unpacked on {answer.host} ({e})"
            return answer
        job, out = Path(tmp) / "job.json", Path(tmp) / "out.ipynb"
        # The notebook as it came, in a file of its own: read once, never escaped into another JSON document.
        job.with_suffix(".ipynb").write_text(payload.notebook)
        job.write_text(json.dumps({"config": config, "path": str(work), "unique_key": payload.nbgrader["notebook"],
                                   "nbgrader": payload.nbgrader}))
        command = [sys.executable, "-I", "-m", "autograder.grader.classroom.worker", str(job), str(out)]
        # setpriv: the grading process dies if this worker does, instead of grading on as an orphan.
        prefix = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []
        # The control groups of its jails carry a name of this run's, so that what a grading process killed
        # for its time leaves behind is removed with it.
        groups = f"autograder-{uuid.uuid4().hex[:8]}-"
        # Its run folders too, in a folder of this run's: the jail's uid may pass through it (0711), nobody may
        # list it, and it goes when the process ends, however it ends (red team: a process killed for its time
        # left the student's files and exports in /tmp).
        runs = tempfile.mkdtemp(prefix="autograder-runs-")
        os.chmod(runs, 0o711)
        try:
            proc = subprocess.Popen(prefix + command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                    errors="replace", start_new_session=True, cwd=tmp,
                                    env={**os.environ, ControlGroups.PREFIX_VARIABLE: groups, RUN_PARENT_VARIABLE: runs})
            _, err = proc.communicate(timeout=payload.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            # The notebook's and the scoring's budgets end inside this limit (`time_limits`): what ran out is the
            # process's own limit, on time none of them covers; the host then checks itself (`settle`).
            answer.host_fault = (f"grading took over {payload.timeout:g} s on {answer.host} and was stopped (the "
                                 "limit of the whole grading process, GradingRun.timeout)")
            return answer
        finally:
            ControlGroups.remove_leftovers(groups)
            remove_tree(runs, settle=10)
        if config.get("SandboxedExecute", {}).get("show_kernel_output"):
            sys.stderr.write(err)  # --verbose: the kernel's and the frameworks' lines, in the worker's log
        if proc.returncode != 0 or not out.is_file():
            lines = [line for line in err.strip().splitlines() if line.strip()]
            answer.host_fault = (f"the grading process failed on {answer.host} "
                                 f"({(lines[-1] if lines else f'exit status {proc.returncode}')[:300]})")
        else:
            answer.notebook = out.read_text()
            record = out.with_suffix(".record.json")
            answer.record = json.loads(record.read_text()) if record.is_file() else None
    answer.seconds = round(time.perf_counter() - started, 1)
    return answer


def bound_own_memory(config):
    """This grading process's heap is bounded (soft RLIMIT_DATA): a kernel's flood of frames, each under
    the socket's cap, ends this process (a run the host then settles), never the host's memory."""
    import resource

    from ...run.pipeline import GradingRun

    limit = GradingRun(config=config).grader_memory_limit
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if limit and (hard == resource.RLIM_INFINITY or limit <= hard):
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def execute_job(job_file, out_file):
    """In the child process: the course's execution steps over the unpacked notebook."""
    import nbformat
    from traitlets.config import Config

    from ...run.pipeline import execution_steps
    from ...run.record import build_steps, run_steps

    job = json.loads(Path(job_file).read_text())
    config = Config(job["config"])
    bound_own_memory(config)
    nb = nbformat.read(Path(job_file).with_suffix(".ipynb"), as_version=4)
    resources = {"metadata": {"path": job["path"]}, "unique_key": job["unique_key"], "nbgrader": job["nbgrader"]}
    nb, _ = run_steps(nb, resources, build_steps(execution_steps(config), config=config))
    # The record first, beside the notebook: the caller reads who owns a fault without parsing the notebook.
    Path(out_file).with_suffix(".record.json").write_text(json.dumps(nb.metadata["autograder"]))
    Path(out_file).write_text(nbformat.writes(nb))


def claimed_host_fault(answer):
    """Why ``answer`` says the host failed the run, or '': no notebook came back, or its record blames the host."""
    if answer.host_fault or answer.notebook is None:
        return answer.host_fault or answer.error or "the grading host returned nothing"
    try:
        metadata = answer.record if answer.record is not None else \
            json.loads(answer.notebook).get("metadata", {}).get("autograder")
        fault = Record.from_metadata(metadata).fault
    except RecordVersionError as e:  # the host runs another version of the grader: its claim, which it then checks
        return f"{e}: the grading host runs another version of autograder"
    except (ValueError, TypeError, AttributeError) as e:
        return f"the grading process returned an unreadable notebook ({type(e).__name__})"
    return fault.reason if fault is not None and fault.owner == HOST else ""


def settle(answer, check_host):
    """``answer``, with a failure that blames the host settled by evidence about the host.

    ``check_host()`` runs the worksheet's reference solution again on that
    host, uncached, and returns its `reference.ReferenceVerdict`. A host that passes
    was sound: the failure was this submission's (`Answer.unprocessable`).
    """
    claimed = claimed_host_fault(answer)
    if not claimed:
        return answer
    try:
        verdict = check_host()
        ok, problem = verdict.ok, verdict.problem
    except Exception as e:  # the check could not even run: that is about the host
        ok, problem = False, f"its own check failed ({type(e).__name__}: {str(e)[:200]})"
    if ok:
        answer.unprocessable, answer.host_fault, answer.notebook = claimed, "", None
    else:
        answer.host_fault = f"{claimed}; then {problem}"
    return answer


def executed_notebook(answer):
    """The executed notebook of an `Answer`, with the host that ran it; raises HostFault for the host's faults,
    Unprocessable for a run the host could not finish on a submission although it passed its own check."""
    import nbformat

    if answer.unprocessable:
        raise Unprocessable(answer.unprocessable)
    if answer.host_fault:
        raise HostFault(answer.host_fault)
    if answer.notebook is None:
        raise HostFault(answer.error or "the grading host returned nothing")
    return nbformat.reads(answer.notebook, as_version=4)



if __name__ == "__main__":
    execute_job(sys.argv[1], sys.argv[2])
