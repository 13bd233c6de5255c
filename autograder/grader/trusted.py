"""Hidden tests decided in the grader's own process, not in the student's kernel.

A hidden-test block is a few calls of named checks from `hidden`, whose
arguments name the student's objects::

    ### BEGIN HIDDEN TESTS
    hidden.expect_accuracy(model, "mnist_test", floor=0.96)
    hidden.expect_multi_hot(vectorize_sequences)
    ### END HIDDEN TESTS

Each check declares what it needs of each student argument (`Model`, `Array`,
`Rows`, `Probe`). Grading goes in three steps, two nbgrader preprocessors
around `Execute`:

1. `PlanHiddenTests` (before Execute) reads the blocks from the locked test
   cells (restored from the gradebook by OverwriteCells before any student
   code ran), chooses the inputs (random sequences, the instructor's drawings
   copied under random names, raw reviews) with a seed the student cannot
   know, writes what the kernel must export after each test cell, and tells
   Execute to run that export. The kernel never receives the hidden blocks.
2. Execute runs the notebook; after each test cell the kernel saves the
   models (.keras), arrays (.npy) and function results (.npy) asked for.
3. `ScoreHiddenTests` (after Execute) starts a fresh grader process, jailed
   read-only without network, that re-plans from the same blocks and seed,
   loads the exports safely (`artifacts`), runs each check and returns the
   verdicts. A failed hidden check puts an error first in its cell, so
   nbgrader scores the cell 0 and the student reads the check's message.

The same checks also run in-process on live objects (`nbgrader validate` of
a source notebook, or otter): then nothing is protected, as the README says.
"""

import ast
import contextlib
import functools
import hashlib
import hmac
import inspect
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade, is_locked
from traitlets import Integer, Unicode

from ..checks import CheckFailed
from ..execute import HIDDEN_BLOCK

BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HIDDEN_FAILED = "HiddenTestFailed"


class PlanError(ValueError):
    """A hidden-test block the grader cannot run: a course authoring error."""


# --- what a check needs of the student's objects ------------------------------

class Model:
    """A Keras model, exported as .keras and loaded safely."""

    def request(self, name, key, rng, stage, literals):
        return {"kind": "model", "name": name, "file": f"out/{name}.keras"}

    def load(self, item, base, call_data):
        from .artifacts import load_model

        return load_model(base / item["file"], name=f"`{item['name']}`")

    def live(self, obj, rng, stage, literals):
        return obj


class Array:
    """A value turned into a numpy array (numbers, lists, arrays), exported as .npy."""

    def request(self, name, key, rng, stage, literals):
        return {"kind": "array", "name": name, "file": f"out/{name}.npy"}

    def load(self, item, base, call_data):
        from .artifacts import load_array

        return load_array(base / item["file"], f"`{item['name']}`")

    def live(self, obj, rng, stage, literals):
        return np.asarray(obj)


@dataclass
class Rows:
    """``count`` rows of a large array, at positions the grader picks among the first ``of``."""

    count: int
    of: int

    def _rows(self, rng):
        return sorted(int(i) for i in rng.choice(self.of, size=self.count, replace=False))

    def request(self, name, key, rng, stage, literals):
        return {"kind": "rows", "name": name, "file": f"out/{key}.npy", "rows": self._rows(rng)}

    def load(self, item, base, call_data):
        from .artifacts import load_array

        return RowsResult(item["rows"], load_array(base / item["file"], f"`{item['name']}`"))

    def live(self, obj, rng, stage, literals):
        rows = self._rows(rng)
        return RowsResult(rows, np.asarray(obj[np.asarray(rows)]))


@dataclass
class RowsResult:
    rows: list
    values: np.ndarray


@dataclass
class Call:
    """One call of a student's function: ``args`` as the kernel receives them, ``data`` for the grader."""

    args: list
    data: object = None


class Probe:
    """A function, called in the kernel on inputs from ``inputs(rng, stage, **check_arguments)``."""

    def __init__(self, inputs):
        self.inputs = inputs

    def calls(self, rng, stage, literals):
        accepted = inspect.signature(self.inputs).parameters
        return self.inputs(rng, stage, **{k: v for k, v in literals.items() if k in accepted})

    def request(self, name, key, rng, stage, literals):
        calls = self.calls(rng, stage, literals)
        item = {"kind": "probe", "name": name,
                "calls": [{"args": c.args, "out": f"out/{key}/{i}.npy"} for i, c in enumerate(calls)]}
        return item, [c.data for c in calls]

    def load(self, item, base, call_data):
        from .artifacts import load_array

        outputs = []
        for call in item["calls"]:
            out = base / call["out"]
            error = Path(str(out) + ".error")
            if error.is_file():
                outputs.append(CallError(error.read_text()[:1000]))
            else:
                try:
                    outputs.append(load_array(out, f"result from `{item['name']}`"))
                except CheckFailed as e:
                    outputs.append(CallError(str(e)))
        return ProbeResult(item["name"], call_data, outputs)

    def live(self, fn, rng, stage, literals):
        calls = self.calls(rng, stage, literals)
        outputs = []
        for call in calls:
            try:
                outputs.append(np.asarray(fn(*[stage.decode(a) for a in call.args])))
            except Exception as e:
                outputs.append(CallError(f"{type(e).__name__}: {e}"))
        return ProbeResult(getattr(fn, "__name__", "the function"), [c.data for c in calls], outputs)


@dataclass
class CallError:
    message: str


@dataclass
class ProbeResult:
    """A student function's results on the grader's inputs, call by call."""

    name: str
    data: list
    outputs: list

    def results(self):
        """``(data, output)`` pairs; CheckFailed at the first call that raised."""
        for data, output in zip(self.data, self.outputs):
            if isinstance(output, CallError):
                raise CheckFailed(f"`{self.name}` raised an error on one of the grader's inputs: {output.message}")
        return list(zip(self.data, self.outputs))


class Stage:
    """Where a probe's inputs go: files under the exchange folder, under random names."""

    def __init__(self, folder, rng, write=True):
        self.folder = Path(folder)
        self.rng = rng
        self.write = write
        self._count = 0

    def _name(self, suffix):
        self._count += 1
        return f"in/{self.rng.integers(2**62):016x}{suffix}"

    def json(self, value):
        return {"json": value}

    def array(self, value):
        rel = self._name(".npy")
        if self.write:
            (self.folder / rel).parent.mkdir(parents=True, exist_ok=True)
            np.save(self.folder / rel, np.asarray(value), allow_pickle=False)
        return {"npy": rel}

    def file(self, source, transform=None):
        """A copy of ``source`` under a random name; ``transform(path)`` may rewrite the copy."""
        rel = self._name(Path(source).suffix.lower() if transform is None else ".png")
        if self.write:
            target = self.folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if transform is None:
                shutil.copyfile(source, target)
            else:
                transform(source, target)
        return {"path": rel}

    def image(self, picture):
        """A PIL image saved as PNG under a random name."""
        rel = self._name(".png")
        if self.write:
            (self.folder / rel).parent.mkdir(parents=True, exist_ok=True)
            picture.save(self.folder / rel, format="PNG")
        return {"path": rel}

    def decode(self, arg):
        from ..exchange import _decode

        return _decode(arg, self.folder)


def hidden_check(**kinds):
    """Declare a hidden check: ``kinds`` maps each student argument to Model, Array, Rows or Probe.

    Called with live objects (in a notebook), the check runs in-process on
    them; the grader instead calls ``check.check`` with loaded exports.
    """

    def wrap(fn):
        signature = inspect.signature(fn)
        unknown = set(kinds) - set(signature.parameters)
        if unknown:
            raise TypeError(f"{fn.__name__}: no parameter {sorted(unknown)}")

        @functools.wraps(fn)
        def local(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            literals = {k: v for k, v in bound.arguments.items() if k not in kinds}
            rng = np.random.default_rng()
            with tempfile.TemporaryDirectory(prefix="autograder-probe-") as tmp:
                stage = Stage(tmp, rng)
                for param, kind in kinds.items():
                    bound.arguments[param] = kind.live(bound.arguments[param], rng, stage, literals)
                return fn(*bound.args, **bound.kwargs)

        local.check = fn
        local.kinds = kinds
        local.signature = signature
        return local

    return wrap


# --- planning ------------------------------------------------------------------

def hidden_blocks(source):
    """The text of each hidden-test block in a cell's source."""
    return [m.group(0).split(BEGIN, 1)[1].rsplit(END, 1)[0] for m in HIDDEN_BLOCK.finditer(source)]


@dataclass
class Statement:
    check: object  # the hidden check (a `hidden_check` function)
    students: dict  # param -> (kind, export item, call data)
    literals: dict = field(default_factory=dict)


def _checks_module():
    from . import hidden

    return hidden


def parse(block, where="a hidden-test block"):
    """``[(check, arguments)]`` for each statement: student arguments by name, the others evaluated literals."""
    hidden = _checks_module()
    try:
        tree = ast.parse(block)
    except SyntaxError as e:
        raise PlanError(f"{where} is not valid Python ({e.msg}, line {e.lineno})") from None
    calls = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "autograder.grader" and \
                [a.name for a in node.names] == ["hidden"]:
            continue
        call = node.value if isinstance(node, ast.Expr) else None
        func = getattr(call, "func", None)
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "hidden"):
            raise PlanError(f"{where} may only call hidden checks, as hidden.expect_...(...); "
                            f"line {node.lineno} does something else")
        check = getattr(hidden, func.attr, None)
        if not hasattr(check, "check"):
            raise PlanError(f"{where} calls hidden.{func.attr}, which is not a hidden check")
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            raise PlanError(f"{where}: hidden.{func.attr} takes plain arguments, not *args or **kwargs")
        try:
            bound = check.signature.bind(*call.args, **{k.arg: k.value for k in call.keywords})
        except TypeError as e:
            raise PlanError(f"{where}: hidden.{func.attr}: {e}") from None
        arguments = {}
        for param, node in bound.arguments.items():
            if param in check.kinds:
                if not isinstance(node, ast.Name):
                    raise PlanError(f"{where}: argument {param} of hidden.{func.attr} must name a "
                                    "variable of the student's notebook")
                arguments[param] = node.id
                continue
            try:
                arguments[param] = ast.literal_eval(node)
            except ValueError:
                raise PlanError(f"{where}: argument {param} of hidden.{func.attr} must be a literal "
                                f"(a number, string, list, dict or tuple)") from None
        calls.append((check, arguments))
    return calls


def plan(block, seed, folder, write=True, where="a hidden-test block"):
    """The statements of ``block`` with what each needs; writes ``folder/request.json`` when ``write``."""
    rng = np.random.default_rng(seed)
    stage = Stage(folder, rng, write=write)
    statements, exports = [], {}
    for k, (check, arguments) in enumerate(parse(block, where)):
        literals = {p: v for p, v in arguments.items() if p not in check.kinds}
        for param, value in check.signature.parameters.items():
            if param not in arguments and param not in check.kinds and value.default is not inspect.Parameter.empty:
                literals[param] = value.default
        students = {}
        for param, kind in check.kinds.items():
            name = arguments[param]
            requested = kind.request(name, f"{name}_{k}", rng, stage, literals)
            item, data = requested if isinstance(requested, tuple) else (requested, None)
            key = json.dumps({k2: v for k2, v in item.items() if k2 != "calls"}, sort_keys=True) \
                if item["kind"] in ("model", "array") else f"{item['kind']}:{k}:{param}"
            exports.setdefault(key, item)
            students[param] = (kind, exports[key], data)
        statements.append(Statement(check, students, literals))
    if write:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "request.json").write_text(json.dumps({"exports": list(exports.values())}))
    return statements


def export_code(request_file):
    """What the kernel runs after the test cell: the exports, into the exchange folder."""
    return (f"__import__('autograder.exchange', fromlist=['collect']).collect("
            f"get_ipython().user_ns, {str(request_file)!r})")


# --- scoring (in the fresh grader process) ---------------------------------------

_flags = []


def flag(message):
    """Note something for the instructor (not the score), e.g. a model that seems trained on test data."""
    _flags.append(message)


def score_block(block, seed, folder, where="a hidden-test block"):
    """Run a block's checks on the exports in ``folder``; ``(failures, flags, notes)``.

    ``notes`` are the lines the checks printed (what they measured), for the
    student's feedback and the instructor's calibration.
    """
    del _flags[:]
    try:
        statements = plan(block, seed, folder, write=False, where=where)
    except PlanError as e:
        return [f"the hidden test could not run ({e})"], [], []
    failures, loaded, printed = [], {}, io.StringIO()
    for statement in statements:
        try:
            arguments = dict(statement.literals)
            for param, (kind, item, data) in statement.students.items():
                key = json.dumps(item, sort_keys=True)
                if key not in loaded:
                    try:
                        loaded[key] = kind.load(item, Path(folder), data)
                    except CheckFailed as e:
                        loaded[key] = e
                if isinstance(loaded[key], CheckFailed):
                    raise loaded[key]
                arguments[param] = loaded[key]
            with contextlib.redirect_stdout(printed):
                statement.check.check(**arguments)
        except CheckFailed as e:
            failures.append(str(e))
        except Exception as e:  # a check that broke on odd input: the cell fails, with the reason
            failures.append(f"hidden.{statement.check.__name__} could not check this "
                            f"({type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''})")
    return failures, list(_flags), [line for line in printed.getvalue().splitlines() if line.strip()]


def main():
    """``python -m autograder.grader.trusted JOB RESULT``: score the blocks of a job file."""
    job = json.loads(Path(sys.argv[1]).read_text())
    results = {}
    for cell in job["cells"]:
        failures, flags, notes = score_block(cell["source"], cell["seed"], cell["folder"], cell["where"])
        results[cell["grade_id"]] = {"failures": failures, "flags": flags, "notes": notes}
    Path(sys.argv[2]).write_text(json.dumps(results))


# --- the two pipeline steps -------------------------------------------------------

class PlanHiddenTests(NbGraderPreprocessor):
    """Before Execute: plan each test cell's hidden checks and the exports they need."""

    secret = Unicode(
        "", help="Key for the seeds of the grader's inputs. Students must not know it; with it, a regrade "
                 "picks the same inputs. Empty: a new random key per run.",
    ).tag(config=True)

    def preprocess(self, nb, resources):
        ours = resources.setdefault("autograder", {})
        blocks = {}
        for cell in nb.cells:
            if cell.cell_type == "code" and is_grade(cell) and is_locked(cell):
                found = hidden_blocks(cell.source)
                if found:
                    blocks[cell.metadata.nbgrader["grade_id"]] = "\n".join(found)
        if not blocks:
            return nb, resources
        exchange = Path(tempfile.mkdtemp(prefix="autograder-exchange-"))  # the kernel writes here
        private = Path(tempfile.mkdtemp(prefix="autograder-collected-"))  # and its exports move here
        base_seed = self._seed(nb, resources)
        plans, after_cell = {}, {}
        for grade_id, block in blocks.items():
            folder = exchange / f"{len(plans):02d}"
            kept = private / folder.name
            kept.mkdir()
            seed = int.from_bytes(hashlib.sha256(f"{base_seed}/{grade_id}".encode()).digest()[:8], "big")
            where = f"the hidden test of {grade_id}"
            plan(block, seed, folder, write=True, where=where)
            plans[grade_id] = {"source": block, "seed": seed, "folder": str(kept), "where": where}
            after_cell[grade_id] = {"code": export_code(folder / "request.json"),
                                    "move": [str(folder / "out"), str(kept / "out")]}
        ours["exchange"] = str(exchange)
        ours["collected"] = str(private)
        ours.setdefault("writable", []).append(str(exchange))
        ours["plans"] = plans
        ours["after_cell"] = after_cell
        return nb, resources

    def _seed(self, nb, resources):
        key = self.secret.encode() or os.urandom(32)
        info = resources.get("nbgrader", {})
        digest = hashlib.sha256(json.dumps(nb, sort_keys=True, default=str).encode()).hexdigest()
        message = f"{info.get('assignment')}/{info.get('student')}/{info.get('notebook')}/{digest}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def preprocess_cell(self, cell, resources, index):
        return cell, resources


class ScoreHiddenTests(NbGraderPreprocessor):
    """After Execute: decide the hidden checks in a fresh, jailed grader process."""

    timeout = Integer(900, help="Seconds the grader's own scoring process may take.").tag(config=True)

    def preprocess(self, nb, resources):
        ours = resources.get("autograder", {})
        plans = ours.get("plans")
        if not plans:
            for cell in nb.cells:
                if cell.cell_type == "code" and is_grade(cell):
                    cell.outputs = _errors_first(cell.get("outputs", []))
            return nb, resources
        started = time.perf_counter()
        try:
            results = self._score(plans, Path(ours["collected"]))
        finally:
            shutil.rmtree(ours["exchange"], ignore_errors=True)
            shutil.rmtree(ours["collected"], ignore_errors=True)
        exports = ours.get("exports", {})
        for cell in nb.cells:
            if cell.cell_type != "code" or not is_grade(cell):
                continue
            grade_id = cell.metadata.nbgrader.get("grade_id")
            if grade_id not in plans:
                cell.outputs = _errors_first(cell.get("outputs", []))
                continue
            result = results.get(grade_id, {"failures": ["the grader could not score this cell"], "flags": []})
            failures = result["failures"]
            if failures and exports.get(grade_id, {}).get("status") == "error":
                failures = [f"the grader could not collect your work after this cell "
                            f"({exports[grade_id]['message']})"] + failures
            outputs = list(cell.get("outputs", []))
            if result.get("notes"):  # what the hidden checks measured, for the student to read
                outputs.append(new_output("stream", name="stdout",
                                          text="".join(f"Hidden test: {n}\n" for n in result["notes"])))
            if failures:
                message = failures[0] + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else "")
                outputs.insert(0, new_output("error", ename=HIDDEN_FAILED, evalue=message,
                                             traceback=[f"{HIDDEN_FAILED}: {m}" for m in failures]))
            cell.outputs = _errors_first(outputs)
        ours["hidden"] = results
        ours["hidden_seconds"] = round(time.perf_counter() - started, 1)
        ours["flags"] = sorted({f for r in results.values() for f in r["flags"]})
        return nb, resources

    def _score(self, plans, exchange):
        return score_in_fresh_process(plans, exchange, self.timeout, self.log)

    def preprocess_cell(self, cell, resources, index):
        return cell, resources


def score_in_fresh_process(plans, exchange, timeout=900, log=None):
    """``{grade_id: {"failures": [...], "flags": [...]}}`` from a fresh, jailed grader process."""
    with tempfile.TemporaryDirectory(prefix="autograder-score-") as tmp:
        job, result = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job.write_text(json.dumps({"cells": [{"grade_id": g, **p} for g, p in plans.items()]}))
        # -I: nothing from the working folder, the environment or the user's site joins the import path.
        command = [sys.executable, "-I", "-m", "autograder.grader.trusted", str(job), str(result)]
        if _jail_available():
            command = _jail(command, readable=[Path(exchange)], writable=[Path(tmp)])
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                                  start_new_session=True, cwd=tmp)
        except subprocess.TimeoutExpired:
            return {g: {"failures": [f"the grader's scoring took over {timeout} s"], "flags": []} for g in plans}
        if done.returncode != 0 or not result.is_file():
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit status {done.returncode}"
            if log is not None:
                log.error("hidden-test scoring failed: %s", done.stderr[-3000:])
            return {g: {"failures": [f"the grader could not score this cell ({reason[:300]})"], "flags": []}
                    for g in plans}
        return json.loads(result.read_text())


def check_in_clean_process(block, namespace, where="the hidden test", timeout=900, secret=None):
    """For graders that run tests in the student's process (otter): the same hidden checks, decided outside it.

    The objects named by ``block`` are exported from ``namespace`` in this
    process (models saved, functions called on inputs chosen here), then a
    fresh, jailed grader process loads the exports and decides. Returns the
    failure messages (empty when every check passed). Only the decision is
    protected: this process is the student's, so it could change what it
    exports, or this function; see the README's section on otter.
    """
    from ..exchange import collect

    exchange = Path(tempfile.mkdtemp(prefix="autograder-exchange-"))
    try:
        folder = exchange / "00"
        secret = secret or os.environ.get("AUTOGRADER_SECRET")
        key = hashlib.sha256(f"{secret}/{where}".encode()).digest() if secret else os.urandom(32)
        seed = int.from_bytes(key[:8], "big")
        plan(block, seed, folder, write=True, where=where)
        collect(namespace, folder / "request.json")
        plans = {"cell": {"source": block, "seed": seed, "folder": str(folder), "where": where}}
        return score_in_fresh_process(plans, exchange, timeout)["cell"]["failures"]
    finally:
        shutil.rmtree(exchange, ignore_errors=True)


def _errors_first(outputs):
    """An error or stderr output first: nbgrader's determine_grade stops at the first
    error *or* the first execute_result, so a value printed before an error
    would otherwise earn partial credit."""
    failing = [o for o in outputs if o.get("output_type") == "error" or
               (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    return failing[:1] + [o for o in outputs if o is not (failing[0] if failing else None)]


@functools.lru_cache(maxsize=1)
def _jail_available():
    from ..sandbox import bwrap_works

    return bwrap_works()


def _jail(command, readable, writable):
    """The scoring process, read-only with no network: it reads files a student wrote."""
    args = ["bwrap", "--die-with-parent", "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc",
            "--dev", "/dev", "--tmpfs", "/tmp"]
    for path in readable:
        args += ["--ro-bind", str(path), str(path)]
    for path in writable:
        args += ["--bind", str(path), str(path)]
    return args + ["--"] + command


if __name__ == "__main__":
    # Run under the module's own name: the checks record flags in *its* state, not __main__'s.
    from autograder.grader.trusted import main as run_as_module

    run_as_module()
