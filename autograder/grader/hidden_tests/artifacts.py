"""Reading what a student's kernel wrote, without running any of it.

A model file is a zip archive written by the student's process. Before Keras
sees it, its size and members are checked and every object in its config
must be a standard Keras class from the allowlist below, with Keras's own
activations (one list, `exchange.ACTIVATIONS`, the one used when saving): no
Lambda layers, no custom or look-alike classes (a class named `Dropout`
defined in the notebook), no layers that read files. Its parameters are
counted from the config without making any weight, and must stay under a
cap. Its weights file is then read header by header, no weight read: every
weight must be plain numbers in a shape the config describes, and the file
must hold the data it declares (Keras reads each weight whole before it
compares shapes, so a few KB declaring a 4 GiB kernel would stop the scoring
process). Only then is it loaded, from a private copy of the bytes checked,
with ``safe_mode=True`` and ``compile=False``. An array must be one .npy
file whose header declares plain values the file holds (numpy allocates the
declared size first), and is loaded with ``allow_pickle=False``. Every file
is read through `safe_files`: no link is followed, only regular files under
a size cap.
"""

import collections
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from ...checks import CheckFailed
from ...run.exports import ACTIVATIONS as STANDARD_ACTIVATIONS
from ...run.safe_files import Refused, read_bytes, read_text

MAX_MODEL_BYTES = 256 * 2**20
MAX_ARRAY_BYTES = 512 * 2**20
MAX_CONFIG_BYTES = 1 * 2**20
MAX_ERROR_BYTES = 1_000  # characters of a student's own error message quoted back
MAX_PARAMS = 20_000_000  # 80 MB of float32: far above every worksheet's model
MAX_READ_BYTES = 1 * 2**30  # what one scoring process reads of the exports, all together (`ReadBudget`)
MODEL_MEMBERS = {"config.json", "metadata.json", "model.weights.h5"}
WEIGHTS_MEMBER = "model.weights.h5"
MAX_WEIGHT_LINKS = 5_000  # groups and weights in a weights file: a worksheet model and its optimizer have < 200
OPTIMIZER_SLOTS = 4  # values an optimizer keeps per weight: AdamW with amsgrad and EMA keeps 4
OPTIMIZER_SCALARS = 1_024  # and its step counters and learning rates

ALLOWED = {
    "keras": {"Sequential", "Functional", "Model", "DTypePolicy", "FloatDTypePolicy"},
    "keras.src.models.functional": {"Functional"},  # how Keras 3 names a functional model's class
    None: {"__keras_tensor__"},  # a functional model's links between layers
    "keras.layers": {
        "InputLayer", "Dense", "Activation", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "Flatten",
        "Reshape", "Embedding", "LSTM", "GRU", "SimpleRNN", "LSTMCell", "GRUCell", "SimpleRNNCell",
        "Bidirectional", "Conv1D", "Conv2D", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D",
        "AveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D",
        "GlobalAveragePooling2D", "BatchNormalization", "LayerNormalization", "ReLU", "Softmax", "LeakyReLU",
        "ELU", "Rescaling", "ZeroPadding2D", "Add", "Concatenate", "Average", "Maximum", "Multiply",
        "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "RandomContrast", "RandomBrightness",
    },
    "keras.initializers": {
        "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform", "LecunNormal", "Zeros", "Ones",
        "Constant", "RandomNormal", "RandomUniform", "TruncatedNormal", "VarianceScaling", "Orthogonal",
        "Identity",
    },
    "keras.regularizers": {"L1", "L2", "L1L2"},
    "keras.constraints": {"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"},
}
ACTIVATIONS = {*STANDARD_ACTIVATIONS, None}


def _objects(value):
    """Every serialized Keras object (a dict with class_name) in a config, depth first."""
    if isinstance(value, dict):
        if "class_name" in value:
            yield value
        for item in value.values():
            yield from _objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item)


def _activations(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("activation", "recurrent_activation"):
                yield item
            else:
                yield from _activations(item)
    elif isinstance(value, list):
        for item in value:
            yield from _activations(item)


def check_model_config(config, name):
    """Raise CheckFailed unless every object in ``config`` is a standard Keras one.

    The training set-up (``compile_config``: optimizer, loss) is not checked:
    models are loaded with ``compile=False``, which never reads it.
    """
    config = {k: v for k, v in config.items() if k != "compile_config"}
    for obj in _objects(config):
        module, cls = obj.get("module"), obj.get("class_name")
        if cls not in ALLOWED.get(module, ()):
            where = f"{module}.{cls}" if module else cls
            raise CheckFailed(
                f"{name} contains {where!s}, which is not a standard Keras layer or setting, so the grader "
                f"cannot check it. Build {name} from keras.layers only (no Lambda layers or classes of your own).")
    for activation in _activations(config):
        if activation not in ACTIVATIONS:
            shown = activation.get("config") if isinstance(activation, dict) else activation
            raise CheckFailed(
                f"{name} uses the activation {shown!r}, which is not one of Keras's activations. "
                f"Pass activation='relu' (or another name) to the layer.")


def _student_error(base, relative, name):
    """The student's own error text for ``relative``, if their kernel wrote one (capped, links refused)."""
    try:
        text = read_text(f"{relative}.error", MAX_ERROR_BYTES, base=base)
    except FileNotFoundError:
        return None
    except Refused as e:
        return f"the grader refused the error file ({e})"
    return text[:MAX_ERROR_BYTES]


class ReadBudget:
    """The bytes one scoring process reads from the exports, all checks together.

    Each export is capped, but a check may read many (a function's results on 20 inputs), and a
    notebook that handed back 512 MB for each of them filled the scoring process's memory: the run
    failed as no one's, and the submission got no score instead of the zero it earned (red team). Past
    the budget, an export is the student's failed check. `main` gives the scoring process one;
    anywhere else (the grader's own tests, otter's clean process) there is none.
    """

    current = None

    def __init__(self, max_bytes):
        self.max_bytes, self.used = max_bytes, 0

    def __enter__(self):
        ReadBudget.current = self
        return self

    def __exit__(self, *exc):
        ReadBudget.current = None

    @classmethod
    def left(cls, max_bytes):
        return max_bytes if cls.current is None else min(max_bytes, cls.current.max_bytes - cls.current.used)

    @classmethod
    def spend(cls, count):
        if cls.current is not None:
            cls.current.used += count


def _read(base, relative, name, max_bytes, what):
    """The bytes of an export: CheckFailed, for the student, when it is missing, refused or too big."""
    error = _student_error(base, relative, name)
    if error is not None:
        raise CheckFailed(f"The grader could not save {name} from your notebook: {error}")
    left = ReadBudget.left(max_bytes)
    if left <= 0:
        raise CheckFailed(f"The grader did not read {name}: what your notebook handed over for the hidden tests "
                          f"is over {ReadBudget.current.max_bytes / 2**20:g} MB in all. {what}")
    try:
        data = read_bytes(relative, left, base=base)
    except FileNotFoundError:
        raise CheckFailed(f"The grader found no {name} in your notebook after this cell ran.") from None
    except Refused as e:
        raise CheckFailed(f"The grader did not read {name}: {e}. {what}") from None
    ReadBudget.spend(len(data))
    return data


def count_params_unbuilt(config):
    """The parameters a model config describes, counted without making its weights."""
    return _unbuilt_weights(config)[0]


def _unbuilt_weights(config):
    """``(parameters, [shape of each weight])`` of a model config, found without making any weight."""
    import keras
    from keras.src.backend.common import global_state

    config = {k: v for k, v in config.items() if k != "compile_config"}  # loaded with compile=False
    try:
        with keras.StatelessScope(initialize_variables=False):  # variables get shapes, not memory
            model = keras.saving.deserialize_keras_object(config, safe_mode=True)
            return int(model.count_params()), [tuple(int(d) for d in w.shape) for w in model.weights]
    finally:
        # The counted model's variables are never made: drop Keras's list of them.
        global_state.set_global_attribute("uninitialized_variables", [])


def _read_archive(data, name):
    """``(config, weights file bytes or None)`` of a model archive, refused unless it is a plain Keras one."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if {m.filename for m in members} - MODEL_MEMBERS or \
                    sum(m.file_size for m in members) > 2 * MAX_MODEL_BYTES:
                raise CheckFailed(f"{name} was not saved as a plain Keras model file.")
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise CheckFailed(f"{name}'s configuration is over {MAX_CONFIG_BYTES // 2**10} KB; that is not "
                                  "the model the task asks for.")
            config = json.loads(archive.read(info))
            # zipfile stops at the declared size (capped above), so this holds at most what was checked.
            weights = archive.read(WEIGHTS_MEMBER) if WEIGHTS_MEMBER in archive.namelist() else None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, RecursionError) as e:
        raise CheckFailed(f"{name} could not be read ({type(e).__name__}).") from None
    if not isinstance(config, dict):
        raise CheckFailed(f"{name} was not saved as a plain Keras model file.")
    return config, weights


def _weight_links(h5, name):
    """``[(path, dataset)]`` of a weights file: at most MAX_WEIGHT_LINKS links read, and none followed.

    A group's number of links is in its header: one holding too many is refused before any is read
    (h5py's visit would first sort all of them). A group reached twice (a loop of hard links) is walked
    again and its links counted again, so a loop ends at the cap too.
    """
    import h5py

    datasets, groups, counted = [], [("", h5)], 0
    while groups:
        prefix, group = groups.pop()
        counted += len(group)
        if counted > MAX_WEIGHT_LINKS:
            raise CheckFailed(f"{name}'s weights file holds over {MAX_WEIGHT_LINKS:,} entries, far more than any "
                              "model of this task has, so it is not a model file Keras wrote.")
        links = []
        group.id.links.iterate(lambda key, info: links.append((key.decode(), info.type)), info=True,
                               order=h5py.h5.ITER_NATIVE)  # in storage order: nothing sorted
        for key, kind in links:
            obj = group[key] if kind == h5py.h5l.TYPE_HARD else None  # a soft or external link is never followed
            if isinstance(obj, h5py.Group):
                groups.append((f"{prefix}{key}/", obj))
            elif isinstance(obj, h5py.Dataset):
                datasets.append((f"{prefix}{key}", obj))
            else:
                raise CheckFailed(f"{name}'s weights file holds links or entries that Keras never writes.")
    return datasets


def _declared(path, dataset, name):
    """``(shape, bytes)`` a weight declares, from its header; CheckFailed unless it is numbers kept in the file."""
    import h5py

    kind, size = dataset.id.get_type().get_class(), dataset.id.get_type().get_size()
    bfloat16 = kind == h5py.h5t.OPAQUE and size == 2 and dataset.attrs.get("dtype") == "bfloat16"  # as Keras saves it
    if (kind not in (h5py.h5t.INTEGER, h5py.h5t.FLOAT) and not bfloat16) or size > 8 or dataset.shape is None:
        raise CheckFailed(f"{name}'s weight {path} is not an array of numbers, as Keras stores weights.")
    if dataset.external or dataset.is_virtual:
        raise CheckFailed(f"{name}'s weight {path} keeps its values outside the weights file, which Keras never "
                          "does.")
    shape = tuple(int(d) for d in dataset.shape)
    return shape, math.prod(shape) * size


def check_weights_file(weights, params, shapes, name):
    """Raise CheckFailed unless the weights file holds plain numbers in the shapes the config describes.

    Only headers are read, never a weight. Each weight outside the optimizer's state must be one the
    config describes (what Keras saves, whatever the model's layers); the optimizer's state, which
    ``compile=False`` never loads, may hold a few values per parameter; and the file must hold every
    byte it declares, as Keras writes it (a compressed or unwritten weight can declare gigabytes).
    """
    import h5py

    needed = collections.Counter(shapes)
    optimizer_values, declared = 0, 0
    try:
        with h5py.File(io.BytesIO(weights), "r") as h5:
            for path, dataset in _weight_links(h5, name):
                shape, size = _declared(path, dataset, name)
                declared += size
                if path.startswith("optimizer/"):
                    optimizer_values += math.prod(shape)
                elif needed[shape] > 0:
                    needed[shape] -= 1
                else:
                    raise CheckFailed(f"{name}'s weights file holds a weight of shape {shape} that none of its "
                                      "layers has, so it is not the model its configuration describes.")
    except CheckFailed:
        raise
    except Exception as e:  # not HDF5, or an odd one: the student's file, not the grader
        raise CheckFailed(f"{name}'s weights could not be read ({type(e).__name__}).") from None
    if optimizer_values > OPTIMIZER_SLOTS * params + OPTIMIZER_SCALARS:
        raise CheckFailed(f"{name}'s weights file holds {optimizer_values:,} optimizer values for {params:,} "
                          "parameters, more than any Keras optimizer keeps.")
    if declared > len(weights):
        raise CheckFailed(f"{name}'s weights file declares {declared / 2**20:,.0f} MB of weights but holds only "
                          f"{len(weights) / 2**10:,.0f} KB, so it is not a model file Keras wrote.")


def load_model(base, relative, name="your model"):
    """The model the kernel saved at ``base/relative``, checked and loaded safely; CheckFailed says what is wrong."""
    import tempfile

    data = _read(base, relative, name, MAX_MODEL_BYTES, "That is not the model the task asks for.")
    config, weights = _read_archive(data, name)
    check_model_config(config, name)
    try:
        params, shapes = _unbuilt_weights(config)
    except Exception as e:
        raise CheckFailed(f"{name} could not be built ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    if params > MAX_PARAMS:
        raise CheckFailed(f"{name} has {params:,} parameters, more than the {MAX_PARAMS:,} the grader loads; "
                          "that is not the model the task asks for.")
    if weights is None:
        raise CheckFailed(f"{name} was saved without its weights (no {WEIGHTS_MEMBER}).")
    check_weights_file(weights, params, shapes, name)
    del weights  # Keras reads its own copy from the archive
    import keras

    with tempfile.TemporaryDirectory(prefix="autograder-model-") as tmp:
        copy = Path(tmp) / "model.keras"  # the bytes checked above, not a path the student could swap
        copy.write_bytes(data)
        try:
            model = keras.saving.load_model(copy, compile=False, safe_mode=True)
        except Exception as e:  # a broken archive: the student's loss, not a crash of the grader
            raise CheckFailed(f"{name} could not be loaded: {type(e).__name__}: "
                              f"{str(e).splitlines()[0][:300] if str(e) else ''}") from None
    model.predict = _remembered(model.predict)
    return model


def _remembered(predict):
    """``predict`` that computes once per input array: several checks score one model on one split."""
    seen = {}

    def remembered(x, *args, **kwargs):
        key = (id(x), getattr(x, "shape", None))
        if key not in seen:
            seen[key] = (x, predict(x, *args, **kwargs))  # x kept alive, so its id stays its own
        return seen[key][1]

    return remembered


def check_array_header(data, name):
    """Raise CheckFailed unless ``data`` is one .npy array of plain values, all of them in the file.

    numpy allocates the size a header declares before it reads the values, so a 100-byte file may ask
    for terabytes. The kernel writes each array with `numpy.save`: a .npz or any other file is refused.
    """
    from numpy.lib import format as npy

    fp = io.BytesIO(data)
    try:
        version = npy.read_magic(fp)
        read_header = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"format version {version}")
        shape, _, dtype = read_header(fp)
    except (ValueError, EOFError, TypeError, OverflowError):
        raise CheckFailed(f"{name} could not be read as a plain array: it is not a .npy file written by "
                          "numpy.save.") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind == "V":
        raise CheckFailed(f"{name} could not be read as a plain array: its values are {dtype}, not numbers "
                          "or strings.")
    declared = math.prod(shape) * dtype.itemsize if all(d >= 0 for d in shape) else -1
    held = len(data) - fp.tell()
    if not 0 <= declared <= held:  # and held is under MAX_ARRAY_BYTES
        raise CheckFailed(f"{name} could not be read as a plain array: its header declares shape {shape} of "
                          f"{dtype} ({max(declared, 0):,} bytes) but the file holds {held:,} bytes of values.")


def load_array(base, relative, name):
    """The array the kernel saved at ``base/relative``, its header checked first; CheckFailed says what is wrong."""
    data = _read(base, relative, name, MAX_ARRAY_BYTES, "")
    check_array_header(data, name)
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise CheckFailed(f"{name} could not be read as a plain array ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:200] if str(e) else ''}).") from None
