"""Outside the jail: the grader's two steps of a grading run around the student's kernel, and the scoring
process they start (see `scorer` for the whole story).

`PlanHiddenTests` runs before the kernel: it reads each locked test cell's
hidden regions (with nbgrader's own markers, `ClearHiddenTests`), chooses the
grader's inputs with a seed the student cannot know, and puts in the run's
record what the kernel must export after each test cell.

`ScoreHiddenTests` runs after it: a fresh scoring process, in the same jail
as the kernel, decides the checks on the exports; each test cell gets its
verdict as its first output. A scoring process that cannot answer is a
fault of the host, recorded as such.
"""

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade, is_locked
from traitlets import Bool, Dict, Float, Integer, Unicode, default

from ...run.hidden_regions import Markers
from ...run.jail import cpu_cores
from ...run.record import (
    HOST,
    RUN_PARENT_VARIABLE,
    Collection,
    Export,
    HostFault,
    Plan,
    Record,
    Verdict,
)
from .kinds import HIDDEN_FAILED, ScoringTooSlow
from .scorer import READY, SCORER_START, export_code, plan

SECRET_FILE = ".autograder-secret"


def course_secret(root):
    """The key of the grader's input seeds, kept in ``root/.autograder-secret`` (made on first use).

    Students never see it: the jail holds no course folder. With it a
    regrade picks the same inputs, so it gives the same result.
    """
    path = Path(root) / SECRET_FILE
    if path.is_symlink():  # root makes it and hands it to the instructors (hub-setup.sh): never through a link
        from ... import UserError

        raise UserError(f"{path} is a link; the course's secret must be a file of its own: remove the link, then "
                        "run this again.")
    if not path.is_file():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


class PlanHiddenTests(NbGraderPreprocessor):
    """Before the kernel: plan each test cell's hidden checks and the exports they need."""

    secret = Unicode(
        help="Key for the seeds of the grader's inputs. Students must not know it; with it, a regrade picks "
             "the same inputs. Default: the course's own, kept in <course root>/.autograder-secret.",
    ).tag(config=True)
    drawings = Unicode(
        "", help="Folder of the instructor's hand-drawn digits (files named <digit>_*.png/.jpg); empty: the "
                 "example set shipped with the grader. `autograder drawings check DIR` says how the reference "
                 "solutions read a set, before class.",
    ).tag(config=True)
    drawings_floors = Dict(
        value_trait=Float(min=0.0, max=1.0), key_trait=Unicode(),
        help="The accuracy each worksheet requires on the course's own drawings, by worksheet id, e.g. "
             "{'05_cnn': 0.85}, in place of the worksheet's floor; the reference must still clear it by the "
             "calibrated margin. Only with `drawings`: the floor follows the set.",
    ).tag(config=True)
    reference_run = Bool(
        False, help="This run is a host's reference run (set by the grader): the hand-drawn test then requires "
                    "the floor plus the calibrated margin, and reports each drawing's reading.",
    ).tag(config=True)

    @default("secret")
    def _course_secret(self):
        root = self.config.get("CourseDirectory", {}).get("root") or os.getcwd()
        return course_secret(root)

    def preprocess(self, nb, resources):
        record = Record.of(resources)
        markers = Markers.from_config(self.config)
        blocks = {}
        for cell in nb.cells:
            if cell.cell_type == "code" and is_grade(cell) and is_locked(cell):
                found = markers.blocks(cell.source)
                if found:
                    blocks[cell.metadata.nbgrader["grade_id"]] = "\n".join(found)
        if not blocks:
            return nb, resources
        folders = record.folders
        settings = self._settings(resources)
        base_seed = self._seed(nb, resources)
        for number, (grade_id, block) in enumerate(blocks.items()):
            written, kept = folders.exchange / f"{number:02d}", folders.kept / f"{number:02d}"
            seed = int.from_bytes(hashlib.sha256(f"{base_seed}/{grade_id}".encode()).digest()[:8], "big")
            where = f"the hidden test of {grade_id}"
            plan(block, seed, written, write=True, where=where, settings=settings)
            record.plans[grade_id] = Plan(block, seed, str(kept), where)
            record.collections[grade_id] = Collection(export_code(written / "request.json"),
                                                      str(written / "out"), str(kept / "out"))
        record.settings = settings
        return nb, resources

    def _settings(self, resources):
        """What the hidden checks read of the course: its drawings, their floor, whether this is the reference."""
        settings = {"drawings": self.drawings} if self.drawings else {}
        assignment = resources.get("nbgrader", {}).get("assignment")
        if self.drawings and assignment in self.drawings_floors:
            settings["drawings_floor"] = self.drawings_floors[assignment]
        if self.reference_run:
            settings["reference"] = True
        return settings

    def _seed(self, nb, resources):
        info = resources.get("nbgrader", {})
        digest = hashlib.sha256(json.dumps(nb, sort_keys=True, default=str).encode()).hexdigest()
        message = f"{info.get('assignment')}/{info.get('student')}/{info.get('notebook')}/{digest}".encode()
        return hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()

    def preprocess_cell(self, cell, resources, index):
        return cell, resources


class ScoreHiddenTests(NbGraderPreprocessor):
    """After the kernel: decide the hidden checks in the run's own scoring process, in a jail of its own."""

    timeout = Integer(900, help="Seconds the grader's own scoring process may take, from the moment it is handed "
                                "the exports.").tag(config=True)
    startup_timeout = Integer(300, help="Seconds the scoring process may take, once the kernel has ended, to start "
                                        "and load the grader's data, before it reads anything of the student's: "
                                        "past them, the host is at fault.").tag(config=True)
    memory_limit = Integer(4 * 2**30, help="Bytes of memory for the scoring process.").tag(config=True)

    def start_process(self, record):
        """This run's `ScoringProcess`, started (raises `HostFault` when it cannot start)."""
        sandboxed = self.config.get("SandboxedExecute", {})
        return ScoringProcess({g: asdict(p) for g, p in record.plans.items()}, record.folders.kept,
                              record.settings, self.memory_limit, self.log, jail=sandboxed.get("sandbox", "auto"),
                              cpu_cores=cpu_cores(sandboxed.get("cpu_share", 0)))

    def preprocess(self, nb, resources):
        record = Record.of(resources)
        if not record.plans:
            for cell in nb.cells:
                if cell.cell_type == "code" and is_grade(cell):
                    cell.outputs = errors_first(cell.get("outputs", []))
            return nb, resources
        started = time.perf_counter()
        process, record.scoring_process = record.scoring_process, None
        try:
            if process is not None and not process.ready(self.startup_timeout):
                if process.proc.poll() is None:  # alive, the kernel gone for as long: the host is too slow
                    raise process.start_failure(self.startup_timeout)
                # It died warming up beside the student's kernel, which may have had the host's OOM killer take it
                # (where no control group shares the memory; red team): started again now that the kernel is
                # gone, so the student can cost it only its warm start; only this one's failure is the host's.
                process.close()
                process = None
            if process is None:
                process = self.start_process(record)
                if not process.ready(self.startup_timeout):
                    raise process.start_failure(self.startup_timeout)
            scored = process.score(self.timeout)
        except HostFault as e:
            record.set_fault(HOST, str(e))
            return nb, resources
        except ScoringTooSlow as e:  # the reference's scoring took a fraction of it on this host
            scored = None
            verdicts = {g: {"failures": [f"{e}: the models or functions handed over are not the ones the "
                                         "task asks for"], "flags": [], "notes": []} for g in record.plans}
        finally:
            if process is not None:
                process.close()
        if scored is not None:
            verdicts, record.scoring_peak_bytes = scored["verdicts"], scored["peak_bytes"]
            record.scoring_start_seconds = scored.get("start_seconds")
            record.check_seconds = dict(scored.get("check_seconds") or {})
        record.scoring_seconds = round(time.perf_counter() - started, 1)
        for cell in nb.cells:
            if cell.cell_type != "code" or not is_grade(cell):
                continue
            grade_id = cell.metadata.nbgrader.get("grade_id")
            if grade_id not in record.plans:
                cell.outputs = errors_first(cell.get("outputs", []))
                continue
            verdict = Verdict(**verdicts[grade_id])
            record.verdicts[grade_id] = verdict
            failures = verdict.failures
            export = record.exports.get(grade_id)
            if failures and export is not None and not export.ok:
                failures = [f"the grader could not collect your work after this cell ({export.message})"] + failures
            outputs = list(cell.get("outputs", []))
            if verdict.notes:  # what the hidden checks measured, for the student to read
                outputs.append(new_output("stream", name="stdout",
                                          text="".join(f"Hidden test: {n}\n" for n in verdict.notes)))
            if failures:
                message = failures[0] + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else "")
                outputs.insert(0, new_output("error", ename=HIDDEN_FAILED, evalue=message,
                                             traceback=[f"{HIDDEN_FAILED}: {m}" for m in failures]))
            cell.outputs = errors_first(outputs)
        record.flags = sorted({f for v in record.verdicts.values() for f in v.flags})
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        return cell, resources


class StartScoringProcess(NbGraderPreprocessor):
    """Before the kernel: the run's scoring process starts, so that its imports (the backend, its compiler) and the
    grader's held-out data load while the kernel works.

    It is this submission's alone, started in a jail of its own before any of
    its exports exist, and it reads none of them until `ScoreHiddenTests` hands
    them over: nothing in it comes from another student (docs/ROBUSTNESS.md,
    "The warm scoring process"). A process that cannot start here is started
    again, and its fault recorded, by `ScoreHiddenTests`.
    """

    def preprocess(self, nb, resources):
        record = Record.of(resources)
        if record.plans and record.scoring_process is None:
            try:
                record.scoring_process = ScoreHiddenTests(config=self.config, log=self.log).start_process(record)
            except HostFault:
                pass
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        return cell, resources


def errors_first(outputs):
    """An error or stderr output first: nbgrader's determine_grade stops at the first
    error *or* the first execute_result, so a value printed before an error
    would otherwise earn partial credit."""
    failing = [o for o in outputs if o.get("output_type") == "error" or
               (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    return failing[:1] + [o for o in outputs if o is not (failing[0] if failing else None)]


# --- the scoring process, started fresh for each submission; otter's clean process -------------

class ScoringProcess:
    """The scoring process of one run: started fresh, in a jail of its own, then handed the exports.

    ``plans`` maps grade_id to `Plan`-like dicts (block, seed, folder, where),
    in notebook order; ``kept`` is the folder of the exports, the only
    student-written files it can read. ``jail`` is the course's
    `SandboxedExecute.sandbox`: it is jailed as the kernel is ("none": not at
    all, as for `grade --no-sandbox`; "auto": where it works). It warms up as
    soon as it starts (`scorer.warm`) and scores on `score`. Anything that
    stops it from answering is the host's fault: raises `HostFault`.
    """

    def __init__(self, plans, kept, settings=None, memory_bytes=4 * 2**30, log=None, jail="bwrap", cpu_cores=None):
        from ...run.jail import jail_problem

        self.memory_bytes, self.log, self.early_stderr = memory_bytes, log, b""
        self.problem = jail_problem() if jail != "none" else ""
        if self.problem and jail == "bwrap":
            raise HostFault(f"the scoring process could not start: {self.problem}")
        # Beside the run's own folder: a grading process killed at its limit leaves neither (`worker.execute`
        # removes the parent however the process ends); the job names the hidden checks.
        self._tmp = tempfile.TemporaryDirectory(prefix="autograder-score-",
                                                dir=os.environ.get(RUN_PARENT_VARIABLE) or None)
        try:
            self._start(plans, kept, settings, memory_bytes, jail, cpu_cores)
        except BaseException as e:
            self.close()
            if isinstance(e, OSError):
                raise HostFault(f"the scoring process could not start ({e})") from e
            raise

    def _start(self, plans, kept, settings, memory_bytes, jail, cpu_cores):
        from ...run.jail import Limits, Sandbox

        root = Path(self._tmp.name) / "jail"
        job, self.result = root / "work" / "job.json", root / "work" / "result.json"
        job.parent.mkdir(parents=True)
        job.write_text(json.dumps({"cells": [{"grade_id": g, **p} for g, p in plans.items()],
                                   "settings": settings or {}, "wait": True, "started_at": time.time()}))
        package = scoring_package(Path(self._tmp.name) / "package")
        readable = scoring_readable(kept, settings, package)
        self.sandbox = Sandbox(root=root, workdir=job.parent, readable=readable, groups=scoring_groups(readable),
                               env=scoring_env(), limits=Limits(memory_bytes=memory_bytes, max_processes=256,
                                                                disk_bytes=256 * 2**20, cpu_cores=cpu_cores))
        # -I: nothing from the working folder, the environment or the user's site joins the import path.
        command = [sys.executable, "-I", "-c", SCORER_START, str(package), str(job), str(self.result)]
        if jail == "none" or self.problem:  # as the kernel was; still a minimal environment
            self.proc = subprocess.Popen(
                command, env={**self.sandbox.environment(), "HOME": str(root / "tmp"), "TMPDIR": str(root / "tmp")},
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                cwd=job.parent, preexec_fn=_own_memory_bound, start_new_session=True)
        else:
            self.proc = self.sandbox.start(command)

    def ready(self, startup_timeout=300):
        """Whether it says `READY` within ``startup_timeout`` seconds from now; False at once if it ended.

        Its stdout is read byte by byte from the pipe, so that nothing after it is taken from `communicate`;
        its stderr is drained meanwhile (its last 64 KB kept), so that a warm-up that logs much never blocks
        on a full pipe (red team)."""
        import select

        deadline, out, err, line = time.monotonic() + startup_timeout, self.proc.stdout.fileno(), \
            self.proc.stderr.fileno(), b""
        watched = [out, err]
        while len(line) < 4096:
            readable = select.select(watched, [], [], max(0.0, deadline - time.monotonic()))[0]
            if not readable:
                return False
            if err in readable:
                chunk = os.read(err, 65536)
                if chunk:
                    self.early_stderr = (self.early_stderr + chunk)[-65536:]
                else:
                    watched.remove(err)
                continue
            byte = os.read(out, 1)
            if not byte:  # it ended: wait for its launcher, so that `poll` says so (red team: a race)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=10)
                return False
            if byte == b"\n":
                if line.strip() == READY.encode():
                    return True
                line = b""
            else:
                line += byte
        return False

    def start_failure(self, startup_timeout):
        """The `HostFault` of a process that did not get ready: it is killed, and the reason named."""
        from ...run.jail import jail_failure

        ended = self.proc.poll() is not None
        self.sandbox.kill(self.proc)
        _, stderr = self.proc.communicate()
        stderr = self.early_stderr.decode(errors="replace") + stderr
        if self.log is not None:
            self.log.error("the scoring process did not start: %s", stderr[-3000:])
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        reason = jail_failure(stderr) or (
            (lines[-1] if lines else f"exit {self.proc.returncode}") if ended else f"not ready after {startup_timeout:g} s")
        return HostFault(f"the scoring process could not start ({reason[:300]})")

    def score(self, timeout=900):
        """The answer of a ready process (``verdicts``, ``peak_bytes``, ``start_seconds``, ``check_seconds``)
        once it is handed the exports, within ``timeout`` seconds; raises `ScoringTooSlow` past it."""
        from ...run.jail import jail_failure

        try:
            done = self.sandbox.finish(self.proc, timeout, "go\n")
        except subprocess.TimeoutExpired as e:
            raise ScoringTooSlow(f"scoring your work took over {timeout:g} s") from e
        done.stderr = self.early_stderr.decode(errors="replace") + done.stderr
        out_of_memory, own_limit = self.sandbox.out_of_memory(), self.sandbox.hit_memory_limit()
        if done.returncode != 0 or not self.result.is_file():
            if self.log is not None:
                self.log.error("hidden-test scoring failed: %s", done.stderr[-3000:])
            reason = jail_failure(done.stderr)
            if reason:
                raise HostFault(f"the scoring process could not start ({reason})")
            if out_of_memory and own_limit:
                # Its limit is its own and its memory holds the student's exports: the reference's scoring took
                # a fraction of it on this host (red team: a model of 7,850 parameters whose padding needed
                # 4.6 GB an example got no score, not the zero it earned).
                raise ScoringTooSlow(f"the scoring process needed more than its {self.memory_bytes / 2**30:g} GiB "
                                     "of memory for your work")
            if out_of_memory:  # killed by the host's own lack of memory: the host checks itself
                raise HostFault(f"the scoring process ran out of its {self.memory_bytes / 2**30:g} GiB")
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            raise HostFault(f"the scoring process failed ({(lines[-1] if lines else f'exit {done.returncode}')[:300]})")
        return json.loads(self.result.read_text())

    def close(self):
        """Everything it started, killed; its folder, removed (whether it scored or not)."""
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            self.sandbox.kill(proc)
            proc.communicate()
        if hasattr(self, "sandbox"):
            self.sandbox.close()
        self._tmp.cleanup()


def score_in_fresh_process(plans, kept, settings=None, timeout=900, memory_bytes=4 * 2**30, log=None, jail="bwrap",
                           cpu_cores=None):
    """``({grade_id: verdict dict}, peak bytes)`` from a `ScoringProcess` started and handed the exports at once."""
    process = ScoringProcess(plans, kept, settings, memory_bytes, log, jail, cpu_cores)
    try:
        if not process.ready():
            raise process.start_failure(300)
        answer = process.score(timeout)
    finally:
        process.close()
    return answer["verdicts"], answer["peak_bytes"]


def _own_memory_bound():
    """An unjailed scoring process drops the grading process's own heap bound (`worker.bound_own_memory`)."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (hard, hard))


def scoring_package(dest):
    """The scoring process's own copy of the package (its manifest inside), for the jail's uid alone.

    A root grader's checkout may be closed to that uid (files of mode 0640 on the lent GPU machine),
    which must still import it; nobody else on the machine may read the copy."""
    from ...run import kit
    from ...run.jail import hand_over

    kit.readable_tree(dest, grader=True)
    hand_over(dest)
    return dest


def scoring_readable(kept, settings, package):
    """What the scoring process may read besides Python: the exports, its copy of the grader, the data and
    the drawings."""
    from ...datasets.download import data_dir

    drawings = (settings or {}).get("drawings")  # the committed example set is in the copy
    return [Path(kept), Path(package), data_dir(), *([Path(drawings)] if drawings else [])]


def scoring_groups(readable):
    """The groups through which the scoring process reads the grader's own folders where they are not
    open to everyone (a course on a JupyterHub keeps them to its instructors' group)."""
    groups = set()
    for path in readable:
        info = os.stat(path) if os.path.exists(path) else None
        if info is not None and info.st_gid != 0 and not info.st_mode & 0o004:
            groups.add(info.st_gid)
    return tuple(sorted(groups))


def scoring_env():
    from ...datasets.download import data_dir

    return {"TF_CPP_MIN_LOG_LEVEL": "3", "AUTOGRADER_DATA_DIR": str(data_dir()), "OMP_NUM_THREADS": "",
            "PYTHONHASHSEED": "0"}


class CollectFromNamespace(NbGraderPreprocessor):
    """In place of the kernel, for otter: what each test cell's hidden checks need, exported from the live
    ``resources["namespace"]`` (the student's own process), then copied where the scoring process reads it."""

    def preprocess(self, nb, resources):
        from ...run.exports import collect
        from ...run.safe_files import copy_tree

        record = Record.of(resources)
        for grade_id, collection in record.collections.items():
            written = Path(collection.written)
            collect(resources["namespace"], written.parent / "request.json")
            copied = copy_tree(written, collection.kept)
            refused = [f"the grader refused {name[:200]}: {reason}" for name, reason in copied.refused]
            record.exports[grade_id] = Export(not refused, refused[0] if refused else "")
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        return cell, resources


def clean_process_cell(block, name, markers):
    """The one test cell of otter's run: the same for the same block, so that the course's secret gives the same
    inputs at each grading, as nbgrader's regrades do (its id is fixed: nbformat draws a new one otherwise)."""
    from nbformat.v4 import new_code_cell

    return new_code_cell(f"### {markers.begin}\n{block}\n### {markers.end}", id="hidden-test", metadata={
        "nbgrader": {"grade": True, "locked": True, "solution": False, "grade_id": name, "points": 1}})


def check_in_clean_process(block, namespace, name="cell", timeout=900, secret=None, config=None):
    """For graders that run tests in the student's process (otter): the same hidden checks, decided outside it.

    One grading run of a one-cell notebook holding ``block`` (test cell ``name``), by `run_steps`
    like every other: `PlanHiddenTests`, then `CollectFromNamespace` (the
    objects named by ``block`` exported from ``namespace`` in this process:
    models saved, functions called on inputs chosen here), then
    `ScoreHiddenTests` (a fresh, jailed scoring process loads the exports and
    decides). Returns the failure messages (empty when every check passed).
    Only the decision is protected: this process is the student's, so it
    could change what it exports, or this function; see the README's section
    on otter.
    """
    from nbformat.v4 import new_notebook
    from traitlets.config import Config

    from ...run.record import build_steps, run_steps

    config = Config(config or {})
    markers = Markers.from_config(config)
    # The course's secret where the grading machine has it, else one for this run alone (otter has no course
    # folder to keep one in, and this process is the student's).
    config.PlanHiddenTests.secret = secret or os.environ.get("AUTOGRADER_SECRET") or secrets.token_hex(32)
    config.ScoreHiddenTests.timeout = int(timeout)
    cell = clean_process_cell(block, name, markers)
    resources = {"namespace": namespace, "nbgrader": {"assignment": name, "student": "", "notebook": name}}
    steps = build_steps([PlanHiddenTests, CollectFromNamespace, ScoreHiddenTests], config=config)
    nb, resources = run_steps(new_notebook(cells=[cell]), resources, steps)
    record = resources["autograder"]
    if record.fault is not None:
        raise HostFault(record.fault.reason)
    return record.verdicts[name].failures
