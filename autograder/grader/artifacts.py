"""Reading what a student's kernel wrote, without running any of it.

A model file is a zip archive written by the student's process. Before Keras
sees it, its size and members are checked and every object in its config
must be a standard Keras class from the allowlist below, with Keras's own
activations (one list, `exchange.ACTIVATIONS`, the one used when saving): no
Lambda layers, no custom or look-alike classes (a class named `Dropout`
defined in the notebook), no layers that read files. Its parameters are
counted from the config without making any weight, and must stay under a
cap; only then is it loaded, from a private copy of the bytes checked, with
``safe_mode=True`` and ``compile=False``. Arrays are loaded with
``allow_pickle=False``. Every file is read through `safe_files`: no link is
followed, only regular files under a size cap.
"""

import json
import zipfile
from pathlib import Path

import numpy as np

from ..checks import CheckFailed
from ..exchange import ACTIVATIONS as STANDARD_ACTIVATIONS
from ..safe_files import Refused, read_bytes, read_text

MAX_MODEL_BYTES = 256 * 2**20
MAX_ARRAY_BYTES = 512 * 2**20
MAX_CONFIG_BYTES = 1 * 2**20
MAX_ERROR_BYTES = 1_000  # characters of a student's own error message quoted back
MAX_PARAMS = 20_000_000  # 80 MB of float32: far above every worksheet's model
MODEL_MEMBERS = {"config.json", "metadata.json", "model.weights.h5"}

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


def _read(base, relative, name, max_bytes, what):
    """The bytes of an export: CheckFailed, for the student, when it is missing, refused or too big."""
    error = _student_error(base, relative, name)
    if error is not None:
        raise CheckFailed(f"The grader could not save {name} from your notebook: {error}")
    try:
        return read_bytes(relative, max_bytes, base=base)
    except FileNotFoundError:
        raise CheckFailed(f"The grader found no {name} in your notebook after this cell ran.") from None
    except Refused as e:
        raise CheckFailed(f"The grader did not read {name}: {e}. {what}") from None


def count_params_unbuilt(config):
    """The parameters a model config describes, counted without making its weights."""
    import keras
    from keras.src.backend.common import global_state

    config = {k: v for k, v in config.items() if k != "compile_config"}  # loaded with compile=False
    try:
        with keras.StatelessScope(initialize_variables=False):  # variables get shapes, not memory
            model = keras.saving.deserialize_keras_object(config, safe_mode=True)
            return int(model.count_params())
    finally:
        # The counted model's variables are never made: drop Keras's list of them.
        global_state.set_global_attribute("uninitialized_variables", [])


def load_model(base, relative, name="your model"):
    """The model the kernel saved at ``base/relative``, checked and loaded safely; CheckFailed says what is wrong."""
    import io
    import tempfile

    data = _read(base, relative, name, MAX_MODEL_BYTES, "That is not the model the task asks for.")
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
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, RecursionError) as e:
        raise CheckFailed(f"{name} could not be read ({type(e).__name__}).") from None
    check_model_config(config, name)
    try:
        params = count_params_unbuilt(config)
    except Exception as e:
        raise CheckFailed(f"{name} could not be built ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    if params > MAX_PARAMS:
        raise CheckFailed(f"{name} has {params:,} parameters, more than the {MAX_PARAMS:,} the grader loads; "
                          "that is not the model the task asks for.")
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


def load_array(base, relative, name):
    data = _read(base, relative, name, MAX_ARRAY_BYTES, "")
    import io

    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise CheckFailed(f"{name} could not be read as a plain array ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:200] if str(e) else ''}).") from None
