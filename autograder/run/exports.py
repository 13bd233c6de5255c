"""What the grader collects from a notebook's kernel, and how it is written.

At grading, after a test cell the grader asks the kernel for what its hidden
tests need, with ``collect(namespace, request_file)``:

- a model, saved in the Keras format (``.keras``);
- an array, saved as ``.npy`` without pickling;
- a function's results on inputs the grader chose (``probe``), one ``.npy``
  per call, or a ``.error`` file with the exception the call raised.

The grader decides everything in its own process from these files: it
loads models with ``safe_mode=True`` after checking every class in them,
and arrays with ``allow_pickle=False``. Nothing here is trusted: a notebook
can replace this module, and the grader gains nothing from it.
"""

import json
from pathlib import Path

import numpy as np

# Keras's own activations: a layer whose activation is another function
# computing the same thing (tf.nn.softmax, a lambda) is saved with Keras's name.
ACTIVATIONS = ("relu", "sigmoid", "softmax", "tanh", "linear", "elu", "selu", "softplus", "softsign",
               "silu", "swish", "gelu", "exponential", "leaky_relu", "relu6", "hard_sigmoid", "mish", "log_softmax")


def collect(namespace, request_file):
    """Write what ``request_file`` asks for, from ``namespace`` (the notebook's globals)."""
    request_file = Path(request_file)
    base = request_file.parent
    request = json.loads(request_file.read_text())
    for item in request["exports"]:
        target = base / item.get("file", f"out/{item['name']}")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if item["name"] not in namespace:
                raise NameError(f"name {item['name']!r} is not defined")
            obj = namespace[item["name"]]
            if item["kind"] == "model":
                save_model(obj, target)
            elif item["kind"] == "array":
                save_array(obj, target)
            elif item["kind"] == "rows":
                save_array(np.asarray(obj[np.asarray(item["rows"])]), target)
            elif item["kind"] == "probe":
                probe(obj, item["calls"], base)
        except Exception as e:  # the grader reads the reason
            if item["kind"] == "probe":
                for call in item["calls"]:
                    _write_error(base / call["out"], e)
            else:
                _write_error(target, e)


def _write_error(target, error):
    message = f"{type(error).__name__}: {error}".strip()
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(str(target) + ".error").write_text(message[:2000])


def save_array(obj, target):
    np.save(target, np.asarray(obj), allow_pickle=False)


def probe(fn, calls, base):
    """Call ``fn`` on each of the grader's inputs; save each result or the exception."""
    if not callable(fn):
        raise TypeError(f"expected a function, found {type(fn).__name__}")
    for call in calls:
        out = base / call["out"]
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            args = [_decode(arg, base) for arg in call["args"]]
            save_array(fn(*args), out)
        except Exception as e:
            _write_error(out, e)


def _decode(arg, base):
    """A probe argument as the student's function receives it: JSON values, arrays, or a `pathlib.Path`
    (as the worksheets pass their own files)."""
    if "json" in arg:
        return arg["json"]
    if "npy" in arg:
        return np.load(Path(base) / arg["npy"], allow_pickle=False)
    return Path(base) / arg["path"]


# --- models ------------------------------------------------------------------

def save_model(model, target):
    """Save ``model`` in the Keras format, as a plain Sequential or functional model.

    Activations that are other functions computing a Keras activation are
    saved under Keras's name; a subclassed model whose ``call`` applies its
    layers in order is saved as the Sequential stack of those layers.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a Keras model, found {type(model).__name__}")
    plain = model if type(model) in (keras.Sequential, keras.Model) or _is_functional(model) else _as_sequential(model)
    config = _standard_activations(plain)
    if config is not None:
        rebuilt = type(plain).from_config(config)
        rebuilt.set_weights(plain.get_weights())
        plain = rebuilt
    plain.save(target)


def input_shape(model):
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        shape = None
    if isinstance(shape, list) and len(shape) == 1:
        shape = shape[0]
    if shape is None:  # a subclassed model knows the shapes its layers were built with
        for layer in model.layers:
            for built in (getattr(layer, "_build_shapes_dict", None) or {}).values():
                return (None, *tuple(built)[1:])
    return tuple(shape) if shape is not None else None


def _is_functional(model):
    from keras.src.models.functional import Functional

    return isinstance(model, Functional)


def _as_sequential(model):
    import keras

    shape = input_shape(model)
    if shape is None:
        raise ValueError("the model has not been built; call it on data or build it with an input shape")
    stack = keras.Sequential([keras.Input(shape=shape[1:]), *model.layers])
    x = np.random.default_rng(0).normal(size=(4, *shape[1:])).astype("float32")
    # At inference (training=False): a direct call with training unset applies augmentation layers.
    if not np.allclose(np.asarray(model(x, training=False)), np.asarray(stack(x, training=False)), atol=1e-5):
        raise ValueError("the model's call() does more than apply its layers in order; "
                         "write it with keras.Sequential or keras.Model(inputs, outputs) so the grader can check it")
    return stack


def _standard_activations(model):
    """The model's config with odd activation functions renamed, or None if nothing changed."""
    import keras

    changed = False
    config = model.get_config()
    for layer, layer_config in zip(_config_layers(model), _layer_configs(config)):
        fn = getattr(layer, "activation", None)
        if fn is None or isinstance(layer_config.get("activation"), str) and \
                layer_config["activation"] in ACTIVATIONS and getattr(keras.activations, layer_config["activation"]) is fn:
            continue
        name = identify(fn)
        if name is not None and layer_config.get("activation") != name:
            layer_config["activation"] = name
            changed = True
    return config if changed else None


def _config_layers(model):
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def _layer_configs(config):
    return [entry["config"] for entry in config["layers"] if entry["class_name"] != "InputLayer"]


def identify(fn):
    """The Keras activation that ``fn`` computes, by value on a test input; None if none does."""
    import keras

    x = np.linspace(-3, 3, 24, dtype="float32").reshape(2, 12)
    try:
        y = np.asarray(keras.ops.convert_to_numpy(fn(keras.ops.convert_to_tensor(x))))
    except Exception:
        return None
    for name in ACTIVATIONS:
        try:
            ref = np.asarray(keras.ops.convert_to_numpy(getattr(keras.activations, name)(x)))
        except Exception:
            continue
        if ref.shape == y.shape and np.allclose(ref, y, atol=1e-5):
            return name
    return None

