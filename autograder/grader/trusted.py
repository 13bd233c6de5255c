"""Hidden tests decided in the grader's own process, not in the student's kernel.

A hidden-test block is a few calls of named checks from `hidden`, whose
arguments name the student's objects::

    ### BEGIN HIDDEN TESTS
    hidden.expect_accuracy(model, "mnist_test", floor=0.96)
    hidden.expect_multi_hot(vectorize_sequences)
    ### END HIDDEN TESTS

Each check declares what it needs of each student argument (`Model`, `Array`,
`Rows`, `Probe`). Grading goes in three steps, two of them nbgrader
preprocessors around the kernel (`steps.py`):

1. `PlanHiddenTests` (before the kernel runs) reads the blocks from the
   locked test cells, chooses the inputs (random sequences, the instructor's
   drawings copied under random names, raw reviews) with a seed the student
   cannot know, and tells the kernel what to export after each test cell.
   The kernel never receives the hidden blocks.
2. The kernel runs the notebook; after each test cell it saves the models
   (.keras), arrays (.npy) and function results (.npy) asked for, and the
   grader copies them out of its reach.
3. `ScoreHiddenTests` starts a fresh scoring process in the same jail as the
   kernel (`score_in_fresh_process`): it re-plans from the same blocks and
   seeds, reads the exports safely (`artifacts`, `safe_files`), runs each
   check and returns the verdicts. A failed hidden check puts an error first
   in its cell, so nbgrader scores the cell 0 and the student reads the
   check's message. The scoring process imports neither nbgrader nor
   nbformat: this module, `hidden` and `heldout` are all it needs.

A check that measures a model (an accuracy, a loss gap, predictions) first
applies the architecture checks the notebook's hidden tests required of the
same variable, so it measures the model whose architecture was checked and
not another one handed over later.

The same checks also run in-process on live objects (`nbgrader validate` of
a source notebook, or otter): then nothing is protected, as the README says.
"""

import ast
import contextlib
import functools
import hashlib
import inspect
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..checks import CheckFailed

HIDDEN_FAILED = "HiddenTestFailed"
MAX_ERROR_TEXT = 1_000  # characters of a student's own error message quoted back


class PlanError(ValueError):
    """A hidden-test block the grader cannot run: a course authoring error."""


class ScoringTooSlow(RuntimeError):
    """The scoring of a submission's exports passed its budget of time or memory: the student's exports, not the
    host."""


# --- what a check needs of the student's objects ------------------------------

class Model:
    """A Keras model, exported as .keras and loaded safely.

    ``architecture``: the check describes the model (layers, parameters,
    shapes) rather than measures it; later measurements of the same variable
    must pass it too.
    """

    def __init__(self, architecture=False):
        self.architecture = architecture

    def request(self, name, key, rng, stage, literals):
        return {"kind": "model", "name": name, "file": f"out/{name}.keras"}

    def load(self, item, base, call_data):
        from .artifacts import load_model

        return load_model(base, item["file"], name=f"`{item['name']}`")

    def live(self, obj, rng, stage, literals):
        return obj


class Array:
    """A value turned into a numpy array (numbers, lists, arrays), exported as .npy."""

    def request(self, name, key, rng, stage, literals):
        return {"kind": "array", "name": name, "file": f"out/{name}.npy"}

    def load(self, item, base, call_data):
        from .artifacts import load_array

        return load_array(base, item["file"], f"`{item['name']}`")

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

        return RowsResult(item["rows"], load_array(base, item["file"], f"`{item['name']}`"))

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
            try:
                outputs.append(load_array(base, call["out"], f"result from `{item['name']}`"))
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
    """Where a probe's inputs go: files under the exchange folder, under random names.

    ``settings`` hold what the course configured for the inputs (the folder
    of the instructor's drawings), the same when planning and when scoring.
    """

    def __init__(self, folder, rng, write=True, settings=None):
        self.folder = Path(folder)
        self.rng = rng
        self.write = write
        self.settings = settings or {}
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
                with _context(rng):
                    return fn(*bound.args, **bound.kwargs)

        local.check = fn
        local.kinds = kinds
        local.signature = signature
        return local

    return wrap


# --- planning ------------------------------------------------------------------

@dataclass
class Statement:
    check: object  # the hidden check (a `hidden_check` function)
    students: dict  # param -> (kind, export item, call data)
    literals: dict = field(default_factory=dict)

    def names(self, architecture):
        """The student variables this statement describes (``architecture``) or measures as models."""
        return [item["name"] for kind, item, _ in self.students.values()
                if isinstance(kind, Model) and kind.architecture == architecture]


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


def plan(block, seed, folder, write=True, where="a hidden-test block", settings=None):
    """The statements of ``block`` with what each needs; writes ``folder/request.json`` when ``write``."""
    rng = np.random.default_rng(seed)
    stage = Stage(folder, rng, write=write, settings=settings)
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
_rng = [np.random.default_rng()]
_settings = [{}]


def flag(message):
    """Note something for the instructor (not the score), e.g. a model that seems trained on test data."""
    _flags.append(message)


def grading_rng():
    """A generator the student cannot predict: seeded from the cell's secret seed at grading."""
    return _rng[0]


def grading_settings():
    """What the course set for this run's hidden checks (`PlanHiddenTests`): its drawings and their floor,
    and whether this is the reference's run; empty outside a grading."""
    return _settings[0]


@contextlib.contextmanager
def _context(rng, settings=None):
    saved = _rng[0], _settings[0]
    _rng[0], _settings[0] = rng, settings or {}
    try:
        yield
    finally:
        _rng[0], _settings[0] = saved


class Scorer:
    """Decides the hidden blocks of one notebook, cell after cell, on the exports in each cell's folder.

    It remembers the architecture checks of each student variable, so that a
    later check measuring that variable's model applies them first.
    """

    def __init__(self):
        self.required = {}  # variable name -> [Statement] of architecture checks

    def score(self, block, seed, folder, where="a hidden-test block", settings=None):
        """``Verdict``-like dict of failures, flags and notes (what the checks printed)."""
        del _flags[:]
        try:
            statements = plan(block, seed, folder, write=False, where=where, settings=settings)
        except PlanError as e:
            return {"failures": [f"the hidden test could not run ({e})"], "flags": [], "notes": []}
        failures, loaded, printed = [], {}, io.StringIO()
        for k, statement in enumerate(statements):
            # Required of the variable from here on, whether this check passes or not, and even when
            # the model could not be exported at all.
            for name in statement.names(architecture=True):
                self.required.setdefault(name, []).append(statement)
            try:
                arguments = dict(statement.literals)
                for param, (kind, item, data) in statement.students.items():
                    arguments[param] = self._load(loaded, kind, item, Path(folder), data)
                with contextlib.redirect_stdout(printed), _context(np.random.default_rng([seed, k]), settings):
                    self._same_model_as_checked(statement, arguments)
                    statement.check.check(**arguments)
            except CheckFailed as e:
                failures.append(str(e))
            except Exception as e:  # a check that broke on odd input: the cell fails, with the reason
                failures.append(f"hidden.{statement.check.__name__} could not check this "
                                f"({type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''})")
        return {"failures": failures, "flags": list(_flags),
                "notes": [line for line in printed.getvalue().splitlines() if line.strip()]}

    @staticmethod
    def _load(loaded, kind, item, base, data):
        key = json.dumps([str(base), item], sort_keys=True)
        if key not in loaded:
            try:
                loaded[key] = kind.load(item, base, data)
            except CheckFailed as e:
                loaded[key] = e
        if isinstance(loaded[key], CheckFailed):
            raise loaded[key]
        return loaded[key]

    def _same_model_as_checked(self, statement, arguments):
        """Before a measurement: the measured model passes the architecture checks required of its variable."""
        by_name = {item["name"]: param for param, (kind, item, _) in statement.students.items()}
        for name in statement.names(architecture=False):
            for required in self.required.get(name, []):
                param = next(p for p, (kind, item, _) in required.students.items() if item["name"] == name)
                try:
                    required.check.check(**{**required.literals, param: arguments[by_name[name]]})
                except CheckFailed as e:
                    raise CheckFailed(
                        f"The model `{name}` measured here is not one with the architecture the earlier test "
                        f"required of `{name}` ({str(e).splitlines()[0]}). Keep `{name}` the model you built "
                        "and trained, as the text asks.") from None


def score_block(block, seed, folder, where="a hidden-test block", settings=None):
    """One block on its own: ``(failures, flags, notes)``."""
    verdict = Scorer().score(block, seed, folder, where, settings)
    return verdict["failures"], verdict["flags"], verdict["notes"]


def main():
    """``python -m autograder.grader.trusted JOB RESULT``: score the cells of a job file, in order."""
    import resource

    from .artifacts import MAX_READ_BYTES, ReadBudget

    job = json.loads(Path(sys.argv[1]).read_text())
    scorer, results = Scorer(), {}
    with ReadBudget(MAX_READ_BYTES):
        for cell in job["cells"]:
            results[cell["grade_id"]] = scorer.score(cell["block"], cell["seed"], cell["folder"], cell["where"],
                                                     job.get("settings"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    Path(sys.argv[2]).write_text(json.dumps({"verdicts": results, "peak_bytes": peak}))


# The scoring process imports the grader from its copy (first on the path), whatever is installed, and
# runs `main` under the module's own name: the checks record flags in *its* state, not __main__'s.
SCORER_START = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
                "from autograder.grader.trusted import main; main()")


def score_in_fresh_process(plans, kept, settings=None, timeout=900, memory_bytes=4 * 2**30, log=None, jail="bwrap",
                           cpu_cores=None):
    """``({grade_id: verdict dict}, peak bytes)`` from a fresh scoring process in the jail.

    ``plans`` maps grade_id to `Plan`-like dicts (block, seed, folder, where),
    in notebook order; ``kept`` is the folder of the exports, the only
    student-written files the process can read. ``jail`` is the course's
    `SandboxedExecute.sandbox`: the scoring process is jailed as the kernel
    is ("none": not at all, as for `grade --no-sandbox`; "auto": where it
    works). Anything that stops the process from answering is the host's
    fault: raises `HostFault`.
    """
    from ..grading_run import HostFault
    from ..sandbox import Limits, Sandbox, jail_failure, jail_problem

    problem = jail_problem() if jail != "none" else ""
    if problem and jail == "bwrap":
        raise HostFault(f"the scoring process could not start: {problem}")
    with tempfile.TemporaryDirectory(prefix="autograder-score-") as tmp:
        root = Path(tmp) / "jail"
        job, result = root / "work" / "job.json", root / "work" / "result.json"
        job.parent.mkdir(parents=True)
        job.write_text(json.dumps({"cells": [{"grade_id": g, **p} for g, p in plans.items()],
                                   "settings": settings or {}}))
        package = scoring_package(Path(tmp) / "package")
        readable = scoring_readable(kept, settings, package)
        sandbox = Sandbox(root=root, workdir=job.parent, readable=readable, groups=scoring_groups(readable),
                          env=scoring_env(), limits=Limits(memory_bytes=memory_bytes, max_processes=256,
                                                           disk_bytes=256 * 2**20, cpu_cores=cpu_cores))
        # -I: nothing from the working folder, the environment or the user's site joins the import path.
        command = [sys.executable, "-I", "-c", SCORER_START, str(package), str(job), str(result)]
        try:
            if jail == "none" or problem:  # unjailed, as the kernel was; still a minimal environment
                done = subprocess.run(command, env={**sandbox.environment(), "HOME": str(root / "tmp"),
                                                    "TMPDIR": str(root / "tmp")},
                                      capture_output=True, text=True, errors="replace", timeout=timeout,
                                      cwd=job.parent, preexec_fn=_own_memory_bound)
            else:
                done = sandbox.run(command, timeout)
        except subprocess.TimeoutExpired as e:
            raise ScoringTooSlow(f"scoring your work took over {timeout:g} s") from e
        except OSError as e:
            raise HostFault(f"the scoring process could not start ({e})") from e
        finally:
            out_of_memory, own_limit = sandbox.out_of_memory(), sandbox.hit_memory_limit()
            sandbox.close()
        if done.returncode != 0 or not result.is_file():
            if log is not None:
                log.error("hidden-test scoring failed: %s", done.stderr[-3000:])
            reason = jail_failure(done.stderr)
            if reason:
                raise HostFault(f"the scoring process could not start ({reason})")
            if out_of_memory and own_limit:
                # Its limit is its own and its memory holds the student's exports: the reference's scoring took
                # a fraction of it on this host (red team: a model of 7,850 parameters whose padding needed
                # 4.6 GB an example got no score, not the zero it earned).
                raise ScoringTooSlow(f"the scoring process needed more than its {memory_bytes / 2**30:g} GiB of "
                                     "memory for your work")
            if out_of_memory:  # killed by the host's own lack of memory: the host checks itself
                raise HostFault(f"the scoring process ran out of its {memory_bytes / 2**30:g} GiB")
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            raise HostFault(f"the scoring process failed ({(lines[-1] if lines else f'exit {done.returncode}')[:300]})")
        answer = json.loads(result.read_text())
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
    from .. import kit
    from ..sandbox import hand_over

    kit.readable_tree(dest, grader=True)
    hand_over(dest)
    return dest


def scoring_readable(kept, settings, package):
    """What the scoring process may read besides Python: the exports, its copy of the grader, the data and
    the drawings."""
    from ..datasets.download import data_dir

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
    from ..datasets.download import data_dir

    return {"TF_CPP_MIN_LOG_LEVEL": "3", "AUTOGRADER_DATA_DIR": str(data_dir()), "OMP_NUM_THREADS": "",
            "PYTHONHASHSEED": "0"}


def check_in_clean_process(block, namespace, where="the hidden test", timeout=900, secret=None):
    """For graders that run tests in the student's process (otter): the same hidden checks, decided outside it.

    The objects named by ``block`` are exported from ``namespace`` in this
    process (models saved, functions called on inputs chosen here), then a
    fresh, jailed scoring process loads the exports and decides. Returns the
    failure messages (empty when every check passed). Only the decision is
    protected: this process is the student's, so it could change what it
    exports, or this function; see the README's section on otter.
    """
    from ..exchange import collect
    from ..safe_files import copy_tree

    with tempfile.TemporaryDirectory(prefix="autograder-exchange-") as tmp:
        written, kept = Path(tmp) / "written" / "00", Path(tmp) / "kept" / "00"
        secret = secret or os.environ.get("AUTOGRADER_SECRET")
        key = hashlib.sha256(f"{secret}/{where}".encode()).digest() if secret else os.urandom(32)
        seed = int.from_bytes(key[:8], "big")
        plan(block, seed, written, write=True, where=where)
        collect(namespace, written / "request.json")
        copy_tree(written, kept)
        plans = {"cell": {"block": block, "seed": seed, "folder": str(kept), "where": where}}
        verdicts, _ = score_in_fresh_process(plans, kept.parent, timeout=timeout, jail="auto")
        return verdicts["cell"]["failures"]

