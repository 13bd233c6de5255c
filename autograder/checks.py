"""Named checks that visible and hidden test cells call.

Each `expect_*` raises `CheckFailed` (an AssertionError, so nbgrader scores the
cell 0) whose message says what was expected, what was found and where to look.
Checks read only the model object and data the grader provides: never the
student's variables, printed output or training history. Everything here is a
plain function of (model, arrays), so it can also run in a separate process
on a saved model.
"""

import numpy as np


class CheckFailed(AssertionError):
    """A check did not pass; the message is written for the student."""


# --- describing a model -----------------------------------------------------

def _activation_name(layer):
    fn = getattr(layer, "activation", None)
    if fn is None:
        return None
    return getattr(fn, "__name__", type(fn).__name__)


def _regularizer_name(layer):
    reg = getattr(layer, "kernel_regularizer", None)
    if reg is None:
        return None
    values = ", ".join(f"{k}={v:g}" for k, v in reg.get_config().items() if isinstance(v, float))
    return f"{type(reg).__name__}({values})"


def _output_shape(layer):
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return None


def _require_built(model):
    if not getattr(model, "built", False) or not model.layers or _output_shape(model.layers[-1]) is None:
        raise CheckFailed(
            "The model has no input shape yet, so its layers and parameters are unknown. "
            "Start it with keras.Input(shape=...) in your model cell."
        )


def layer_summary(model):
    """One dict per layer: class, output_shape, params, activation, rate, regularizer."""
    _require_built(model)
    return [
        {
            "name": layer.name,
            "class": type(layer).__name__,
            "output_shape": _output_shape(layer),
            "params": int(layer.count_params()),
            "activation": _activation_name(layer),
            "rate": getattr(layer, "rate", None),
            "regularizer": _regularizer_name(layer),
        }
        for layer in model.layers
    ]


def format_summary(summary):
    rows = [f"  {i}. {s['class']:<10} output {str(s['output_shape']):<14} params {s['params']:>9,}"
            + (f"  {s['activation']}" if s["activation"] else "")
            + (f"  rate={s['rate']}" if s["rate"] is not None else "")
            + (f"  {s['regularizer']}" if s["regularizer"] else "")
            for i, s in enumerate(summary, start=1)]
    return "\n".join(rows)


def count_params(model):
    """(total, trainable) parameter counts."""
    _require_built(model)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return int(model.count_params()), trainable


# --- comparing a model with what the worksheet asks for ----------------------

def expect_layers(model, expected, where="your model cell"):
    """Compare the layer summary with a list of partial dicts, layer by layer.

    `expected` entries may give any of the keys of `layer_summary`; a
    `regularizer` of True means "any regularizer".
    """
    found = layer_summary(model)
    table = format_summary(found)
    if len(found) != len(expected):
        raise CheckFailed(
            f"Expected {len(expected)} layers, found {len(found)}:\n{table}\n"
            f"Compare the layers in {where} with the architecture described above it."
        )
    for i, (want, got) in enumerate(zip(expected, found), start=1):
        for key, value in want.items():
            actual = got[key]
            ok = (actual is not None) if value is True else actual == value
            if not ok:
                label = key.replace("_", " ")
                shown = "a regularizer" if value is True else repr(value)
                raise CheckFailed(
                    f"Layer {i} ({got['class']}): expected {label} {shown}, found {actual!r}.\n"
                    f"{table}\nFix layer {i} in {where}."
                )


def expect_param_count(model, total, trainable=None, where="your model cell"):
    found_total, found_trainable = count_params(model)
    trainable = total if trainable is None else trainable
    if (found_total, found_trainable) != (total, trainable):
        raise CheckFailed(
            f"Expected {total:,} parameters ({trainable:,} trainable), found {found_total:,} "
            f"({found_trainable:,} trainable). A Dense layer has (inputs + 1) x units parameters:\n"
            f"{format_summary(layer_summary(model))}\nCheck the layer sizes in {where}."
        )


def expect_input_shape(model, shape, where="your model cell"):
    found = tuple(model.input_shape) if getattr(model, "built", False) else None
    if found != tuple(shape):
        raise CheckFailed(
            f"Expected the model's input shape {tuple(shape)}, found {found}. "
            f"Set keras.Input(shape=...) in {where} to match the data you feed it."
        )


def expect_output_shape(model, shape, where="your model cell"):
    _require_built(model)
    found = tuple(model.output_shape)
    if found != tuple(shape):
        raise CheckFailed(
            f"Expected the model's output shape {tuple(shape)}, found {found}. "
            f"The last layer in {where} needs {shape[-1]} unit(s)."
        )


def expect_output_activation(model, activation, where="your model cell"):
    _require_built(model)
    found = _activation_name(model.layers[-1])
    if found != activation:
        why = {
            "softmax": "it turns the scores into class probabilities that sum to 1",
            "sigmoid": "it turns the score into a probability between 0 and 1",
        }.get(activation, "the loss expects it")
        raise CheckFailed(
            f"Expected the last layer's activation {activation!r}, found {found!r}: "
            f"{why}. Set activation={activation!r} on the last layer in {where}."
        )


def expect_regularized(model, where="your model cell"):
    summary = layer_summary(model)
    if not any(s["regularizer"] for s in summary):
        raise CheckFailed(
            "Expected at least one layer with a kernel_regularizer, found none:\n"
            f"{format_summary(summary)}\n"
            f"Pass kernel_regularizer=keras.regularizers.l2(...) to the hidden layers in {where}."
        )


def expect_dropout(model, rate=None, where="your model cell"):
    rates = [s["rate"] for s in layer_summary(model) if s["class"] == "Dropout"]
    if not rates or (rate is not None and rate not in rates):
        want = "a Dropout layer" + ("" if rate is None else f" with rate {rate}")
        raise CheckFailed(
            f"Expected {want}, found rates {rates or 'none'}. "
            f"Add keras.layers.Dropout({rate or 0.5}) after the hidden layers in {where}."
        )


# --- scoring predictions -----------------------------------------------------

def predict_labels(model, x, batch_size=1024):
    """Class labels from `model.predict`: argmax, or 0.5 on a single sigmoid unit."""
    p = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    if p.ndim == 2 and p.shape[1] == 1:
        return (p[:, 0] > 0.5).astype(int)
    return p.argmax(axis=-1)


def as_labels(y):
    """Integer labels from integer or one-hot targets."""
    y = np.asarray(y)
    return y.argmax(axis=-1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(len(y)).astype(int)


def accuracy(model, x, y):
    """Fraction of `x` whose predicted label equals `y`, computed here from predict."""
    return float(np.mean(predict_labels(model, x) == as_labels(y)))


def expect_accuracy(model, x, y, floor, data="the held-out test set", hint=""):
    """Assert accuracy >= floor and return it, so a test cell can print it."""
    try:
        acc = accuracy(model, x, y)
    except Exception as e:  # a wrong input shape is the usual cause
        raise CheckFailed(
            f"The model could not predict {data} ({type(e).__name__}: {str(e).splitlines()[0]}). "
            "Check that it takes inputs shaped like the prepared training data."
        ) from None
    if not acc >= floor:
        raise CheckFailed(
            f"Accuracy on {data} is {acc:.4f}, below the required {floor:.2f}. "
            + (hint or "Check that the model was trained (model.fit) on inputs prepared "
                       "the same way as this data, with the right output activation.")
        )
    return acc


def expect_close(found, expected, what, where, atol=1e-6):
    """Arrays equal up to `atol`, with a message that shows the first difference."""
    found = np.asarray(found)
    expected = np.asarray(expected)
    if found.shape != expected.shape:
        raise CheckFailed(f"Expected {what} of shape {expected.shape}, found {found.shape}. Check {where}.")
    bad = np.argwhere(~np.isclose(found, expected, atol=atol))
    if len(bad):
        i = tuple(bad[0])
        raise CheckFailed(
            f"{what} differs at index {i}: expected {expected[i]}, found {found[i]} "
            f"({len(bad)} entries differ). Check {where}."
        )
