"""The hidden checks: what hidden-test blocks call, decided in the grader's own process.

Each check names what it needs of the student's objects (see `scorer`):
a `Model` is the student's model as saved and loaded safely; a `Probe` is a
student function's results on inputs chosen here, at grading, with a seed
the student cannot know; an `Array` or `Rows` is a value the notebook holds.
Data and reference answers come from `heldout`, in this process.

A check raises `CheckFailed` with a message for the student, and may `flag`
something for the instructor without changing the score.
"""

import base64
import io
import json
from typing import NamedTuple

import numpy as np
from PIL import ExifTags, Image

from ... import checks
from ...checks import CheckFailed
from . import heldout
from .drawings import STYLES, draw_digit, grading_set
from .kinds import (
    Array,
    Call,
    Model,
    Probe,
    Rows,
    flag,
    grading_rng,
    grading_settings,
    hidden_check,
)

# A model scoring this much better on the test split than on the training data
# it was supposedly fit to was most likely trained on the test split. MNIST's test
# split reads easier than its training split, and 5,000 rows add about +-0.005:
# at 0.01 an honest model fit to 8,000 rows was flagged (0.910 on the test split,
# 0.899 on the sample); one fit to the test split reads about 0.05 better there.
TEST_TRAINING_MARGIN = 0.02
TRAINING_SAMPLE = 5_000


# --- models ----------------------------------------------------------------------

@hidden_check(model=Model(architecture=True))
def expect_param_count(model, total, trainable=None):
    checks.expect_param_count(model, total, trainable)


@hidden_check(model=Model(architecture=True))
def expect_layers(model, layers):
    checks.expect_layers(model, layers)


@hidden_check(model=Model(architecture=True))
def expect_output_activation(model, activation):
    checks.expect_output_activation(model, activation)


@hidden_check(model=Model(architecture=True))
def expect_input_shape(model, shape):
    checks.expect_input_shape(model, tuple(shape))


@hidden_check(model=Model())
def expect_accuracy(model, data, floor, flag_test_training=True):
    """Accuracy on the held-out split ``data`` (see heldout.DESCRIPTIONS) at least ``floor``.

    Flags, without deducting, a model that does better on the test split than
    on the training split it should have learnt from (not for models, such
    as a single softmax layer, whose two accuracies are about equal anyway).
    """
    try:
        x, y = heldout.for_model(data, model)
    except Exception as e:
        raise CheckFailed(f"The model's input shape {checks.input_shape(model)} does not fit "
                          f"{heldout.DESCRIPTIONS[data]} ({type(e).__name__}).") from None
    checks.expect_accuracy(model, x, y, floor, data=heldout.DESCRIPTIONS[data])
    if flag_test_training and data.endswith("_test"):
        test_accuracy = checks.accuracy(model, x, y)
        train = data.removesuffix("_test") + "_train"
        # A sample the student cannot predict: a model that memorised a fixed part of the
        # training split (its first rows) would otherwise look trained on it.
        rows = np.sort(grading_rng().choice(heldout.size(train), size=TRAINING_SAMPLE, replace=False))
        train_accuracy = checks.accuracy(model, *heldout.for_model(train, model, rows=rows))
        if test_accuracy - train_accuracy > TEST_TRAINING_MARGIN:
            flag(f"{data}: accuracy {test_accuracy:.4f} on the test split but {train_accuracy:.4f} on "
                 f"{TRAINING_SAMPLE:,} training examples drawn at grading: possibly trained on the test split")


@hidden_check(model=Model())
def expect_less_overfitting(model, name, max_gap, min_accuracy=0.8):
    """The model's generalization gap on IMDB is below ``max_gap``, where the unregularized
    baseline recipe lands above it; the model must also be trained (``min_accuracy``)."""
    unseen = heldout.for_model("imdb_test", model)
    seen = heldout.for_model("imdb_partial_train", model)
    acc = checks.accuracy(model, *unseen)
    if acc < min_accuracy:
        raise CheckFailed(
            f"The {name} model reaches only {acc:.3f} accuracy on the test reviews (at least {min_accuracy} "
            "expected), so it was not trained like the baseline. Train it with train().")
    gap = checks.generalization_gap(model, seen, unseen)
    if not gap < max_gap:
        raise CheckFailed(
            f"The {name} model's gap between test and training loss is {gap:.3f}, not below {max_gap}: "
            f"it over-fits like the unregularized baseline. Check the regularization of the {name} model "
            "and train it with train().")
    print(f"Generalization gap of the {name} model: {gap:.3f} (below {max_gap}; test accuracy {acc:.3f})")


@hidden_check(model=Model())
def expect_trained_on(model, data, min_gap):
    """The model fits ``data`` (the split it was to be trained on) better than the test split.

    A model trained on part of the data only (worksheet 3's validation
    reviews) reaches a good test accuracy too, but not this gap.
    """
    test = data.rsplit("_", 1)[0] + "_test"
    gap = checks.generalization_gap(model, heldout.for_model(data, model), heldout.for_model(test, model))
    if not gap >= min_gap:
        raise CheckFailed(
            f"The model's test loss is only {gap:.3f} above its loss on {heldout.DESCRIPTIONS[data]} (at least "
            f"{min_gap} expected for a model trained on all of them): train it on all of them, as the task says.")
    print(f"Test loss minus training loss: {gap:.3f} (at least {min_gap})")


# --- functions, on inputs chosen here ----------------------------------------------

def random_images(rng, stage):
    images = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    return [Call([stage.array(images)], images)]


@hidden_check(prepare=Probe(random_images))
def expect_prepared_images(prepare, flatten):
    for images, found in prepare.results():
        checks.check_prepared_images(images, found, flatten, where=f"`{prepare.name}`")


@hidden_check(y=Array())
def expect_one_hot(y, labels):
    """``y`` is the one-hot encoding of the training labels of ``labels`` (e.g. "mnist_train")."""
    truth = heldout.labels(labels)
    expected = np.eye(10, dtype=np.float32)[truth]
    checks.expect_close(y, expected, "the one-hot targets", "the cell that makes y_train")


def multi_hot_cases(rng, stage, dimension=heldout.IMDB_WORDS):
    cases = [[0], [1, 1, 1], [dimension - 1, 0, 5, 5], []]
    cases += [[int(i) for i in rng.integers(0, dimension, size=rng.integers(1, 300))] for _ in range(6)]
    order = rng.permutation(len(cases))
    cases = [cases[i] for i in order]
    return [Call([stage.json(cases), stage.json(dimension)], cases)]


@hidden_check(vectorize=Probe(multi_hot_cases))
def expect_multi_hot(vectorize, dimension=heldout.IMDB_WORDS):
    """Multi-hot rows, with repeated indices, index 0, the last index and an empty review."""
    for cases, found in vectorize.results():
        checks.expect_close(found, heldout.multi_hot(cases, dimension), "the multi-hot vectors",
                            f"`{vectorize.name}` (the hidden test includes an empty review and index 0)")


PNG_MODES = ("1", "L", "LA", "I", "I;16", "RGB", "RGBA")


def _perturbed_copy(source, target):
    """A lossless re-encoding with a few pixels of margin: same drawing, other bytes.

    A phone photo's EXIF orientation tag is kept, and no other EXIF field (a
    description, a place): the student's `load_digit` turns it upright, as it
    must for the students' own photos.
    """
    img = Image.open(source)
    img.load()
    if img.mode in ("P", "PA"):  # a new canvas has no palette: pasted indices would lose their colours
        img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    elif img.mode not in PNG_MODES:  # a CMYK scan, a float image: what PNG can hold, same picture
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    w, h = img.size
    pad = max(1, min(w, h) // 100)
    canvas = Image.new(img.mode, (w + 2 * pad, h + 2 * pad), img.getpixel((0, 0)))
    canvas.paste(img, (pad, pad))
    exif = Image.Exif()
    if img.getexif().get(ExifTags.Base.Orientation, 1) != 1:
        exif[ExifTags.Base.Orientation] = img.getexif()[ExifTags.Base.Orientation]
    canvas.save(target, format="PNG", exif=exif)


class Drawing(NamedTuple):
    """One of the instructor's drawings, as the grader knows it: its label and its file's name."""

    label: int
    name: str


def instructor_drawings(rng, stage):
    """The instructor's hand-drawn set, in a random order, under random names, re-encoded."""
    from ...handdrawn import labelled_images

    folder = grading_set(stage.settings.get("drawings"))
    pairs = labelled_images(folder)
    if not pairs:
        raise FileNotFoundError(f"no labelled drawings in {folder}")
    order = rng.permutation(len(pairs))
    return [Call([stage.file(pairs[i][0], transform=_perturbed_copy)], Drawing(pairs[i][1], pairs[i][0].name))
            for i in order]


def synthetic_drawings(rng, stage):
    """Two drawings of each digit, in random styles of the ones students hand in."""
    calls = []
    for digit in rng.permutation(np.repeat(np.arange(10), 2)):
        style = STYLES[int(rng.integers(len(STYLES)))]
        calls.append(Call([stage.image(draw_digit(int(digit), style, rng))], int(digit)))
    return calls


def _as_input(images, model):
    shape = checks.input_shape(model)
    return np.stack([np.asarray(i, dtype=np.float32) for i in images]).reshape((len(images), *shape[1:]))


@hidden_check(load_digit=Probe(synthetic_drawings))
def expect_digit_images(load_digit, min_recognised=14):
    """MNIST-like (28, 28) images that a nearest-neighbour reader of MNIST recognises.

    The drawings are new at each grading: two per digit, in the styles of
    real hand-ins (photos of paper, grid lines, blue ink, white on black,
    RGBA, big canvases).
    """
    results = load_digit.results()
    for label, image in results:
        checks.expect_digit_image(image, where=f"`{load_digit.name}` (on a drawing of a {label})")
    labels = np.array([label for label, _ in results])
    guesses = heldout.nearest_mnist_labels(np.stack([np.asarray(i, np.float32) for _, i in results]))
    right = int(np.sum(guesses == labels))
    print(f"{load_digit.name} on {len(labels)} new drawings: {right} look like the right digit "
          f"(at least {min_recognised})")
    if right < min_recognised:
        raise CheckFailed(
            f"The images {load_digit.name} made from {len(labels)} new drawings look like the right digit in "
            f"only {right} cases (at least {min_recognised} expected), judged by their nearest MNIST "
            "training images. Compare your images with MNIST samples: stroke width, size, centring.")


# The reference must read the drawings this much above the floor: the spread of one set's accuracy over the
# seeds a good student may train with (benchmarks/CALIBRATION.md, "The floor follows the set").
DRAWINGS_MARGIN = 0.05
# The reference run's line of readings, one JSON object, for `autograder drawings check`.
READINGS = "readings of the drawings: "


@hidden_check(load_digit=Probe(instructor_drawings), model=Model())
def expect_handdrawn_accuracy(load_digit, model, floor, margin=DRAWINGS_MARGIN):
    """The model reads at least ``floor`` of the instructor's drawings through the student's ``load_digit``.

    A course that grades with its own drawings may set its own floor for them
    (`PlanHiddenTests.drawings_floors`). The reference run must clear the
    floor by ``margin``, so that a student who trains the same network on
    another seed clears it too; it also reports each drawing's reading.
    """
    settings = grading_settings()
    floor = settings.get("drawings_floor", floor)
    reference = settings.get("reference", False)
    required = round(floor + margin, 4) if reference else floor
    results = load_digit.results()
    for drawing, image in results:
        checks.expect_digit_image(image, where=f"`{load_digit.name}`" + (f" (on {drawing.name})" if reference else ""))
    labels = np.array([drawing.label for drawing, _ in results])
    images = [np.asarray(i, dtype=np.float32) for _, i in results]
    readings = checks.predict_labels(model, _as_input(images, model))
    acc = float(np.mean(readings == labels))
    print(f"Accuracy on the instructor's {len(labels)} hand-drawn digits: {acc:.3f} (required: {required:.2f})")
    if reference:
        print(READINGS + json.dumps({
            "accuracy": acc, "floor": floor, "required": required, "count": len(labels),
            "drawings": [{"name": d.name, "label": int(d.label), "read": int(r), "image": _png_base64(i)}
                         for (d, _), r, i in zip(results, readings, images)]}))
    if acc < required:
        why = (f", the floor {floor:.2f} plus the reference's margin of {margin:.2f}" if reference
               else " (the course's floor for its own drawings)" if "drawings_floor" in settings else "")
        raise CheckFailed(
            f"Accuracy on the instructor's {len(labels)} hand-drawn digits is {acc:.3f}, below {required:.2f}{why}. "
            "Look at your load_digit output next to MNIST samples: background, stroke width, centring.")


def _png_base64(image):
    """A 28 x 28 image in [0, 1] as a base64 PNG (about 300 bytes)."""
    buffer = io.BytesIO()
    Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


# --- worksheet 4 ----------------------------------------------------------------------

EXTRA_REVIEWS = (
    "",
    "FLIBBERTIGIBBET!!! Zorgon-tastic... a snorkwhistle of a movie.<br /><br />10/10",
    "I can't say I LOVED it, but it wasn't bad; the 90's soundtrack was great.",
)


def raw_reviews(rng, stage, count=24):
    """Real test reviews as written (capitals, punctuation, <br />), plus odd ones: empty, unknown words."""
    texts = heldout.raw_test_reviews()
    picked = [texts[int(i)] for i in rng.choice(len(texts), size=count, replace=False)] + list(EXTRA_REVIEWS)
    return [Call([stage.json(text)], text) for text in (picked[int(i)] for i in rng.permutation(len(picked)))]


@hidden_check(predict=Probe(raw_reviews), model=Model())
def expect_same_predictions(predict, model, atol=1e-3):
    """``predict(text)`` equals the model's prediction on the reference encoding of that raw text."""
    from keras.utils import pad_sequences

    results = predict.results()
    maxlen = checks.input_shape(model)[1]
    encoded = pad_sequences([heldout.imdb_encode(text) for text, _ in results], maxlen=maxlen)
    expected = np.asarray(model.predict(encoded, verbose=0)).reshape(-1)
    for (text, found), want in zip(results, expected):
        found = np.asarray(found, dtype=np.float64).reshape(-1)
        if found.size != 1 or not abs(found[0] - want) <= atol:
            shown = f"{found[0]:.4f}" if found.size == 1 else f"an array of shape {found.shape}"
            raise CheckFailed(
                f"For the review {text[:70]!r}{'...' if len(text) > 70 else ''}, {predict.name} gave {shown} but "
                f"the model gives {want:.4f} on that review encoded like the training data (imdb.tokenize, "
                "word index + 3, start 1, words ranked 10,000 or beyond as 2, unknown words skipped, padded "
                "to the model's length).")


@hidden_check(x=Rows(count=16, of=25_000), maxlen=Array())
def expect_padded(x, maxlen, min_length=100):
    """Rows of the padded training reviews equal keras's pad_sequences of the same reviews."""
    from keras.utils import pad_sequences

    maxlen = int(np.asarray(maxlen).reshape(-1)[0])
    if maxlen < min_length:
        raise CheckFailed(f"MAXLEN is {maxlen}; with fewer than {min_length} words most reviews lose most of their text.")
    sequences, _ = heldout.imdb_sequences("train")
    expected = pad_sequences([sequences[i] for i in x.rows], maxlen=maxlen)
    checks.expect_close(x.values, expected, "the padded training reviews", "the padding cell (pad and cut at "
                        "the front, as pad_sequences does by default)")


# --- worksheet 5: softmax and cross-entropy by hand ---------------------------------------

def reference_softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def random_logits(rng, stage):
    """Batches of scores, one with values large enough to overflow a naive exp."""
    batches = [rng.normal(0, 3, size=(int(rng.integers(1, 6)), int(rng.integers(2, 11)))) for _ in range(3)]
    batches.append(rng.normal(0, 1, size=(2, 10)) + np.array([[800.0], [-800.0]]))
    return [Call([stage.array(z)], z) for z in batches]


@hidden_check(softmax=Probe(random_logits))
def expect_softmax(softmax):
    """Probabilities that sum to 1 along the last axis, equal to the stable softmax, large scores included."""
    for z, found in softmax.results():
        checks.expect_close(found, reference_softmax(z), "the probabilities", f"`{softmax.name}` (the hidden "
                            "test includes scores near 800: subtract each row's maximum before exp)", atol=1e-6)


def random_predictions(rng, stage):
    calls = []
    for n, k in ((4, 3), (7, 10), (1, 2)):
        y_pred = reference_softmax(rng.normal(0, 2, size=(n, k)))
        y_true = np.eye(k)[rng.integers(0, k, size=n)]
        calls.append(Call([stage.array(y_true), stage.array(y_pred)], (y_true, y_pred)))
    return calls


@hidden_check(cross_entropy=Probe(random_predictions))
def expect_cross_entropy(cross_entropy):
    """The mean categorical cross-entropy of one-hot targets and predicted probabilities."""
    import keras

    for (y_true, y_pred), found in cross_entropy.results():
        expected = float(np.mean(keras.ops.convert_to_numpy(keras.losses.categorical_crossentropy(y_true, y_pred))))
        checks.expect_close(np.asarray(found, dtype=np.float64).reshape(()), expected, "the mean cross-entropy",
                            f"`{cross_entropy.name}`", atol=1e-5)


# --- plain functions -------------------------------------------------------------------

def literal_calls(rng, stage, calls):
    return [Call([stage.json(arg) for arg in args], tuple(args)) for args in calls]


@hidden_check(value=Array())
def expect_value(value, expected, atol=1e-6):
    """A value of the notebook (a number, list or array) equals ``expected``."""
    checks.expect_close(value, expected, "the value", "the answer cell", atol=atol)


@hidden_check(fn=Probe(literal_calls))
def expect_returns(fn, calls, expected, atol=1e-6):
    """``fn(*calls[i])`` equals ``expected[i]`` for every i (inputs written in the hidden test)."""
    for (args, found), want in zip(fn.results(), expected):
        checks.expect_close(found, want, f"{fn.name}{args}", f"`{fn.name}`", atol=atol)


# --- worksheet 6: a 1-D convolution's arithmetic -----------------------------------------

CONV1D_PADDINGS = ("valid", "same", "causal")


def random_conv1d_shapes(rng, stage, per_padding=4):
    """``(length, kernel_size, strides, padding)``: sequences of 1 to 500 steps, kernels that fit, strides 1 to 4."""
    cases = []
    for padding in CONV1D_PADDINGS:
        for strides in rng.permutation(4)[:per_padding] + 1:
            length = int(rng.integers(1, 501))
            cases.append([length, int(rng.integers(1, min(length, 9) + 1)), int(strides), padding])
    return [Call([stage.json(arg) for arg in cases[i]], tuple(cases[i])) for i in rng.permutation(len(cases))]


def random_conv1d_layers(rng, stage, count=6):
    """``(kernel_size, in_channels, filters)``: kernels of 1 to 9 steps over 1 to 512 channels."""
    cases = [[int(rng.integers(1, 10)), int(rng.integers(1, 513)), int(rng.integers(1, 513))] for _ in range(count)]
    return [Call([stage.json(arg) for arg in case], tuple(case)) for case in cases]


def _conv1d(kernel_size, strides=1, padding="valid", filters=1):
    import keras

    return keras.layers.Conv1D(filters, kernel_size, strides=strides, padding=padding)


def _expect_count(found, expected, call, where):
    """A whole number, exactly (np.isclose's relative tolerance would forgive an off-by-one in a large count)."""
    found = np.asarray(found)
    if found.shape != () or not np.issubdtype(found.dtype, np.number) or found != expected:
        shown = found.item() if found.shape == () else f"an array of shape {found.shape}"
        raise CheckFailed(f"{call} should be {expected}, as Keras computes it; found {shown}. Check {where}.")


@hidden_check(output_length=Probe(random_conv1d_shapes))
def expect_conv1d_output_length(output_length):
    """``output_length(length, kernel_size, strides, padding)`` is the length of Keras's Conv1D output."""
    for (length, kernel_size, strides, padding), found in output_length.results():
        expected = _conv1d(kernel_size, strides, padding).compute_output_shape((None, length, 1))[1]
        _expect_count(found, expected, f"{output_length.name}({length}, {kernel_size}, {strides}, {padding!r})",
                      f"`{output_length.name}`'s formula for padding {padding!r} with strides {strides}")


@hidden_check(param_count=Probe(random_conv1d_layers))
def expect_conv1d_params(param_count):
    """``param_count(kernel_size, in_channels, filters)`` is what Keras counts for that Conv1D layer."""
    for (kernel_size, in_channels, filters), found in param_count.results():
        layer = _conv1d(kernel_size, filters=filters)
        layer.build((None, None, in_channels))
        _expect_count(found, layer.count_params(), f"{param_count.name}({kernel_size}, {in_channels}, {filters})",
                      f"`{param_count.name}`: a filter's weights span every input channel, plus one bias")
