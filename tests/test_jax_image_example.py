"""The image-classification-in-Jax example: its in-Jax shuffling, its training step, its CLI."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from support import ROOT, quick_env

from gallery_lib import JaxTrainer, example_definitions
from gallery_lib.datasets import fashion_mnist_splits

EXAMPLE = ROOT / "examples" / "plot_jax_image_classification.py"


@pytest.fixture(scope="module")
def example():
    """The example's network and module, without running its cells."""
    return example_definitions(EXAMPLE)


def classifier(example, images, labels, batch_size: int):
    return example.ImageClassifier(
        images, labels, images[:8], labels[:8], example.CNN(), optax.adam(1e-3), batch_size
    )


def epochs_of_labels(module, epochs: int) -> list[np.ndarray]:
    """The labels of every batch `get_batch` cuts, epoch by epoch, as the trainer calls it."""
    steps = len(module.train_labels) // module.batch_size
    get_batch = jax.jit(module.get_batch)
    state = module.init_train_state(jax.random.key(0))
    seen = []
    for _ in range(epochs):
        labels = []
        for batch_idx in range(steps):
            state, (_, batch_labels) = get_batch(state, jnp.int32(batch_idx))
            labels.append(np.asarray(batch_labels))
        seen.append(np.concatenate(labels))
    return seen


def test_each_epoch_visits_every_training_example_exactly_once(example) -> None:
    n = 96  # a multiple of the batch size: no remainder to drop
    images = jnp.zeros((n, 28, 28, 1))
    module = classifier(example, images, jnp.arange(n, dtype=jnp.int32), batch_size=16)
    first, second, third = epochs_of_labels(module, 3)
    for epoch in (first, second, third):
        np.testing.assert_array_equal(np.sort(epoch), np.arange(n))
    assert not np.array_equal(first, second) and not np.array_equal(second, third)


def test_an_incomplete_last_batch_is_dropped_and_nothing_repeats(example) -> None:
    n, batch = 100, 16  # 6 batches of 16: 4 examples left out, a different 4 each epoch
    images = jnp.zeros((n, 28, 28, 1))
    module = classifier(example, images, jnp.arange(n, dtype=jnp.int32), batch_size=batch)
    epochs = epochs_of_labels(module, 2)
    for epoch in epochs:
        assert len(epoch) == 96 and len(np.unique(epoch)) == 96
    assert set(np.setdiff1d(np.arange(n), epochs[0])) != set(np.setdiff1d(np.arange(n), epochs[1]))


def test_a_few_steps_decrease_the_training_loss(example) -> None:
    splits = fashion_mnist_splits(train_size=512, test_size=10)
    images = jnp.asarray(splits.train.images[..., None])
    labels = jnp.asarray(splits.train.labels, dtype=jnp.int32)
    module = classifier(example, images, labels, batch_size=64)

    def loss(state) -> float:
        return float(example.loss_and_accuracy(example.CNN(), state.params, images, labels)[0])

    before = loss(module.init_train_state(jax.random.key(0)))
    trainer = JaxTrainer(1, 8, enable_progress_bar=False)
    state, _ = trainer.fit(module, jax.random.key(0))
    assert trainer.loop_used == "steps"
    assert loss(state) < 0.8 * before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be >= 1 and <= 4096 (got 0)"),
        (["--epochs", "1"], "--epochs must be >= 2 (got 1)"),
        (["--loop", "fast"], "--loop"),
        (["--train-size", "64"], "--batch-size 128 is larger than --train-size 64"),
    ],
)
def test_the_script_refuses_bad_values_clearly(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=quick_env(MPLBACKEND="Agg"),
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]
