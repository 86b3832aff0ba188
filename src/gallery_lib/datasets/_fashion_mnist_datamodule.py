"""`FashionMNISTDataModule`: Fashion-MNIST as a Lightning data module, fully held in memory."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, TensorDataset

from ._fashion_mnist_files import (
    DEBIAN_DATA_DIR,
    FASHION_MNIST_CLASSES,
    Downloader,
    locate_fashion_mnist,
)
from ._fashion_mnist_splits import Split, _check_size, fashion_mnist_splits


class InMemoryDataset(TensorDataset):
    """A `TensorDataset` whose `DataLoader` batches are cut with one indexing operation.

    A `DataLoader` fetches a batch sample by sample and then stacks the samples, unless the
    dataset has a `__getitems__` method: here it indexes each tensor once with all the batch's
    indices, which is several times faster for small images. Use it with `collate_fn=batch_of`
    (the batch is already collated). Samplers are untouched, so Lightning can still swap in a
    `DistributedSampler`.
    """

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices)
        return tuple(tensor[index] for tensor in self.tensors)


def batch_of(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The `collate_fn` of an `InMemoryDataset`'s loaders: its batches are already collated."""
    return batch


class FashionMNISTDataModule(pl.LightningDataModule):
    """Fashion-MNIST with train/validation/test splits, as float32 tensors in memory.

    The 60,000 training images are split, with a seeded permutation, into a validation set of
    `val_size` images and a training set of the rest (or of its first `train_size` images);
    the test set is the official 10,000 images (or a seeded subset of `test_size`). Images
    come as `(batch, 1, 28, 28)` float32 tensors normalised with the training set's mean and
    standard deviation (`MEAN`, `STD`), labels as int64 class indices (see `classes`).

    The files are found or downloaded by `load_fashion_mnist` (in `prepare_data`, which
    Lightning calls on one process only); `source` then says where they came from.

    Args:
        batch_size: Training batch size (the last incomplete batch is dropped).
        eval_batch_size: Batch size of the validation, test and predict loaders.
        val_size: Number of training images held out for validation.
        train_size: Use only this many training images (quick runs); `None` uses all the rest.
        test_size: Use only this many test images; `None` uses all 10,000.
        seed: Seed of the split, of the subsets and of the training shuffle.
        data_dir: A folder that may already hold the IDX files (default: Debian's).
        cache_dir: Download folder (default: `fashion-mnist/` in `$GALLERY_CACHE` or
            `~/.cache/gallery_lib`).
        download: Whether to download the files when they are not found.
        downloader: Replaces the urllib download, e.g. in tests.
        num_workers: Worker processes of each `DataLoader` (0 loads in the main process,
            which suits in-memory tensors).

    Examples:
        >>> dm = FashionMNISTDataModule(batch_size=32, train_size=64, test_size=10)
        >>> dm.prepare_data()
        >>> dm.setup("fit")
        >>> images, labels = next(iter(dm.train_dataloader()))
        >>> images.shape, images.dtype, labels.dtype
        (torch.Size([32, 1, 28, 28]), torch.float32, torch.int64)
        >>> len(dm.train_set), len(dm.val_set)
        (64, 5000)
    """

    classes: tuple[str, ...] = FASHION_MNIST_CLASSES
    """Class names, indexed by label."""

    def __init__(
        self,
        batch_size: int = 128,
        *,
        eval_batch_size: int = 1000,
        val_size: int = 5000,
        train_size: int | None = None,
        test_size: int | None = None,
        seed: int = 0,
        data_dir: str | Path | None = DEBIAN_DATA_DIR,
        cache_dir: str | Path | None = None,
        download: bool = True,
        downloader: Downloader | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1 or eval_batch_size < 1:
            raise ValueError(
                f"batch sizes must be positive, got batch_size={batch_size}, "
                f"eval_batch_size={eval_batch_size}."
            )
        _check_size("val_size", val_size, 59999)
        _check_size("train_size", train_size, 60000 - val_size)
        _check_size("test_size", test_size, 10000)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.val_size = val_size
        self.train_size = train_size
        self.test_size = test_size
        self.seed = seed
        self.data_dir = data_dir
        self.cache_dir = cache_dir
        self.download = download
        self.downloader = downloader
        self.num_workers = num_workers
        self.source: str | None = None
        """Where the data came from, once `prepare_data` or `setup` has run."""
        self.train_set: InMemoryDataset | None = None
        """The training split, once `setup` has run: `(images, labels)` tensors."""
        self.val_set: InMemoryDataset | None = None
        """The validation split, once `setup` has run."""
        self.test_set: InMemoryDataset | None = None
        """The test set (or its seeded subset), once `setup` has run."""
        self.split_indices: dict[str, np.ndarray] = {}
        """Which original images (indices into the training or test file) each split holds."""

    def _say_source(self, source: str) -> None:
        if source != self.source:
            self.source = source
            rank_zero_info(f"Fashion-MNIST: {source}")

    def prepare_data(self) -> None:
        """Find the IDX files, or download them (Lightning calls this on one process only)."""
        _, source = locate_fashion_mnist(
            self.data_dir,
            cache_dir=self.cache_dir,
            download=self.download,
            downloader=self.downloader,
        )
        self._say_source(source)

    def setup(self, stage: str | None = None) -> None:
        """Parse the files and build the splits (idempotent; all stages get all splits)."""
        if self.train_set is not None:
            return
        splits = fashion_mnist_splits(
            val_size=self.val_size,
            train_size=self.train_size,
            test_size=self.test_size,
            seed=self.seed,
            data_dir=self.data_dir,
            cache_dir=self.cache_dir,
            download=self.download,
            downloader=self.downloader,
        )
        self._say_source(splits.source)
        self.split_indices = splits.indices
        self.train_set = self._tensors(splits.train)
        self.val_set = self._tensors(splits.val)
        self.test_set = self._tensors(splits.test)

    @staticmethod
    def _tensors(split: Split) -> InMemoryDataset:
        return InMemoryDataset(
            torch.from_numpy(split.images[:, None]), torch.from_numpy(split.labels)
        )

    def _loader(self, dataset: InMemoryDataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("Call setup() before asking the FashionMNISTDataModule for data.")
        if not train:
            return DataLoader(
                dataset,
                batch_size=self.eval_batch_size,
                collate_fn=batch_of,
                num_workers=self.num_workers,
            )
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            collate_fn=batch_of,
            shuffle=True,
            drop_last=True,
            generator=torch.Generator().manual_seed(self.seed),
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled (seeded) training batches of `batch_size`, the last partial one dropped."""
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        """The validation split in order, in batches of `eval_batch_size`."""
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        """The test set in order, in batches of `eval_batch_size`."""
        return self._loader(self.test_set, train=False)

    def predict_dataloader(self) -> DataLoader:
        """The test set in order, as for `test_dataloader`."""
        return self._loader(self.test_set, train=False)
