"""Fashion-MNIST, with the same API as `keras.datasets.fashion_mnist`.

Licence: MIT, Zalando SE (https://github.com/zalandoresearch/fashion-mnist).
Read from the original IDX files, checked against `datasets/manifest.json`.
"""

from .idx import load_idx_dataset

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def load_data():
    """Loads Fashion-MNIST: 28x28 grey images of clothes in 10 classes.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: uint8 arrays of shapes
        (60000, 28, 28), (60000,), (10000, 28, 28) and (10000,); labels
        0-9 index `CLASS_NAMES`.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    print(CLASS_NAMES[y_train[0]])  # Ankle boot
    ```
    """
    return load_idx_dataset("fashion-mnist")
