"""One checked way to get a dataset file into the local cache.

Every file named in ``datasets/manifest.json`` is verified against the sha256
of its *uncompressed content* before it is used. Mirrors recompress ``.gz``
files, so hashing the container would reject good copies.

Where files come from, in order:

1. the cache, ``datasets/`` in the project or ``$AUTOGRADER_DATA_DIR``;
2. a local mirror laid out as ``<mirror>/<dataset>/<file>``, given by
   ``--mirror DIR`` or ``$AUTOGRADER_DATA_MIRROR``;
3. the canonical URL, through ``keras.utils.get_file``.

A file reaches the cache only after it has been verified, so a truncated
download or a bad mirror copy never replaces anything.
"""

import functools
import gzip
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

# A source checkout keeps the manifest in its datasets/ folder, beside the
# cache; the student kit (a wheel) carries a copy inside the package.
CHECKOUT = Path(__file__).resolve().parents[2]
_PACKAGED_MANIFEST = Path(__file__).with_name("manifest.json")
SOURCE_CHECKOUT = not _PACKAGED_MANIFEST.is_file()
MANIFEST_PATH = CHECKOUT / "datasets" / "manifest.json" if SOURCE_CHECKOUT else _PACKAGED_MANIFEST

# The IMDB fingerprint covers the labelled reviews only: mirrors may drop the
# unlabelled `unsup` part, the `.feat` files and the URL lists.
IMDB_REVIEW = re.compile(r"^aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")


class DatasetError(RuntimeError):
    """A dataset file is missing, truncated or corrupted; the message says how to fix it."""


@functools.lru_cache(maxsize=1)
def manifest():
    """The manifest, read once per process: every file check consults it."""
    with open(MANIFEST_PATH) as f:
        return {k: v for k, v in json.load(f).items() if not k.startswith("_")}


def data_dir():
    """The cache folder: ``$AUTOGRADER_DATA_DIR``, else the project's ``datasets/`` (or ~/.cache for the kit)."""
    default = CHECKOUT / "datasets" if SOURCE_CHECKOUT else Path.home() / ".cache" / "autograder" / "datasets"
    return Path(os.environ.get("AUTOGRADER_DATA_DIR") or default)


def mirror_dir(mirror=None):
    mirror = mirror or os.environ.get("AUTOGRADER_DATA_MIRROR")
    return Path(mirror) if mirror else None


def fix_command(dataset):
    return f"`autograder data fetch {dataset}` (add `--mirror DIR` when offline)"


def _entry(dataset, fname):
    try:
        return manifest()[dataset]["files"][fname]
    except KeyError:
        raise DatasetError(f"{dataset}/{fname} is not in the manifest {MANIFEST_PATH}.") from None


def read_gzip(path, dataset):
    """The decompressed bytes of ``path``, or a DatasetError naming the file."""
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (EOFError, OSError, zlib.error) as e:
        raise DatasetError(
            f"{dataset} file {path} is truncated or not a valid gzip file ({e}); "
            f"run {fix_command(dataset)} to replace it."
        ) from None


def iter_imdb_reviews(path, dataset="imdb"):
    """Yield ``(member_path, bytes)`` for every labelled review in an aclImdb archive."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if member.isfile() and IMDB_REVIEW.match(member.name):
                    yield member.name, tar.extractfile(member).read()
    except (EOFError, OSError, tarfile.TarError, zlib.error) as e:
        raise DatasetError(
            f"{dataset} file {path} is truncated or not a valid tar.gz archive ({e}); "
            f"run {fix_command(dataset)} to replace it."
        ) from None


def imdb_fingerprint(reviews):
    """sha256 over reviews sorted by path, feeding ``path + NUL + bytes`` for each."""
    digest = hashlib.sha256()
    for name, data in sorted(reviews):
        digest.update(name.encode() + b"\0" + data)
    return digest.hexdigest()


def content_sha256(path, dataset, fname=None):
    """sha256 of what a file holds, whatever container a mirror chose."""
    path = Path(path)
    fname = fname or path.name
    if fname.endswith(".tar.gz"):
        return imdb_fingerprint(iter_imdb_reviews(path, dataset))
    if fname.endswith(".gz"):
        return hashlib.sha256(read_gzip(path, dataset)).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_content(digest, dataset, fname, path, fix=None):
    expected = _entry(dataset, fname)["content_sha256"]
    if digest != expected:
        raise DatasetError(
            f"{dataset} file {path} is corrupted: its content sha256 is {digest[:16]}..., "
            f"expected {expected[:16]}...; {fix or 'run ' + fix_command(dataset) + ' to replace it'}."
        )


def verify_file(path, dataset, fname=None, fix=None):
    """Raise DatasetError unless ``path`` holds the manifest's content for ``fname``."""
    path = Path(path)
    fname = fname or path.name
    if not path.is_file():
        raise DatasetError(f"{dataset} file {path} is missing; run {fix_command(dataset)}.")
    try:
        digest = content_sha256(path, dataset, fname)
    except DatasetError as e:
        if fix is None:
            raise
        raise DatasetError(str(e).split("; run ")[0] + f"; {fix}.") from None
    check_content(digest, dataset, fname, path, fix)


def cached_path(dataset, fname):
    return data_dir() / dataset / fname


def read_verified_gzip(dataset, fname):
    """Decompressed content of a cached ``.gz`` file, verified; fetched first if missing."""
    path = cached_path(dataset, fname)
    if not path.is_file():
        fetch(dataset)
    content = read_gzip(path, dataset)
    check_content(hashlib.sha256(content).hexdigest(), dataset, fname, path)
    return content


def _install(source_file, dataset, fname, fix):
    """Verify ``source_file``, then copy it into the cache atomically."""
    verify_file(source_file, dataset, fname, fix)
    target = cached_path(dataset, fname)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{fname}.", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(source_file, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def _download(dataset, fname, url):
    from keras.utils import get_file

    with tempfile.TemporaryDirectory(dir=data_dir()) as tmp:
        try:
            path = get_file(fname, origin=url, cache_dir=tmp, cache_subdir=".")
        except Exception as e:  # get_file raises bare Exceptions for network errors
            raise DatasetError(
                f"{dataset} file {fname} could not be downloaded from {url} ({e}); "
                f"without internet, run `autograder data fetch {dataset} --mirror DIR` "
                "or set AUTOGRADER_DATA_MIRROR."
            ) from None
        return _install(path, dataset, fname, f"the download from {url} is bad; try again or use --mirror DIR")


def fetch_file(dataset, fname, mirror=None):
    """Make sure the cache holds a verified ``dataset/fname``; return its path."""
    target = cached_path(dataset, fname)
    if target.is_file():
        try:
            verify_file(target, dataset, fname)
            return target
        except DatasetError:
            pass  # replaced below; the bad copy is never used
    mirror = mirror_dir(mirror)
    if mirror is not None:
        source = mirror / dataset / fname
        if not source.is_file():
            raise DatasetError(
                f"{dataset} file {fname} is not in the mirror {mirror} "
                f"(looked for {source}); the mirror must hold <dataset>/<file>."
            )
        return _install(source, dataset, fname, f"the mirror {mirror} holds a bad copy; replace that file or use another mirror")
    try:
        data_dir().mkdir(parents=True, exist_ok=True)
        probe = tempfile.TemporaryFile(dir=data_dir())
    except OSError as e:  # a read-only cache: a jailed kernel cannot fetch anything itself
        raise DatasetError(
            f"{dataset} file {fname} is not in the dataset cache {data_dir()}, which cannot be written here "
            f"({e.strerror}); run {fix_command(dataset)} before running the notebook."
        ) from None
    probe.close()
    return _download(dataset, fname, _entry(dataset, fname)["url"])


def fetch(dataset, mirror=None):
    """Fetch and verify every file of ``dataset``; return their cached paths."""
    if dataset not in manifest():
        raise DatasetError(
            f"unknown dataset {dataset!r}; the manifest has {', '.join(manifest())}."
        )
    return [fetch_file(dataset, fname, mirror) for fname in manifest()[dataset]["files"]]


def verify(dataset):
    """None when every cached file of ``dataset`` is verified, else what is wrong."""
    try:
        for fname in manifest()[dataset]["files"]:
            verify_file(cached_path(dataset, fname), dataset, fname)
    except DatasetError as e:
        return str(e)
    return None
