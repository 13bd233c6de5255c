"""Running a student's notebook: nbgrader's Execute step, made safe to point at hostile code.

`SandboxedExecute` is nbgrader's `Execute` preprocessor with:

- the kernel in the `Sandbox` (no network, no capability, not the grader's
  uid, a read-only world, limits), working on a safe copy of the notebook's
  folder (links and special files refused), so that the notebook being
  graded, with its hidden tests restored, stays out of its reach;
- hidden-test regions never sent to the kernel: it runs the visible part of
  each test cell only (the hidden part is decided by the grader, outside);
  a student's own cells run as written;
- faults recorded with their owner instead of raised: a dead kernel, a cell
  that ignores the interrupt after its timeout, the notebook's time budget
  used up or the disk quota passed stops the run there, marks every later
  test cell "not run", and keeps the points of the cells that ran; a kernel
  that never started is the host's fault;
- output capped in bytes while it arrives, so a flood never reaches memory,
  the notebook file or the feedback;
- after each test cell, the collection the run's record names for it (the
  grader's exports) runs silently in the kernel, and what it wrote is copied
  out of the kernel's reach (safely: regular files only, capped), so later
  cells cannot change it.

`FilterStderr` is nbgrader's `IgnorePattern`, line by line: it drops log
lines of TensorFlow, absl and Python warnings (whole multi-line warnings)
from stderr, in time linear in the output, and keeps every other line.
"""

import os
import re
import signal
import threading
import time
from pathlib import Path

from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute, IgnorePattern
from nbgrader.utils import is_grade
from traitlets import Bool, Dict, Enum, Float, Integer, List, Unicode

from . import kit, safe_files
from .hidden_regions import Markers
from .jail import (
    Limits,
    Sandbox,
    SandboxKernelManager,
    SandboxUnavailable,
    cpu_cores,
    jail_problem,
    gpu_memory_of_processes,
    gpu_memory_sizes,
    in_host_pid_namespace,
    tree_gpu_memory,
    tree_memory,
)
from .record import HOST, STUDENT, Export, Record

NOT_RUN = "NotRun"
OUTPUT_OVERHEAD = 100  # bytes an output takes in the notebook's JSON beside its data
MAX_ERROR_NAME, MAX_ERROR_VALUE = 200, 10_000  # characters of a failed cell's error kept from its reply


class SandboxedExecute(Execute):
    """nbgrader's Execute with a jailed kernel, output caps, a time budget and recorded faults."""

    sandbox = Enum(
        ["auto", "bwrap", "none"], "auto",
        help="Jail the kernel with bubblewrap: 'bwrap' requires it, 'auto' uses it where it works, "
             "'none' runs the kernel as the grader's own user with the grader's view of the disk.",
    ).tag(config=True)
    memory_limit = Integer(8 * 2**30, allow_none=True, help="Bytes of memory for the kernel and its children.").tag(config=True)
    max_processes = Integer(512, allow_none=True, help="Processes and threads the kernel may run at once.").tag(config=True)
    max_file_bytes = Integer(1 * 2**30, allow_none=True, help="Largest file the kernel may write.").tag(config=True)
    disk_quota = Integer(4 * 2**30, help="Bytes the kernel may write, everywhere it can write together "
                                        "(working copy, exchange, sockets, /tmp).").tag(config=True)
    notebook_timeout = Integer(1800, help="Seconds the whole notebook may run; later cells are not run.").tag(config=True)
    interrupt_grace = Float(10.0, help="Seconds a timed-out cell has to stop after the interrupt before the kernel is killed.").tag(config=True)
    max_cell_output = Integer(1_000_000, help="Bytes of output kept per cell.").tag(config=True)
    max_notebook_output = Integer(20_000_000, help="Bytes of output kept for the whole notebook.").tag(config=True)
    export_timeout = Integer(300, help="Seconds the grader's exports after a test cell may take.").tag(config=True)
    run_hidden_tests = Bool(False, help="Send hidden-test regions to the kernel (never when grading: the grader runs them).").tag(config=True)
    show_kernel_output = Bool(False, help="Let the kernel process print its own log lines to the terminal.").tag(config=True)
    # nbgrader documents NBGRADER_EXECUTION for notebooks that behave differently when graded; its own
    # Execute sets it in nbgrader's process, which a jailed kernel's environment leaves out.
    nbgrader_execution = Unicode("autograde", help="NBGRADER_EXECUTION in the kernel, as nbgrader sets it: "
                                                   "'autograde' when grading, 'validate' for `autograder check` and "
                                                   "Validate.").tag(config=True)
    kernel_env = Dict(Unicode(), help="Environment variables of the kernel (on top of the jail's own minimal "
                                      "environment).").tag(config=True)
    max_copy_bytes = Integer(safe_files.MAX_TOTAL_BYTES, help="Bytes of the submission's folder copied for the "
                                                              "kernel.").tag(config=True)
    cpu_share = Float(0.0, help="At most this fraction of the host's CPUs for the jail (0: no cap). Jails always "
                                "share the CPUs fairly; grade-all times each host's reference run with 1 / its "
                                "slots, the share every jail keeps when all slots are busy.").tag(config=True)
    gpu_memory_share = Float(0.0, help="At most this fraction of each GPU's memory for the kernel's processes "
                                       "together, watched each second where nvidia-smi answers (0: no watch). "
                                       "grade-all gives each grading 1 / its host's slots: the workers sharing "
                                       "a GPU each keep a share.").tag(config=True)

    def __init__(self, **kw):
        kw.setdefault("kernel_manager_class", SandboxKernelManager)
        # Widgets' state is whatever the kernel says it is, and the grader has no use for it: it would be
        # stored in the notebook and drawn, as HTML, wherever the notebook is shown.
        kw.setdefault("store_widget_state", False)
        # Once the last cell has answered, nothing of the kernel's is wanted: a graceful shutdown waited about a
        # second for the backend's own teardown (and ran the student's exit handlers). The jail is killed whole.
        kw.setdefault("shutdown_kernel", "immediate")
        super().__init__(**kw)
        self._reset_counts()

    def _reset_counts(self):
        """What a run has counted against its caps, from nothing."""
        self._notebook_bytes = 0
        self._kept_bytes = 0  # of exports copied out of the jail, under the same disk quota
        self._watching = None  # the run's watches (callables: why the kernel must stop, or ""), once it runs
        self._gpu_watch = None  # the run's `GpuMemoryWatch`, where a share is set
        self._cell_sizes = {}  # cell index -> (outputs counted, their size)

    # --- the jail -----------------------------------------------------------

    def _make_sandbox(self, folders):
        mode = self.sandbox
        problem = jail_problem() if mode != "none" else ""
        if mode == "none" or (mode == "auto" and problem):
            return None
        if problem:
            raise SandboxUnavailable(problem)
        from ..datasets.download import data_dir

        student_package = kit.package_for_kernel()
        return Sandbox(
            root=folders.jail,
            workdir=folders.work,
            readable=[data_dir(), student_package],
            hidden=kit.grader_only_paths(),
            # PYTHONSAFEPATH: `python -m ipykernel_launcher` does not look in the working copy first, where
            # a student's ipykernel_launcher.py would stop the kernel from starting (a fault of the host's).
            env={**self._kernel_env(), "PYTHONPATH": str(student_package), "AUTOGRADER_DATA_DIR": str(data_dir()),
                 "PYTHONSAFEPATH": "1",
                 "JPY_PARENT_PID": "1"},  # ipykernel would take PID 1 (bubblewrap's reaper) for a dead parent
            limits=Limits(memory_bytes=self.memory_limit, max_processes=self.max_processes,
                          max_file_bytes=self.max_file_bytes, disk_bytes=self.disk_quota,
                          cpu_cores=cpu_cores(self.cpu_share)),
        )

    def _kernel_env(self):
        return {**self.kernel_env, "NBGRADER_EXECUTION": self.nbgrader_execution}

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        if not isinstance(km, SandboxKernelManager):
            raise TypeError("SandboxedExecute needs a SandboxKernelManager")
        km.use_socket_dir(self._folders.kernel)  # in the jail folder, under its one disk quota
        km.sandbox = self._sandbox
        km.show_output = self.show_kernel_output
        km.extra_env = self._kernel_env()
        return km

    # --- the run ------------------------------------------------------------

    def preprocess(self, nb, resources=None, km=None):
        resources = resources if resources is not None else {}
        record = Record.of(resources)
        self._record = record
        self._folders = record.folders
        self._markers = Markers.from_config(self.config)
        path = Path(resources.get("metadata", {}).get("path") or ".").resolve()
        self._reset_counts()
        self._started = time.monotonic()
        self._deadline = self._started + self.notebook_timeout
        record.budget_seconds = self.notebook_timeout
        try:
            self._sandbox = self._make_sandbox(self._folders)
        except SandboxUnavailable as e:
            record.set_fault(HOST, f"the jail could not start on this host: {e}")
            self._mark_not_run(nb)
            return nb, resources
        workdir = path
        if self._sandbox is not None:
            # The kernel works on a safe copy: the notebook being graded (hidden tests restored)
            # is left out, and nothing a student linked or planted is followed.
            copied = safe_files.copy_tree(path, self._folders.work, max_total_bytes=self.max_copy_bytes,
                                          skip={resources.get("unique_key", "") + ".ipynb", ".ipynb_checkpoints"})
            record.notes += [f"not given to the kernel: {reason}" for reason in copied.reasons()]
            workdir = self._folders.work
            resources.setdefault("metadata", {})["path"] = str(workdir)
        self._first_cell = True
        try:
            super().preprocess(nb, resources, km)
        except DeadKernelError:
            self._fault(self._death_reason(), None)
        except RuntimeError as e:  # the kernel died or hung before its first reply: the host's
            record.set_fault(HOST, f"the kernel did not start ({str(e).strip()[:300] or type(e).__name__})")
        finally:
            if self._sandbox is not None:
                record.jail = self._sandbox.describe()
                if self._gpu_watch is not None:
                    self._gpu_watch.stop()
                    record.jail["gpu_memory"] = self._gpu_watch.status
                self._sandbox.close()
            resources.setdefault("metadata", {})["path"] = str(path)
        if record.fault:
            self._mark_not_run(nb)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        record = self._record
        if self._first_cell:
            record.kernel_start_seconds = round(time.monotonic() - self._started, 1)
            self._first_cell = False
            if record.collections:
                # The collection's own imports (numpy starts its BLAS threads) happen before any
                # student code, so a notebook that later uses up its processes cannot make them fail.
                self._wait(self.kc.execute("import autograder.run.exports", silent=True, store_history=False,
                                           allow_stdin=False), self.export_timeout)
        if record.fault or cell.cell_type != "code":
            return cell, resources
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            self._fault(f"the notebook used up its {self.notebook_timeout} s time budget", index, "notebook")
            return cell, resources
        self.timeout_func = lambda _cell: max(1, int(min(self.timeout or remaining, remaining)))
        cell_budget = "cell" if self.timeout and self.timeout <= remaining else "notebook"  # the one that applies
        source = cell.source
        if not self.run_hidden_tests and is_grade(cell):  # hidden regions live in the restored test cells
            cell.source = self._markers.visible(source)
        watchdog = self._start_watchdog()
        timed_out = False
        self._timeout_hit = None
        try:
            cell = self.execute_cell(cell, index, store_history=True)
        except DeadKernelError:
            self._fault(self._death_reason(watchdog), index)
            return cell, resources
        except CellTimeoutError:  # the reply came, its output never finished: still busy
            timed_out = True
        finally:
            watchdog.stop()
            cell.source = source
        if self._link_broken(index):
            return cell, resources
        if (timed_out or self._timed_out(cell)) and not self._responsive():
            self._kill_kernel()
            self._fault(f"cell {index + 1} ran past its time limit and did not stop when interrupted", index,
                        cell_budget)
            return cell, resources
        if watchdog.tripped:
            self._fault(self._death_reason(watchdog), index)
            return cell, resources
        if self._timeout_hit:
            self._name_the_timeout(cell, self._timeout_hit)
        if is_grade(cell):
            self._collect(cell, index)
        return cell, self.resources

    # --- helpers ------------------------------------------------------------

    def _fault(self, reason, index, budget=None):
        self._record.set_fault(STUDENT, reason, None if index is None else index + 1, budget)

    def _link_broken(self, index):
        """Whether the kernel sent a frame over the cap, which broke its link to the grader: later
        outputs would be lost (a failing test cell would show no error), so the run stops there."""
        broken = self.kc.broken_links() if hasattr(self.kc, "broken_links") else []
        if not broken:
            return False
        self._kill_kernel()
        self._fault(f"cell {index + 1} sent the grader more than it reads (a message over "
                    f"{self.kc.max_message_bytes / 2**20:g} MB, or more at once than the grader's memory holds), "
                    "so the grader could not follow the notebook after it", index)
        return True

    def _collect(self, cell, index):
        """Run the grader's collection after a test cell, then copy what it wrote out of the kernel's reach."""
        grade_id = cell.metadata.nbgrader.get("grade_id")
        collection = self._record.collections.get(grade_id)
        if collection is None:
            return
        exports = self._record.exports
        began = time.perf_counter()
        watchdog = self._start_watchdog()
        quota_left = max(0, self.disk_quota - self._kept_bytes)
        # Within the notebook's budget too: 300 s after each of eight test cells ran past any limit of the host's.
        wait = max(1.0, min(self.export_timeout, self._deadline - time.monotonic()))
        try:
            msg_id = self.kc.execute(collection.code, silent=True, store_history=False, allow_stdin=False)
            reply = self._wait(msg_id, wait)
        except DeadKernelError:
            exports[grade_id] = Export(False, "the kernel stopped while the grader collected your work")
            self._fault(self._death_reason(watchdog), index)
            return
        finally:
            watchdog.stop()
            written = Path(collection.written)
            if written.is_dir():
                # What the grader keeps counts against the notebook's one disk quota, with the jail folder.
                copied = safe_files.copy_tree(written, collection.kept, max_file_bytes=min(512 * 2**20, quota_left),
                                              max_total_bytes=quota_left)
                self._kept_bytes += copied.bytes
                for name, reason in copied.refused:
                    exports.setdefault(grade_id, Export(False, f"the grader refused {name[:200]}: {reason}"))
                safe_files.remove_tree(written)
            self._record.export_seconds[grade_id] = round(time.perf_counter() - began, 2)
        if reply is None:
            exports[grade_id] = Export(False, f"collecting your work took over {wait:.0f} s"
                                              + (" (the notebook's time budget)" if wait < self.export_timeout else ""))
            if not self._responsive():
                self._kill_kernel()
                self._fault(f"the grader's collection after cell {index + 1} did not finish", index, "export")
            return
        content = reply["content"]
        if content.get("status") != "ok":
            exports[grade_id] = Export(False, f"{content.get('ename')}: {str(content.get('evalue'))[:500]}")
        else:
            exports.setdefault(grade_id, Export(True))

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

    async def _async_handle_timeout(self, timeout, cell=None):
        self._timeout_hit = timeout  # the interrupt then shows as a KeyboardInterrupt the student never pressed
        return await super()._async_handle_timeout(timeout, cell)

    @staticmethod
    def _name_the_timeout(cell, seconds):
        """The error of a cell stopped at its time limit, said as such (not as a KeyboardInterrupt)."""
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") == "KeyboardInterrupt":
                output["ename"] = "TimeoutError"
                output["evalue"] = f"this cell ran past its time limit ({seconds} s) and was stopped"
                output["traceback"] = [f"TimeoutError: {output['evalue']}"]

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
            return watchdog.tripped
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
        if code == -25:
            return f"the kernel wrote a file larger than {self.max_file_bytes / 2**30:g} GiB"
        if code is not None and code < 0:
            return f"the kernel was killed by signal {-code}"
        if code is not None:
            return f"the kernel exited with status {code} (os._exit or a crash in a library)"
        return "the kernel died"

    def _mark_not_run(self, nb):
        """Every test cell after the fault gets an error, so it scores 0 with the reason."""
        fault = self._record.fault
        first = (fault.cell or 1) - 1
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not is_grade(cell):
                continue
            if i > first or (i == first and not any(o.output_type == "error" for o in cell.get("outputs", []))):
                cell.outputs = [new_output("error", ename=NOT_RUN, evalue=f"not run: {fault.reason}",
                                           traceback=[f"{NOT_RUN}: not run: {fault.reason}"])]

    # --- output caps --------------------------------------------------------

    def on_cell_executed(self, **kwargs):
        """nbgrader adds a failed cell's error from the execute reply, past the caps on output: the reply's error is
        cut to a readable length first (a test cell calling a function that raised a 100 MB message)."""
        content = kwargs.get("execute_reply", {}).get("content", {})
        if content.get("status") == "error":
            content["ename"] = str(content.get("ename", ""))[:MAX_ERROR_NAME]
            content["evalue"] = str(content.get("evalue", ""))[:MAX_ERROR_VALUE]
            content["traceback"] = [str(line)[:MAX_ERROR_VALUE] for line in content.get("traceback", [])[:100]]
        return super().on_cell_executed(**kwargs)

    def _update_display_id(self, display_id, msg):
        """nbclient puts an update's data into every earlier output with its display id, never through
        `output`: the caps apply to it too, once for each output it would fill (red team: twenty small
        outputs, then one 30 MB update, made a 629 MB notebook). An update over them is dropped."""
        targets = sum(len(indices) for indices in self._display_id_map.get(display_id, {}).values())
        size = _message_size(msg) * targets
        if targets and (size > self.max_cell_output or self._notebook_bytes + size > self.max_notebook_output):
            return
        self._notebook_bytes += size
        super()._update_display_id(display_id, msg)

    def output(self, outs, msg, display_id, cell_index):
        size = _message_size(msg)
        cell_bytes = self._cell_bytes(outs, cell_index)
        if cell_bytes + size > self.max_cell_output or self._notebook_bytes + size > self.max_notebook_output:
            if not any(o.get("name") == "stdout" and o.get("text", "").startswith("[output truncated") for o in outs):
                outs.append(new_output("stream", name="stdout",
                                       text=f"[output truncated: a cell keeps at most {self.max_cell_output:,} bytes]\n"))
            return None
        self._notebook_bytes += size
        out = super().output(outs, msg, display_id, cell_index)
        self._cell_sizes[cell_index] = (len(outs), cell_bytes + size)
        return out

    def _cell_bytes(self, outs, cell_index):
        """What the cell's outputs take: counted once, then kept up as outputs come (40,000 outputs in a cell
        made counting them all again at each one quadratic); counted again when they were cleared."""
        count, size = self._cell_sizes.get(cell_index, (None, 0))
        if count != len(outs):
            size = sum(_output_size(o) for o in outs)
            self._cell_sizes[cell_index] = (len(outs), size)
        return size

    def _start_watchdog(self):
        if self._sandbox is None:
            return _DiskWatchdog(None, self._sandbox, None)
        return _DiskWatchdog(self._folders.jail, self._sandbox.limits, self._kill_kernel, kept=self._kept_bytes,
                             watches=self._watches())

    def _watches(self):
        """The run's watches of the kernel's process tree, made at its first cell and kept for the others."""
        if self._watching is None:
            process = getattr(getattr(self.km, "provisioner", None), "process", None)
            limits, self._watching = self._sandbox.limits, []
            if process and self._sandbox.watches_memory():
                reason = f"out of memory: the notebook used more than {limits.memory_bytes / 2**30:g} GiB"
                self._watching.append(lambda: reason if tree_memory(process.pid) > limits.memory_bytes else "")
            if process and self.gpu_memory_share > 0:
                # A GPU shared by several gradings: a notebook holding all its memory would make its classmates'
                # kernels fail. Sampled in a thread of its own: the grading never waits for the driver.
                self._gpu_watch = GpuMemoryWatch(process.pid, self.gpu_memory_share)
                self._watching.append(lambda: self._gpu_watch.excess)
        return self._watching


class GpuMemoryWatch:
    """Each second, in a thread of its own, the GPU memory the driver counts for the kernel's processes
    (`jail.tree_gpu_memory`), against ``share`` of each GPU's memory; ``excess`` says why once a look found the
    kernel past it. A driver that hangs or answers garbage costs looks, never the grading's time; looks that got
    no answer are counted in ``status`` (for the report: a busy notebook without a control group can starve
    them, and so can a wedged driver). Where the driver's process ids are not this process's (a grader in a
    container) nothing is watched, and ``status`` says so."""

    def __init__(self, pid, share, every=1.0):
        self.pid, self.share, self.excess = pid, share, ""
        self.looks = self.unanswered = 0
        self._sizes, self._why_not = {}, "not watched yet"
        self._stop = threading.Event()
        threading.Thread(target=self._run, args=(every,), daemon=True).start()

    @property
    def status(self):
        if not self._sizes:
            return self._why_not
        shares = ", ".join(f"{self.share * size / 2**30:.3g} of {size / 2**30:.3g} GiB"
                           for size in self._sizes.values())
        blind = f"; {self.unanswered} of {self.looks} looks got no answer from the driver" if self.unanswered else ""
        return f"watched each second: at most {self.share:g} of each GPU's memory ({shares}){blind}"

    def _run(self, every):
        if not in_host_pid_namespace():
            self._why_not = "not watched: the grader does not see the machine's process ids, which the driver gives"
            return
        sizes = gpu_memory_sizes()
        if not sizes:
            self._why_not = "not watched: no NVIDIA GPU answers (nvidia-smi)"
            return
        self._sizes = sizes
        while not self._stop.is_set():
            used = gpu_memory_of_processes()
            self.looks += 1
            self.unanswered += used is None
            for gpu, held in tree_gpu_memory(self.pid, used or {}).items():
                limit = self.share * sizes.get(gpu, 0)
                if sizes.get(gpu) and held > limit:
                    self.excess = (f"out of GPU memory: the notebook held {held / 2**30:.3g} GiB of a GPU's memory, "
                                   f"more than its share of a GPU shared with other gradings ({self.share:g} of it, "
                                   f"{limit / 2**30:.3g} GiB)")
                    return
            self._stop.wait(every)

    def stop(self):
        self._stop.set()


def _json_size(value):
    """About the characters ``value`` takes in the notebook's JSON, every field counted: strings, keys and
    numbers, at any depth, walked without recursion (red team: an error's ``ename`` and an output's
    ``metadata``, left out of the count, carried 1.5 GB past the caps)."""
    size, pending = 0, [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            size += len(item)
        elif isinstance(item, dict):
            size += sum(len(str(key)) for key in item)
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
        else:
            size += 8
    return size


def _output_size(output):
    return OUTPUT_OVERHEAD + _json_size({k: v for k, v in output.items() if k != "output_type"})


def _message_size(msg):
    """Characters an output message would add; its fields' types were checked as it was decoded
    (`kernel_messages.checked`), but this is never the place a student's message stops grading."""
    content = msg.get("content")
    return OUTPUT_OVERHEAD + (_json_size(content) if isinstance(content, dict) else 0)


class _DiskWatchdog:
    """Polls the jail folder, everything the kernel can write, and kills it past the quota; and asks each of
    ``watches`` (callables) why the kernel must stop, "" if it need not: the jail's memory where no control
    group bounds it (`jail.tree_memory`), its share of a shared GPU's memory (`GpuMemoryWatch`)."""

    def __init__(self, folder, limits, kill, every=1.0, kept=0, watches=()):
        self.tripped = ""
        self._stop = threading.Event()
        self._thread = None
        if folder is None:
            return
        self._args = (folder, limits, kill)
        self._kept = kept  # bytes of the notebook's exports the grader already keeps outside the jail
        self._watches = list(watches)
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every):
        while not self._stop.wait(every) and not self._check():
            pass

    def _check(self):
        folder, limits, kill = self._args
        for watch in self._watches:
            reason = watch()
            if reason:
                self.tripped = reason
                kill()
                return True
        size, count = safe_files.tree_usage(folder, limits.max_files)
        size += self._kept
        if size > limits.disk_bytes or count > limits.max_files:
            self.tripped = (f"the notebook wrote more than {limits.disk_bytes / 2**30:g} GiB to disk"
                            if size > limits.disk_bytes else
                            f"the notebook made more than {limits.max_files:,} files, or folders the grader "
                            "cannot read")
            kill()
        return bool(self.tripped)

    def stop(self):
        """Stop polling, then look once more: a cell that wrote its burst between two looks and
        ended is over the quota all the same."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            if not self.tripped:
                self._check()


class FilterStderr(IgnorePattern):
    """Drop framework log lines from stderr, line by line, in linear time.

    nbgrader scores a test cell 0 when it has any stderr output, and
    TensorFlow prints absl lines from whichever cell first touches a device.
    nbgrader's own IgnorePattern runs one unanchored regular expression over
    the whole output and drops the output whole; a pattern such as
    ``\\w*Warning: `` then backtracks quadratically on a long line (40 KB took
    3.7 s). Here each pattern is matched at the start of each line only, over
    at most ``max_line`` characters, and only matching lines go. A Python
    warning goes whole: its first line, the lines of a multi-line message,
    and the source line `warnings.warn` prints after them.
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
    max_warning_lines = Integer(40, help="Lines of one warning's message before its source line.").tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        if not self.enabled or cell.cell_type != "code":
            return cell, resources
        patterns = [re.compile(p) for p in self.line_patterns]
        outputs = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stderr":
                kept = self._filter(output.text.splitlines(keepends=True), patterns)
                if not kept:
                    continue
                output.text = "".join(kept)
            outputs.append(output)
        cell.outputs = outputs
        return cell, resources

    def _filter(self, lines, patterns):
        kept, warning = [], None  # warning: the lines after a warning's first line, until its source line
        for line in lines:
            head = line[: self.max_line]
            is_log = any(p.match(head) for p in patterns)
            if warning is not None:
                if line.startswith("  "):  # the source line that ends the warning: drop it all
                    warning = None
                    continue
                if not is_log and len(warning) < self.max_warning_lines:
                    warning.append(line)
                    continue
                kept += warning  # no source line came: those were lines of their own
                warning = None
            if is_log:
                warning = [] if "Warning: " in head else None
                continue
            kept.append(line)
        return kept + (warning or [])
