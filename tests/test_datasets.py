"""The dataset loaders on the real files from the mirror."""

import gzip
import json
import shutil

import numpy as np
import pytest

from autograder.cli import run
from autograder.datasets import DatasetError, download, fashion_mnist, imdb, mnist

# Published label counts (../shared/datasets/README.md).
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("module", [mnist, fashion_mnist])
def test_idx_datasets_have_keras_shapes_and_dtypes(module):
    (x_train, y_train), (x_test, y_test) = module.load_data()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert x_train.max() == 255 and y_train.max() == 9


def test_mnist_label_counts_match_the_published_ones():
    (_, y_train), (_, y_test) = mnist.load_data()
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == MNIST_TEST_COUNTS


def test_fashion_mnist_is_balanced():
    (_, y_train), (_, y_test) = fashion_mnist.load_data()
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist", "imdb"])
def test_cached_files_match_the_manifest_content_checksums(dataset):
    assert download.verify(dataset) is None
    for fname, entry in download.manifest()[dataset]["files"].items():
        path = download.cached_path(dataset, fname)
        assert download.content_sha256(path, dataset) == entry["content_sha256"]


def test_manifest_matches_the_mirror_readme_values():
    # The values were copied from ../shared/datasets/README.md; keep them honest.
    readme = (download.CHECKOUT.parent / "shared" / "datasets" / "README.md")
    if not readme.is_file():
        pytest.skip("no ../shared/datasets/README.md beside the project")
    text = readme.read_text()
    for entry in download.manifest().values():
        for meta in entry["files"].values():
            assert meta["content_sha256"] in text


# --- IMDB ------------------------------------------------------------------------

def test_imdb_sizes_and_balanced_labels():
    (x_train, y_train), (x_test, y_test) = imdb.load_data()
    assert len(x_train) == len(y_train) == 25000
    assert len(x_test) == len(y_test) == 25000
    assert y_train.sum() == 12500 and y_test.sum() == 12500
    assert x_train.dtype == object and isinstance(x_train[0], list)


def test_imdb_word_index_ranks_training_words_by_frequency():
    index = imdb.get_word_index()
    ranked = sorted(index, key=index.get)
    assert ranked[:5] == ["the", "and", "a", "of", "to"]
    assert sorted(index.values()) == list(range(1, len(index) + 1))
    assert imdb.tokenize("Don't<br />GO, it's a 10/10 movie!") == ["don't", "go", "it's", "a", "10", "10", "movie"]


def _keras_format_npz(path):
    """Our encoding, raw ranks in path order, written the way keras ships imdb.npz."""
    cache = np.load(download.cached_path("imdb", "imdb_encoded.npz"))
    arrays = {}
    for split in ("train", "test"):
        flat, lengths = cache[f"{split}_tokens"], cache[f"{split}_lengths"]
        seqs = np.empty(len(lengths), dtype=object)
        for i, seq in enumerate(np.split(flat, np.cumsum(lengths)[:-1])):
            seqs[i] = seq.tolist()
        arrays[f"x_{split}"], arrays[f"y_{split}"] = seqs, cache[f"{split}_labels"]
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def keras_reference(tmp_path_factory, course_data):
    """keras.datasets.imdb.load_data itself, reading our encoding instead of its download."""
    from unittest import mock

    from keras.src.datasets import imdb as keras_imdb

    imdb.get_word_index()  # the cache exists
    npz = _keras_format_npz(tmp_path_factory.mktemp("keras") / "imdb.npz")

    def load(**kwargs):
        with mock.patch.object(keras_imdb, "get_file", return_value=str(npz)):
            return keras_imdb.load_data(**kwargs)

    return load


@pytest.mark.parametrize("kwargs", [
    {},
    {"num_words": 10000},
    {"num_words": 5000, "skip_top": 20},
    {"maxlen": 100},
    {"start_char": None, "index_from": 0},
    {"num_words": 1000, "oov_char": None, "seed": 7},
], ids=str)
def test_imdb_arguments_behave_as_in_keras(keras_reference, kwargs):
    (x_train, y_train), (x_test, y_test) = imdb.load_data(**kwargs)
    (kx_train, ky_train), (kx_test, ky_test) = keras_reference(**kwargs)
    assert np.array_equal(y_train, ky_train) and np.array_equal(y_test, ky_test)
    assert len(x_train) == len(kx_train) and len(x_test) == len(kx_test)
    assert all(a == b for a, b in zip(x_train, kx_train))
    assert all(a == b for a, b in zip(x_test, kx_test))


def test_imdb_conventions_on_a_review():
    (x, _), _ = imdb.load_data(num_words=100, skip_top=10)
    assert all(seq[0] == 2 for seq in x[:50])  # start_char 1 < skip_top becomes oov, as in keras
    (x, _), _ = imdb.load_data(num_words=100)
    assert all(seq[0] == 1 and max(seq) < 100 for seq in x)
    (x, _), _ = imdb.load_data(maxlen=50)
    assert 0 < len(x) < 25000 and all(len(seq) < 50 for seq in x)


def test_imdb_build_is_deterministic(tmp_path, monkeypatch):
    """A second build from scratch, in another cache, gives the same word index and encoding."""
    first = json.loads(download.cached_path("imdb", "imdb_encoded.json").read_text())
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(tmp_path))
    second = imdb.build_cache()
    assert (tmp_path / "imdb" / "imdb_encoded.npz").is_file()
    assert second["word_index_sha256"] == first["word_index_sha256"]
    assert second["npz_sha256"] == first["npz_sha256"]


# --- bad files -------------------------------------------------------------------

def _mirror_with(tmp_path, dataset, fname, content):
    mirror = tmp_path / "mirror"
    (mirror / dataset).mkdir(parents=True)
    (mirror / dataset / fname).write_bytes(content)
    return mirror


def test_a_truncated_mirror_file_is_rejected_with_one_clear_sentence(tmp_path, isolated_cache):
    good = download.cached_path("mnist", "t10k-labels-idx1-ubyte.gz")
    whole = (download.CHECKOUT / "datasets" / "mnist" / good.name).read_bytes()
    mirror = _mirror_with(tmp_path, "mnist", good.name, whole[: len(whole) // 2])
    with pytest.raises(DatasetError) as err:
        download.fetch_file("mnist", good.name, mirror=mirror)
    message = str(err.value)
    assert "truncated" in message and good.name in message and str(mirror) in message
    assert "\n" not in message and "Traceback" not in message
    assert not good.exists()  # nothing half-copied into the cache


def test_a_corrupted_mirror_file_is_rejected_and_the_cache_is_kept(tmp_path, isolated_cache):
    fname = "t10k-labels-idx1-ubyte.gz"
    original = download.CHECKOUT / "datasets" / "mnist" / fname
    content = bytearray(gzip.decompress(original.read_bytes()))
    content[100] ^= 0xFF  # one flipped label byte: valid gzip, wrong content
    mirror = _mirror_with(tmp_path, "mnist", fname, gzip.compress(bytes(content)))
    cached = download.cached_path("mnist", fname)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not gzip")  # a broken cache entry the fetch must replace
    with pytest.raises(DatasetError, match=r"corrupted: its content sha256 is .*expected ff7bcfd416de3373"):
        download.fetch_file("mnist", fname, mirror=mirror)
    assert cached.read_bytes() == b"not gzip"  # the bad mirror copy did not overwrite anything


def test_a_corrupted_cache_file_is_never_used(isolated_cache, capsys):
    shutil.copytree(download.CHECKOUT / "datasets" / "mnist", isolated_cache / "mnist")
    path = isolated_cache / "mnist" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\0\0\x08\x01" + bytes(60004)))
    with pytest.raises(DatasetError) as err:
        mnist.load_data()
    assert str(path) in str(err.value) and "autograder data fetch mnist" in str(err.value)
    assert run(["data", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"mnist: mnist file {path} is corrupted" in out
    assert run(["data", "fetch", "mnist"]) == 0  # the mirror repairs it
    assert download.verify("mnist") is None


def test_cli_errors_are_one_sentence(capsys, tmp_path, isolated_cache):
    assert run(["data", "fetch", "cifar"]) == 2
    assert capsys.readouterr().err.strip() == (
        "autograder: unknown dataset 'cifar'; choose from mnist, fashion-mnist, imdb."
    )
    assert run(["data", "fetch", "mnist", "--mirror", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not in the mirror" in err


def test_data_verify_and_info_report_every_dataset(capsys):
    assert run(["data", "verify"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "mnist: verified", "fashion-mnist: verified", "imdb: verified"]
    assert run(["data", "info"]) == 0
    out = capsys.readouterr().out
    assert "aclImdb_v1.tar.gz" in out and "https://ai.stanford.edu/" in out
