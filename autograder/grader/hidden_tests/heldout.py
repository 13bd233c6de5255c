"""Data the grader prepares itself, and its reference answers.

Hidden checks score a student's model on these arrays, loaded in the
grader's own process from the verified cache, never on anything from the
student's kernel. `for_model` shapes a dataset for the model at hand, so a
model that takes (784,), (28, 28) or (28, 28, 1) images is scored alike.
"""

import functools
import json

import numpy as np

from ...datasets import download, fashion_mnist, imdb, mnist

IMDB_WORDS = 10_000
IMDB_VALIDATION = 10_000  # worksheet 3 holds out the first 10,000 training reviews

DESCRIPTIONS = {
    "mnist_test": "the MNIST test set",
    "mnist_train": "the MNIST training set",
    "fashion_mnist_test": "the Fashion-MNIST test set",
    "fashion_mnist_train": "the Fashion-MNIST training set",
    "imdb_test": "the IMDB test reviews",
    "imdb_train": "the IMDB training reviews",
    "imdb_partial_train": "the 15,000 IMDB training reviews after the validation split",
}


def scale_images(images):
    """uint8 pixels to float32 in [0, 1]: the worksheets' normalisation."""
    return np.asarray(images, dtype=np.float32) / 255.0


@functools.lru_cache(maxsize=None)
def _images(name):
    dataset, split = name.rsplit("_", 1)
    module = {"mnist": mnist, "fashion_mnist": fashion_mnist}[dataset]
    train, test = module.load_data()
    x, y = train if split == "train" else test
    return scale_images(x), y


def labels(name):
    """The labels of an image split, e.g. ``labels("mnist_train")``."""
    return _images(name)[1]


def size(name):
    """The number of examples in a held-out split."""
    if name.startswith("imdb_"):
        return len(imdb_sequences(name.removeprefix("imdb_"))[1])
    return len(labels(name))


def preload(names):
    """The held-out splits among ``names`` loaded into this process's caches (the warm scoring process)."""
    for name in sorted(set(names) & set(DESCRIPTIONS)):
        if name.startswith("imdb_"):
            imdb_sequences(name.removeprefix("imdb_"))
        else:
            _images(name)


@functools.lru_cache(maxsize=1)
def _mnist_reference():
    x, y = _images("mnist_train")
    flat = x.reshape(len(x), -1)
    return flat, y, (flat ** 2).sum(axis=1)


def nearest_mnist_labels(images, k=3):
    """The majority label of the ``k`` nearest MNIST training images: a reader that needs no training."""
    reference, reference_labels, norms = _mnist_reference()
    queries = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    distances = norms[None, :] - 2 * queries @ reference.T
    nearest = np.argpartition(distances, k, axis=1)[:, :k]
    return np.array([np.bincount(reference_labels[row], minlength=10).argmax() for row in nearest])


@functools.lru_cache(maxsize=2)
def _imdb(num_words):
    return imdb.load_data(num_words=num_words)


def imdb_sequences(split, num_words=IMDB_WORDS):
    """IMDB reviews as lists of word indices (keras's default encoding) and labels."""
    (x_train, y_train), (x_test, y_test) = _imdb(num_words)
    return {
        "test": (x_test, y_test),
        "train": (x_train, y_train),
        "partial_train": (x_train[IMDB_VALIDATION:], y_train[IMDB_VALIDATION:]),
    }[split]


def multi_hot(sequences, dimension=IMDB_WORDS, dtype=np.float32):
    """Reference multi-hot encoding: row i has 1 at every index in sequences[i]."""
    out = np.zeros((len(sequences), dimension), dtype=dtype)
    for i, seq in enumerate(sequences):
        out[i, np.asarray(seq, dtype=int)] = 1.0
    return out


def for_model(name, model, rows=None):
    """Dataset ``name`` as (x, y), shaped for ``model``'s input; only the examples at ``rows``, if given.

    The arrays are built once per input format: several checks of one
    notebook score on the same data. Multi-hot IMDB rows are uint8 (a
    quarter of float32's memory; Dense layers compute in float32 either way).
    """
    from ...checks import _layers, input_shape

    shape = input_shape(model)
    embedding = type(_layers(model)[0]).__name__ == "Embedding"
    x, y = _shaped(name, shape, embedding)
    if rows is not None:
        rows = np.asarray(rows)
        return x[rows], y[rows]
    return x, y


@functools.lru_cache(maxsize=8)
def _shaped(name, shape, embedding):
    if name.startswith(("mnist_", "fashion_mnist_")):
        x, y = _images(name)
        return x.reshape((len(x), *shape[1:])) if None not in shape[1:] else x, y
    if name.startswith("imdb_"):
        sequences, y = imdb_sequences(name.removeprefix("imdb_"))
        if len(shape) == 2 and shape[1] == IMDB_WORDS and not embedding:
            return multi_hot(sequences, dtype=np.uint8), y.astype(np.float32)
        from keras.utils import pad_sequences

        return pad_sequences(sequences, maxlen=shape[1]), y
    raise KeyError(f"unknown held-out dataset {name!r}")


def imdb_encode(text, num_words=IMDB_WORDS, start_char=1, oov_char=2, index_from=3):
    """Reference encoding of raw text with `imdb.load_data`'s defaults.

    Words outside the training vocabulary are skipped, as in the test split;
    known words ranked beyond `num_words` become `oov_char`.
    """
    index = _word_index()
    seq = [start_char]
    for word in imdb.tokenize(text):
        if word in index:
            i = index[word] + index_from
            seq.append(i if i < num_words else oov_char)
    return seq


@functools.lru_cache(maxsize=1)
def _word_index():
    return imdb.get_word_index()


RAW_REVIEWS = 2000


def prepare():
    """Build what the grader reads beyond the datasets themselves (``autograder data fetch`` calls it)."""
    raw_test_reviews()


def data_problem():
    """Why this host cannot grade (a dataset, the IMDB encoding or the grader's reviews missing), or ''.

    Both jails mount the data read-only, so nothing can be built while grading:
    a host without it is at fault, never the student.
    """
    import socket

    for name, entry in download.manifest().items():
        for fname in entry["files"]:
            if not download.cached_path(name, fname).is_file():
                return f"{socket.gethostname()} lacks the {name} dataset (run `autograder data fetch` there)"
    problem = imdb.cache_problem()
    if problem:
        return f"on {socket.gethostname()}, {problem}"
    if not download.cached_path("imdb", f"raw_test_reviews_{RAW_REVIEWS}.json").is_file():
        return f"{socket.gethostname()} lacks the grader's sample of raw IMDB reviews (run `autograder data fetch` there)"
    return ""


@functools.lru_cache(maxsize=1)
def raw_test_reviews(count=RAW_REVIEWS):
    """``count`` raw test reviews as written (HTML breaks, capitals, punctuation), cached as JSON."""
    cache = download.cached_path("imdb", f"raw_test_reviews_{count}.json")
    if cache.is_file():
        return json.loads(cache.read_text())
    archive = download.fetch_file("imdb", imdb.ARCHIVE)
    texts = sorted((name, data.decode("utf-8")) for name, data in download.iter_imdb_reviews(archive)
                   if name.startswith("aclImdb/test/"))
    picked = [texts[i][1] for i in np.random.default_rng(0).choice(len(texts), size=count, replace=False)]
    cache.write_text(json.dumps(picked))
    return picked
