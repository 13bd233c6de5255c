"""What a hidden check declares of each student argument (`Model`, `Array`, `Rows`, `Probe`), and the
context a check runs in: its generator, the course's settings, its flags.

The vocabulary (`hidden`), the scorer inside the jail and the launcher outside it all build on this.
"""

import contextlib
import functools
import inspect
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...checks import CheckFailed

HIDDEN_FAILED = "HiddenTestFailed"


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
        from ...run.exports import _decode

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


