"""IMDB movie reviews, with the same API as `keras.datasets.imdb`.

Built from the original Large Movie Review Dataset (aclImdb_v1.tar.gz):
Andrew L. Maas et al., "Learning Word Vectors for Sentiment Analysis",
ACL 2011, released for research use.

Encoding, done once and cached next to the archive:

- `tokenize` lowercases a review, turns HTML tags such as `<br />` into
  spaces, unescapes entities and keeps runs of letters and digits, with
  inner apostrophes (`don't`, `90's`).
- Words are ranked by how often they occur in the 25,000 training reviews,
  most frequent first, ties broken alphabetically; the most frequent word has
  index 1, as in keras. Test-set words never seen in training are skipped,
  as keras documents for its own copy.
"""

import collections
import gc
import hashlib
import html
import json
import re
import time

import numpy as np

from .download import (
    IMDB_REVIEW,
    DatasetError,
    cached_path,
    check_content,
    fetch_file,
    fix_command,
    imdb_fingerprint,
    iter_imdb_reviews,
)

ARCHIVE = "aclImdb_v1.tar.gz"
# Bump when `tokenize` or the ranking changes: the cache is rebuilt.
ENCODING_VERSION = 1

_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def tokenize(text):
    """Split a review into lowercase words: `"Don't<br />GO!"` gives `["don't", "go"]`."""
    return _WORD.findall(html.unescape(_TAG.sub(" ", text.lower())))


def _paths():
    folder = cached_path("imdb", ARCHIVE).parent
    return folder / "imdb_encoded.npz", folder / "imdb_word_index.json", folder / "imdb_encoded.json"


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_cache():
    """Tokenize the archive and write the encoded reviews and the word index."""
    started = time.perf_counter()
    archive = fetch_file("imdb", ARCHIVE)
    reviews = sorted(iter_imdb_reviews(archive))
    source_sha256 = imdb_fingerprint(reviews)
    check_content(source_sha256, "imdb", ARCHIVE, archive)

    splits = {"train": [], "test": []}
    for name, data in reviews:
        split, polarity = IMDB_REVIEW.match(name).group(1, 2)
        splits[split].append((tokenize(data.decode("utf-8")), polarity == "pos"))
    counts = collections.Counter(w for words, _ in splits["train"] for w in words)
    ranked = sorted(counts, key=lambda w: (-counts[w], w))
    word_index = {w: i for i, w in enumerate(ranked, start=1)}

    arrays = {}
    for split, items in splits.items():
        encoded = [[word_index[w] for w in words if w in word_index] for words, _ in items]
        arrays[f"{split}_tokens"] = np.fromiter(
            (i for seq in encoded for i in seq), dtype=np.int32
        )
        arrays[f"{split}_lengths"] = np.array([len(s) for s in encoded], dtype=np.int64)
        arrays[f"{split}_labels"] = np.array([label for _, label in items], dtype=np.int64)

    npz_path, index_path, meta_path = _paths()
    np.savez(npz_path, **arrays)
    index_path.write_text(json.dumps(word_index))
    meta = {
        "encoding_version": ENCODING_VERSION,
        "source_content_sha256": source_sha256,
        "npz_sha256": _sha256(npz_path),
        "word_index_sha256": _sha256(index_path),
        "build_seconds": round(time.perf_counter() - started, 2),
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta


def cache_problem():
    """Why the encoded reviews are not ready to read (not built, or built by another version), or ''."""
    npz_path, index_path, meta_path = _paths()
    try:
        fresh = json.loads(meta_path.read_text()).get("encoding_version") == ENCODING_VERSION
    except (OSError, ValueError):
        fresh = False
    if not (fresh and npz_path.is_file() and index_path.is_file()):
        return f"the IMDB encoding is not built in {meta_path.parent} (run {fix_command('imdb')})"
    return ""


def _load_cache():
    """The verified cached encoding, built first when missing or stale."""
    npz_path, index_path, meta_path = _paths()
    try:
        meta = json.loads(meta_path.read_text())
        fresh = meta.get("encoding_version") == ENCODING_VERSION
    except (OSError, ValueError):
        fresh = False
    if not fresh:
        meta = build_cache()
    for path, key in ((npz_path, "npz_sha256"), (index_path, "word_index_sha256")):
        if not path.is_file() or _sha256(path) != meta[key]:
            raise DatasetError(
                f"imdb cache file {path} is missing or corrupted; delete {meta_path} "
                f"and run {fix_command('imdb')} to rebuild it."
            )
    return np.load(npz_path), index_path


def _gather(tokens, lengths, order):
    """Reviews ``order`` of a flat token array, as a new flat array and lengths."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    lengths = lengths[order]
    new_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    positions = np.arange(lengths.sum()) + np.repeat(starts[order] - new_starts, lengths)
    return tokens[positions], lengths


def _as_object_array(tokens, lengths):
    """Lists of int in an object array, as keras returns them."""
    # 50,000 new lists would trigger the cyclic GC dozens of times for
    # nothing: they hold only ints. Pausing it halves the cached load time.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        flat = tokens.tolist()
        ends = np.cumsum(lengths).tolist()
        out = np.empty(len(ends), dtype=object)
        start = 0
        for i, end in enumerate(ends):
            out[i] = flat[start:end]
            start = end
    finally:
        if was_enabled:
            gc.enable()
    return out


def load_data(
    path=None,
    num_words=None,
    skip_top=0,
    maxlen=None,
    seed=113,
    start_char=1,
    oov_char=2,
    index_from=3,
    **kwargs,
):
    """Loads the IMDB reviews as sequences of word indices, like `keras.datasets.imdb`.

    Args:
        path: ignored; kept for keras compatibility (the cache is `datasets/imdb/`).
        num_words: keep the `num_words` most frequent words; others become `oov_char`.
        skip_top: the most frequent words to turn into `oov_char`.
        maxlen: drop reviews whose sequence (with `start_char`) is `maxlen` or longer.
        seed: seed of the shuffle, applied to train then test as keras does.
        start_char: index put at the start of every review (None for none).
        oov_char: index of cut-out words (None to drop them).
        index_from: offset added to every word index.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: object arrays of lists of int,
        and int64 labels (1 = positive), 25,000 reviews in each split.

    Example:

    ```python
    (x_train, y_train), _ = imdb.load_data(num_words=10000)
    assert max(max(seq) for seq in x_train) < 10000
    ```
    """
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments: {sorted(kwargs)}")
    cache, _ = _load_cache()
    rng = np.random.RandomState(seed)
    parts = []
    for split in ("train", "test"):
        labels = cache[f"{split}_labels"]
        order = np.arange(len(labels))
        rng.shuffle(order)
        tokens, lengths = _gather(cache[f"{split}_tokens"], cache[f"{split}_lengths"], order)
        tokens = tokens.astype(np.int64) + index_from
        if start_char is not None:
            heads = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
            with_start = np.empty(len(tokens) + len(lengths), dtype=np.int64)
            is_head = np.zeros(len(with_start), dtype=bool)
            is_head[heads] = True
            with_start[is_head] = start_char
            with_start[~is_head] = tokens
            tokens, lengths = with_start, lengths + 1
        if maxlen:
            keep = np.flatnonzero(lengths < maxlen)
            tokens, lengths = _gather(tokens, lengths, keep)
            labels = labels[order][keep]
        else:
            labels = labels[order]
        parts.append([tokens, lengths, labels])
    if maxlen and not all(len(p[2]) for p in parts):
        raise ValueError(
            f"After filtering for sequences shorter than maxlen={maxlen}, "
            "no sequence was kept. Increase maxlen."
        )

    if not num_words:
        num_words = max(int(p[0].max()) for p in parts if len(p[0]))
    for part in parts:
        tokens, lengths, _ = part
        inside = (tokens >= skip_top) & (tokens < num_words)
        if oov_char is not None:
            part[0] = np.where(inside, tokens, oov_char)
        else:
            review = np.repeat(np.arange(len(lengths)), lengths)
            part[0] = tokens[inside]
            part[1] = np.bincount(review[inside], minlength=len(lengths))
    return tuple((_as_object_array(t, n), y) for t, n, y in parts)


def get_word_index(path=None):
    """A dict from word to its rank (1 = most frequent in the training reviews).

    Example:

    ```python
    index = imdb.get_word_index()
    inverted = {i + 3: w for w, i in index.items()}  # index_from=3
    ```
    """
    _, index_path = _load_cache()
    with open(index_path) as f:
        return json.load(f)
