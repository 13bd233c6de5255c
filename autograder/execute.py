"""Running a student's notebook: nbgrader's Execute step, made safe to point at hostile code.

`SandboxedExecute` is nbgrader's `Execute` preprocessor with:

- the kernel in a `Sandbox` (no network, read-only system, limits);
- hidden-test blocks never sent to the kernel: it runs the visible part of
  each test cell only (the hidden part is decided by the grader, outside);
- faults recorded instead of raised: a dead kernel, a cell that ignores the
  interrupt after its timeout, or the notebook's time budget used up stops
  the run there, marks every later test cell "not run", and keeps the
  points of the cells that ran;
- output capped in bytes while it arrives, so a flood never reaches memory,
  the notebook file or the feedback;
- after each test cell, the code that ``resources["autograder"]["after_cell"]``
  names for it (the grader's exports) runs silently in the kernel, and what it
  wrote is moved out of the kernel's reach, so later cells cannot change it.

What happened goes to ``resources["autograder"]["execution"]``.

`FilterStderr` is nbgrader's `IgnorePattern`, line by line: it drops log
lines of TensorFlow, absl and Python warnings from stderr, in time linear in
the output, and keeps every other line.
"""

import os
import re
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute, IgnorePattern, NbGraderPreprocessor
from nbgrader.utils import is_grade
from traitlets import Bool, Enum, Float, Integer, List, Unicode

from . import kit
from .sandbox import Limits, Sandbox, SandboxKernelManager, SandboxUnavailable, bwrap_works

HIDDEN_BLOCK = re.compile(r"[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*(\n|$)", re.S)
NOT_RUN = "NotRun"


def visible_source(source):
    """A test cell's source without its hidden-test blocks: what the kernel runs."""
    return HIDDEN_BLOCK.sub("", source)


class Fault(Exception):
    """The run cannot go on; the message is one sentence for the report."""


class SandboxedExecute(Execute):
    """nbgrader's Execute with a jailed kernel, output caps, a time budget and recorded faults."""

    sandbox = Enum(
        ["auto", "bwrap", "none"], "auto",
        help="Jail the kernel with bubblewrap: 'bwrap' requires it, 'auto' uses it where it works, "
             "'none' runs the kernel as the grader's own user with the grader's view of the disk.",
    ).tag(config=True)
    memory_limit = Integer(8 * 2**30, allow_none=True, help="Bytes of memory for the kernel and its children.").tag(config=True)
    max_processes = Integer(512, allow_none=True, help="Processes and threads the kernel may run at once.").tag(config=True)
    max_file_bytes = Integer(2 * 2**30, allow_none=True, help="Largest file the kernel may write.").tag(config=True)
    disk_quota = Integer(4 * 2**30, help="Bytes the kernel may write in its working folder and the exchange folder.").tag(config=True)
    notebook_timeout = Integer(1800, help="Seconds the whole notebook may run; later cells are not run.").tag(config=True)
    interrupt_grace = Float(10.0, help="Seconds a timed-out cell has to stop after the interrupt before the kernel is killed.").tag(config=True)
    max_cell_output = Integer(1_000_000, help="Bytes of output kept per cell.").tag(config=True)
    max_notebook_output = Integer(20_000_000, help="Bytes of output kept for the whole notebook.").tag(config=True)
    export_timeout = Integer(300, help="Seconds the grader's exports after a test cell may take.").tag(config=True)
    run_hidden_tests = Bool(False, help="Send hidden-test blocks to the kernel (never when grading: the grader runs them).").tag(config=True)
    show_kernel_output = Bool(False, help="Let the kernel process print its own log lines to the terminal.").tag(config=True)
    work_on_copy = Bool(True, help="Jail the kernel in a copy of the notebook's folder without the notebook, "
                                   "which holds the hidden tests the grader restored; off, the folder itself "
                                   "(`autograder check` on a student's own notebook).").tag(config=True)

    def __init__(self, **kw):
        kw.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(**kw)

    # --- the jail -----------------------------------------------------------

    def _make_sandbox(self, workdir, resources):
        mode = self.sandbox
        if mode == "none" or (mode == "auto" and not bwrap_works()):
            return None
        if not bwrap_works():
            raise SandboxUnavailable(
                "bubblewrap (bwrap) is not installed or cannot create namespaces on this host")
        ours = resources.get("autograder", {})
        student_package = kit.package_for_kernel()
        from .datasets.download import data_dir

        return Sandbox(
            workdir=Path(workdir),
            writable=[Path(p) for p in ours.get("writable", [])],
            readable=[data_dir(), student_package],
            hidden=kit.grader_only_paths(),
            env={"PYTHONPATH": str(student_package), "AUTOGRADER_DATA_DIR": str(data_dir())},
            limits=Limits(memory_bytes=self.memory_limit, max_processes=self.max_processes,
                          max_file_bytes=self.max_file_bytes),
        )

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        km.sandbox = self._sandbox
        km.show_output = self.show_kernel_output
        return km

    # --- the run ------------------------------------------------------------

    def preprocess(self, nb, resources=None, km=None):
        resources = resources if resources is not None else {}
        ours = resources.setdefault("autograder", {})
        path = Path(resources.get("metadata", {}).get("path") or ".").resolve()
        self._fault = None
        self._notebook_bytes = 0
        self._deadline = time.monotonic() + self.notebook_timeout
        self._exports = ours.setdefault("exports", {})
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="autograder-run-") as scratch:
            self._sandbox = self._make_sandbox(path, resources)
            workdir = path
            if self._sandbox is not None and self.work_on_copy:
                # The kernel works on a copy: the notebook being graded, with its
                # hidden tests restored, stays out of its reach.
                workdir = Path(scratch) / "work"
                notebook = resources.get("unique_key", "") + ".ipynb"
                skip = shutil.ignore_patterns(notebook, ".ipynb_checkpoints")
                shutil.copytree(path, workdir, symlinks=False, ignore_dangling_symlinks=True,
                                ignore=lambda folder, names: set(skip(folder, names)) | (
                                    {Path(scratch).name} if Path(folder) == Path(scratch).parent else set()))
                self._sandbox.workdir = workdir
                resources.setdefault("metadata", {})["path"] = str(workdir)
            self._watched = [workdir, *[Path(p) for p in ours.get("writable", [])]]
            try:
                super().preprocess(nb, resources, km)
            except DeadKernelError:
                self._record_fault(self._death_reason(), None)
            except Fault as fault:
                self._record_fault(str(fault), None)
            except RuntimeError as e:  # the kernel died or hung before its first reply
                self._record_fault(f"the kernel did not start ({str(e).strip() or type(e).__name__})", None)
            finally:
                if self._sandbox is not None:
                    self._sandbox.close()
                resources.setdefault("metadata", {})["path"] = str(path)
            if self._fault:
                self._mark_not_run(nb)
        ours["execution"] = {
            "sandbox": self._sandbox.describe() if self._sandbox else {"kind": "none"},
            "fault": self._fault,
            "seconds": round(time.perf_counter() - started, 1),
        }
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        if self._fault or cell.cell_type != "code":
            return cell, resources
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            self._record_fault(f"the notebook used up its {self.notebook_timeout} s time budget", index)
            return cell, resources
        self.timeout_func = lambda _cell: max(1, int(min(self.timeout or remaining, remaining)))
        source = cell.source
        if not self.run_hidden_tests:
            cell.source = visible_source(source)
        watchdog = self._start_watchdog()
        timed_out = False
        try:
            cell = self.execute_cell(cell, index, store_history=True)
        except DeadKernelError:
            self._record_fault(self._death_reason(watchdog), index)
            return cell, resources
        except CellTimeoutError:  # the reply came, its output never finished: still busy
            timed_out = True
        finally:
            watchdog.stop()
            cell.source = source
        if (timed_out or self._timed_out(cell)) and not self._responsive():
            self._kill_kernel()
            self._record_fault(f"cell {index + 1} ran past its time limit and did not stop when interrupted", index)
            return cell, resources
        if is_grade(cell):
            self._after_cell(cell, resources, index)
        return cell, self.resources

    # --- helpers ------------------------------------------------------------

    def _after_cell(self, cell, resources, index):
        grade_id = cell.metadata.nbgrader.get("grade_id")
        after = resources.get("autograder", {}).get("after_cell", {}).get(grade_id)
        if not after:
            return
        watchdog = self._start_watchdog()
        try:
            msg_id = self.kc.execute(after["code"], silent=True, store_history=False, allow_stdin=False)
            reply = self._wait(msg_id, self.export_timeout)
        except DeadKernelError:
            self._exports[grade_id] = {"status": "error", "message": "the kernel stopped while the grader collected your work"}
            self._record_fault(self._death_reason(watchdog), index)
            return
        finally:
            watchdog.stop()
            source, target = after["move"]
            if Path(source).exists():
                shutil.move(source, target)
        if reply is None:
            self._exports[grade_id] = {"status": "error", "message": f"collecting your work took over {self.export_timeout} s"}
            if not self._responsive():
                self._kill_kernel()
                self._record_fault(f"the grader's collection after cell {index + 1} did not finish", index)
            return
        content = reply["content"]
        self._exports[grade_id] = ({"status": "ok"} if content.get("status") == "ok" else
                                   {"status": "error", "message": f"{content.get('ename')}: {content.get('evalue')}"})

    async def _async_wait(self, msg_id, timeout):
        """The shell reply to ``msg_id``, or None after ``timeout`` seconds (raises if the kernel died)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = await self.kc.shell_channel.get_msg(timeout=min(1.0, max(0.05, deadline - time.monotonic())))
            except Exception:  # queue.Empty: check the kernel is still there
                if not await self.km.is_alive():
                    raise DeadKernelError("Kernel died") from None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
        return None

    _wait = run_sync(_async_wait)

    @staticmethod
    def _timed_out(cell):
        return any(o.output_type == "error" and o.ename == "CellTimeoutError" for o in cell.get("outputs", []))

    def _responsive(self):
        """After an interrupt: does the kernel answer within the grace period?"""
        try:
            return self._wait(self.kc.kernel_info(), self.interrupt_grace) is not None
        except DeadKernelError:
            return False

    def _kill_kernel(self):
        """SIGKILL the kernel's process group (thread-safe: the disk watchdog calls it too)."""
        pgid = getattr(getattr(self.km, "provisioner", None), "pgid", None)
        if pgid:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
        if self._sandbox is not None:
            self._sandbox.cgroups.kill_all()

    def _death_reason(self, watchdog=None):
        if watchdog is not None and watchdog.tripped:
            return f"the notebook wrote more than {self.disk_quota / 2**30:g} GiB to disk"
        if self._sandbox is not None and self._sandbox.out_of_memory():
            return f"out of memory: the notebook used more than {self._sandbox.memory_text()}"
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        code = process.poll() if process is not None else None
        if code is not None and code > 128:
            code = -(code - 128)  # bubblewrap reports a signal as 128 + its number
        if code == -11:
            return "the kernel crashed (segmentation fault)"
        if code == -9:
            return "the kernel was killed (SIGKILL: out of memory, or killed by another process)"
        if code is not None and code < 0:
            return f"the kernel was killed by signal {-code}"
        if code is not None:
            return f"the kernel exited with status {code} (os._exit or a crash in a library)"
        return "the kernel died"

    def _record_fault(self, reason, index):
        if self._fault is None:
            self._fault = {"reason": reason, "cell": None if index is None else index + 1}

    def _mark_not_run(self, nb):
        """Every test cell after the fault gets an error, so it scores 0 with the reason."""
        first = (self._fault["cell"] or 1) - 1
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not is_grade(cell):
                continue
            if i > first or (i == first and not any(o.output_type == "error" for o in cell.get("outputs", []))):
                cell.outputs = [new_output("error", ename=NOT_RUN, evalue=f"not run: {self._fault['reason']}",
                                           traceback=[f"{NOT_RUN}: not run: {self._fault['reason']}"])]

    # --- output caps --------------------------------------------------------

    def output(self, outs, msg, display_id, cell_index):
        size = _message_size(msg)
        cell_bytes = sum(_output_size(o) for o in outs)
        if cell_bytes + size > self.max_cell_output or self._notebook_bytes + size > self.max_notebook_output:
            if not any(o.get("name") == "stdout" and o.get("text", "").startswith("[output truncated") for o in outs):
                outs.append(new_output("stream", name="stdout",
                                       text=f"[output truncated: a cell keeps at most {self.max_cell_output:,} bytes]\n"))
            return None
        self._notebook_bytes += size
        return super().output(outs, msg, display_id, cell_index)

    def _start_watchdog(self):
        return _DiskWatchdog(self._watched, self.disk_quota, self._kill_kernel) if self._sandbox else _DiskWatchdog([], 0, None)


def _output_size(output):
    if output.get("output_type") == "stream":
        return len(output.get("text", ""))
    return sum(len(str(v)) for v in output.get("data", {}).values()) + len(str(output.get("evalue", "")))


def _message_size(msg):
    content = msg.get("content", {})
    return len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values()) \
        + len(str(content.get("evalue", ""))) + sum(len(line) for line in content.get("traceback", []))


class _DiskWatchdog:
    """Polls the folders the kernel can write and kills it past the quota."""

    def __init__(self, folders, quota, kill, every=2.0):
        self.tripped = False
        self._stop = threading.Event()
        if not folders:
            return
        self._thread = threading.Thread(target=self._run, args=(folders, quota, kill, every), daemon=True)
        self._thread.start()

    def _run(self, folders, quota, kill, every):
        while not self._stop.wait(every):
            if sum(_tree_size(f) for f in folders) > quota:
                self.tripped = True
                kill()
                return

    def stop(self):
        self._stop.set()


def _tree_size(folder):
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


class FilterStderr(IgnorePattern):
    """Drop framework log lines from stderr, line by line, in linear time.

    nbgrader scores a test cell 0 when it has any stderr output, and
    TensorFlow prints absl lines from whichever cell first touches a device.
    nbgrader's own IgnorePattern runs one unanchored regular expression over
    the whole output and drops the output whole; a pattern such as
    ``\\w*Warning: `` then backtracks quadratically on a long line (40 KB took
    3.7 s). Here each pattern is matched at the start of each line only, over
    at most ``max_line`` characters, and only matching lines go.
    """

    line_patterns = List(Unicode(), [
        r"[IWEF]\d{4} \d\d:\d\d:\d{2,12}\.\d+ +\d+ [\w./-]{1,200}:\d+\]",  # absl / glog
        r"To enable the following instructions: [A-Z0-9_ ]{1,200}in other operations",  # TF's 2nd line
        r"WARNING: All log messages before absl::InitializeLog",
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] tensorflow/",  # older TF C++ format
        r"\S{1,400}:\d+: \w{0,80}Warning: ",  # warnings.warn: "path:line: UserWarning: ..."
        r"\[IPKernelApp\] WARNING",
    ], help="Regular expressions matched at the start of each stderr line; matching lines are dropped.").tag(config=True)
    max_line = Integer(2000, help="Characters of a line the patterns look at.").tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        if not self.enabled or cell.cell_type != "code":
            return cell, resources
        patterns = [re.compile(p) for p in self.line_patterns]
        outputs = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stderr":
                kept, skip_source = [], False
                for line in output.text.splitlines(keepends=True):
                    head = line[: self.max_line]
                    if skip_source and line.startswith("  "):  # the source line warnings.warn prints
                        skip_source = False
                        continue
                    skip_source = False
                    if any(p.match(head) for p in patterns):
                        skip_source = "Warning: " in head
                        continue
                    kept.append(line)
                if not kept:
                    continue
                output.text = "".join(kept)
            outputs.append(output)
        cell.outputs = outputs
        return cell, resources


class RecordReport(NbGraderPreprocessor):
    """Keep the record of the run in the notebook's metadata, under ``autograder``.

    The autograded notebook then carries what a grade was computed with and
    what happened: the jail, a fault and its reason, the hidden tests'
    verdicts, flags for the instructor, the device, library versions and seeds.
    """

    def preprocess(self, nb, resources):
        from . import host

        ours = resources.get("autograder", {})
        nb.metadata["autograder"] = {
            "execution": ours.get("execution"),
            "hidden": ours.get("hidden", {}),
            "flags": ours.get("flags", []),
            "device": host.device(),
            "versions": host.versions(),
            "seeds": host.seeds(nb),
        }
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        return cell, resources
