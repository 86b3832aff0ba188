"""The Fashion-MNIST data module and the flax-CNN-in-Lightning example (both of its variants)."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import sys
import urllib.error
from pathlib import Path

import jax
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from conftest import ROOT, quick_env

from gallery_lib import FlaxModule, example_definitions
from gallery_lib.datasets import (
    DEBIAN_DATA_DIR,
    FashionMNISTDataModule,
    FashionMNISTNotFoundError,
    load_fashion_mnist,
    read_idx,
)
from gallery_lib.datasets import _fashion_mnist_files as files

EXAMPLE = ROOT / "examples" / "plot_flax_cnn_lightning.py"
FILE_NAMES = list(files._FILES)


def _unreachable(url: str, dest: Path) -> None:
    raise urllib.error.URLError("no network in this test")


# ---------------------------------------------------------------------------------------------
# Data


@pytest.fixture(scope="module")
def small_datamodule() -> FashionMNISTDataModule:
    dm = FashionMNISTDataModule(batch_size=32, train_size=256, val_size=100, test_size=50, seed=3)
    dm.prepare_data()
    dm.setup("fit")
    return dm


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
# The example's two variants


@pytest.fixture(scope="module")
def example():
    """The example's networks and modules, without running its cells."""
    return example_definitions(EXAMPLE)


def _fit(
    model: pl.LightningModule,
    dm: FashionMNISTDataModule,
    steps: int,
    ckpt_path: Path | None = None,
    **kwargs,
) -> pl.Trainer:
    trainer = pl.Trainer(
        max_steps=steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return trainer


def _mean_loss(model: pl.LightningModule, dm: FashionMNISTDataModule) -> float:
    images, labels = dm.train_set.tensors
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(model(images), labels))


@pytest.mark.parametrize("variant", ["jax-network", "jax-step"])
def test_a_few_training_steps_decrease_the_loss(
    example, small_datamodule: FashionMNISTDataModule, variant: str
) -> None:
    network = FlaxModule(example.FlaxCNN(), small_datamodule.train_set[:2][0], seed=0)
    cls = example.Classifier if variant == "jax-network" else example.JaxStepClassifier
    model = cls(network, learning_rate=3e-3)
    before = _mean_loss(model, small_datamodule)
    trainer = _fit(model, small_datamodule, steps=16)
    after = _mean_loss(model, small_datamodule)
    assert trainer.global_step == 16
    assert after < 0.75 * before, (before, after)


def test_the_jax_step_moves_the_parameters_by_minus_lr_times_the_torch_gradient(
    example, small_datamodule: FashionMNISTDataModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One real `JaxStepClassifier` step, through Lightning, with its optimizer made plain SGD.

    The step's parameter change must be `-lr * gradient`, the gradient computed by torch
    autograd through the wrapper on the batch the step saw, at the parameters before it.
    """
    import optax

    # The example builds `optax.adam(schedule)`; SGD with the same schedule makes the expected
    # change exactly -lr * gradient (Adam's first step would be -lr * sign(gradient)).
    monkeypatch.setattr(optax, "adam", optax.sgd)
    learning_rate = 1.0
    example_input = small_datamodule.train_set[:2][0]

    class Recording(example.JaxStepClassifier):
        def training_step(self, batch, batch_idx):
            self.seen = batch
            return super().training_step(batch, batch_idx)

    network = FlaxModule(example.FlaxCNN(), example_input, seed=0)
    before = jax.tree.map(np.array, network.jax_params)
    model = Recording(network, learning_rate=learning_rate)
    trainer = _fit(model, small_datamodule, steps=1)
    assert trainer.global_step == 1
    after = jax.tree.map(np.array, network.jax_params)

    reference = FlaxModule(example.FlaxCNN(), example_input, seed=0)
    images, labels = model.seen
    torch.nn.functional.cross_entropy(reference(images), labels).backward()
    torch_grads = {name: p.grad.numpy() for name, p in reference.named_parameters()}
    lr = optax.cosine_onecycle_schedule(trainer.estimated_stepping_batches, learning_rate)(0)
    moved = 0
    for path, new in jax.tree_util.tree_flatten_with_path(after)[0]:
        name = "params." + ".".join(k.key for k in path)
        old = before
        for key in path:
            old = old[key.key]
        np.testing.assert_allclose(
            new - old, -lr * torch_grads[name], rtol=1e-3, atol=1e-7, err_msg=name
        )
        moved += int(np.any(new != old))
    assert moved == len(torch_grads), "every parameter leaf moved"


def test_checkpoint_round_trip_keeps_jax_params_and_optax_state(
    example, small_datamodule: FashionMNISTDataModule, tmp_path: Path
) -> None:
    example_input = small_datamodule.train_set[:2][0]

    def fresh_model(seed: int):
        return example.JaxStepClassifier(FlaxModule(example.FlaxCNN(), example_input, seed=seed))

    model = fresh_model(0)
    trainer = _fit(model, small_datamodule, steps=5, default_root_dir=tmp_path)
    path = tmp_path / "jax-step.ckpt"
    trainer.save_checkpoint(path)

    # Loading the weights into a network initialised differently restores the trained params.
    other = fresh_model(1)
    assert not np.array_equal(
        np.asarray(other.network.jax_params["Dense_0"]["kernel"]),
        np.asarray(model.network.jax_params["Dense_0"]["kernel"]),
    )
    restored = example.JaxStepClassifier.load_from_checkpoint(
        path, network=other.network, weights_only=True
    )
    jax.tree.map(
        np.testing.assert_array_equal, model.network.jax_params, restored.network.jax_params
    )

    # Resuming restores the optax state too (Adam's moments and its step count): with
    # max_steps already reached, fit restores everything and trains no further.
    resumed = fresh_model(2)
    resume_trainer = _fit(resumed, small_datamodule, steps=5, ckpt_path=path)
    assert resume_trainer.global_step == 5
    jax.tree.map(
        np.testing.assert_array_equal,
        trainer.optimizers[0].opt_state,
        resume_trainer.optimizers[0].opt_state,
    )
    jax.tree.map(
        np.testing.assert_array_equal, model.network.jax_params, resumed.network.jax_params
    )


# ---------------------------------------------------------------------------------------------
# Command line


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        env=quick_env(COLUMNS="200"),  # wide enough that no choice is wrapped
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--batch-size", "100"], ["--batch-size", "64", "128", "256"]),
        (["--batch-size", "many"], ["--batch-size", "64", "128", "256"]),
        (["--variant", "pure-torch"], ["--variant", "both", "jax-network", "jax-step"]),
    ],
)
def test_cli_rejects_bad_values_with_the_choices(args: list[str], expected: list[str]) -> None:
    result = _run_cli(*args)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for word in expected:
        assert word in output, output
    assert "Traceback" not in output, output
