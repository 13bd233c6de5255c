"""The check library on small models built here: what passes, what fails, what it says.

Architecture checks compare what a model computes, not how it was written:
Sequential, functional and subclassed models, `tf.nn.softmax` or "softmax",
and a Dense followed by an Activation layer, all pass alike.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers, regularizers

from autograder import checks
from autograder.checks import CheckFailed

EXPECTED = [{"class": "Dense", "output_shape": (None, 8), "activation": "relu"},
            {"class": "Dense", "output_shape": (None, 3), "activation": "softmax"}]


def dense_model(hidden=8, output_activation="softmax", l2=None, dropout=None):
    stack = [keras.Input(shape=(4,)), layers.Dense(hidden, activation="relu", kernel_regularizer=l2)]
    if dropout:
        stack.append(layers.Dropout(dropout))
    stack.append(layers.Dense(3, activation=output_activation))
    return keras.Sequential(stack)


def functional_model():
    inputs = keras.Input(shape=(4,))
    hidden = layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, layers.Dense(3, activation=tf.nn.softmax)(hidden))


def separate_activations():
    return keras.Sequential([keras.Input(shape=(4,)), layers.Dense(8), layers.Activation("relu"),
                             layers.Dense(3), layers.Activation(keras.activations.softmax)])


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = layers.Dense(8, activation="relu")
        self.out = layers.Dense(3)
        self.softmax = layers.Softmax()

    def call(self, x):
        return self.softmax(self.out(self.hidden(x)))


def subclassed_model():
    model = Subclassed()
    model(np.zeros((1, 4), "float32"))
    return model


def augmented_images_model():
    """Chollet's way: random augmentation inside the model, as a block and as single layers; the layers pass
    images through unchanged once trained, so the architecture is the one without them."""
    augmentation = keras.Sequential([layers.RandomRotation(0.04), layers.RandomZoom(0.1),
                                     layers.RandomTranslation(0.1, 0.1)], name="data_augmentation")
    inputs = keras.Input(shape=(2, 2, 1))
    x = layers.RandomContrast(0.1)(augmentation(inputs))
    x = layers.Reshape((4,))(x)
    return keras.Model(inputs, layers.Dense(3, activation="softmax")(layers.Dense(8, activation="relu")(x)))


@pytest.mark.parametrize("make", [dense_model, functional_model, separate_activations, subclassed_model],
                         ids=["sequential", "functional-tf.nn.softmax", "dense-then-activation", "subclassed"])
def test_every_way_of_writing_the_model_passes(make):
    model = make()
    checks.expect_layers(model, EXPECTED)
    checks.expect_param_count(model, (4 + 1) * 8 + (8 + 1) * 3)
    checks.expect_output_activation(model, "softmax")
    checks.expect_output_shape(model, (None, 3))
    checks.expect_input_shape(model, (None, 4))


@pytest.mark.parametrize("model, message", [
    (dense_model(hidden=16), r"^Layer 1 \(Dense\): expected output shape \(None, 8\), found \(None, 16\)"),
    (dense_model(output_activation="relu"), r"^Layer 2 \(Dense\): expected activation 'softmax', found 'relu'"),
    (keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")]), r"^Expected 2 layers, found 1"),
    # 67 parameters, like 4-8-3, in another shape
    (keras.Sequential([keras.Input((4,)), layers.Dense(2, activation="relu"), layers.Dense(9, activation="relu"),
                       layers.Dense(3, activation="softmax")]),
     r"^Expected 2 layers, found 3"),
])
def test_what_must_still_fail(model, message):
    with pytest.raises(CheckFailed, match=message):
        checks.expect_layers(model, EXPECTED)


def test_augmentation_layers_inside_the_model_are_not_part_of_its_architecture():
    model = augmented_images_model()
    checks.expect_layers(model, [{"class": "Reshape", "output_shape": (None, 4)}, *EXPECTED])
    checks.expect_param_count(model, (4 + 1) * 8 + (8 + 1) * 3)
    checks.expect_input_shape(model, (None, 2, 2, 1))
    # A block that does more than augment is a layer of the model: it still counts.
    mixed = keras.Sequential([keras.Input(shape=(4,)), keras.Sequential([layers.Dense(8, activation="relu")]),
                              layers.Dense(3, activation="softmax")])
    with pytest.raises(CheckFailed, match="Layer 1 \\(Sequential\\)"):
        checks.expect_layers(mixed, EXPECTED)


def test_same_parameter_count_other_architecture_passes_the_count_only():
    other = keras.Sequential([keras.Input((4,)), layers.Dense(2, activation="relu"), layers.Dense(9, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    assert checks.count_params(other) == checks.count_params(dense_model()) == (67, 67)


def test_layer_summary_describes_every_layer():
    summary = checks.layer_summary(dense_model(l2=regularizers.l2(0.01), dropout=0.25))
    assert [s["class"] for s in summary] == ["Dense", "Dropout", "Dense"]
    assert summary[0] | {"name": None} == {
        "name": None, "class": "Dense", "output_shape": (None, 8), "params": (4 + 1) * 8,
        "activation": "relu", "rate": None, "regularizer": "L2(l2=0.01)",
    }
    assert summary[1]["rate"] == 0.25 and summary[1]["params"] == 0
    assert checks.layer_summary(dense_model(l2=regularizers.l2(0.0)))[0]["regularizer"] is None


def test_activation_names_are_what_the_function_computes():
    def relu(x):  # named relu, computes tanh
        return keras.ops.tanh(x)

    assert checks.activation_name(tf.nn.softmax) == "softmax"
    assert checks.activation_name(keras.activations.softmax) == "softmax"
    assert checks.activation_name(relu) == "tanh"
    assert checks.activation_name(lambda x: x) == "linear"


def test_a_model_without_input_shape_gets_advice_not_a_traceback():
    with pytest.raises(CheckFailed, match=r"no input shape yet.*keras.Input\(shape=...\)"):
        checks.layer_summary(keras.Sequential([layers.Dense(3)]))


def test_param_count_passes_and_fails_with_the_layer_table():
    model = dense_model()
    checks.expect_param_count(model, (4 + 1) * 8 + (8 + 1) * 3)
    with pytest.raises(CheckFailed) as err:
        checks.expect_param_count(model, 100)
    message = str(err.value)
    assert message.startswith("Expected 100 parameters (100 trainable), found 67 (67 trainable).")
    assert "(inputs + 1) x units" in message and "params        40  relu" in message


def test_output_activation_input_and_output_shapes():
    model = dense_model(output_activation="relu")
    with pytest.raises(CheckFailed, match=r"Expected the last layer's activation 'softmax', found 'relu'"):
        checks.expect_output_activation(model, "softmax")
    with pytest.raises(CheckFailed, match=r"found 'linear'"):
        checks.expect_output_activation(dense_model(output_activation=None), "sigmoid")
    with pytest.raises(CheckFailed, match=r"Expected the model's input shape \(None, 5\), found \(None, 4\)"):
        checks.expect_input_shape(model, (None, 5))
    with pytest.raises(CheckFailed, match=r"needs 1 unit"):
        checks.expect_output_shape(model, (None, 1))


def test_regularizer_and_dropout_presence():
    checks.expect_regularized(dense_model(l2=regularizers.l2(0.001)))
    checks.expect_dropout(dense_model(dropout=0.5), rate=0.5)
    with pytest.raises(CheckFailed, match="kernel_regularizer=keras.regularizers.l2"):
        checks.expect_regularized(dense_model())
    with pytest.raises(CheckFailed, match="kernel_regularizer=keras.regularizers.l2"):
        checks.expect_regularized(dense_model(l2=regularizers.l2(0.0)))
    with pytest.raises(CheckFailed, match=r"Expected a Dropout layer with rate 0.5, found rates \[0.2\]"):
        checks.expect_dropout(dense_model(dropout=0.2), rate=0.5)


class Fixed:
    """A stand-in model whose predictions are given: accuracy comes only from predict."""

    def __init__(self, outputs):
        self.outputs = np.asarray(outputs, dtype="float32")

    def predict(self, x, batch_size=None, verbose=0):
        return self.outputs[: len(x)]


def test_accuracy_uses_argmax_or_a_half_threshold():
    softmax = Fixed([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert checks.accuracy(softmax, np.zeros(3), [1, 0, 0]) == pytest.approx(2 / 3)
    assert checks.accuracy(softmax, np.zeros(3), [[0, 1], [1, 0], [0, 1]]) == 1.0  # one-hot targets
    sigmoid = Fixed([[0.9], [0.4], [0.51]])
    assert checks.accuracy(sigmoid, np.zeros(3), [1, 0, 0]) == pytest.approx(2 / 3)


def test_expect_accuracy_prints_and_fails_below_the_floor(capsys):
    model = Fixed([[0.9], [0.1], [0.8], [0.2]])
    assert checks.expect_accuracy(model, np.zeros(4), [1, 0, 1, 1], floor=0.7) is None
    assert "Accuracy on the held-out test set: 0.7500 (required: 0.70)" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match=r"^Accuracy on the held-out test set is 0.7500, below the required 0.80"):
        checks.expect_accuracy(model, np.zeros(4), [1, 0, 1, 1], floor=0.8)


def test_accuracy_of_a_trained_model_on_float64_and_a_wrongly_shaped_input():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(400, 4))  # float64, as images / 255.0 gives
    y = (x[:, 0] + x[:, 1] > 0).astype("float32")
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    model.fit(x, y, epochs=30, verbose=0)
    checks.expect_accuracy(model, x, y, floor=0.95)
    with pytest.raises(CheckFailed, match=r"could not predict .*inputs shaped like the prepared training data"):
        checks.expect_accuracy(model, np.zeros((3, 7)), [0, 1, 0], floor=0.5)


def test_prepared_images_in_float32_or_float64():
    checks.expect_prepared_images(lambda im: im.reshape(len(im), 784).astype("float32") / 255, flatten=True)
    checks.expect_prepared_images(lambda im: im.reshape(len(im), 784) / 255.0, flatten=True)
    checks.expect_prepared_images(lambda im: im / 255.0, flatten=False)
    with pytest.raises(CheckFailed, match=r"Pixels should lie in \[0, 1\], found a maximum of 255"):
        checks.expect_prepared_images(lambda im: im.reshape(len(im), 784).astype("float32"), flatten=True)
    with pytest.raises(CheckFailed, match=r"Expected float pixels, found dtype uint8"):
        checks.expect_prepared_images(lambda im: im.reshape(len(im), 784), flatten=True)


def test_digit_image_check():
    digit = np.zeros((28, 28), dtype="float32")
    digit[9:19, 12:16] = 1.0
    checks.expect_digit_image(digit)
    checks.expect_digit_image(digit.astype("float64"))
    with pytest.raises(CheckFailed, match=r"white on a black background"):
        checks.expect_digit_image(1 - digit)
    with pytest.raises(CheckFailed, match=r"shape \(28, 28\), found \(28, 28, 3\)"):
        checks.expect_digit_image(np.zeros((28, 28, 3)))
    off_centre = np.zeros((28, 28), dtype="float32")
    off_centre[4:12, 4:8] = 1.0
    with pytest.raises(CheckFailed, match=r"centre of mass is at \(7.5, 5.5\)"):
        checks.expect_digit_image(off_centre)


def test_expect_close_says_where_values_differ():
    checks.expect_close([1.0, 2.0], [1.0, 2.0], "the values", "cell 3")
    with pytest.raises(CheckFailed, match=r"^The values differ at index \(1,\): expected 2.0, found 3.0"):
        checks.expect_close([1.0, 3.0], [1.0, 2.0], "the values", "cell 3")
    with pytest.raises(CheckFailed, match=r"^Expected the values of shape \(2,\), found \(3,\)"):
        checks.expect_close([1.0, 3.0, 4.0], [1.0, 2.0], "the values", "cell 3")
    with pytest.raises(CheckFailed, match=r"^Expected the value 42, found 7"):
        checks.expect_close(7, 42, "the value", "cell 3")


# --- activations written as layers, as the course decks write them ------------------------

def described(model):
    return [(s["class"], s["output_shape"], s["params"], s["activation"]) for s in checks.layer_summary(model)]


@pytest.mark.parametrize("leaky", [layers.LeakyReLU, lambda: layers.LeakyReLU(negative_slope=0.2),
                                   lambda: layers.ReLU(negative_slope=0.3), lambda: layers.Activation("leaky_relu")],
                         ids=["LeakyReLU", "LeakyReLU(0.2)", "ReLU(negative_slope)", "Activation"])
def test_a_leaky_relu_in_any_form_is_named_leaky_relu(leaky):
    normalized = keras.Sequential([keras.Input((4,)), layers.Dense(8), layers.BatchNormalization(), leaky()])
    assert described(normalized)[-1][3] == "leaky_relu"
    # Right after a linear layer it is that layer's activation, as Activation("relu") is.
    assert described(keras.Sequential([keras.Input((4,)), layers.Dense(8), leaky()])) == [
        ("Dense", (None, 8), 40, "leaky_relu")]


def test_a_relu_after_dropout_belongs_to_the_layer_before_the_dropout():
    def stack(*middle):
        return keras.Sequential([keras.Input((4,)), *middle, layers.Dense(3, activation="softmax")])

    # The text-CNN deck's Dense(h), Dropout, Activation("relu") computes what Dense(h, relu), Dropout does.
    deck = stack(layers.Dense(8), layers.Dropout(0.2), layers.Activation("relu"))
    assert described(deck) == described(dense_model(dropout=0.2))
    checks.expect_layers(deck, [EXPECTED[0], {"class": "Dropout", "rate": 0.2}, EXPECTED[1]])
    # sigmoid(0) is 0.5: a sigmoid does not commute with dropout and stays a layer of its own,
    # and so does a relu after a layer that already has an activation.
    for middle in ([layers.Dense(8), layers.Dropout(0.2), layers.Activation("sigmoid")],
                   [layers.Dense(8, activation="tanh"), layers.Dropout(0.2), layers.Activation("relu")]):
        assert [c for c, *_ in described(stack(*middle))] == ["Dense", "Dropout", "Activation", "Dense"]


def test_the_layer_table_keeps_its_columns_for_long_names_and_shapes():
    model = keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(4, 3, padding="same"), layers.BatchNormalization(),
                              layers.Flatten(), layers.Dense(2, activation="softmax")])
    rows = checks.format_summary(checks.layer_summary(model)).splitlines()
    assert len({row.index(" output ") for row in rows}) == 1 and len({row.index(" params ") for row in rows}) == 1


def test_a_model_whose_layers_hold_more_than_the_grader_computes_for_one_example_is_refused():
    """Red team, round 4: 7,850 parameters, the right output, and a ZeroPadding2D(17000) that needs 4.6 GB for one
    example: the scoring process ran out of memory. It is the student's failed check, before any prediction."""
    inputs = keras.Input((784,))
    padded = layers.ZeroPadding2D(17000)(layers.Reshape((28, 28, 1))(inputs))
    summed = layers.Add()([layers.Dense(10)(inputs), layers.GlobalMaxPooling2D()(padded)])
    model = keras.Model(inputs, layers.Activation("softmax")(summed))
    with pytest.raises(CheckFailed, match="values for each example, more than the"):
        checks.prediction_batch(model)
    assert checks.prediction_batch(keras.Sequential([keras.Input((784,)), layers.Dense(10)])) == 1024
