"""The check before a class: each grading host first grades the worksheet's reference solution.

The reference is what a student who wrote the solutions would hand in (the
solution without its hidden tests), sanitized as nbgrader sanitizes every
submission, then run exactly as a student's notebook is run on that host
(`worker.execute`). It must reach full marks; if it does not, the host is at
fault and grades nothing of that worksheet. The verdict is cached on the host,
per host and per version: the kit, the libraries, the reference and its files,
and the configuration.

The time the reference took sets the host's budget for each student's
notebook: `ReferenceRun.budget_factor` times it, plus `startup_allowance` for
a kernel that starts slowly, never more than the course's
`SandboxedExecute.notebook_timeout`. An endless loop then holds a worker
about three times as long as the solution takes, not the course's upper bound.
"""

import copy
import hashlib
import json
import os
import socket
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from traitlets import Float, Unicode
from traitlets.config import LoggingConfigurable

from ...run import kit
from ...run.pipeline import GradingRun
from .worker import Payload, execute

REFERENCE_STUDENT = "reference"


class ReferenceRun(LoggingConfigurable):
    """How the reference run sets a host's time budget, and where hosts keep its verdict."""

    budget_factor = Float(3.0, help="A student's notebook may take this many times the reference's time.").tag(config=True)
    startup_allowance = Float(30.0, help="Seconds added to the budget for a kernel that starts slowly.").tag(config=True)
    cache_dir = Unicode("", help="Where a host keeps its verdicts (default: ~/.cache/autograder/reference).").tag(config=True)


@dataclass
class ReferenceVerdict:
    ok: bool
    host: str
    reason: str = ""
    score: float = 0.0
    max_score: float = 0.0
    seconds: float = 0.0
    budget: float = 0.0
    cells: list = field(default_factory=list)
    flags: list = field(default_factory=list)
    scoring_seconds: float = 0.0
    scoring_budget: float = 0.0
    cached: bool = False  # read from this host's cache, not run now
    drawings: str = ""  # set when the course's own hand-drawn digits alone kept the reference short
    readings: dict = field(default_factory=dict)  # grade_id -> the hand-drawn test's readings (hidden.READINGS)

    @property
    def problem(self):
        if self.ok:
            return ""
        if self.drawings:
            return (f"the reference solution reads only {self.drawings}; the drawings, not {self.host}, are the "
                    "cause: `autograder drawings check DIR` shows the ones it misreads and the floor the set "
                    "supports; redraw or remove them, set that floor (PlanHiddenTests.drawings_floors), or unset "
                    "PlanHiddenTests.drawings to grade with the kit's example set")
        return f"the reference solution did not reach full marks on {self.host}: {self.reason}"


def reference_notebook(config, assignment_id):
    """``(notebook, folder of its files)``: the solution as a student would hand it in, sanitized by nbgrader's steps.

    nbgrader's Autograde converter runs this pass over a student's notebook; the reference is no student of the
    gradebook, so the course's own sanitize steps run here, in the coordinating process that holds the gradebook
    (OverwriteCells reads it). It is not a grading run: the run is `worker.execute`'s, by `run_steps`."""
    import nbformat
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import ClearHiddenTests

    from ...run.record import build_steps

    coursedir = CourseDirectory(config=config)
    folder = Path(coursedir.format_path(coursedir.source_directory, ".", assignment_id))
    nb = nbformat.read(folder / f"{assignment_id}.ipynb", as_version=4)
    nb, _ = ClearHiddenTests(config=config).preprocess(copy.deepcopy(nb), {})
    resources = {"unique_key": assignment_id, "nbgrader": {"db_url": coursedir.db_url, "assignment": assignment_id,
                                                           "notebook": assignment_id, "student": REFERENCE_STUDENT}}
    for step in build_steps(config.Autograde.sanitize_preprocessors, config=config):
        nb, resources = step(nb, resources)
    return nb, folder


def reference_payload(config, assignment_id, timeout=None):
    """The payload of the reference run: run with the course's whole budget (there is none yet), within
    `GradingRun.timeout` like any grading process (``timeout``, where given, in its place)."""

    from ...run.record import CourseProblem
    from ..hidden_tests.drawings import drawing_problems, reads_course_drawings

    nb, folder = reference_notebook(config, assignment_id)
    drawings = config.get("PlanHiddenTests", {}).get("drawings")
    reads = drawings and reads_course_drawings(folder / f"{assignment_id}.ipynb")
    problems = drawing_problems(drawings) if reads else []
    if problems:
        raise CourseProblem(f"the course's drawings cannot all be read: {'; '.join(problems[:5])}"
                            + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
                            + "; fix or remove them (`autograder drawings check DIR` checks a set)")
    marked = _config(copy.deepcopy(config))
    marked.PlanHiddenTests.reference_run = True  # floor plus margin; each drawing's reading
    resources = {"metadata": {"path": str(folder)},
                 "nbgrader": {"student": REFERENCE_STUDENT, "assignment": assignment_id, "notebook": assignment_id}}
    return Payload.of(nb, resources, marked, timeout or GradingRun(config=marked).timeout)


def budget(config, seconds, section="SandboxedExecute", setting="notebook_timeout", default=1800):
    """The time a student's run (or its scoring) may take on a host whose reference took ``seconds``,
    never more than the course's own setting."""
    settings = ReferenceRun(config=_config(config))
    ceiling = float(config.get(section, {}).get(setting, default))
    return round(min(ceiling, settings.budget_factor * seconds + settings.startup_allowance), 1)


def _config(plain):
    from traitlets.config import Config

    return plain if isinstance(plain, Config) else Config(plain)


def judge(answer, config):
    """The verdict on a reference run's `Answer`."""
    import nbformat

    from ...run.record import Record, report

    if answer.host_fault or answer.notebook is None:
        return ReferenceVerdict(False, answer.host, answer.host_fault or answer.error or "it returned nothing")
    nb = nbformat.reads(answer.notebook, as_version=4)
    seen = report(nb)
    record = Record.from_metadata(nb.metadata.get("autograder"))
    lost = [f"{c['name']} {c['score']:g}/{c['max_score']:g} ({c['message'][:200]})" for c in seen["cells"]
            if c["score"] < c["max_score"]]
    reason = record.fault.reason if record.fault else "; ".join(lost[:3])
    ok = not record.fault and not lost and seen["max_score"] > 0
    scoring = record.scoring_seconds or 0.0
    readings = drawing_readings(nb)
    return ReferenceVerdict(ok, answer.host, "" if ok else reason or "no test cell scored", seen["score"],
                            seen["max_score"], record.seconds, budget(config, record.seconds), seen["cells"],
                            seen["flags"], scoring, budget(config, scoring, "ScoreHiddenTests", "timeout", 900),
                            drawings="" if ok or record.fault else _drawings_shortfall(seen["cells"], readings, config),
                            readings=readings)


def drawing_readings(nb):
    """grade_id -> what the reference's hand-drawn test reported (hidden.READINGS), from the graded notebook."""
    from nbgrader.utils import is_grade

    from ..hidden_tests.vocabulary import READINGS

    found = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or not is_grade(cell):
            continue
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines() if output.get("output_type") == "stream" else []:
                if READINGS in line:
                    try:
                        found[cell.metadata.nbgrader["grade_id"]] = json.loads(line.split(READINGS, 1)[1])
                    except ValueError:
                        pass
    return found


def _drawings_shortfall(cells, readings, config):
    """``"0.769 of the course's 39 hand-drawn digits in DIR (it must read 0.95: the floor 0.90 plus a margin)"``
    when the instructor's own drawings (PlanHiddenTests.drawings) are all that the reference lost points on;
    else ''."""
    folder = config.get("PlanHiddenTests", {}).get("drawings")
    lost = [c for c in cells if c["score"] < c["max_score"]]
    short = [readings.get(c["name"]) for c in lost]
    if not folder or not lost or not all(r and r["accuracy"] < r["required"] for r in short):
        return ""
    r = short[0]
    return (f"{r['accuracy']:.3f} of the course's {r['count']} hand-drawn digits in {folder} (it must read "
            f"{r['required']:.2f}: the floor of {r['floor']:.2f} plus a margin for the seed a student trains with)")


def cache_path(payload):
    """Where this host keeps its verdict on ``payload``: one file per host and version."""
    from ...run import host
    from ..course import private_cache

    settings = ReferenceRun(config=_config(payload.config))
    folder = Path(settings.cache_dir) if settings.cache_dir else private_cache("reference")
    versions = json.dumps(host.versions(), sort_keys=True)
    # Where the course and its submissions lie is not part of the version: `grade` builds a throwaway course each
    # time, and grade-all stages each run's submissions in a folder of that run's (before, its path was part of
    # the key: every grade-all run graded the reference again, and a regrade got the budgets of another run).
    config = copy.deepcopy(payload.config)
    config.pop("CourseDirectory", None)
    run = replace(payload, config=config)
    key = hashlib.sha256(f"{socket.gethostname()}\0{kit.package_digest()}\0{versions}\0{run.digest()}"
                         .encode()).hexdigest()[:24]
    return folder / f"{payload.assignment}-{key}.json"


def reference(payload, fresh=False, say=None):
    """The verdict of this host on the reference ``payload``: cached, else run now (a Dask task too).
    ``fresh``: run it now whatever the cache holds (the host checking itself after a failed run);
    ``say``: told when the run starts (it takes a minute or more)."""
    path = cache_path(payload)
    if path.is_file() and not fresh:
        try:
            return asdict(ReferenceVerdict(**{**json.loads(path.read_text()), "cached": True}))
        except (ValueError, TypeError):
            pass
    if say:
        say(f"this host grades the reference solution of {payload.assignment} first (once per host and version; "
            "a minute or more)")
    verdict = judge(execute(payload), payload.config)
    # A failure is never cached (the host may be mended), nor a recheck: the budgets stay those of the host's
    # first run, so that a regrade gives the same result (a recheck under load had changed them).
    if verdict.ok and not fresh:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = path.with_suffix(f".{os.getpid()}.tmp")
        # Private, wherever the course puts the cache: a verdict holds the readings of the hidden drawings.
        with os.fdopen(os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600), "w") as out:
            out.write(json.dumps(asdict(verdict)))
        os.replace(staging, path)
    return asdict(verdict)


def check_here(config, assignment_id, fresh=False, say=None):
    """This host's verdict on ``assignment_id`` (for `autograder grade`)."""
    return ReferenceVerdict(**reference(reference_payload(config, assignment_id), fresh=fresh, say=say))

