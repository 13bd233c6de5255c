"""Course datasets with the `keras.datasets` API, from a verified local cache.

```python
from autograder.datasets import mnist, fashion_mnist, imdb
(x_train, y_train), (x_test, y_test) = mnist.load_data()
```
"""

from . import fashion_mnist, imdb, mnist
from .download import DatasetError, data_dir, fetch, manifest, verify

__all__ = ["mnist", "fashion_mnist", "imdb", "DatasetError", "data_dir", "fetch", "manifest", "verify"]
