"""
# Image classification end to end in Jax: data, network and update trained by JaxTrainer

The CNN of the Lightning page learns Fashion-MNIST again, but now nothing is torch: the images
live on the device as Jax arrays, are shuffled and batched inside compiled code, and a
`JaxModule` trained by `JaxTrainer` does the rest, with a CSV log, a checkpoint and a resume.
The page ends with a side-by-side comparison of the four ways this gallery trains that CNN.

## What you will learn

- how to hold a data set in Jax and shuffle and batch it inside `jit`, with no `DataLoader`
- how an image classifier is written as a [`JaxModule`][gallery_lib.JaxModule]
- why [`JaxTrainer`][gallery_lib.JaxTrainer] calls a convolutional step from Python on the
  CPU (`loop="steps"`) instead of compiling the whole loop as a scan
- how to resume from a checkpoint and train several seeds at once with `fit_many`
- when each of the four ways to mix Jax and Lightning is the right choice

## Prerequisites

The flax CNN in Lightning page (the network and the data) and the PPO page (`JaxModule`,
`JaxTrainer`). Runs on the CPU in about a minute per training run.
"""

# %%
# ## Settings
#
# The defaults are what the docs build runs: the full training set, a few epochs of Adam with
# a one-cycle schedule, as on the Lightning page. `--loop` chooses how `JaxTrainer` drives its
# loop (`auto` picks the fast one for this network; see below); run the script with `--help`
# for every flag.
import dataclasses
from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le

from gallery_lib import enable_compile_cache, example_config

# mkdocs_gallery_thumbnail_number = 1


@dataclasses.dataclass
class Config:
    """Train a flax CNN on Fashion-MNIST end to end in Jax with JaxTrainer."""

    epochs: Annotated[int, Ge(2)] = 4
    """Passes over the training set (the resume demonstration needs at least 2)."""
    batch_size: Annotated[int, Ge(1), Le(4096)] = 128
    """Training batch size (each epoch drops the last incomplete batch, as a DataLoader would)."""
    learning_rate: Annotated[float, Gt(0)] = 3e-3
    """Peak learning rate of the one-cycle schedule (Adam)."""
    train_size: Annotated[int, Ge(0), Le(55_000)] = 0
    """Train on this many images only (0: all 55,000 left after the validation split)."""
    test_size: Annotated[int, Ge(0), Le(10_000)] = 0
    """Test on this many images only (0: the full 10,000-image test set)."""
    num_seeds: Annotated[int, Ge(1)] = 3
    """Seeds trained at once by `fit_many`."""
    seed: Annotated[int, Ge(0)] = 0
    """Seed of the data split, of the initialisation and of the shuffles."""
    loop: Literal["auto", "scan", "steps"] = "auto"
    """How JaxTrainer runs its loop: one compiled scan, compiled steps called from Python, or
    the faster of the two for this module and backend (auto)."""
    compile_cache: bool = True
    """Keep compiled programs on disk (jax's persistent cache) so the next run loads them."""


config = example_config(
    Config, quick={"epochs": 2, "train_size": 1024, "test_size": 500, "num_seeds": 2}
)
enable_compile_cache(config.compile_cache)
print(config)

# %%
# ## The data, as Jax arrays
#
# [`fashion_mnist_splits`][gallery_lib.datasets.fashion_mnist_splits] splits Fashion-MNIST
# exactly as the Lightning page's data module does (55,000 training, 5,000 validation and the
# 10,000 test images, normalised), but hands back NumPy arrays. `jnp.asarray` puts them on
# the device once; from then on every batch is cut from them by compiled code, so no Python
# touches the data during training. Flax convolutions take channels last: `(n, 28, 28, 1)`.
import jax
import jax.numpy as jnp
import numpy as np

from gallery_lib.datasets import fashion_mnist_splits

if 0 < config.train_size < config.batch_size:
    raise SystemExit(
        f"--batch-size {config.batch_size} is larger than --train-size {config.train_size}: "
        "an epoch would have no batch. Lower the batch size or raise the training size."
    )
splits = fashion_mnist_splits(
    train_size=config.train_size or None, test_size=config.test_size or None, seed=config.seed
)


def on_device(split) -> tuple[jax.Array, jax.Array]:
    """A split's images (with a channel axis) and int32 labels, as device arrays."""
    return jnp.asarray(split.images[..., None]), jnp.asarray(split.labels, dtype=jnp.int32)


train_images, train_labels = on_device(splits.train)
val_images, val_labels = on_device(splits.val)
test_images, test_labels = on_device(splits.test)
print(splits.source)
print(f"train {train_images.shape}, validation {val_images.shape}, test {test_images.shape}")

# %%
# ## The network
#
# The same CNN as on the Lightning page: two strided convolutions (28x28 -> 14x14 -> 7x7) and
# two dense layers, here taking channels-last images directly. `loss_and_accuracy` is the one
# function the training step and the evaluation share.
import flax.linen as nn
import optax


class CNN(nn.Module):
    """Conv(32, 5x5, stride 2) - Conv(64, 3x3, stride 2) - Dense(128) - Dense(10)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(nn.Conv(32, (5, 5), strides=2, padding=2)(x))
        x = nn.relu(nn.Conv(64, (3, 3), strides=2, padding=1)(x))
        x = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        return nn.Dense(10)(x)


def loss_and_accuracy(network: nn.Module, params, images, labels) -> tuple[jax.Array, dict]:
    """Mean cross-entropy of `network` on a batch, and its metrics (loss, accuracy)."""
    logits = network.apply({"params": params}, images)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
    return loss, {"loss": loss, "accuracy": accuracy}


# %%
# ## The classifier as a `JaxModule`
#
# A [`JaxModule`][gallery_lib.JaxModule] is four pure functions. The module is a flax
# `PyTreeNode` whose array fields hold the data: `JaxTrainer` passes them to its compiled
# programs as arguments (closed over, they would be copied into the program as constants).
# The training state carries a key and this epoch's order of the training images. At the
# first step of each epoch, `get_batch` draws a new permutation (`lax.cond` runs the
# permutation only then); step $i$ then takes the images at positions
# $iB, \dots, iB + B - 1$ of it, for a batch size $B$. So each epoch visits every training
# image once, except the last $n \bmod B$ of the permutation, dropped as a `DataLoader` with
# `drop_last=True` would.
from flax import struct


class TrainState(struct.PyTreeNode):
    params: dict
    opt_state: optax.OptState
    rng: jax.Array
    order: jax.Array  # this epoch's permutation of the training images


class ImageClassifier(struct.PyTreeNode):
    """Train `network` on the images it holds; evaluate on the validation images."""

    train_images: jax.Array
    train_labels: jax.Array
    val_images: jax.Array
    val_labels: jax.Array
    network: nn.Module = struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = struct.field(pytree_node=False)
    batch_size: int = struct.field(pytree_node=False, default=128)

    def init_train_state(self, rng: jax.Array) -> TrainState:
        init_key, rng = jax.random.split(rng)
        params = self.network.init(init_key, jnp.zeros((1, *self.train_images.shape[1:])))
        order = jnp.arange(len(self.train_labels))
        return TrainState(params["params"], self.optimizer.init(params["params"]), rng, order)

    def get_batch(self, state: TrainState, batch_idx: jax.Array) -> tuple[TrainState, tuple]:
        def shuffle(state: TrainState) -> TrainState:
            rng, key = jax.random.split(state.rng)
            return state.replace(rng=rng, order=jax.random.permutation(key, len(state.order)))

        state = jax.lax.cond(batch_idx == 0, shuffle, lambda state: state, state)
        idx = jax.lax.dynamic_slice_in_dim(
            state.order, batch_idx * self.batch_size, self.batch_size
        )
        return state, (self.train_images[idx], self.train_labels[idx])

    def training_step(self, batch_idx, state: TrainState, batch: tuple) -> tuple[TrainState, dict]:
        grad_fn = jax.grad(loss_and_accuracy, argnums=1, has_aux=True)
        grads, metrics = grad_fn(self.network, state.params, *batch)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return state.replace(params=params, opt_state=opt_state), metrics

    def evaluate(self, state: TrainState) -> dict:
        return loss_and_accuracy(self.network, state.params, self.val_images, self.val_labels)[1]


# %%
# ## The module, with its optimizer
#
# Adam with the one-cycle schedule of the Lightning page, whose length is the number of
# training steps: `epochs` times the batches of an epoch.
steps_per_epoch = len(train_labels) // config.batch_size
schedule = optax.cosine_onecycle_schedule(config.epochs * steps_per_epoch, config.learning_rate)
module = ImageClassifier(
    train_images, train_labels, val_images, val_labels, CNN(), optax.adam(schedule),
    config.batch_size,
)  # fmt: skip
print(f"{steps_per_epoch} steps of {config.batch_size} images per epoch")

# %%
# ## Training with `JaxTrainer`, with a CSV log and checkpoints
#
# The trainer runs `epochs` epochs of `steps_per_epoch` steps and evaluates after each. Its
# `logger` takes Lightning's `CSVLogger`, and a
# [`CheckpointCallback`][gallery_lib.CheckpointCallback] saves the training state with orbax
# after every epoch. `fit` is timed in wall-clock and in CPU seconds, compilation included:
# the budget below is counted in CPU time, which stays meaningful on a shared machine.
import tempfile
import time
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger

from gallery_lib import CheckpointCallback, JaxTrainer

work = Path(tempfile.mkdtemp(prefix="jax_image_classification_"))
trainer = JaxTrainer(
    max_epochs=config.epochs,
    training_steps_per_epoch=steps_per_epoch,
    callbacks=[CheckpointCallback(work / "checkpoints")],
    logger=CSVLogger(work, name="run"),
    enable_progress_bar=False,
    loop=config.loop,
)
rng = jax.random.key(config.seed)
wall, cpu = time.perf_counter(), time.process_time()
state, eval_metrics = trainer.fit(module, rng)
jax.block_until_ready(state)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(f"loop: {trainer.loop_used}; {wall:.1f} s wall-clock, {cpu:.1f} s of CPU time")
print("validation accuracy by epoch:", np.round(eval_metrics["accuracy"], 4).tolist())

# %%
# ## The learning curves, from the CSV log
#
# The trainer's `LoggerCallback` wrote the mean training metrics of each epoch as
# `train/<name>` and the evaluation metrics as `val/<name>` into `metrics.csv`, one row per
# call. pandas reads it back; the training accuracy is the mean over each epoch's batches,
# the validation accuracy is measured at its end.
import matplotlib.pyplot as plt
import pandas as pd

(csv_path,) = (work / "run").glob("version_*/metrics.csv")
log = pd.read_csv(csv_path).groupby("epoch").first()
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.plot(log.index + 1, log["train/accuracy"], "o-", label="training (epoch mean)")
ax.plot(log.index + 1, log["val/accuracy"], "s-", label="validation (end of epoch)")
ax.set_xlabel("epoch", fontsize=13)
ax.set_ylabel("accuracy", fontsize=13)
ax.set_title("A CNN trained end to end in Jax on Fashion-MNIST", fontsize=13)
ax.xaxis.get_major_locator().set_params(integer=True)
ax.tick_params(labelsize=12)
ax.legend(fontsize=12)
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()
log[["train/loss", "train/accuracy", "val/loss", "val/accuracy"]]

# %%
# ## Resuming from a checkpoint
#
# Suppose the job had been stopped after its first epoch. The checkpoint of that epoch is all
# a new trainer needs: `fit(..., ckpt_path=...)` reads the training state (parameters, Adam's
# moments, the shuffling key) and the evaluation history, and runs the remaining epochs. All
# randomness lives in the state, so the resumed run ends exactly where the uninterrupted one
# did, bit for bit.
import shutil

interrupted = work / "interrupted"
shutil.copytree(work / "checkpoints" / "0", interrupted / "0")  # only epoch 0's checkpoint
resumer = JaxTrainer(
    config.epochs, steps_per_epoch, enable_progress_bar=False, loop=config.loop
)  # fmt: skip
resumed_state, resumed_metrics = resumer.fit(module, rng, ckpt_path=str(interrupted))
same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), resumed_state.params, state.params)
print(f"resumed at epoch {resumer.start_epoch}, ran to epoch {config.epochs - 1}")
print("parameters identical to the uninterrupted run:", all(jax.tree.leaves(same)))
assert all(jax.tree.leaves(same))

# %%
# ## Test accuracy, against the target and the budget
#
# The test set is used once, at the end. The target is the Lightning page's: `TARGET_ACCURACY`
# on the 10,000 test images within `BUDGET_S` seconds of CPU time for training (compilation,
# validation and checkpoints included).
TARGET_ACCURACY, BUDGET_S = 0.89, 60.0
evaluate_test = jax.jit(lambda params: loss_and_accuracy(CNN(), params, test_images, test_labels))
test_accuracy = float(evaluate_test(state.params)[1]["accuracy"])
print(f"test accuracy {test_accuracy:.2%} on {len(test_labels)} images, {cpu:.1f} s CPU")
pd.DataFrame(
    {
        "test accuracy": [f"{test_accuracy:.2%}"],
        "target": [f"{TARGET_ACCURACY:.0%}"],
        "reached": [test_accuracy >= TARGET_ACCURACY],
        "training CPU time": [f"{cpu:.1f} s"],
        "budget": [f"{BUDGET_S:.0f} s"],
        "within": [cpu <= BUDGET_S],
        "wall-clock": [f"{wall:.1f} s"],
    }
)

# %%
# ## Several seeds at once with `fit_many`
#
# One run's accuracy depends on its seed. [`JaxTrainer.fit_many`][gallery_lib.JaxTrainer.fit_many]
# trains `num_seeds` runs in one call, one program for all seeds. With the whole loop compiled
# (`loop="scan"`) it vmaps the module's methods over a batch of keys; in the steps that `auto`
# picks here, it runs one copy of each method per seed inside the same program, because a
# vmapped convolution with per-seed weights is a grouped convolution, which XLA:CPU runs far
# more slowly. The seeds differ in initialisation and shuffling; the data split is the same.
many_trainer = JaxTrainer(
    config.epochs, steps_per_epoch, enable_progress_bar=False, loop=config.loop
)  # fmt: skip
keys = jax.random.split(jax.random.key(config.seed + 1), config.num_seeds)
wall_many = time.perf_counter()
states, many_metrics = many_trainer.fit_many(module, keys)
wall_many = time.perf_counter() - wall_many
test_accuracies = np.asarray(jax.vmap(lambda p: evaluate_test(p)[1]["accuracy"])(states.params))
spread = test_accuracies.std(ddof=1) if config.num_seeds > 1 else 0.0
print(
    f"{config.num_seeds} seeds in {wall_many:.1f} s: test accuracy "
    f"{test_accuracies.mean():.2%} ± {spread:.2%} (mean ± standard deviation)"
)
pd.DataFrame(
    {
        "seed key": range(config.num_seeds),
        "final validation accuracy": np.asarray(many_metrics["accuracy"][:, -1]).round(4),
        "test accuracy": test_accuracies.round(4),
    }
)

# %%
# ## Four ways to train this CNN, side by side
#
# `benchmarks/bench_jax_image.py` trains the same network on the same data with the same
# batch size and number of epochs in each of the gallery's four ways, one after the other in
# one process pinned to one core, validating after each epoch, and records what each reached.
# Speeds are in samples per CPU-second, which the other jobs of a shared machine change much
# less than wall-clock rates; "end to end" counts compilation and validation too.
#
# | way | samples per CPU-second, end to end | test accuracy | compile time (CPU) | lines of user code |
# |---|---|---|---|---|
# | plain torch in Lightning | {{ bench:jax_image.plain_torch_samples_per_cpu_s:,.0f }} | {{ bench:jax_image.plain_torch_test_accuracy:.2%}} | {{ bench:jax_image.plain_torch_compile_s:.1f }} s | {{ bench:jax_image.plain_torch_lines }} |
# | Jax network in Lightning (`FlaxModule`) | {{ bench:jax_image.jax_network_samples_per_cpu_s:,.0f }} | {{ bench:jax_image.jax_network_test_accuracy:.2%}} | {{ bench:jax_image.jax_network_compile_s:.1f }} s | {{ bench:jax_image.jax_network_lines }} |
# | whole Jax step in Lightning | {{ bench:jax_image.jax_step_samples_per_cpu_s:,.0f }} | {{ bench:jax_image.jax_step_test_accuracy:.2%}} | {{ bench:jax_image.jax_step_compile_s:.1f }} s | {{ bench:jax_image.jax_step_lines }} |
# | `JaxTrainer` end to end (this page) | {{ bench:jax_image.jax_trainer_samples_per_cpu_s:,.0f }} | {{ bench:jax_image.jax_trainer_test_accuracy:.2%}} | {{ bench:jax_image.jax_trainer_compile_s:.1f }} s | {{ bench:jax_image.jax_trainer_lines }} |
#
# Timing training steps alone (compiled, no validation), `JaxTrainer` ran
# {{ bench:jax_image.trainer_vs_torch_cpu:.2f }}x the samples per CPU-second of plain torch in
# Lightning, and {{ bench:jax_image.trainer_vs_hand_loop_cpu:.2f }}x a hand-written loop of
# one jitted step over the same device-resident data (medians of
# {{ bench:jax_image.rounds }} rounds). End to end (the first column) its compilation counts
# too, the longest of the four: it compiles a few small programs (the start, a step, an
# epoch's end), which a short budget feels. Record: {{ bench:jax_image.stamp }}.
#
# **Which to choose.** *Plain torch in Lightning* when the model and its ecosystem are torch
# and speed is not the issue: no compilation, every Lightning feature. *A Jax network in
# Lightning* to bring one flax model into an existing torch pipeline (loss, optimizer,
# callbacks stay torch). *The whole Jax step in Lightning* when you want Jax's fused update
# but keep Lightning's `Trainer`, its data modules, strategies and checkpoints. *`JaxTrainer`
# end to end* when data, model and update can all be Jax: no torch on the way, data on the
# device, many seeds in one call (`fit_many`), and on a GPU or TPU the whole run compiled.
#
# ## Where the speed comes from
#
# - **No data loader.** Batches are gathered by compiled code from arrays already on the
#   device; nothing is copied from the host or converted between frameworks per step.
# - **The step called from Python on the CPU.** Inside a compiled loop, XLA's CPU backend
#   keeps a convolution's gradient in slow memory layouts (upstream
#   [jax#12868](https://github.com/jax-ml/jax/issues/12868)): the benchmark measured
#   {{ bench:jax_image.scan_step_ms:.1f }} ms of CPU time per step when `JaxTrainer` compiles
#   the whole loop as a scan (`loop="scan"`), against {{ bench:jax_image.steps_step_ms:.1f }}
#   ms when it compiles one step and calls it from Python (`loop="steps"`, which `auto` picks
#   here). The price of the steps is a Python call per step.
#   PPO's small steps are the other way round, so there `auto` keeps the scan.
# - **Donated state.** In the steps mode the training state is donated to each step, which
#   updates the parameters and Adam's moments in place.
