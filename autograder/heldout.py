"""Data the grader prepares itself for hidden tests.

Hidden tests score a student's model on these arrays, loaded fresh from the
verified cache, never on the student's own `x_test` (which a notebook may
have changed). Each function documents the input format the worksheet asks
students to train on.
"""

import functools

import numpy as np

from .datasets import fashion_mnist, imdb, mnist

IMDB_WORDS = 10_000
IMDB_VALIDATION = 10_000  # worksheet 3 holds out the first 10,000 training reviews


def scale_images(images):
    """uint8 pixels to float32 in [0, 1]: the worksheets' normalisation."""
    return np.asarray(images, dtype=np.float32) / 255.0


def mnist_test():
    """MNIST test split flattened to (10000, 784) in [0, 1], integer labels."""
    _, (x, y) = mnist.load_data()
    return scale_images(x.reshape(len(x), 28 * 28)), y


def fashion_mnist_test():
    """Fashion-MNIST test split as (10000, 28, 28) in [0, 1], integer labels."""
    _, (x, y) = fashion_mnist.load_data()
    return scale_images(x), y


def multi_hot(sequences, dimension=IMDB_WORDS):
    """Reference multi-hot encoding: row i has 1.0 at every index in sequences[i]."""
    out = np.zeros((len(sequences), dimension), dtype=np.float32)
    for i, seq in enumerate(sequences):
        out[i, np.asarray(seq, dtype=int)] = 1.0
    return out


@functools.lru_cache(maxsize=1)
def _imdb(num_words):
    return imdb.load_data(num_words=num_words)


def imdb_multi_hot(split, num_words=IMDB_WORDS):
    """IMDB reviews as multi-hot vectors and float labels.

    `split` is "test", "train", or "partial_train" (the training reviews
    after the 10,000 held out for validation, which the models saw).
    """
    (x_train, y_train), (x_test, y_test) = _imdb(num_words)
    x, y = {
        "test": (x_test, y_test),
        "train": (x_train, y_train),
        "partial_train": (x_train[IMDB_VALIDATION:], y_train[IMDB_VALIDATION:]),
    }[split]
    return multi_hot(x, num_words), y.astype(np.float32)


def imdb_padded_test(maxlen, num_words=IMDB_WORDS):
    """IMDB test reviews padded (and truncated) at the front to `maxlen`, as pad_sequences does."""
    from keras.utils import pad_sequences

    _, (x, y) = _imdb(num_words)
    return pad_sequences(x, maxlen=maxlen), y


def imdb_encode(text, num_words=IMDB_WORDS, start_char=1, oov_char=2, index_from=3):
    """Reference encoding of raw text with `imdb.load_data`'s defaults.

    Words outside the training vocabulary are skipped, as in the test split;
    known words ranked beyond `num_words` become `oov_char`.
    """
    index = imdb.get_word_index()
    seq = [start_char]
    for word in imdb.tokenize(text):
        if word in index:
            i = index[word] + index_from
            seq.append(i if i < num_words else oov_char)
    return seq


def imdb_test_texts(count=50):
    """The first `count` test reviews (after keras's shuffle), decoded to text with the full vocabulary."""
    _, (x, _) = _imdb(None)
    words = {i + 3: w for w, i in imdb.get_word_index().items()}
    return [" ".join(words[i] for i in seq if i in words) for seq in x[:count]]
