"""The grader's two steps of a grading run, around the student's kernel (see `trusted` for the whole story).

`PlanHiddenTests` runs before the kernel: it reads each locked test cell's
hidden regions (with nbgrader's own markers, `ClearHiddenTests`), chooses the
grader's inputs with a seed the student cannot know, and puts in the run's
record what the kernel must export after each test cell.

`ScoreHiddenTests` runs after it: a fresh scoring process, in the same jail
as the kernel, decides the checks on the exports; each test cell gets its
verdict as its first output. A scoring process that cannot answer is a
fault of the host, recorded as such.
"""

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import asdict
from pathlib import Path

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade, is_locked
from traitlets import Bool, Dict, Float, Integer, Unicode, default

from ..grading_run import HOST, Collection, HostFault, Plan, Record, Verdict
from ..hidden_regions import Markers
from ..sandbox import cpu_cores
from .trusted import HIDDEN_FAILED, ScoringTooSlow, export_code, plan, score_in_fresh_process

SECRET_FILE = ".autograder-secret"


def course_secret(root):
    """The key of the grader's input seeds, kept in ``root/.autograder-secret`` (made on first use).

    Students never see it: the jail holds no course folder. With it a
    regrade picks the same inputs, so it gives the same result.
    """
    path = Path(root) / SECRET_FILE
    if path.is_symlink():  # root makes it and hands it to the instructors (hub-setup.sh): never through a link
        from .. import UserError

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
    """After the kernel: decide the hidden checks in a fresh scoring process, in the jail."""

    timeout = Integer(900, help="Seconds the grader's own scoring process may take.").tag(config=True)
    memory_limit = Integer(4 * 2**30, help="Bytes of memory for the scoring process.").tag(config=True)

    def preprocess(self, nb, resources):
        record = Record.of(resources)
        if not record.plans:
            for cell in nb.cells:
                if cell.cell_type == "code" and is_grade(cell):
                    cell.outputs = errors_first(cell.get("outputs", []))
            return nb, resources
        started = time.perf_counter()
        try:
            verdicts, record.scoring_peak_bytes = score_in_fresh_process(
                {g: asdict(p) for g, p in record.plans.items()}, record.folders.kept, record.settings,
                self.timeout, self.memory_limit, self.log,
                jail=self.config.get("SandboxedExecute", {}).get("sandbox", "auto"),
                cpu_cores=cpu_cores(self.config.get("SandboxedExecute", {}).get("cpu_share", 0)))
        except HostFault as e:
            record.set_fault(HOST, str(e))
            return nb, resources
        except ScoringTooSlow as e:  # the reference's scoring took a fraction of it on this host
            verdicts = {g: {"failures": [f"{e}: the models or functions handed over are not the ones the "
                                         "task asks for"], "flags": [], "notes": []} for g in record.plans}
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


def errors_first(outputs):
    """An error or stderr output first: nbgrader's determine_grade stops at the first
    error *or* the first execute_result, so a value printed before an error
    would otherwise earn partial credit."""
    failing = [o for o in outputs if o.get("output_type") == "error" or
               (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    return failing[:1] + [o for o in outputs if o is not (failing[0] if failing else None)]
