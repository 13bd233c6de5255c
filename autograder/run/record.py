"""What one grading run is: its record, the one function that runs its steps, and its report.

`autograder check`, JupyterLab's Validate, `autograder grade`, grade-all's
Dask workers and a host's reference run all run a notebook the same way: the
steps named in the course's configuration (`GradingRun.steps`, set in
nbgrader_config.py from `autograder/run/pipeline.py`), built with that whole
configuration and run by `run_steps`, in a grading process of their own
(`check`'s is the student's). Otter's clean process runs the hidden-test
steps with `run_steps` too, around the student's live objects. nbgrader
keeps what it does: its Autograde converter runs the sanitize pass, then
`pipeline.GradingRun` as one step, then the gradebook steps.

The steps talk through one typed `Record`, kept in ``resources["autograder"]``
and, at the end, in the notebook's metadata: the jail, the plans of the
hidden tests, what the kernel exported, the verdicts, the fault and whose it
is, flags for the instructor, and the host. A misspelt field is an
AttributeError, not a silent miss. The record crosses from the grading
process to its caller as that metadata, versioned (`RECORD_VERSION`), and is
read back whole by `Record.from_metadata`.

Every fault has an owner. The student's (their kernel died, their file was
refused, their cell ran out of time) still gives a score. The host's (the
jail or the scoring process could not start, data is missing, the grader
crashed) never does: `pipeline.GradingRun` raises `HostFault`, so nbgrader
saves nothing, and the callers record the host's reason.
"""

import os
import resource
import socket
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from traitlets.utils.importstring import import_item

STUDENT, HOST = "student", "host"  # whose fault
# The layout of ``metadata.autograder``, the record as it crosses from the grading process to its caller (and
# stays in the graded notebook). Release 0.2 wrote the same layout without a version.
RECORD_VERSION = 1
# Where a grading process makes its run folders, when its parent chose (`worker.execute`: a folder it removes
# after the process, even one killed for its time, which never closes its own).
RUN_PARENT_VARIABLE = "AUTOGRADER_RUN_PARENT"


class HostFault(RuntimeError):
    """The grading host, not the submission, is at fault: no score may be saved."""


class CourseProblem(RuntimeError):
    """The course's own material (its hand-drawn digits) keeps the reference short of full marks on a sound
    host: no score is saved, the host goes on grading other worksheets, and the message says what to change."""


class RecordVersionError(ValueError):
    """A graded notebook's record written by another version of the grader, whose layout this one cannot read."""


class Unprocessable(RuntimeError):
    """The grader could not process this submission, and the host then passed its own check: the outcome is
    the submission's, flagged for the instructor; no score is saved, and the host goes on grading."""


@dataclass
class Fault:
    owner: str  # STUDENT or HOST
    reason: str
    cell: int | None = None  # 1-based index of the cell where the run stopped
    budget: str | None = None  # the time budget that ran out, if one did: "cell", "notebook" or "export"


@dataclass
class Plan:
    """A test cell's hidden block, the seed of its inputs, and where its exports are kept."""

    block: str
    seed: int
    folder: str
    where: str


@dataclass
class Collection:
    """What the kernel runs after a test cell, and where the grader then copies what it wrote."""

    code: str
    written: str
    kept: str


@dataclass
class Export:
    ok: bool
    message: str = ""


@dataclass
class Verdict:
    failures: list = field(default_factory=list)
    flags: list = field(default_factory=list)
    notes: list = field(default_factory=list)


@dataclass
class HostFacts:
    name: str = ""
    device: str = ""
    versions: dict = field(default_factory=dict)

    @classmethod
    def here(cls):
        from . import host

        return cls(socket.gethostname(), host.device(), host.versions())


class Folders:
    """The run's private folder: ``jail/`` (the one place its jail may write) and ``kept/`` (the exports, which
    only the grader and, later, its scoring process read).

    On a shared machine /tmp lists the run's folder to every user, and what
    it holds while a class is graded (a notebook, a classmate's trained
    model) must stay out of their reach. The folder is the grader's, 0700;
    as root it is also open to the jail's group alone (0710 with that
    group, never to others), for the jail's uid to walk through to its own
    folder, and ``kept/`` is that group's to read (0750), for the scoring
    process.
    """

    def __init__(self):
        from .jail import JAIL_GID

        self.base = Path(tempfile.mkdtemp(prefix="autograder-run-", dir=os.environ.get(RUN_PARENT_VARIABLE) or None))
        self.jail = self.base / "jail"
        self.work = self.jail / "work"
        self.exchange = self.jail / "exchange"
        self.kernel = self.jail / "kernel"
        self.kept = self.base / "kept"
        for folder in (self.work, self.exchange, self.kernel, self.kept):
            folder.mkdir(parents=True, mode=0o700)
        if os.geteuid() == 0:
            for folder, mode in ((self.base, 0o710), (self.kept, 0o750)):
                os.chown(folder, 0, JAIL_GID)
                os.chmod(folder, mode)

    def close(self):
        from .safe_files import remove_tree

        remove_tree(self.base)  # the jail's /tmp may hold a folder 1,500 deep


@dataclass(slots=True)
class Record:
    """Everything a run decided and saw; the steps share it, the report and the gradebook read it."""

    folders: Folders | None = None
    jail: dict = field(default_factory=lambda: {"kind": "none"})
    plans: dict = field(default_factory=dict)  # grade_id -> Plan
    collections: dict = field(default_factory=dict)  # grade_id -> Collection
    exports: dict = field(default_factory=dict)  # grade_id -> Export
    verdicts: dict = field(default_factory=dict)  # grade_id -> Verdict
    fault: Fault | None = None
    flags: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # repairs and refusals, for the instructor
    settings: dict = field(default_factory=dict)  # what the course set for the grader's inputs
    host: HostFacts = field(default_factory=HostFacts)
    budget_seconds: float | None = None
    seconds: float = 0.0
    kernel_start_seconds: float | None = None
    step_seconds: dict = field(default_factory=dict)  # step name -> seconds it took (the phases of the run)
    export_seconds: dict = field(default_factory=dict)  # grade_id -> seconds its exports took, copy included
    scoring_seconds: float | None = None
    scoring_start_seconds: float | None = None  # the scoring process's warm-up, from its start (beside the kernel)
    check_seconds: dict = field(default_factory=dict)  # grade_id -> seconds its hidden checks took
    scoring_peak_bytes: int | None = None
    grader_peak_bytes: int | None = None  # the grading process's own peak resident memory
    scoring_process: object = None  # the run's started scoring process (grader only); closed with the run

    @staticmethod
    def of(resources):
        """The record of the run ``resources`` belong to (made on first use)."""
        record = resources.get("autograder")
        if record is None:
            record = resources["autograder"] = Record()
        if not isinstance(record, Record):
            raise TypeError(f"resources['autograder'] holds a {type(record).__name__}, not a grading Record")
        return record

    def set_fault(self, owner, reason, cell=None, budget=None):
        """Keep the first fault: later ones are its consequences."""
        if self.fault is None:
            self.fault = Fault(owner, reason, cell, budget)

    def to_metadata(self):
        """What the graded notebook keeps (JSON), under ``metadata.autograder``."""
        return {
            "version": RECORD_VERSION,
            "execution": {"sandbox": self.jail, "fault": asdict(self.fault) if self.fault else None,
                          "seconds": round(self.seconds, 1), "budget_seconds": self.budget_seconds,
                          "kernel_start_seconds": self.kernel_start_seconds,
                          "step_seconds": dict(self.step_seconds), "export_seconds": dict(self.export_seconds),
                          "grader_peak_bytes": self.grader_peak_bytes},
            "hidden": {g: asdict(v) for g, v in self.verdicts.items()},
            "scoring": {"seconds": self.scoring_seconds, "peak_bytes": self.scoring_peak_bytes,
                        "start_seconds": self.scoring_start_seconds, "check_seconds": dict(self.check_seconds)},
            "flags": list(self.flags),
            "notes": list(self.notes),
            "host": self.host.name, "device": self.host.device, "versions": self.host.versions,
        }

    @classmethod
    def from_metadata(cls, metadata):
        """The parts of a record a graded notebook kept (fault, verdicts, flags, host, times): the inverse of
        `to_metadata`. Raises `RecordVersionError` for a layout of another version."""
        metadata = metadata or {}
        if metadata.get("version", RECORD_VERSION) != RECORD_VERSION:
            raise RecordVersionError(f"the graded notebook's record is of version {metadata.get('version')!r}; "
                                     f"this grader reads version {RECORD_VERSION}")
        execution = metadata.get("execution") or {}
        fault = execution.get("fault")
        return cls(jail=execution.get("sandbox") or {"kind": "none"},
                   verdicts={g: Verdict(**v) for g, v in (metadata.get("hidden") or {}).items()},
                   fault=Fault(**fault) if isinstance(fault, dict) else None,
                   flags=list(metadata.get("flags") or []), notes=list(metadata.get("notes") or []),
                   host=HostFacts(metadata.get("host") or "", metadata.get("device") or "",
                                  metadata.get("versions") or {}),
                   budget_seconds=execution.get("budget_seconds"), seconds=execution.get("seconds") or 0.0,
                   kernel_start_seconds=execution.get("kernel_start_seconds"),
                   step_seconds=dict(execution.get("step_seconds") or {}),
                   export_seconds=dict(execution.get("export_seconds") or {}),
                   grader_peak_bytes=execution.get("grader_peak_bytes"),
                   scoring_seconds=(metadata.get("scoring") or {}).get("seconds"),
                   scoring_peak_bytes=(metadata.get("scoring") or {}).get("peak_bytes"),
                   scoring_start_seconds=(metadata.get("scoring") or {}).get("start_seconds"),
                   check_seconds=dict((metadata.get("scoring") or {}).get("check_seconds") or {}))


def run_steps(nb, resources, steps):
    """Run ``steps`` (configured preprocessors) over ``nb``: the one way every caller runs a grading run.

    The run's folders exist while the steps run; the record ends in the
    notebook's metadata, whatever happened.
    """
    record = Record.of(resources)
    record.host = HostFacts.here()
    record.folders = Folders()
    started = time.perf_counter()
    try:
        for step in steps:
            # Called as nbconvert calls a step, so a step that is not enabled is skipped.
            began = time.perf_counter()
            nb, resources = step(nb, resources)
            record.step_seconds[type(step).__name__] = round(time.perf_counter() - began, 2)
    finally:
        if record.scoring_process is not None:  # started, never handed the exports: the run ended first
            record.scoring_process.close()
            record.scoring_process = None
        record.folders.close()
        record.folders = None
        record.seconds = time.perf_counter() - started
        record.grader_peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        nb.metadata["autograder"] = record.to_metadata()
    return nb, resources


def build_steps(names, parent=None, config=None):
    """Instances of ``names`` (dotted class paths, classes or instances), configured through ``parent``
    (a Configurable) or with ``config``."""
    steps = []
    for step in names:
        if isinstance(step, str):
            step = import_item(step)
        if isinstance(step, type):
            step = step(parent=parent) if parent is not None else step(config=config)
        steps.append(step)
    return steps


# --- the report -----------------------------------------------------------------------------

def sections(nb):
    """For each cell, the title of the last markdown heading above it."""
    titles, current = [], ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    current = line.lstrip("#").strip()
        titles.append(current)
    return titles


def cell_messages(nb):
    """grade_id -> what the student should read about each test cell.

    The first error (a hidden test's verdict comes first), else the last
    stderr line. When a cell between this test and the previous one raised,
    the message names the first that did: the test's own error, and those
    of the cells after it, are only consequences. An answer cell left empty
    is "not filled in"; a given cell that raised (the data could not be
    loaded) is named with its own error, which says what to do.
    """
    from nbgrader.utils import is_grade, is_solution

    messages, raised, titles = {}, [], sections(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if not is_grade(cell):
            if errors:
                raised.append((index, errors[0], is_solution(cell)))
            continue
        grade_id = cell.metadata.nbgrader.get("grade_id")
        text = ""
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                text = f"{output.ename}: {output.evalue}".strip()
                break
            if output.output_type == "stream" and output.name == "stderr" and output.text.strip():
                text = "the cell wrote to stderr: " + output.text.strip().splitlines()[-1]
        if text and raised and not text.startswith("NotRun"):
            i, error, answer = raised[0]
            kind = "answer cell" if answer else "cell"
            where = f"the {kind} above ({titles[i]})" if titles[i] else f"the {kind} above"
            text = (f"{where} was not filled in" if error.ename == "NotImplementedError"
                    else f"{where} raised {error.ename}: {error.evalue}".strip())
        messages[grade_id] = text
        raised = []
    return messages


def report(nb, scores=None):
    """The one report of a run: each test cell's score and message, the fault and its owner, flags, host.

    ``scores`` (grade_id -> (score, max_score)) come from the gradebook when
    there is one (manual grades, as nbgrader keeps them); otherwise each test
    cell is scored as nbgrader's SaveAutoGrades scores it.
    """
    from nbgrader.utils import determine_grade, is_grade, is_solution

    from .host import seeds

    record = Record.from_metadata(nb.metadata.get("autograder"))
    messages = cell_messages(nb)
    cells = []
    for cell in nb.cells:
        if not is_grade(cell) or is_solution(cell):
            continue
        name = cell.metadata.nbgrader["grade_id"]
        score, max_score = (scores or {}).get(name) or determine_grade(cell)
        cells.append({"name": name, "score": float(score), "max_score": float(max_score),
                      "message": messages.get(name, "")})
    return {
        "score": sum(c["score"] for c in cells),
        "max_score": sum(c["max_score"] for c in cells),
        "cells": cells,
        "fault": record.fault.reason if record.fault else None,
        "fault_owner": record.fault.owner if record.fault else None,
        "fault_budget": record.fault.budget if record.fault else None,
        "flags": record.flags,
        "notes": record.notes,
        "sandbox": record.jail.get("kind", "none"),
        "limits": record.jail.get("limits", ""),
        "host": record.host.name,
        "device": record.host.device,
        "versions": record.host.versions,
        "seeds": seeds(nb),
        "seconds": round(record.seconds, 1),
        "budget_seconds": record.budget_seconds,
        "grader_peak_bytes": record.grader_peak_bytes,
    }


def cell_lines(report):
    """The report's test cells for a terminal, one line each, a failed one's message wrapped under it: what
    `autograder check` and `autograder grade` both print."""
    lines = []
    for cell in report["cells"]:
        ok = cell["score"] == cell["max_score"]
        lines.append(f"  {'pass' if ok else 'FAIL'}  {cell['name']:<28} {cell['score']:g}/{cell['max_score']:g}")
        if not ok and cell["message"]:
            lines.extend("        " + line for line in wrap(cell["message"], 92).splitlines()[:8])
    return lines


def terminal_text(text):
    """``text`` with every control or invisible character but newlines and tabs shown as its escape: a
    student's error message must not move the instructor's cursor, clear her screen, retitle her terminal
    or write her clipboard (ANSI and OSC sequences; red team)."""
    return "".join(ch if ch in "\n\t" or ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))


def wrap(text, width=100):
    """Long one-line messages broken at spaces, for terminals and feedback pages alike; control characters
    shown as escapes (`terminal_text`)."""
    import textwrap

    return "\n".join(textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False) or line
                     for line in terminal_text(text).splitlines())

