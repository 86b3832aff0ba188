"""Datasets the examples share: Fashion-MNIST as a Lightning data module, movie-review snippets
and their MiniLM features.

Importing this subpackage imports Lightning (several seconds), which is why its names are not
re-exported by the top-level `gallery_lib` package: `from gallery_lib.datasets import ...`.
"""

from ._fashion_mnist_datamodule import FashionMNISTDataModule as FashionMNISTDataModule
from ._fashion_mnist_files import DEBIAN_DATA_DIR as DEBIAN_DATA_DIR
from ._fashion_mnist_files import DOWNLOAD_URLS as DOWNLOAD_URLS
from ._fashion_mnist_files import FASHION_MNIST_CLASSES as FASHION_MNIST_CLASSES
from ._fashion_mnist_files import FashionMNIST as FashionMNIST
from ._fashion_mnist_files import FashionMNISTNotFoundError as FashionMNISTNotFoundError
from ._fashion_mnist_files import load_fashion_mnist as load_fashion_mnist
from ._fashion_mnist_files import locate_fashion_mnist as locate_fashion_mnist
from ._fashion_mnist_files import read_idx as read_idx
from ._fashion_mnist_splits import MEAN as MEAN
from ._fashion_mnist_splits import STD as STD
from ._fashion_mnist_splits import FashionMNISTSplits as FashionMNISTSplits
from ._fashion_mnist_splits import Split as Split
from ._fashion_mnist_splits import fashion_mnist_splits as fashion_mnist_splits
from ._minilm_features import MINILM_WHEEL as MINILM_WHEEL
from ._minilm_features import MiniLMFeatures as MiniLMFeatures
from ._minilm_features import minilm_dir as minilm_dir
from ._movie_snippets import MOVIE_SNIPPET_SOURCES as MOVIE_SNIPPET_SOURCES
from ._movie_snippets import SENTIMENT_LABELS as SENTIMENT_LABELS
from ._movie_snippets import load_movie_snippets as load_movie_snippets
from ._movie_snippets import parse_ground_truth as parse_ground_truth

__all__ = [
    "DEBIAN_DATA_DIR",
    "DOWNLOAD_URLS",
    "FASHION_MNIST_CLASSES",
    "MEAN",
    "MINILM_WHEEL",
    "MOVIE_SNIPPET_SOURCES",
    "SENTIMENT_LABELS",
    "STD",
    "FashionMNIST",
    "FashionMNISTDataModule",
    "FashionMNISTNotFoundError",
    "FashionMNISTSplits",
    "MiniLMFeatures",
    "Split",
    "fashion_mnist_splits",
    "load_fashion_mnist",
    "load_movie_snippets",
    "locate_fashion_mnist",
    "minilm_dir",
    "parse_ground_truth",
    "read_idx",
]
