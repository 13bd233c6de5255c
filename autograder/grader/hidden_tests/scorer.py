"""Hidden tests decided in the grader's own process, not in the student's kernel.

A hidden-test block is a few calls of named checks from `hidden`, whose
arguments name the student's objects::

    ### BEGIN HIDDEN TESTS
    hidden.expect_accuracy(model, "mnist_test", floor=0.96)
    hidden.expect_multi_hot(vectorize_sequences)
    ### END HIDDEN TESTS

Each check declares what it needs of each student argument (`Model`, `Array`,
`Rows`, `Probe`). Grading goes in three steps, two of them nbgrader
preprocessors around the kernel (`launch.py`):

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
   nbformat: this module, `vocabulary`, `kinds` and `heldout` are all it needs.

A check that measures a model (an accuracy, a loss gap, predictions) first
applies the architecture checks the notebook's hidden tests required of the
same variable, so it measures the model whose architecture was checked and
not another one handed over later.

The same checks also run in-process on live objects (`nbgrader validate` of
a source notebook, or otter): then nothing is protected, as the README says.
"""

import ast
import contextlib
import inspect
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...checks import CheckFailed
from . import heldout
from . import vocabulary as hidden
from .kinds import Model, PlanError, Stage, _context, _flags

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


def parse(block, where="a hidden-test block"):
    """``[(check, arguments)]`` for each statement: student arguments by name, the others evaluated literals."""
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
    return (f"__import__('autograder.run.exports', fromlist=['collect']).collect("
            f"get_ipython().user_ns, {str(request_file)!r})")


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


READY = "ready"  # what the scoring process says once warm, before it reads anything of the student's


def warm(job):
    """What scoring this job will need, loaded before any export is there: the backend (its import and
    compiler) when a check takes a model, and the held-out splits the checks name. The grader's own files only."""
    names, models = set(), False
    for cell in job["cells"]:
        try:
            statements = plan(cell["block"], cell["seed"], cell["folder"], write=False, settings=job.get("settings"))
        except PlanError:
            continue  # `score` says why
        for statement in statements:
            names |= {v for v in statement.literals.values() if isinstance(v, str)}
            models = models or any(isinstance(kind, Model) for kind, _, _ in statement.students.values())
    if models:
        import keras  # noqa: F401
    heldout.preload(names)


def main():
    """``python -m autograder.grader.hidden_tests.scorer JOB RESULT``: score the cells of a job file, in order.

    A job with ``wait`` warms up first (`warm`), says `READY` on stdout, then
    waits for ``go`` on stdin: the grader starts this process while the kernel
    still runs and hands it the exports once they are all kept
    (`launch.ScoringProcess`); any other line, or none, ends it unscored.
    """
    import resource
    import time

    from .artifacts import MAX_READ_BYTES, ReadBudget

    job = json.loads(Path(sys.argv[1]).read_text())
    warm(job)
    ready = time.time()
    if job.get("wait"):
        print(READY, flush=True)
        if sys.stdin.readline().strip() != "go":
            return
    scorer, results, seconds = Scorer(), {}, {}
    with ReadBudget(MAX_READ_BYTES):
        for cell in job["cells"]:
            started = time.perf_counter()
            results[cell["grade_id"]] = scorer.score(cell["block"], cell["seed"], cell["folder"], cell["where"],
                                                     job.get("settings"))
            seconds[cell["grade_id"]] = round(time.perf_counter() - started, 2)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started_at = job.get("started_at")
    Path(sys.argv[2]).write_text(json.dumps({
        "verdicts": results, "peak_bytes": peak, "check_seconds": seconds,
        "start_seconds": round(ready - started_at, 2) if isinstance(started_at, (int, float)) else None}))


# The scoring process imports the grader from its copy (first on the path), whatever is installed, and
# runs `main` under the module's own name: the checks record flags in *its* state, not __main__'s. Once its
# answer is written it ends at once: the backend's own teardown took half a second of every grading.
SCORER_START = ("import os, sys; sys.path.insert(0, sys.argv.pop(1)); "
                "from autograder.grader.hidden_tests.scorer import main; main(); "
                "sys.stdout.flush(); sys.stderr.flush(); os._exit(0)")


