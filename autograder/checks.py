"""Named checks that visible and hidden test cells call.

Each `expect_*` raises `CheckFailed` (an AssertionError, so nbgrader scores the
cell 0) whose message says what was expected, what was found and where to look.
Checks read only the model object and data the grader provides: never the
student's variables, printed output or training history. Everything here is a
plain function of (model, arrays), so it can also run in a separate process
on a saved model.

The `expect_*` checks return None and print what they measured: nbgrader
reads a number left as a test cell's value as partial credit
(nbgrader/utils.py, get_partial_grade), so a returned accuracy of 0.88 would
score 0.88 points.
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

def expect_prepared_images(prepare, flatten, where="prepare_images"):
    """`prepare` scales uint8 images to float32 in [0, 1], flattened to 784 when asked."""
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    expected = images.reshape(5, 784) / 255.0 if flatten else images / 255.0
    found = np.asarray(prepare(images))
    if not np.issubdtype(found.dtype, np.floating):
        raise CheckFailed(f"Expected float pixels, found dtype {found.dtype}. Convert with .astype('float32') in {where}.")
    if found.max() > 1.0:
        raise CheckFailed(
            f"Pixels should lie in [0, 1], found a maximum of {found.max():g}. "
            f"Divide by 255 in {where}: networks train badly on large raw inputs."
        )
    expect_close(found, expected, "the prepared images", where, atol=1e-6)


def expect_multi_hot(vectorize, dimension=10_000, where="vectorize_sequences"):
    """`vectorize(seqs, dimension)` gives 0/1 rows, with repeated indices and index 0 handled."""
    from .heldout import multi_hot

    rng = np.random.default_rng(3)
    cases = [[0], [1, 1, 1], [dimension - 1, 0, 5, 5], []]
    cases += [list(rng.integers(0, dimension, size=rng.integers(1, 300))) for _ in range(6)]
    found = np.asarray(vectorize(cases, dimension))
    expect_close(found, multi_hot(cases, dimension), "the multi-hot vectors", where)


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


def expect_handdrawn_accuracy(load_digit, model, folder, floor):
    """Score `load_digit` + `model` on a folder of labelled drawings; print the accuracy."""
    from .handdrawn import labelled_images

    pairs = labelled_images(folder)
    if not pairs:
        raise CheckFailed(f"No labelled drawings (like 7_1.png) in {folder}.")
    images = np.stack([np.asarray(load_digit(path), dtype=np.float32).reshape(784) for path, _ in pairs])
    labels = np.array([label for _, label in pairs])
    acc = float(np.mean(predict_labels(model, images) == labels))
    print(f"Accuracy on {len(pairs)} hand-drawn digits in {folder}: {acc:.3f} (required: {floor:.2f})")
    if acc < floor:
        raise CheckFailed(
            f"Accuracy on the instructor's hand-drawn digits is {acc:.3f}, below {floor:.2f}. "
            "Look at your load_digit output next to MNIST samples: background, stroke width, centring."
        )


def _sigmoid_outputs(model, x):
    return np.clip(np.asarray(model.predict(x, batch_size=1024, verbose=0)).reshape(-1), 1e-7, 1 - 1e-7)


def binary_crossentropy(model, x, y):
    """Mean binary cross-entropy of a sigmoid model, from predict (no regularization term)."""
    p = _sigmoid_outputs(model, x)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def generalization_gap(model, seen, unseen):
    """Loss on unseen data minus loss on the data the model trained on: how much it over-fits."""
    return binary_crossentropy(model, *unseen) - binary_crossentropy(model, *seen)


def expect_less_overfitting(model, baseline, seen, unseen, name, where="your model cell", min_accuracy=0.8):
    """`model` over-fits less than `baseline`, both trained the same way; prints both gaps.

    An untrained model has no gap at all, so `model` must also reach
    `min_accuracy` on the unseen data.
    """
    acc = accuracy(model, *unseen)
    if acc < min_accuracy:
        raise CheckFailed(
            f"The {name} model reaches only {acc:.3f} accuracy on the test reviews (at least "
            f"{min_accuracy} expected), so it was not trained like the baseline. Train it with train()."
        )
    gap, base_gap = generalization_gap(model, seen, unseen), generalization_gap(baseline, seen, unseen)
    if not gap < base_gap:
        raise CheckFailed(
            f"The {name} model's gap between test and training loss is {gap:.3f}, not below the "
            f"baseline's {base_gap:.3f}. Train both for the same epochs, and check the "
            f"regularization in {where}."
        )
    print(f"Generalization gap: {name} {gap:.3f} < baseline {base_gap:.3f} (test accuracy {acc:.3f})")


def expect_same_predictions(predict_text, model, texts, inputs, where="predict_sentiment"):
    """`predict_text(text)` equals the model's prediction on the reference encoding of that text."""
    expected = np.asarray(model.predict(inputs, verbose=0)).reshape(-1)
    for text, want in zip(texts, expected):
        got = float(np.asarray(predict_text(text)).reshape(-1)[0])
        if abs(got - want) > 1e-3:
            raise CheckFailed(
                f"For the review starting {text[:60]!r}, {where} gave {got:.4f} but the model gives "
                f"{want:.4f} on that review encoded like the training data (tokenize, word index + 3, "
                f"start_char 1, oov_char 2 beyond num_words, padded to the model's length). Check {where}."
            )
