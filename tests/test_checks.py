"""The check library on small models built here: what passes, what fails, what it says."""

import keras
import numpy as np
import pytest
from keras import layers, regularizers

from autograder import checks
from autograder.checks import CheckFailed


def dense_model(hidden=8, output_activation="softmax", l2=None, dropout=None):
    stack = [keras.Input(shape=(4,)), layers.Dense(hidden, activation="relu", kernel_regularizer=l2)]
    if dropout:
        stack.append(layers.Dropout(dropout))
    stack.append(layers.Dense(3, activation=output_activation))
    return keras.Sequential(stack)


def test_layer_summary_describes_every_layer():
    summary = checks.layer_summary(dense_model(l2=regularizers.l2(0.01), dropout=0.25))
    assert [s["class"] for s in summary] == ["Dense", "Dropout", "Dense"]
    assert summary[0] | {"name": None} == {
        "name": None, "class": "Dense", "output_shape": (None, 8), "params": (4 + 1) * 8,
        "activation": "relu", "rate": None, "regularizer": "L2(l2=0.01)",
    }
    assert summary[1]["rate"] == 0.25 and summary[1]["params"] == 0
    assert summary[2]["activation"] == "softmax" and summary[2]["params"] == (8 + 1) * 3


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


def test_expect_layers_names_the_first_wrong_layer():
    expected = [{"class": "Dense", "output_shape": (None, 8), "activation": "relu"},
                {"class": "Dense", "output_shape": (None, 3), "activation": "softmax"}]
    checks.expect_layers(dense_model(), expected)
    with pytest.raises(CheckFailed, match=r"^Layer 1 \(Dense\): expected output shape \(None, 8\), found \(None, 16\)"):
        checks.expect_layers(dense_model(hidden=16), expected)
    with pytest.raises(CheckFailed, match=r"^Expected 2 layers, found 3"):
        checks.expect_layers(dense_model(dropout=0.5), expected)
    with pytest.raises(CheckFailed, match=r"expected regularizer a regularizer, found None"):
        checks.expect_layers(dense_model(), [{"regularizer": True}, {}])


def test_output_activation_input_and_output_shapes():
    model = dense_model(output_activation="relu")
    with pytest.raises(CheckFailed, match=r"Expected the last layer's activation 'softmax', found 'relu'"):
        checks.expect_output_activation(model, "softmax")
    with pytest.raises(CheckFailed, match=r"found 'linear'"):
        checks.expect_output_activation(dense_model(output_activation=None), "sigmoid")
    checks.expect_input_shape(model, (None, 4))
    checks.expect_output_shape(model, (None, 3))
    with pytest.raises(CheckFailed, match=r"Expected the model's input shape \(None, 5\), found \(None, 4\)"):
        checks.expect_input_shape(model, (None, 5))
    with pytest.raises(CheckFailed, match=r"needs 1 unit"):
        checks.expect_output_shape(model, (None, 1))


def test_regularizer_and_dropout_presence():
    checks.expect_regularized(dense_model(l2=regularizers.l2(0.001)))
    checks.expect_dropout(dense_model(dropout=0.5), rate=0.5)
    with pytest.raises(CheckFailed, match="kernel_regularizer=keras.regularizers.l2"):
        checks.expect_regularized(dense_model())
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


def test_accuracy_of_a_trained_model_and_a_wrongly_shaped_input():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(400, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("float32")
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    model.fit(x, y, epochs=30, verbose=0)
    checks.expect_accuracy(model, x, y, floor=0.95)
    with pytest.raises(CheckFailed, match=r"could not predict .*inputs shaped like the prepared training data"):
        checks.expect_accuracy(model, np.zeros((3, 7)), [0, 1, 0], floor=0.5)


def test_function_checks():
    checks.expect_prepared_images(lambda im: im.reshape(len(im), 784).astype("float32") / 255, flatten=True)
    with pytest.raises(CheckFailed, match=r"Pixels should lie in \[0, 1\], found a maximum of 255"):
        checks.expect_prepared_images(lambda im: im.reshape(len(im), 784).astype("float32"), flatten=True)

    def buggy_multi_hot(seqs, dimension):
        out = np.zeros((len(seqs), dimension), dtype="float32")
        for i, s in enumerate(seqs):
            for j in s:
                out[i, j] += 1  # counts, not presence
        return out

    with pytest.raises(CheckFailed, match=r"The multi-hot vectors differ at index \(1, 1\): expected 1.0, found 3.0"):
        checks.expect_multi_hot(buggy_multi_hot)


def test_digit_image_check():
    digit = np.zeros((28, 28), dtype="float32")
    digit[9:19, 12:16] = 1.0
    checks.expect_digit_image(digit)
    with pytest.raises(CheckFailed, match=r"white on a black background"):
        checks.expect_digit_image(1 - digit)
    with pytest.raises(CheckFailed, match=r"shape \(28, 28\), found \(28, 28, 3\)"):
        checks.expect_digit_image(np.zeros((28, 28, 3)))
    off_centre = np.zeros((28, 28), dtype="float32")
    off_centre[4:12, 4:8] = 1.0
    with pytest.raises(CheckFailed, match=r"centre of mass is at \(7.5, 5.5\)"):
        checks.expect_digit_image(off_centre)


def test_overfitting_gap_check():
    x = np.zeros(4)
    y = np.array([1.0, 0.0, 1.0, 0.0])
    seen, unseen = (x, y), (x, y[::-1].copy())
    confident = Fixed([[0.99], [0.01], [0.99], [0.01]])  # perfect on seen, wrong on unseen
    modest = Fixed([[0.6], [0.4], [0.6], [0.4]])
    with pytest.raises(CheckFailed, match="was not trained like the baseline"):
        checks.expect_less_overfitting(modest, confident, seen, unseen, "L2")
    with pytest.raises(CheckFailed, match=r"The L2 model's gap between test and training loss is"):
        checks.expect_less_overfitting(confident, modest, seen, seen, "L2", min_accuracy=0)
