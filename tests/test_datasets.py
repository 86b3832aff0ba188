"""`gallery_lib.datasets`: the Fashion-MNIST files, their reader and the data module."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from gallery_lib.datasets import (
    DEBIAN_DATA_DIR,
    FashionMNISTDataModule,
    FashionMNISTNotFoundError,
    load_fashion_mnist,
    read_idx,
)
from gallery_lib.datasets import _fashion_mnist_files as files

FILE_NAMES = list(files._FILES)


def _unreachable(url: str, dest: Path) -> None:
    raise urllib.error.URLError("no network in this test")


def test_splits_have_the_requested_sizes_shapes_and_dtypes(
    small_datamodule: FashionMNISTDataModule,
) -> None:
    dm = small_datamodule
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (256, 100, 50)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (32, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (32,) and labels.dtype == torch.int64
    assert int(labels.min()) >= 0 and int(labels.max()) <= 9
    assert len(dm.train_dataloader()) == 256 // 32
    assert [len(b[0]) for b in dm.val_dataloader()] == [100]
    assert "Debian package" in dm.source


def test_train_and_validation_splits_are_disjoint_and_seeded() -> None:
    def indices(seed: int) -> dict[str, np.ndarray]:
        dm = FashionMNISTDataModule(val_size=5000, test_size=100, seed=seed)
        dm.setup()
        return dm.split_indices

    a, b, c = indices(0), indices(0), indices(1)
    assert len(a["train"]) == 55000 and len(a["val"]) == 5000
    assert not set(a["train"]) & set(a["val"])
    assert len(set(a["train"]) | set(a["val"])) == 60000
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(a[split], b[split])
    assert not np.array_equal(a["val"], c["val"])


def test_training_order_is_seeded(small_datamodule: FashionMNISTDataModule) -> None:
    first = next(iter(small_datamodule.train_dataloader()))[1]
    again = next(iter(small_datamodule.train_dataloader()))[1]
    torch.testing.assert_close(first, again)


def test_images_are_normalised_with_the_training_statistics() -> None:
    dm = FashionMNISTDataModule(val_size=1, test_size=1)
    dm.setup()
    images = dm.train_set.tensors[0]
    assert abs(float(images.mean())) < 0.01
    assert abs(float(images.std()) - 1.0) < 0.01


def test_bad_sizes_are_rejected_with_the_range() -> None:
    with pytest.raises(ValueError, match=r"train_size=60000 is out of range: choose 1 to 55000"):
        FashionMNISTDataModule(train_size=60000)


def test_missing_data_without_network_names_both_ways(tmp_path: Path) -> None:
    with pytest.raises(FashionMNISTNotFoundError) as error:
        load_fashion_mnist(
            tmp_path / "nowhere", cache_dir=tmp_path / "cache", downloader=_unreachable
        )
    message = str(error.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/" in message
    assert str(tmp_path / "cache") in message
    assert "no network in this test" in message
    # The data module raises the same error, from prepare_data, before any training starts.
    dm = FashionMNISTDataModule(
        data_dir=tmp_path / "nowhere", cache_dir=tmp_path / "cache", downloader=_unreachable
    )
    with pytest.raises(FashionMNISTNotFoundError, match="apt-get install dataset-fashion-mnist"):
        dm.prepare_data()


def test_download_disabled_says_so(tmp_path: Path) -> None:
    with pytest.raises(FashionMNISTNotFoundError, match=r"disabled \(download=False\)"):
        load_fashion_mnist(None, cache_dir=tmp_path, download=False)


def test_download_goes_to_the_cache_and_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls: list[str] = []

    def from_debian(url: str, dest: Path) -> None:
        urls.append(url)
        shutil.copy(DEBIAN_DATA_DIR / url.rsplit("/", 1)[1], dest)

    # The published MD5s are those of the original files; Debian recompresses them.
    with pytest.raises(FashionMNISTNotFoundError, match="has MD5"):
        load_fashion_mnist(None, cache_dir=tmp_path, downloader=from_debian)
    assert not list(tmp_path.glob("*.gz")), "a file that fails its check must not be kept"

    debian_md5 = {
        name: hashlib.md5((DEBIAN_DATA_DIR / name).read_bytes()).hexdigest() for name in FILE_NAMES
    }
    monkeypatch.setattr(files, "_FILES", debian_md5)
    urls.clear()
    data = load_fashion_mnist(None, cache_dir=tmp_path, downloader=from_debian)
    assert data.source.startswith("downloaded from http://fashion-mnist.s3-website")
    assert urls == [files.DOWNLOAD_URLS[0] + name for name in FILE_NAMES]
    assert data.train_images.shape == (60000, 28, 28) and data.test_labels.shape == (10000,)
    # Now cached: no second download.
    again = load_fashion_mnist(None, cache_dir=tmp_path, downloader=_unreachable)
    assert again.source == f"read from {tmp_path} (on disk)"


def test_read_idx_rejects_a_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3]))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)
