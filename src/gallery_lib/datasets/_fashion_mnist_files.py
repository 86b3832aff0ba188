"""Fashion-MNIST's original IDX files: find them on disk, or download them, and parse them."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._fetch import cache_dir as gallery_cache_dir

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""The ten class names, indexed by label."""

DEBIAN_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's `dataset-fashion-mnist` package installs the IDX files."""

DOWNLOAD_URLS: tuple[str, ...] = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
"""The dataset's canonical location (Zalando Research's bucket), then its GitHub repository."""

# The published files and their MD5 (Debian recompresses them, so only downloads are checked).
_FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
_IDX_DTYPES = {0x08: np.uint8}

Downloader = Callable[[str, Path], None]
"""Fetches the URL (first argument) into the file (second argument); raises on failure."""


class FashionMNISTNotFoundError(FileNotFoundError):
    """Fashion-MNIST is neither on disk nor downloadable; the message names both ways to get it."""


class FashionMNIST(NamedTuple):
    """The Fashion-MNIST arrays as published: 60,000 training and 10,000 test images."""

    train_images: np.ndarray
    """uint8, shape (60000, 28, 28)."""
    train_labels: np.ndarray
    """uint8 class indices, shape (60000,)."""
    test_images: np.ndarray
    """uint8, shape (10000, 28, 28)."""
    test_labels: np.ndarray
    """uint8 class indices, shape (10000,)."""
    source: str
    """Where the files were read from (and whether they were downloaded)."""


def default_cache_dir() -> Path:
    """The download folder: `fashion-mnist/` in the gallery's cache (`gallery_lib.cache_dir`)."""
    return gallery_cache_dir() / "fashion-mnist"


def read_idx(path: str | Path) -> np.ndarray:
    """Read one gzipped IDX file (the format of MNIST and Fashion-MNIST) into a NumPy array.

    Args:
        path: A `.gz` IDX file.

    Returns:
        The array, with the shape and dtype written in the file's header.

    Raises:
        ValueError: If the file is not a gzipped unsigned-byte IDX file of the size its header
            announces.

    Examples:
        >>> import gzip, tempfile
        >>> path = tempfile.mktemp(suffix=".gz")
        >>> with gzip.open(path, "wb") as f:  # magic 0x0801: unsigned bytes, 1 dimension
        ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
        >>> read_idx(path)
        array([7, 8, 9], dtype=uint8)
    """
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path} is not an unsigned-byte IDX file: its header is {data[:4]!r}, expected "
            "0x00 0x00 0x08 <number of dimensions>. Delete it so that it is fetched again."
        )
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise ValueError(
            f"{path} announces shape {shape} ({int(np.prod(shape))} bytes) but holds "
            f"{len(data) - offset} bytes: the file is truncated. Delete it so that it is "
            "fetched again."
        )
    return np.frombuffer(data, dtype=_IDX_DTYPES[data[2]], offset=offset).reshape(shape)


def urllib_download(url: str, dest: Path) -> None:
    """The default downloader: fetch `url` into `dest` with urllib (60 s timeout)."""
    with urllib.request.urlopen(url, timeout=60) as response, dest.open("wb") as f:
        shutil.copyfileobj(response, f)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _has_all_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _FILES)


def _download(cache_dir: Path, downloader: Downloader) -> str:
    """Download the missing files into `cache_dir`; return the base URL used."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    for base_url in DOWNLOAD_URLS:
        try:
            for name, md5 in _FILES.items():
                if (cache_dir / name).is_file():
                    continue
                with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
                    part = Path(tmp) / name
                    downloader(base_url + name, part)
                    if _md5(part) != md5:
                        raise ValueError(f"{base_url + name} has MD5 {_md5(part)}, expected {md5}")
                    part.replace(cache_dir / name)
            return base_url
        except Exception as error:  # any failure of one mirror: try the next one
            errors.append(f"{base_url}: {type(error).__name__}: {error}")
    raise OSError("; ".join(errors))


def _not_found_message(searched: Sequence[Path], cache_dir: Path, why: str) -> str:
    names = ", ".join(_FILES)
    return (
        "Fashion-MNIST was not found on this machine and could not be downloaded.\n"
        f"  Searched: {', '.join(str(p) for p in searched)}\n"
        f"  Download: {why}\n"
        "Get it either way:\n"
        "  1. install the Debian package, which puts the files in "
        f"{DEBIAN_DATA_DIR}/:\n"
        "       sudo apt-get install dataset-fashion-mnist\n"
        f"  2. or download the four files ({names}) from {DOWNLOAD_URLS[0]} into {cache_dir}/ "
        "(done automatically when this machine can reach the internet)."
    )


def locate_fashion_mnist(
    data_dir: str | Path | None = DEBIAN_DATA_DIR,
    *,
    cache_dir: str | Path | None = None,
    download: bool = True,
    downloader: Downloader | None = None,
) -> tuple[Path, str]:
    """Find the four IDX files of Fashion-MNIST, downloading them when needed.

    The files are looked for first in `data_dir` (by default where Debian's
    `dataset-fashion-mnist` package installs them), then in `cache_dir`. When neither holds
    them, they are downloaded into `cache_dir` from the dataset's canonical location
    (`DOWNLOAD_URLS`, tried in order) and checked against their published MD5.

    Args:
        data_dir: A folder that may hold the four `.gz` files; `None` skips it.
        cache_dir: The download folder; defaults to `fashion-mnist/` in the gallery's cache
            (`$GALLERY_CACHE`, or `~/.cache/gallery_lib`).
        download: Whether to download the files when they are not found.
        downloader: Replaces the urllib download (`downloader(url, dest_path)`), e.g. in tests.

    Returns:
        The folder that holds the files, and a sentence saying where they came from.

    Raises:
        FashionMNISTNotFoundError: If the files are nowhere on disk and cannot be downloaded;
            the message names both ways to get them (the Debian package or the download).
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    searched = [Path(data_dir)] if data_dir is not None else []
    searched.append(cache)
    folder = next((p for p in searched if _has_all_files(p)), None)
    if folder is not None:
        kind = "Debian package dataset-fashion-mnist" if folder == DEBIAN_DATA_DIR else "on disk"
        return folder, f"read from {folder} ({kind})"
    if not download:
        raise FashionMNISTNotFoundError(
            _not_found_message(searched, cache, "disabled (download=False)")
        )
    try:
        url = _download(cache, downloader or urllib_download)
    except OSError as error:
        raise FashionMNISTNotFoundError(_not_found_message(searched, cache, str(error))) from None
    return cache, f"downloaded from {url} into {cache}"


def load_fashion_mnist(
    data_dir: str | Path | None = DEBIAN_DATA_DIR,
    *,
    cache_dir: str | Path | None = None,
    download: bool = True,
    downloader: Downloader | None = None,
) -> FashionMNIST:
    """Load Fashion-MNIST from its original IDX files, downloading them when needed.

    Where the files are looked for, and how they are downloaded, is described in
    `locate_fashion_mnist`, which takes the same arguments.

    Returns:
        The arrays, and in `source` a sentence saying where they came from.

    Raises:
        FashionMNISTNotFoundError: If the files are nowhere on disk and cannot be downloaded;
            the message names both ways to get them (the Debian package or the download).
    """
    folder, source = locate_fashion_mnist(
        data_dir, cache_dir=cache_dir, download=download, downloader=downloader
    )
    arrays = [read_idx(folder / name) for name in _FILES]
    expected = [(60000, 28, 28), (60000,), (10000, 28, 28), (10000,)]
    for name, array, shape in zip(_FILES, arrays, expected, strict=True):
        if array.shape != shape:
            raise ValueError(
                f"{folder / name} holds an array of shape {array.shape}, expected {shape}: "
                "this is not Fashion-MNIST's original file."
            )
    return FashionMNIST(*arrays, source=source)
