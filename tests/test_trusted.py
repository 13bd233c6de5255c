"""Hidden tests decided outside the kernel: planning, exports, safe loading, scoring."""

import json
import os
import zipfile

import keras
import numpy as np
import pytest
from keras import layers

from autograder.checks import CheckFailed
from autograder.grader.hidden_tests import artifacts
from autograder.grader.hidden_tests import vocabulary as hidden
from autograder.grader.hidden_tests.kinds import PlanError
from autograder.grader.hidden_tests.launch import check_in_clean_process
from autograder.grader.hidden_tests.scorer import parse, plan, score_block
from autograder.run import exports as exchange


def small_model(activation="relu", extra=None, output=None):
    stack = [keras.Input((4,)), layers.Dense(3, activation=activation)] + (extra or [])
    stack.append(output or layers.Dense(2, activation="softmax"))
    return keras.Sequential(stack)


# --- what a hidden-test block may say ----------------------------------------------

@pytest.mark.parametrize("block, message", [
    ("import os\nos.system('x')", "may only call hidden checks"),
    ("hidden.expect_accuracy(model, data, floor=0.9)", "argument data of hidden.expect_accuracy must be a literal"),
    ("hidden.expect_accuracy(model.layers, 'mnist_test', floor=0.9)", "must name a variable"),
    ("hidden.nope(model)", "hidden.nope, which is not a hidden check"),
    ("hidden.expect_accuracy(model)", "missing a required argument: 'data'"),
    ("hidden.expect_value(*x)", "takes plain arguments"),
    ("hidden.expect_value(x", "is not valid Python"),
])
def test_blocks_are_calls_of_named_checks_with_literal_arguments(block, message):
    with pytest.raises(PlanError, match=message):
        parse(block)


def test_a_plan_asks_the_kernel_for_each_object_once(tmp_path):
    block = ("from autograder.grader import hidden\n"
             "hidden.expect_param_count(model, 7850)\n"
             "hidden.expect_accuracy(model, 'mnist_test', floor=0.9)\n"
             "hidden.expect_multi_hot(vectorize)\n")
    statements = plan(block, seed=1, folder=tmp_path)
    request = json.loads((tmp_path / "request.json").read_text())
    assert [(e["kind"], e["name"]) for e in request["exports"]] == [
        ("model", "model"), ("probe", "vectorize")]
    assert [s.literals for s in statements] == [{"total": 7850, "trainable": None},
                                               {"data": "mnist_test", "floor": 0.9, "flag_test_training": True},
                                               {"dimension": 10_000}]
    # The same seed gives the same inputs: the scoring process re-plans without writing.
    again = plan(block, seed=1, folder=tmp_path / "dry", write=False)
    assert again[2].students["vectorize"][1] == request["exports"][1]
    assert not (tmp_path / "dry").exists()
    other = plan(block, seed=2, folder=tmp_path / "other")
    assert other[2].students["vectorize"][1] != request["exports"][1]


# --- exports written by the kernel, read by the grader ---------------------------------

def export_and_load(tmp_path, model):
    exchange.save_model(model, tmp_path / "m.keras")
    return artifacts.load_model(tmp_path, "m.keras")


def test_activations_are_saved_under_keras_names(tmp_path):
    import tensorflow as tf

    model = small_model(output=layers.Dense(2, activation=tf.nn.softmax))
    loaded = export_and_load(tmp_path, model)
    assert loaded.layers[-1].activation is keras.activations.softmax
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_a_tanh_named_relu_is_saved_as_tanh(tmp_path):
    def relu(x):
        return keras.ops.tanh(x)

    loaded = export_and_load(tmp_path, small_model(activation=relu))
    assert loaded.layers[0].activation is keras.activations.tanh
    with pytest.raises(CheckFailed, match="expected activation 'relu', found 'tanh'"):
        hidden.expect_layers.check(loaded, [{"activation": "relu"}, {}])


def test_a_subclassed_model_is_saved_as_the_stack_it_computes(tmp_path):
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden, self.out = layers.Dense(3, activation="relu"), layers.Dense(2, activation="softmax")

        def call(self, x):
            return self.out(self.hidden(x))

    model = Net()
    model(np.zeros((1, 4), "float32"))
    loaded = export_and_load(tmp_path, model)
    assert [type(layer).__name__ for layer in loaded.layers] == ["Dense", "Dense"]

    class Skip(Net):
        def call(self, x):
            return self.out(self.hidden(x) + 1.0)

    odd = Skip()
    odd(np.zeros((1, 4), "float32"))
    with pytest.raises(ValueError, match="does more than apply its layers in order"):
        exchange.save_model(odd, tmp_path / "odd.keras")


def model_archive(tmp_path, edit):
    """A model file whose config.json was rewritten by ``edit``, as a hostile kernel could."""
    small_model().save(tmp_path / "ok.keras")
    path = tmp_path / "edited.keras"
    with zipfile.ZipFile(tmp_path / "ok.keras") as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                data = json.dumps(edit(json.loads(data))).encode()
            dst.writestr(item, data)
    return path


def set_layer(config, index, **changes):
    config["config"]["layers"][index].update(changes)
    return config


@pytest.mark.parametrize("edit, message", [
    (lambda c: set_layer(c, 1, module=None, class_name="Dropout", registered_name="Dropout"),
     "contains Dropout, which is not a standard Keras layer"),
    (lambda c: set_layer(c, 1, class_name="Lambda"), "contains keras.layers.Lambda"),
    (lambda c: set_layer(c, 1, class_name="TFSMLayer"), "contains keras.layers.TFSMLayer"),
    (lambda c: set_layer(c, 1, module="os", class_name="system"), "contains os.system"),
    (lambda c: (c["config"]["layers"][1]["config"].__setitem__(
        "activation", {"module": "builtins", "class_name": "function", "config": "eval"}), c)[1],
     "contains builtins.function"),
])
def test_only_standard_keras_classes_are_loaded(tmp_path, edit, message):
    with pytest.raises(CheckFailed, match=message):
        archive = model_archive(tmp_path, edit)
        artifacts.load_model(archive.parent, archive.name)


def test_archives_and_arrays_that_are_not_plain_are_refused(tmp_path):
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("payload.py", "print('hi')")
    with pytest.raises(CheckFailed, match="not saved as a plain Keras model file"):
        artifacts.load_model(tmp_path, "bad.keras")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CheckFailed, match="could not be read as a plain array"):
        artifacts.load_array(tmp_path, "objects.npy", "`y`")
    with pytest.raises(CheckFailed, match="found no `y`"):
        artifacts.load_array(tmp_path, "absent.npy", "`y`")


def test_an_l2_factor_of_zero_is_no_regularizer(tmp_path):
    model = small_model()
    zero = keras.Sequential([keras.Input((4,)),
                             layers.Dense(3, activation="relu", kernel_regularizer=keras.regularizers.l2(0.0)),
                             layers.Dense(2, activation="softmax")])
    with pytest.raises(CheckFailed, match="expected regularizer a regularizer, found None"):
        hidden.expect_layers.check(export_and_load(tmp_path, zero), [{"regularizer": True}, {}])
    del model


# --- scoring ---------------------------------------------------------------------------

def test_probes_run_the_function_on_the_graders_inputs(tmp_path):
    block = "hidden.expect_multi_hot(vectorize)"
    plan(block, seed=3, folder=tmp_path)

    def vectorize(seqs, dim):
        out = np.zeros((len(seqs), dim), "float32")
        for i, s in enumerate(seqs):
            out[i, s] = 1
        return out

    exchange.collect({"vectorize": vectorize}, tmp_path / "request.json")
    assert score_block(block, 3, tmp_path) == ([], [], [])

    def counts(seqs, dim):
        out = np.zeros((len(seqs), dim), "float32")
        for i, s in enumerate(seqs):
            for j in s:
                out[i, j] += 1
        return out

    exchange.collect({"vectorize": counts}, tmp_path / "request.json")
    failures, _, _ = score_block(block, 3, tmp_path)
    assert failures and "multi-hot vectors differ" in failures[0]


def test_check_in_clean_process_decides_outside_this_process():
    def double(x):
        return 2 * x

    block = "hidden.expect_returns(double, [[-3], [0.5]], [-6, 1.0])\nhidden.expect_value(answer, 42)"
    assert check_in_clean_process(block, {"double": double, "answer": 42}) == []
    failures = check_in_clean_process(block, {"double": lambda x: x, "answer": 41})
    assert len(failures) == 2 and "Expected the value 42, found 41" in failures[1]
    assert "not defined" in check_in_clean_process(block, {"double": double})[0]


def test_functional_lstm_and_convolutional_models_load(tmp_path):
    inputs = keras.Input((28, 28, 1))
    hidden = layers.Flatten()(layers.MaxPooling2D(2)(layers.Conv2D(6, 5, activation="relu")(inputs)))
    models = [keras.Model(inputs, layers.Dense(10, activation="softmax")(hidden)),
              keras.Sequential([keras.Input((20,)), layers.Embedding(100, 8), layers.LSTM(4),
                                layers.Dense(1, activation="sigmoid")])]
    for i, model in enumerate(models):
        exchange.save_model(model, tmp_path / f"{i}.keras")
        loaded = artifacts.load_model(tmp_path, f"{i}.keras")
        assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers]


# --- worksheet 6: a 1-D convolution's arithmetic, on inputs drawn at grading ----------------

def conv1d_output_length(length, kernel_size, strides=1, padding="valid"):
    if padding in ("same", "causal"):
        return -(-length // strides)
    return (length - kernel_size) // strides + 1


@pytest.mark.parametrize("wrong, message", [
    (lambda n, k, s=1, p="valid": (n - k) // s + 1, r"should be \d+, as Keras computes it; found -?\d+\. Check "
                                                    r"`<lambda>`'s formula for padding '(same|causal)'"),
    (lambda n, k, s=1, p="valid": conv1d_output_length(n, k, 1, p), r"with strides [234]\.$"),
    (lambda n, k, s=1, p="valid": [conv1d_output_length(n, k, s, p)], r"found an array of shape \(1,\)"),
])
def test_conv1d_output_length_is_checked_against_keras_for_every_padding_and_stride(wrong, message):
    hidden.expect_conv1d_output_length(conv1d_output_length)
    hidden.expect_conv1d_output_length(lambda *args: float(conv1d_output_length(*args)))  # 98.0 is 98
    with pytest.raises(CheckFailed, match=message):
        hidden.expect_conv1d_output_length(wrong)


def test_conv1d_inputs_cover_every_padding_and_stride_and_change_with_the_seed(tmp_path):
    from autograder.grader.hidden_tests.kinds import Stage

    def cases(seed):
        rng = np.random.default_rng(seed)
        return [call.data for call in hidden.random_conv1d_shapes(rng, Stage(tmp_path, rng, write=False))]

    drawn = cases(0)
    assert {(padding, strides) for _, _, strides, padding in drawn} == {
        (p, s) for p in ("valid", "same", "causal") for s in (1, 2, 3, 4)}
    assert all(1 <= k <= min(n, 9) for n, k, _, _ in drawn) and cases(0) == drawn != cases(1)


def test_conv1d_params_is_checked_exactly_against_keras():
    hidden.expect_conv1d_params(lambda k, c, f: (k * c + 1) * f)
    # Off by a few in a count of about a million: a relative tolerance would let it pass.
    for wrong, message in [(lambda k, c, f: k * c * f, "a filter's weights span every input channel, plus one bias"),
                           (lambda k, c, f: (k * c + 1) * f + 1, "as Keras computes it; found"),
                           (lambda k, c, f: "many", "found many")]:
        with pytest.raises(CheckFailed, match=message):
            hidden.expect_conv1d_params(wrong)


def test_the_scoring_process_imports_neither_nbgrader_nor_nbformat():
    """Issue 15: the scoring process imported nbgrader for one regular expression (about 1.5 s of 3.1)."""
    import subprocess
    import sys

    code = ("import sys, autograder.grader.hidden_tests.scorer, autograder.grader.hidden_tests.vocabulary; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('nbgrader', 'nbformat')))")
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_students_function_gets_a_path_as_the_worksheets_pass_it(tmp_path):
    """Issue 15: the hidden checks passed a str where every call in worksheets 1 and 5 passes a
    pathlib.Path, and a correct read_grey using path.suffix lost 5 of 13 points."""
    from pathlib import Path

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.png").write_bytes(b"")
    assert isinstance(exchange._decode({"path": "in/x.png"}, tmp_path), Path)
    assert exchange._decode({"path": "in/x.png"}, tmp_path).suffix == ".png"


def test_a_config_describing_a_billion_parameters_is_refused_before_any_weight_is_made(tmp_path):
    import json
    import resource
    import zipfile

    model = small_model()
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
    config["config"]["layers"][-1]["config"]["units"] = 10**9
    with zipfile.ZipFile(tmp_path / "huge.keras", "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", "{}")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckFailed, match="more than the 20,000,000 the grader loads"):
        artifacts.load_model(tmp_path, "huge.keras")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KB: no 4 GB of weights


def test_a_compiled_and_trained_model_is_counted_and_loaded(tmp_path):
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(np.zeros((8, 4)), np.zeros(8), epochs=1, verbose=0)
    assert artifacts.count_params_unbuilt(json.loads(json.dumps(keras.saving.serialize_keras_object(model)))) \
        == model.count_params()
    assert export_and_load(tmp_path, model).count_params() == model.count_params()


@pytest.mark.skipif(os.geteuid() != 0, reason="a memory limit of the scoring jail's own needs a control group")
def test_scoring_past_its_own_memory_is_the_students_and_never_the_hosts(tmp_path):
    """The scoring process's memory holds the student's exports; when it reaches its own limit (the control
    group's count of its own limit hit, not the host's OOM killer), that fails the student's cells. Before, a
    model of 7,850 parameters padded to 4.6 GB an example was a host fault, then "could not process": no
    score instead of the zero it earned (red team, round 4)."""
    from autograder.grader.hidden_tests.kinds import ScoringTooSlow
    from autograder.grader.hidden_tests.launch import score_in_fresh_process

    kept = tmp_path / "kept"
    (kept / "00" / "out").mkdir(parents=True)
    np.save(kept / "00" / "out" / "answer.npy", np.zeros(16 * 2**20))  # 128 MB handed over
    plans = {"t": {"block": "hidden.expect_value(answer, 42)", "seed": 0, "folder": str(kept / "00"),
                   "where": "test t"}}
    with pytest.raises(ScoringTooSlow, match="needed more than its 0.09375 GiB of memory"):
        score_in_fresh_process(plans, kept, memory_bytes=96 * 2**20)


def test_a_probe_input_copied_as_it_is_lands_under_a_random_name(tmp_path):
    """Issue 24: `Stage.file` without a transform called shutil, which trusted.py never imported."""
    import numpy as np

    from autograder.grader.hidden_tests.kinds import Stage

    source = tmp_path / "drawing.PNG"
    source.write_bytes(b"\x89PNG not really")
    stage = Stage(tmp_path / "exchange", np.random.default_rng(0))
    rel = stage.file(source)["path"]
    assert rel.startswith("in/") and rel.endswith(".png") and "drawing" not in rel
    assert (tmp_path / "exchange" / rel).read_bytes() == source.read_bytes()


def test_otters_clean_process_draws_the_same_inputs_under_the_same_secret():
    """Red team: the one-cell notebook got a random cell id, so the course's secret no longer gave a regrade the
    same inputs (the seed is a keyed hash of the notebook)."""
    from nbformat.v4 import new_notebook
    from traitlets.config import Config

    from autograder.grader.hidden_tests.launch import (
        PlanHiddenTests,
        clean_process_cell,
    )
    from autograder.run.hidden_regions import Markers

    block = "hidden.expect_value(answer, 42)"
    step = PlanHiddenTests(config=Config({"PlanHiddenTests": {"secret": "s"}}))
    seeds = {step._seed(new_notebook(cells=[clean_process_cell(block, "q1", Markers())]), {}) for _ in range(3)}
    assert len(seeds) == 1
