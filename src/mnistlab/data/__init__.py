"""Data: MNIST-format IDX and label-first CSV files in, uint8 arrays out, and the arrays' helpers.

The package's parts: ``idx`` and ``csv`` (file formats), ``sources`` (the bundled MNIST, folders,
``load_dataset``), ``arrays`` (validation split, float conversion, one-hot, fingerprint, class spread). Everything
a caller needs is importable from ``mnistlab.data`` itself.
"""

from .arrays import class_spread_warning, fingerprint, one_hot, split_validation, to_float
from .csv import load_csv
from .idx import PIXELS, load_idx
from .sources import Dataset, bundled_mnist_dir, cache_datasets, export_csv, load_dataset, load_images_labels

__all__ = ["PIXELS", "Dataset", "bundled_mnist_dir", "cache_datasets", "class_spread_warning", "export_csv", "fingerprint", "load_csv", "load_dataset",
           "load_idx", "load_images_labels", "one_hot", "split_validation", "to_float"]
