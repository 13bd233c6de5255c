"""The check library and a worksheet's hidden tests under Keras's torch backend.

Keras picks its backend at import, so these run in fresh processes with
KERAS_BACKEND=torch. They skip where torch is not installed (scripts/test.sh
installs it only where its CPU wheel is already on the machine).
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")

CHECKS_UNDER_TORCH = textwrap.dedent("""
    import keras, numpy as np
    from keras import layers, regularizers
    from autograder import checks
    assert keras.config.backend() == "torch", keras.config.backend()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(4,)),
                              layers.Dense(8, activation="relu", kernel_regularizer=regularizers.l2(0.01)),
                              layers.Dropout(0.5), layers.Dense(1, activation="sigmoid")])
    checks.expect_param_count(model, (4 + 1) * 8 + (8 + 1) * 1)
    checks.expect_layers(model, [{"class": "Dense", "output_shape": (None, 8), "regularizer": True},
                                 {"class": "Dropout", "rate": 0.5},
                                 {"class": "Dense", "output_shape": (None, 1), "activation": "sigmoid"}])
    checks.expect_regularized(model); checks.expect_dropout(model, rate=0.5)
    x = np.random.default_rng(0).normal(size=(400, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    model.fit(x, y, epochs=20, verbose=0)
    checks.expect_accuracy(model, x, y, floor=0.9)
    try:
        checks.expect_output_activation(model, "softmax")
    except checks.CheckFailed as e:
        print("failed as expected:", e)
""")


def torch_env():
    return dict(os.environ, KERAS_BACKEND="torch")


def test_check_library_under_torch():
    out = subprocess.run([sys.executable, "-c", CHECKS_UNDER_TORCH], env=torch_env(),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Accuracy on the held-out test set" in out.stdout
    assert "failed as expected: Expected the last layer's activation 'softmax', found 'sigmoid'" in out.stdout


@pytest.mark.slow
@pytest.mark.exhaustive  # 54 s; the check library under torch stays in every run (CI time)
def test_fashion_mnist_worksheet_grades_fully_under_torch(tmp_path):
    """Worksheet 2's solution, hidden tests included, trained and graded with the torch backend."""
    import json

    from autograder.grader.course import SOLUTIONS

    report = tmp_path / "report.json"
    notebook = SOLUTIONS / "02_fashion_mnist" / "02_fashion_mnist.ipynb"
    out = subprocess.run([sys.executable, "-m", "autograder", "grade", str(notebook), "--json", str(report)],
                         env=torch_env(), capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(report.read_text())
    assert result["versions"]["keras_backend"] == "torch"
    assert result["score"] == result["max_score"], result["cells"]
