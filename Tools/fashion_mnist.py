"""Fashion-MNIST as dmilo uses it: Debian's `dataset-fashion-mnist` IDX files, 28x28 zero-padded by 2 pixels
to 32x32, 1 channel, mapped to model units [-1, 1] (background -1).

This is THE transform: training, fixtures, test images and benchmark measurements all go through `load_split`.
"""
import gzip
import os

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {"train": "train-images-idx3-ubyte.gz", "test": "t10k-images-idx3-ubyte.gz"}


def read_idx_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = np.frombuffer(data[:16], dtype=">u4")
    if magic != 2051:
        raise ValueError(f"{path}: not an IDX image file (magic {magic})")
    return np.frombuffer(data[16:], dtype=np.uint8).reshape(int(n), int(rows), int(cols))


def to_model_units(u8):
    """uint8 (N,28,28) -> float32 (N,1,32,32) in [-1,1]; padding pixels are -1 (black background)."""
    x = u8.astype(np.float32) / 255.0 * 2.0 - 1.0
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)), constant_values=-1.0)
    return x[:, None, :, :]


def load_split(split, data_dir=None):
    data_dir = data_dir or os.environ.get("FASHION_MNIST_DIR", DEFAULT_DIR)
    return to_model_units(read_idx_images(os.path.join(data_dir, FILES[split])))


def padded_u8(split, data_dir=None):
    """The same images as 8-bit 32x32 (value 0 border), i.e. the PNGs sensors would send."""
    data_dir = data_dir or os.environ.get("FASHION_MNIST_DIR", DEFAULT_DIR)
    return np.pad(read_idx_images(os.path.join(data_dir, FILES[split])), ((0, 0), (2, 2), (2, 2)))
