"""Reading what a student's kernel wrote, without running any of it.

A model file is a zip archive written by the student's process. Before Keras
sees it, its size and members are checked and every object in its config
must be a standard Keras class from the allowlist below, with Keras's own
activations: no Lambda layers, no custom or look-alike classes (a class named
`Dropout` defined in the notebook), no layers that read files. Only then is
it loaded with ``safe_mode=True`` and ``compile=False``. Arrays are loaded
with ``allow_pickle=False``.
"""

import json
import zipfile
from pathlib import Path

import numpy as np

from ..checks import CheckFailed

MAX_MODEL_BYTES = 256 * 2**20
MAX_ARRAY_BYTES = 512 * 2**20
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
ACTIVATIONS = {"relu", "sigmoid", "softmax", "tanh", "linear", "elu", "selu", "softplus", "softsign", "silu",
               "swish", "gelu", "exponential", "leaky_relu", "relu6", "hard_sigmoid", "mish", "log_softmax", None}


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


def load_model(path, name="your model"):
    """The model saved at ``path``, checked and loaded safely; CheckFailed says what is wrong."""
    path = Path(path)
    error = Path(str(path) + ".error")
    if error.is_file():
        raise CheckFailed(f"The grader could not save {name} from your notebook: {error.read_text()[:500]}")
    if not path.is_file():
        raise CheckFailed(f"The grader found no {name} in your notebook after this cell ran.")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise CheckFailed(f"{name} is over {MAX_MODEL_BYTES // 2**20} MB saved; that is not the model the task asks for.")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if {m.filename for m in members} - MODEL_MEMBERS or \
                    sum(m.file_size for m in members) > 2 * MAX_MODEL_BYTES:
                raise CheckFailed(f"{name} was not saved as a plain Keras model file.")
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise CheckFailed(f"{name} could not be read ({type(e).__name__}).") from None
    check_model_config(config, name)
    import keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # a broken archive: the student's loss, not a crash of the grader
        raise CheckFailed(f"{name} could not be loaded: {type(e).__name__}: {str(e).splitlines()[0][:300]}") from None
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


def load_array(path, name):
    path = Path(path)
    error = Path(str(path) + ".error")
    if error.is_file():
        raise CheckFailed(f"{name}: {error.read_text()[:500]}")
    if not path.is_file():
        raise CheckFailed(f"The grader found no {name} in your notebook after this cell ran.")
    if path.stat().st_size > MAX_ARRAY_BYTES:
        raise CheckFailed(f"{name} is over {MAX_ARRAY_BYTES // 2**20} MB; the grader does not read it.")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise CheckFailed(f"{name} could not be read as a plain array ({type(e).__name__}: {e}).") from None
