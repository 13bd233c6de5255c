"""Model and array files read by the scoring process: honest ones load as before, and files whose
headers declare far more than they hold are refused, as the student's failed check, before anything
that large is made (red team: a 119 KB .keras declaring one 4 GiB kernel stopped the scoring process,
a host fault on every run, so the student could never be graded)."""

import contextlib
import io
import resource
import time
import zipfile

import h5py
import keras
import numpy as np
import pytest
from keras import layers

from autograder import checks
from autograder.checks import CheckFailed
from autograder.grader.hidden_tests import artifacts
from autograder.run import exports as exchange
from autograder.run.jail import jail_problem


@contextlib.contextmanager
def small_memory(extra=2**30):
    """At most ``extra`` more bytes of data segment while loading, and a report of the peak RSS added.

    The cap makes a regression a MemoryError here instead of gigabytes taken from a shared machine;
    the soft limit is raised back afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    with open("/proc/self/status") as status:
        used = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmData:"))
    cap = used + extra if hard == resource.RLIM_INFINITY else min(used + extra, hard)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    report = {}
    resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))
    try:
        yield report
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
        report["seconds"] = time.perf_counter() - start
        report["added_rss"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024


def refused(load, message):
    """``load()`` raises CheckFailed matching ``message`` quickly, adding under 64 MiB to the peak RSS."""
    with small_memory() as report, pytest.raises(CheckFailed, match=message) as failed:
        load()
    assert report["added_rss"] < 64 * 2**20 and report["seconds"] < 5, report
    return str(failed.value)


# --- honest models: the worksheets' kinds, trained, load exactly as saved ----------------------

def dense(hidden):
    return keras.Sequential([keras.Input((784,)), *[layers.Dense(n, activation="relu") for n in hidden],
                             layers.Dense(10, activation="softmax")])


def lstm():
    return keras.Sequential([keras.Input((40,)), layers.Embedding(10_000, 32), layers.LSTM(32),
                             layers.Dense(1, activation="sigmoid")])


def embedding():
    return keras.Sequential([keras.Input((40,)), layers.Embedding(10_000, 16), layers.GlobalAveragePooling1D(),
                             layers.Dense(16, activation="relu"), layers.Dense(1, activation="sigmoid")])


def conv2d():
    inputs = keras.Input((28, 28, 1))
    x = layers.MaxPooling2D(2)(layers.Conv2D(32, kernel_size=3, activation="relu")(inputs))
    x = layers.MaxPooling2D(2)(layers.Conv2D(64, kernel_size=3, activation="relu")(x))
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(layers.Flatten()(x)))


def batch_normalization():
    return keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(7, 5), layers.BatchNormalization(),
                             layers.ReLU(), layers.Flatten(), layers.Dense(128), layers.BatchNormalization(),
                             layers.Dropout(0.3), layers.Dense(10, activation="softmax")])


class AugmentingCNN(keras.Model):
    """A subclassed CNN that augments its input first: at inference the augmentation passes images through."""

    def __init__(self):
        super().__init__()
        self.augment = layers.RandomRotation(0.1)
        self.conv = layers.Conv2D(4, 3, activation="relu")
        self.flatten = layers.Flatten()
        self.out = layers.Dense(10, activation="softmax")

    def call(self, x):
        return self.out(self.flatten(self.conv(self.augment(x))))


def augmenting_subclass():
    model = AugmentingCNN()
    model(np.zeros((1, 28, 28, 1), "float32"))
    return model


HONEST = {  # name: (model, optimizer it was trained with, or None: saved untrained and uncompiled)
    "dense 7,850": (lambda: dense([]), None),
    "dense 1.3 M": (lambda: dense([1024, 512]), "adam"),
    "lstm": (lstm, "rmsprop"),
    "embedding": (embedding, "adam"),
    "conv2d functional": (conv2d, "rmsprop"),
    "batch normalization": (batch_normalization, keras.optimizers.AdamW),
    "bfloat16 weights": (lambda: keras.Sequential([keras.Input((784,)), layers.Dense(32, dtype="bfloat16"),
                                                   layers.Dense(10, activation="softmax")]), "adam"),
    "augmentation inside the model": (lambda: keras.Sequential([  # worksheet 5's CNN, as Chollet augments
        keras.Input((28, 28, 1)), keras.Sequential([layers.RandomRotation(0.04), layers.RandomZoom(0.1),
                                                    layers.RandomTranslation(0.08, 0.08)]),
        layers.RandomFlip("horizontal"), layers.RandomContrast(0.1), layers.RandomBrightness(0.1),
        layers.Conv2D(4, 3), layers.Flatten(), layers.Dense(10, activation="softmax")]), "adam"),
    "subclassed, augmenting in call()": (augmenting_subclass, None),  # red team: it could not be exported
}


@pytest.mark.parametrize("kind", HONEST)
def test_the_worksheets_models_load_exactly_as_saved(tmp_path, kind):
    build, optimizer = HONEST[kind]
    model = build()
    shape = checks.input_shape(model)[1:]  # a subclassed model has no input_shape attribute
    x = np.random.default_rng(0).integers(0, 10_000 if shape == (40,) else 2, (8, *shape)).astype("float32")
    if optimizer is not None:  # trained: the file also holds the optimizer's state, which is not loaded
        model.compile(optimizer=optimizer() if callable(optimizer) else optimizer, loss="mse", metrics=["mae"])
        model.fit(x, np.zeros((8, *model.output_shape[1:])), epochs=1, verbose=0)
    exchange.save_model(model, tmp_path / "m.keras")
    loaded = artifacts.load_model(tmp_path, "m.keras")
    assert [w.shape for w in loaded.weights] == [w.shape for w in model.weights]
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), model.get_weights()))
    # At inference: a subclassed model whose call() takes no `training` still augments in predict() (Keras 3.15)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), np.asarray(model(x, training=False)), rtol=0, atol=1e-6)


# --- hostile model files: a real saved model with its weights file rewritten -------------------

def hostile_model(tmp_path, edit):
    """The 784-32-10 model of the mini course, saved as the kernel saves it, then ``edit(h5)`` of its weights."""
    path = tmp_path / "model.keras"
    exchange.save_model(dense([32]), path)
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    weights = io.BytesIO(members["model.weights.h5"])
    with h5py.File(weights, "a") as h5:
        edit(h5)
    members["model.weights.h5"] = weights.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def kernel(h5, **dataset):
    """The first Dense layer's kernel replaced by ``create_dataset(**dataset)``."""
    del h5["layers/dense/vars/0"]
    return h5["layers/dense/vars"].create_dataset("0", **dataset)


def four_gib(h5, written=False):
    """A 32768 x 32768 float32 kernel, exactly 4 GiB: Keras's own guard starts above 4 GiB."""
    huge = kernel(h5, shape=(32768, 32768), dtype="float32", chunks=(1024, 1024), compression="gzip")
    if written:
        huge[:1024, :1024] = 1.0


def many_datasets(h5, count=100_000):
    """``count`` unwritten float32 scalars in one group (h5py's low-level calls: 1.4 s, not 8 s, for 100,000)."""
    extra, scalar = h5.create_group("extra"), h5py.h5s.create(h5py.h5s.SCALAR)
    for i in range(count):
        h5py.h5d.create(extra.id, str(i).encode(), h5py.h5t.IEEE_F32LE, scalar).close()


@pytest.mark.parametrize("edit, message", [
    (four_gib, r"holds a weight of shape \(32768, 32768\) that none of its layers has"),
    (lambda h5: four_gib(h5, written=True), r"holds a weight of shape \(32768, 32768\) that none of its layers"),
    (lambda h5: kernel(h5, shape=(784, 32), dtype=h5py.string_dtype()), "is not an array of numbers"),
    (lambda h5: kernel(h5, shape=(784, 32), dtype=np.dtype([("a", "f4"), ("b", "f4")])),
     "is not an array of numbers"),
    (lambda h5: (h5.__delitem__("layers/dense/vars/0"),
                 h5["layers/dense/vars"].__setitem__("0", h5py.SoftLink("/layers/dense_1/vars/0"))),
     "links or entries that Keras never writes"),
    (lambda h5: many_datasets(h5, 5_001), "holds over 5,000 entries"),
], ids=["4 GiB kernel unwritten", "4 GiB kernel one chunk written", "strings", "structured", "soft link",
        "5,001 entries"])
def test_a_weights_file_declaring_what_no_keras_model_holds_is_refused_before_loading(tmp_path, edit, message):
    path = hostile_model(tmp_path, edit)
    refused(lambda: artifacts.load_model(tmp_path, path.name, name="`model`"), "^`model`'s .*" + message)


@pytest.mark.skipif(bool(jail_problem()), reason="no jail here: its memory limit is what made the fault")
def test_the_4_gib_kernel_is_the_students_failed_check_in_the_jailed_scoring_process(tmp_path):
    """As graded: before, the scoring process ran out of its memory and the run ended as a host fault."""
    from autograder.grader.hidden_tests.launch import score_in_fresh_process

    path = hostile_model(tmp_path, four_gib)
    (tmp_path / "kept" / "00" / "out").mkdir(parents=True)
    path.rename(tmp_path / "kept" / "00" / "out" / "model.keras")
    plans = {"t": {"block": "hidden.expect_param_count(model, 25450)", "seed": 0,
                   "folder": str(tmp_path / "kept" / "00"), "where": "test t"}}
    verdicts, peak = score_in_fresh_process(plans, tmp_path / "kept", memory_bytes=2 * 2**30)
    assert verdicts["t"]["failures"] == ["`model`'s weights file holds a weight of shape (32768, 32768) that none "
                                         "of its layers has, so it is not the model its configuration describes."]
    assert peak < 2**30


def test_a_weights_file_with_100_000_datasets_is_refused_without_walking_them(tmp_path):
    path = hostile_model(tmp_path, many_datasets)
    start = time.perf_counter()
    refused(lambda: artifacts.load_model(tmp_path, path.name), "holds over 5,000 entries")
    assert time.perf_counter() - start < 1


def test_weights_the_config_describes_that_the_file_does_not_hold_are_refused(tmp_path):
    """The right shapes, compressed away: declared sizes are bounded by the file as well as by the config."""
    def all_unwritten(h5):
        for path in ("layers/dense/vars/0", "layers/dense/vars/1", "layers/dense_1/vars/0", "layers/dense_1/vars/1"):
            shape = h5[path].shape
            del h5[path]
            h5.create_dataset(path, shape=shape, dtype="float64", chunks=True, compression="gzip")
        for i in range(4):  # an optimizer's state, within what one may keep
            h5.create_dataset(f"optimizer/vars/{i + 2}", shape=(784, 32), dtype="float64", chunks=True,
                              compression="gzip")

    path = hostile_model(tmp_path, all_unwritten)
    refused(lambda: artifacts.load_model(tmp_path, path.name), r"declares \d+ MB of weights but holds only \d+ KB")


# --- hostile arrays ----------------------------------------------------------------------------

def npy_header(shape, descr="<f8"):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.getvalue()


def test_an_npy_header_declaring_a_terabyte_in_100_bytes_is_refused(tmp_path):
    (tmp_path / "y.npy").write_bytes(npy_header((10**6, 10**6)) + bytes(100))
    message = refused(lambda: artifacts.load_array(tmp_path, "y.npy", "`y`"),
                      r"could not be read as a plain array: its header declares shape \(1000000, 1000000\)")
    assert "the file holds 100 bytes" in message


def test_arrays_that_are_not_one_plain_npy_are_refused(tmp_path):
    np.savez(tmp_path / "y.npz", y=np.zeros(3))
    (tmp_path / "npz.npy").write_bytes((tmp_path / "y.npz").read_bytes())
    refused(lambda: artifacts.load_array(tmp_path, "npz.npy", "`y`"), "not a .npy file written by numpy.save")
    np.save(tmp_path / "structured.npy", np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]))
    refused(lambda: artifacts.load_array(tmp_path, "structured.npy", "`y`"), "not numbers or strings")


@pytest.mark.parametrize("value", [np.arange(12.0).reshape(3, 4), np.asfortranarray(np.ones((3, 2), "int64")),
                                   np.float32(2.5), np.zeros((0, 5)), np.array(["cat", "dog"]), np.array([True])])
def test_honest_arrays_load_exactly_as_saved(tmp_path, value):
    exchange.save_array(value, tmp_path / "y.npy")
    loaded = artifacts.load_array(tmp_path, "y.npy", "`y`")
    assert loaded.dtype == np.asarray(value).dtype and loaded.shape == np.shape(value)
    np.testing.assert_array_equal(loaded, value)


def test_what_one_scoring_process_reads_is_bounded_in_all(tmp_path):
    """Red team: a function returning 512 MB on each of the grader's 7 inputs filled the scoring process's 4 GiB;
    the run failed as no one's, and the wrong answers got no score instead of a zero."""
    import numpy as np

    from autograder.checks import CheckFailed
    from autograder.grader.hidden_tests.artifacts import ReadBudget, load_array

    for i in range(3):
        np.save(tmp_path / f"{i}.npy", np.zeros(80_000))  # 640 KB each
    with ReadBudget(1_500_000):
        load_array(tmp_path, "0.npy", "`r0`")
        load_array(tmp_path, "1.npy", "`r1`")
        with pytest.raises(CheckFailed, match="over 1.43051 MB in all|over the"):
            load_array(tmp_path, "2.npy", "`r2`")
    assert load_array(tmp_path, "2.npy", "`r2`").shape == (80_000,)  # no budget outside a scoring process
