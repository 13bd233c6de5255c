"""MNIST handwritten digits, with the same API as `keras.datasets.mnist`.

Licence: CC BY-SA 3.0, Yann LeCun and Corinna Cortes. Read from the original
IDX files, whose content sha256 sits in `datasets/manifest.json`.
"""

from .idx import load_idx_dataset


def load_data():
    """Loads the MNIST dataset of 28x28 grey digits, 60,000 train and 10,000 test.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: uint8 arrays of shapes
        (60000, 28, 28), (60000,), (10000, 28, 28) and (10000,); pixels
        0-255 with white ink on black, labels 0-9.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    assert x_train.shape == (60000, 28, 28)
    ```
    """
    return load_idx_dataset("mnist")
