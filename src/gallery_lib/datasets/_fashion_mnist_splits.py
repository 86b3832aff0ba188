"""`fashion_mnist_splits`: Fashion-MNIST's train/validation/test splits as NumPy arrays."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._fashion_mnist_files import DEBIAN_DATA_DIR, Downloader, load_fashion_mnist

MEAN = 0.2860
"""Mean pixel value of the Fashion-MNIST training images (pixels scaled to [0, 1])."""
STD = 0.3530
"""Standard deviation of the pixel values of the training images (pixels scaled to [0, 1])."""


class Split(NamedTuple):
    """One split: normalised images and their labels, in the same order."""

    images: np.ndarray
    """float32, shape (n, 28, 28), normalised with `MEAN` and `STD`."""
    labels: np.ndarray
    """int64 class indices, shape (n,)."""


class FashionMNISTSplits(NamedTuple):
    """The three splits, which original images each holds, and where the files came from."""

    train: Split
    val: Split
    test: Split
    indices: dict[str, np.ndarray]
    """Which original images (indices into the training or test file) each split holds."""
    source: str
    """Where the files were read from (and whether they were downloaded)."""


def _check_size(name: str, value: int | None, available: int) -> None:
    if value is not None and not 0 < value <= available:
        raise ValueError(f"{name}={value} is out of range: choose 1 to {available}, or None.")


def fashion_mnist_splits(
    *,
    val_size: int = 5000,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    data_dir: str | Path | None = DEBIAN_DATA_DIR,
    cache_dir: str | Path | None = None,
    download: bool = True,
    downloader: Downloader | None = None,
) -> FashionMNISTSplits:
    """Fashion-MNIST split as `FashionMNISTDataModule` splits it, as NumPy arrays.

    A seeded permutation of the 60,000 training images gives a validation set of `val_size`
    images and a training set of the rest (or of its first `train_size`); the test set is the
    official 10,000 images (or a seeded subset of `test_size`, in their original order).
    For code that keeps its data in Jax: `jnp.asarray(splits.train.images)` puts it on the
    device.

    Args:
        val_size: Number of training images held out for validation.
        train_size: Use only this many training images; `None` uses all the rest.
        test_size: Use only this many test images; `None` uses all 10,000.
        seed: Seed of the split and of the subsets.
        data_dir: A folder that may already hold the IDX files (default: Debian's).
        cache_dir: Download folder (see `load_fashion_mnist`).
        download: Whether to download the files when they are not found.
        downloader: Replaces the urllib download, e.g. in tests.

    Raises:
        ValueError: A size is out of range (the message gives the range).

    Examples:
        >>> splits = fashion_mnist_splits(train_size=100, test_size=10)
        >>> splits.train.images.shape, splits.val.labels.shape, splits.test.images.dtype
        ((100, 28, 28), (5000,), dtype('float32'))
    """
    _check_size("val_size", val_size, 59999)
    _check_size("train_size", train_size, 60000 - val_size)
    _check_size("test_size", test_size, 10000)
    data = load_fashion_mnist(
        data_dir, cache_dir=cache_dir, download=download, downloader=downloader
    )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.train_labels))
    val_idx, train_idx = order[:val_size], order[val_size:]
    if train_size is not None:
        train_idx = train_idx[:train_size]
    test_idx = np.arange(len(data.test_labels))
    if test_size is not None:
        test_idx = np.sort(rng.permutation(test_idx)[:test_size])

    def split(images: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> Split:
        x = (images[idx].astype(np.float32) / 255.0 - MEAN) / STD
        return Split(x, labels[idx].astype(np.int64))

    return FashionMNISTSplits(
        train=split(data.train_images, data.train_labels, train_idx),
        val=split(data.train_images, data.train_labels, val_idx),
        test=split(data.test_images, data.test_labels, test_idx),
        indices={"train": train_idx, "val": val_idx, "test": test_idx},
        source=data.source,
    )
