"""Reader for the IDX files of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/)."""

import numpy as np

from .download import DatasetError, read_verified_gzip

FILES = (
    ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
)


def parse_idx(content, name):
    """IDX bytes to a uint8 array: magic 0x0000 0x08 <ndim>, ndim big-endian sizes, data."""
    if len(content) < 4 or content[:3] != b"\0\0\x08":
        raise DatasetError(f"{name} is not an unsigned-byte IDX file.")
    ndim = content[3]
    shape = tuple(np.frombuffer(content, ">u4", count=ndim, offset=4).astype(int))
    return np.frombuffer(content, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_idx_dataset(dataset):
    """``(x_train, y_train), (x_test, y_test)`` of an MNIST-layout dataset, as uint8."""
    return tuple(
        tuple(parse_idx(read_verified_gzip(dataset, f), f"{dataset}/{f}") for f in pair)
        for pair in FILES
    )
