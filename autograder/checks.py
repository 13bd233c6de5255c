"""Named checks for the visible tests of the worksheets (and the building blocks of the hidden ones).

Each `expect_*` raises `CheckFailed` (an AssertionError, so nbgrader scores the
cell 0) whose message says what was expected, what was found and where to look.
Everything here is a plain function of (model, arrays): the hidden tests,
which run in the grader's own process (`autograder.grader.hidden_tests.vocabulary`), call the
same functions on the models and arrays they collected. This module ships to
students, so it holds no reference answers.

The `expect_*` checks return None and print what they measured: nbgrader
reads a number left as a test cell's value as partial credit
(nbgrader/utils.py, get_partial_grade), so a returned accuracy of 0.88 would
score 0.88 points.
"""

import numpy as np

from .run.exports import identify, input_shape


class CheckFailed(AssertionError):
    """A check did not pass; the message is written for the student."""


# --- describing a model -----------------------------------------------------
#
# A model is described by what it computes, not by how it was written:
# Sequential, functional and subclassed models give the same summary; the
# InputLayer that functional models list is skipped; an activation is named
# by what it computes (tf.nn.softmax is "softmax"); a layer followed by an
# Activation, Softmax, ReLU or LeakyReLU layer counts as one layer with that
# activation, and so does a layer followed by Dropout and then a relu or
# leaky relu (the course deck's text CNN writes Dense, Dropout, Activation).

ACTIVATION_LAYERS = ("Activation", "Softmax", "ReLU", "LeakyReLU")
# Dropout zeroes some inputs and scales the others by a positive factor; these
# activations map 0 to 0 and commute with that scaling, so relu(dropout(x)) is
# dropout(relu(x)): the activation belongs to the layer before the Dropout.
COMMUTE_WITH_DROPOUT = ("relu", "leaky_relu")


def activation_name(fn):
    """Keras's name for the activation function ``fn`` computes, else its own name."""
    if fn is None:
        return None
    import keras

    name = getattr(fn, "__name__", None)
    if name and getattr(keras.activations, name, None) is fn:
        return name
    return identify(fn) or name or type(fn).__name__


def _layer_activation(layer):
    cls = type(layer).__name__
    if cls == "Softmax":
        return "softmax"
    if cls == "ReLU":
        plain = getattr(layer, "negative_slope", 0) == 0 and getattr(layer, "max_value", None) is None
        return "relu" if plain else "leaky_relu"
    if cls == "LeakyReLU":
        return "leaky_relu"
    return activation_name(getattr(layer, "activation", None))


def _regularizer_name(layer):
    reg = getattr(layer, "kernel_regularizer", None)
    if reg is None:
        return None
    factors = {k: v for k, v in reg.get_config().items() if isinstance(v, float)}
    if factors and not any(factors.values()):
        return None  # l2(0.0) regularizes nothing
    values = ", ".join(f"{k}={v:g}" for k, v in factors.items())
    return f"{type(reg).__name__}({values})"


# Keras's random augmentation layers: they change images in training only and pass them through unchanged
# afterwards, so a model that augments inside itself (Chollet's way) has the architecture of one that does not.
AUGMENTATION_LAYERS = {"RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "RandomContrast",
                       "RandomBrightness"}


def _augmentation(layer):
    """A random augmentation layer, or a block made only of them (a Sequential of Random* layers)."""
    if type(layer).__name__ in AUGMENTATION_LAYERS:
        return True
    inner = [sub for sub in getattr(layer, "layers", None) or [] if type(sub).__name__ != "InputLayer"]
    return bool(inner) and all(_augmentation(sub) for sub in inner)


def _layers(model):
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer" and not _augmentation(layer)]


def _output_shapes(model, layers):
    """Each layer's output shape; chained from the input for subclassed models."""
    shapes = []
    for layer in layers:
        try:
            shapes.append(tuple(layer.output.shape))
        except (AttributeError, ValueError):
            shapes.append(None)
    if None in shapes:
        shape = input_shape(model)
        shapes = []
        for layer in layers:
            try:
                shape = tuple(layer.compute_output_shape(shape)) if shape is not None else None
            except Exception:
                shape = None
            shapes.append(shape)
    return shapes


def _require_built(model):
    if not getattr(model, "built", False) or not _layers(model) or _output_shapes(model, _layers(model))[-1] is None:
        raise CheckFailed(
            "The model has no input shape yet, so its layers and parameters are unknown. "
            "Start it with keras.Input(shape=...) in your model cell."
        )


def layer_summary(model):
    """One dict per layer: class, output_shape, params, activation, rate, regularizer."""
    _require_built(model)
    layers = _layers(model)
    summary = []
    for layer, shape in zip(layers, _output_shapes(model, layers)):
        cls = type(layer).__name__
        activation = _layer_activation(layer)
        previous = summary[-1] if summary else None
        if cls in ACTIVATION_LAYERS and previous and previous["activation"] == "linear":
            previous.update(activation=activation, output_shape=shape)
            continue
        before = summary[-2] if len(summary) > 1 else None
        if (before and cls in ACTIVATION_LAYERS and activation in COMMUTE_WITH_DROPOUT
                and previous["class"] == "Dropout" and before["activation"] == "linear"):
            before.update(activation=activation)
            continue
        summary.append({
            "name": layer.name,
            "class": cls,
            "output_shape": shape,
            "params": int(layer.count_params()),
            "activation": activation,
            "rate": getattr(layer, "rate", None),
            "regularizer": _regularizer_name(layer),
        })
    return summary


def format_summary(summary):
    # Columns as wide as their longest entry ("BatchNormalization", "(None, 32, 32, 32)"), at least 10 and 14.
    cls = max([10] + [len(s["class"]) for s in summary])
    shape = max([14] + [len(str(s["output_shape"])) for s in summary])
    rows = [f"  {i}. {s['class']:<{cls}} output {str(s['output_shape']):<{shape}} params {s['params']:>9,}"
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
    found = input_shape(model) if getattr(model, "built", False) else None
    if found != tuple(shape):
        raise CheckFailed(
            f"Expected the model's input shape {tuple(shape)}, found {found}. "
            f"Set keras.Input(shape=...) in {where} to match the data you feed it."
        )


def expect_output_shape(model, shape, where="your model cell"):
    found = layer_summary(model)[-1]["output_shape"]
    if found != tuple(shape):
        raise CheckFailed(
            f"Expected the model's output shape {tuple(shape)}, found {found}. "
            f"The last layer in {where} needs {shape[-1]} unit(s)."
        )


def expect_output_activation(model, activation, where="your model cell"):
    found = layer_summary(model)[-1]["activation"]
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

ACTIVATION_BUDGET = 64 * 2**20  # floats of layer outputs per prediction batch (256 MB)


def prediction_batch(model, most=1024):
    """A prediction batch whose layer outputs fit the activation budget: a model with huge
    feature maps is scored in small batches instead of running out of memory."""
    per_example = 0
    try:
        shapes = _output_shapes(model, _layers(model))
    except Exception:  # not a Keras model (a test double): its own batches
        return most
    for shape in shapes:
        if shape is not None and None not in shape[1:]:
            per_example += int(np.prod(shape[1:], dtype=np.int64))
    if per_example > ACTIVATION_BUDGET:  # not even one example fits: no worksheet's model comes near
        raise CheckFailed(f"The model's layers hold {per_example:,} values for each example, more than the "
                          f"{ACTIVATION_BUDGET:,} the grader computes; that is not the model the task asks for.")
    return int(max(1, min(most, ACTIVATION_BUDGET // max(per_example, 1))))


def predict_labels(model, x, batch_size=None):
    """Class labels from `model.predict`: argmax, or 0.5 on a single sigmoid unit."""
    p = np.asarray(model.predict(x, batch_size=batch_size or prediction_batch(model), verbose=0))
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
    """Assert accuracy >= floor; print the accuracy measured."""
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
    print(f"Accuracy on {data}: {acc:.4f} (required: {floor:.2f})")


def expect_close(found, expected, what, where, atol=1e-6):
    """Arrays equal up to `atol`, with a message that shows the first difference."""
    found = np.asarray(found)
    expected = np.asarray(expected)
    if expected.ndim == 0 and found.shape == ():
        if not np.isclose(found, expected, atol=atol):
            raise CheckFailed(f"Expected {what} {expected}, found {found}. Check {where}.")
        return
    if found.shape != expected.shape:
        raise CheckFailed(f"Expected {what} of shape {expected.shape}, found {found.shape}. Check {where}.")
    bad = np.argwhere(~np.isclose(found, expected, atol=atol))
    if len(bad):
        i = tuple(int(k) for k in bad[0])
        raise CheckFailed(
            f"{what[0].upper() + what[1:]} differ at index {i}: expected {expected[i]}, found {found[i]} "
            f"({len(bad)} entries differ). Check {where}."
        )


# --- checking students' functions -------------------------------------------

def check_prepared_images(images, found, flatten, where="prepare_images"):
    """``found`` is ``images`` (uint8) scaled to floats in [0, 1], flattened to 784 when asked."""
    images = np.asarray(images)
    expected = images.reshape(len(images), 784) / 255.0 if flatten else images / 255.0
    found = np.asarray(found)
    if not np.issubdtype(found.dtype, np.floating):
        raise CheckFailed(f"Expected float pixels, found dtype {found.dtype}. Convert with .astype('float32') in {where}.")
    if found.size and found.max() > 1.0:
        raise CheckFailed(
            f"Pixels should lie in [0, 1], found a maximum of {found.max():g}. "
            f"Divide by 255 in {where}: networks train badly on large raw inputs."
        )
    expect_close(found, expected, "the prepared images", where, atol=1e-6)


def expect_prepared_images(prepare, flatten, where="prepare_images"):
    """`prepare` scales uint8 images to floats in [0, 1] (float32 or float64), flattened to 784 when asked."""
    images = np.random.default_rng(7).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    check_prepared_images(images, prepare(images), flatten, where)


def expect_digit_image(image, where="load_digit"):
    """A (28, 28) float image in [0, 1], bright digit on dark, centred like MNIST."""
    image = np.asarray(image)
    if image.shape != (28, 28):
        raise CheckFailed(f"Expected an array of shape (28, 28), found {image.shape}. Check the resizing in {where}.")
    if not np.issubdtype(image.dtype, np.floating) or image.min() < 0 or image.max() > 1:
        raise CheckFailed(
            f"Expected floats in [0, 1], found dtype {image.dtype} from {image.min():g} to {image.max():g}. "
            f"Scale the pixels in {where}."
        )
    if image.max() < 0.5:
        raise CheckFailed(f"The digit is missing or faint (brightest pixel {image.max():.2f}). Check the cropping in {where}.")
    border = np.concatenate([image[:3].ravel(), image[-3:].ravel(), image[:, :3].ravel(), image[:, -3:].ravel()])
    if border.mean() > 0.1:
        raise CheckFailed(
            f"The 3-pixel border averages {border.mean():.2f}; MNIST digits are white on a black background "
            f"with an empty border. Invert dark-on-light drawings and pad the digit in {where}."
        )
    ys, xs = np.indices(image.shape)
    centre = ((ys * image).sum() / image.sum(), (xs * image).sum() / image.sum())
    if max(abs(centre[0] - 13.5), abs(centre[1] - 13.5)) > 2:
        raise CheckFailed(
            f"The digit's centre of mass is at ({centre[0]:.1f}, {centre[1]:.1f}), not near (13.5, 13.5). "
            f"Shift it to the centre in {where}, as MNIST does."
        )


def _sigmoid_outputs(model, x):
    return np.clip(np.asarray(model.predict(x, batch_size=prediction_batch(model), verbose=0)).reshape(-1), 1e-7, 1 - 1e-7)


def binary_crossentropy(model, x, y):
    """Mean binary cross-entropy of a sigmoid model, from predict (no regularization term)."""
    p = _sigmoid_outputs(model, x)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def generalization_gap(model, seen, unseen):
    """Loss on unseen data minus loss on the data the model trained on: how much it over-fits."""
    return binary_crossentropy(model, *unseen) - binary_crossentropy(model, *seen)
