"""
# A flax CNN trained by PyTorch Lightning: a Jax network, then a whole Jax step

A convolutional network written in [flax](https://flax.readthedocs.io) learns to classify
[Fashion-MNIST](https://github.com/zalandoresearch/fashion-mnist) clothes, trained by
Lightning's `Trainer`. It goes deeper into Jax in two steps: first only the network is Jax,
then the whole training step is one jitted Jax function.

## What you will learn

- how [`FlaxModule`][gallery_lib.FlaxModule] wraps a flax network into a `torch.nn.Module`
  that Lightning trains like any other
- how to run a whole Jax training step (forward, backward, optax update) inside Lightning
  with manual optimization
- how to check accuracy against a target and speed against the same CNN in plain torch
- what Lightning still gives a Jax model: its loop, logging, checkpoints and DDP

## Prerequisites

The first-steps page, and a `LightningModule` you have written before. The Fashion-MNIST
files come from the Debian package `dataset-fashion-mnist` (`make env` installs it), else
from the dataset's mirror.

1. **A Jax network in a Lightning loop.** The loss (`F.cross_entropy`), the optimizer
   (`torch.optim.Adam`) and the learning-rate schedule (`OneCycleLR`) are torch; the forward
   and backward passes of the network run as jitted Jax functions.
2. **The whole step in Jax.** With Lightning's *manual optimization*, forward, backward and
   the [optax](https://optax.readthedocs.io) Adam update are one jitted Jax function; the
   parameters are still torch `Parameter`s, so Lightning's model summary and checkpoints see
   and save them.
"""

# %%
# ## Settings
#
# The defaults are what the docs build runs; run the script with `--help` to list the flags.
# `--variant` picks which part(s) to train, `--batch-size` one of a few sizes that suit the
# one-cycle schedule below. `--accelerator`, `--devices`, `--num-nodes` and `--strategy` go to
# Lightning's `Trainer`: `--accelerator gpu --devices 4 --strategy ddp` trains on 4 GPUs,
# `srun` on a SLURM cluster (see [Scaling out](../../scaling-out.md)); the code stays the same.
# The defaults train on one CPU process, so that building the docs never starts several.
import dataclasses
from typing import Literal

from gallery_lib import enable_compile_cache, example_config


@dataclasses.dataclass
class Config:
    """Train a flax CNN on Fashion-MNIST with Lightning, with a torch or a Jax optimizer."""

    variant: Literal["both", "jax-network", "jax-step"] = "both"
    """Part 1 (`jax-network`: Jax forward/backward, torch optimizer), part 2 (`jax-step`:
    forward, backward and optax update in one jitted Jax function), or both."""
    epochs: int = 3
    """Passes over the training set."""
    batch_size: Literal[64, 128, 256] = 128
    """Training batch size."""
    learning_rate: float = 3e-3
    """Peak learning rate of the one-cycle schedule (Adam)."""
    train_size: int | None = None
    """Train on this many images only (None: all 55,000 left after the validation split)."""
    test_size: int | None = None
    """Test on this many images only (None: the full 10,000-image test set)."""
    speed_steps: int = 150
    """Training steps timed for each network in the speed comparison."""
    seed: int = 0
    """Seed of the data split and shuffling, and of the network initialisation."""
    threads: int = 1
    """Torch CPU threads (Jax picks its own)."""
    accelerator: str = "cpu"
    """Lightning's accelerator for training: `cpu`, or `gpu` (which needs a CUDA build of jax)."""
    devices: str = "1"
    """Devices per machine for training (`2`, `0,1`, `auto`); several train data-parallel."""
    num_nodes: int = 1
    """Machines to train on (on a SLURM cluster, as many as `srun --nodes`)."""
    strategy: str = "auto"
    """Lightning's strategy: `auto` (DDP on several devices), `ddp`, ..."""
    compile_cache: bool = True
    """Keep compiled programs on disk (jax's persistent cache) so the next run loads them."""


config = example_config(
    Config, quick={"epochs": 1, "train_size": 1024, "test_size": 500, "speed_steps": 10}
)
enable_compile_cache(config.compile_cache)
print(config)

# %%
# ## The data
#
# [`FashionMNISTDataModule`][gallery_lib.datasets.FashionMNISTDataModule] is a
# `LightningDataModule`: 55,000 training and 5,000 validation images (a seeded split of the
# official training set) and the official 10,000 test images, as normalised `(batch, 1, 28,
# 28)` float32 tensors. It reads the original files that Debian's `dataset-fashion-mnist`
# package installs, or downloads them, and logs which it did (`datamodule.source`).
# Everything on the data side is torch: the `DataLoader`s, their batches, their memory.
import torch

from gallery_lib.datasets import FashionMNISTDataModule

torch.set_num_threads(config.threads)
datamodule = FashionMNISTDataModule(
    batch_size=config.batch_size,
    train_size=config.train_size,
    test_size=config.test_size,
    seed=config.seed,
)
datamodule.prepare_data()
datamodule.setup()
print(
    f"train {len(datamodule.train_set)}, validation {len(datamodule.val_set)}, "
    f"test {len(datamodule.test_set)} images; classes: {', '.join(datamodule.classes)}"
)

# %%
# ## The network, in flax
#
# A small CNN that trains fast on a CPU: two strided convolutions (28x28 -> 14x14 -> 7x7),
# then two dense layers. Flax convolutions take channels last, so the network transposes the
# torch-style `(batch, 1, 28, 28)` input itself. Explicit paddings make it the exact twin of
# the torch network used for comparison at the end.
import flax.linen as nn
import jax
import jax.numpy as jnp


class FlaxCNN(nn.Module):
    """Conv(32, 5x5, stride 2) - Conv(64, 3x3, stride 2) - Dense(128) - Dense(10)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = jnp.transpose(x, (0, 2, 3, 1))  # NCHW (torch) -> NHWC (flax)
        x = nn.relu(nn.Conv(32, (5, 5), strides=2, padding=2)(x))
        x = nn.relu(nn.Conv(64, (3, 3), strides=2, padding=1)(x))
        x = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        return nn.Dense(10)(x)


# %%
# ## A `LightningModule` for any torch network
#
# This module would train a plain torch CNN just as well: the loss, the metrics, the optimizer
# and its schedule are torch, and Lightning calls `backward()` and `optimizer.step()` itself
# (*automatic optimization*). `estimated_stepping_batches` gives the one-cycle schedule its
# length.
import logging
import warnings

import lightning.pytorch as pl
import torch.nn.functional as F
from torch.optim.lr_scheduler import OneCycleLR

# Keep the page to what the example prints: no Lightning banners ("GPU available: False"...).
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*LeafSpec.*")


class Classifier(pl.LightningModule):
    """Classify images with `network`, trained with torch's Adam and a one-cycle schedule."""

    def __init__(self, network: torch.nn.Module, learning_rate: float = 3e-3) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["network"])
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, y = batch
        logits = self(x)
        # sync_dist: on several processes (DDP), log the mean over all of them.
        self.log(f"{stage}_loss", F.cross_entropy(logits, y), sync_dist=True)
        self.log(f"{stage}_acc", (logits.argmax(-1) == y).float().mean(), sync_dist=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        return self(batch[0]).argmax(-1)

    def configure_optimizers(self):
        # `fused=True`: torch's one-kernel Adam, faster on a CPU than the default.
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate, fused=True)
        schedule = OneCycleLR(
            optimizer,
            max_lr=self.hparams.learning_rate,
            total_steps=self.trainer.estimated_stepping_batches,
            cycle_momentum=False,  # keep Adam's betas fixed, as optax's schedule below does
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


# %%
# ## Training with Lightning, timed
#
# Every run uses the same `Trainer` settings and the `CSVLogger`, whose `metrics.csv` gives
# the curves at the end. `fit` is timed in wall-clock and in CPU seconds: this machine may be
# shared, and CPU time is what the training costs whatever else runs beside it.
import tempfile
import time
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger

log_root = Path(tempfile.mkdtemp(prefix="flax_cnn_lightning_"))
BUDGET_S = 60.0  # the training budget of each variant at the docs-build defaults


def train(model: pl.LightningModule, name: str) -> tuple[pl.Trainer, dict[str, float]]:
    """Fit `model` for `config.epochs` epochs, then test it; return the trainer and results."""
    pl.seed_everything(config.seed, verbose=False)
    trainer = pl.Trainer(
        max_epochs=config.epochs,
        logger=CSVLogger(log_root, name=name),
        default_root_dir=log_root,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        # Several points per epoch, also when DDP shares the epoch's steps between processes.
        log_every_n_steps=min(20, max(1, len(datamodule.train_set) // config.batch_size // 4)),
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=False,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule=datamodule)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    (test,) = trainer.test(model, datamodule=datamodule, verbose=False)
    print(
        f"{name}: test accuracy {test['test_acc']:.2%} after {config.epochs} epoch(s); "
        f"training took {wall:.1f} s wall-clock, {cpu:.1f} s of CPU time"
    )
    return trainer, {"test_acc": test["test_acc"], "wall_s": wall, "cpu_s": cpu}


# %%
# ## Part 1: a Jax network, torch loss and optimizer
#
# [`FlaxModule`][gallery_lib.FlaxModule] initialises the flax variables, then hands them to
# torch: **torch owns the parameter memory**, one `torch.nn.Parameter` per flax leaf (named
# after its flax path). Jax reads them through zero-copy DLPack views. At every step:
#
# | Step | Runs in | Result lives in |
# |---|---|---|
# | the `DataLoader` batch | torch | torch memory, viewed by Jax |
# | `self(x)`, the CNN's forward | Jax: jitted `jax.vjp` | Jax buffers (logits, residuals) |
# | `F.cross_entropy`, `loss.backward()` | torch autograd | torch memory |
# | the CNN's backward | Jax: the jitted VJP, called by autograd | Jax, viewed as `.grad` |
# | `optimizer.step()` (Adam) | torch, in place | the parameters' torch memory |
#
# The gradient crosses the boundary twice: torch hands d(loss)/d(logits) to Jax, Jax hands
# d(loss)/d(parameters) back. Nothing else about Lightning changes: the module above is used
# as is.
#
# One line is about speed on the CPU: the residuals the forward hands to the backward (about
# 13 MB per step here) are new Jax buffers at every step, and by default glibc's `malloc` can
# return freed memory to the system and take it back, page by page, at the next step.
# [`keep_freed_memory`][gallery_lib.keep_freed_memory] tells it to keep that memory for
# reuse. In a bare training loop it made this wrapper faster on the machine that built these
# docs (`benchmarks/bench_interop.py` with and without `--malloc default`; the "Using Jax
# with PyTorch Lightning" page shows both); inside Lightning, whose own allocations keep the
# heap busy, the difference was within the noise.
from gallery_lib import FlaxModule, keep_freed_memory

keep_freed_memory()

example_input = datamodule.train_set[:2][0]
results: dict[str, dict[str, float]] = {}
models: dict[str, pl.LightningModule] = {}
if config.variant in ("both", "jax-network"):
    jax_network = FlaxModule(FlaxCNN(), example_input, seed=config.seed)
    print(jax_network)
    print({name: tuple(p.shape) for name, p in jax_network.named_parameters()})
    models["jax-network"] = Classifier(jax_network, learning_rate=config.learning_rate)
    trainer_1, results["jax-network"] = train(models["jax-network"], "jax-network")

# %%
# ## Part 2: the whole training step in Jax
#
# Now the loss, its gradient and the optax Adam update are one pure function, compiled once
# by `jax.jit`: XLA sees the whole step and fuses it. **Torch still owns the parameter
# memory**, so that Lightning sees ordinary `Parameter`s (in its model summary, in
# `state_dict()` and so in checkpoints). At every step the jitted function reads them through
# `jax_params` (zero-copy views) and returns new values, which
# [`load_jax_params`][gallery_lib.FlaxModule.load_jax_params] copies into the same tensors.
# **Jax owns the optimizer state** (Adam's moments) and no gradient ever reaches torch:
# `Parameter.grad` stays `None`.
#
# With `automatic_optimization = False`, Lightning leaves the step to `training_step`. It
# still counts `trainer.global_step` as the number of `optimizer.step()` calls, and saves each
# optimizer's `state_dict()` in checkpoints. So the optax state lives in `OptaxState`, a
# `torch.optim.Optimizer` that holds it: its `step(closure)` runs the closure, our jitted Jax
# step; its `state_dict()` turns the optax state into tensors (Lightning loads checkpoints
# with `torch.load(weights_only=True)`, which accepts tensors, not Jax arrays).
import numpy as np
import optax

from gallery_lib import all_reduce_mean, jax_to_torch, torch_to_jax


class OptaxState(torch.optim.Optimizer):
    """A torch optimizer that holds an optax state for Lightning; the update runs in Jax."""

    def __init__(self, params, opt_state: optax.OptState) -> None:
        super().__init__(params, defaults={})
        self.opt_state = opt_state

    def step(self, closure):  # the closure does the update, in Jax
        return closure()

    def state_dict(self) -> dict:
        return {"optax": [torch.from_numpy(np.array(x)) for x in jax.tree.leaves(self.opt_state)]}

    def load_state_dict(self, state_dict: dict) -> None:
        leaves = [jnp.asarray(t.numpy()) for t in state_dict["optax"]]
        self.opt_state = jax.tree.unflatten(jax.tree.structure(self.opt_state), leaves)


class JaxStepClassifier(Classifier):
    """The same classifier, trained by one jitted Jax function per step (optax Adam)."""

    def __init__(self, network: FlaxModule, learning_rate: float = 3e-3) -> None:
        super().__init__(network, learning_rate)
        self.automatic_optimization = False

    def configure_optimizers(self) -> OptaxState:
        schedule = optax.cosine_onecycle_schedule(
            self.trainer.estimated_stepping_batches, self.hparams.learning_rate
        )
        self.tx = optax.adam(schedule)
        apply_fn, tx = self.network.apply_fn, self.tx

        def loss_fn(params, x, y):
            logits = apply_fn({"params": params}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        @jax.jit
        def update(params, opt_state, grads):
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        grad_fn = jax.jit(jax.value_and_grad(loss_fn))

        def train_step(params, opt_state, x, y):
            loss, grads = grad_fn(params, x, y)
            # Several processes (DDP): average the gradients over them; one: nothing to do.
            grads = all_reduce_mean(grads)
            params, opt_state = update(params, opt_state, grads)
            return params, opt_state, loss

        # One process: the whole step compiles into one XLA program, and the optimizer state,
        # Jax's own, donates its buffers to the update. Several: two programs, averaged between.
        one_process = self.trainer.world_size == 1
        self.train_step = jax.jit(train_step, donate_argnums=1) if one_process else train_step
        return OptaxState(self.parameters(), self.tx.init(self.network.jax_params))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, labels = batch
        # Jax computes in 32 bits by default: hand it int32 labels rather than torch's int64.
        x, y = torch_to_jax(x), torch_to_jax(labels.to(torch.int32))
        optimizer = self.optimizers()  # Lightning's wrapper around our OptaxState
        state = optimizer.optimizer

        def jax_step():
            params, state.opt_state, loss = self.train_step(
                self.network.jax_params, state.opt_state, x, y
            )
            self.network.load_jax_params(params)
            return loss

        loss = optimizer.step(closure=jax_step)  # Lightning counts it in trainer.global_step
        self.log("train_loss", jax_to_torch(loss))


if config.variant in ("both", "jax-step"):
    models["jax-step"] = JaxStepClassifier(
        FlaxModule(FlaxCNN(), example_input, seed=config.seed), config.learning_rate
    )
    trainer_2, results["jax-step"] = train(models["jax-step"], "jax-step")
    print(f"trainer.global_step = {trainer_2.global_step}")

# %%
# ## What Lightning sees: the model summary and a checkpoint
#
# Lightning's `ModelSummary` counts the flax parameters as torch parameters. A checkpoint
# written by the `Trainer` holds them in `state_dict`, and the optax state beside them;
# loading it into a fresh module (with a freshly initialised network) restores the very Jax
# parameters that were trained.
from lightning.pytorch.utilities.model_summary import ModelSummary

name, model = next(reversed(models.items()))
trainer = trainer_2 if name == "jax-step" else trainer_1
print(ModelSummary(model, max_depth=3))
checkpoint_path = log_root / f"{name}.ckpt"
trainer.save_checkpoint(checkpoint_path, weights_only=False)  # weights and optimizer state
if torch.distributed.is_initialized():  # trained on several processes (DDP):
    torch.distributed.destroy_process_group()
    if trainer.global_rank > 0:  # what follows is for process 0 alone
        raise SystemExit
checkpoint = torch.load(checkpoint_path, weights_only=True)
print("checkpoint keys:", sorted(checkpoint))
print("saved tensors:", sorted(checkpoint["state_dict"]))
fresh = FlaxModule(FlaxCNN(), example_input, seed=config.seed + 1)
restored = type(model).load_from_checkpoint(checkpoint_path, network=fresh, weights_only=True)
same = jax.tree.map(
    lambda a, b: bool(jnp.array_equal(a, b)),
    model.network.jax_params,
    restored.network.jax_params,
)
print("restored Jax parameters equal the trained ones:", all(jax.tree.leaves(same)))
assert all(jax.tree.leaves(same))

# %%
# ## Test-set predictions, and the budget
#
# `Trainer.predict` runs the network on the test set; the predicted classes give a confusion
# matrix and the image grid at the end. The table sums up each variant against the targets:
# `TARGET_ACCURACY` on the 10,000 test images within a training budget of 60 s (`fit`, validation
# and compilation included), counted in CPU seconds because the machine that builds these
# docs may be shared; the wall-clock time is shown beside it.
predictions = {
    name: torch.cat(
        pl.Trainer(logger=False, enable_progress_bar=False, devices=1).predict(
            model, datamodule=datamodule
        )
    ).numpy()
    for name, model in models.items()
}
test_images = datamodule.test_set.tensors[0][:, 0].numpy()
test_labels = datamodule.test_set.tensors[1].numpy()
for name, predicted in predictions.items():
    print(f"{name}: {np.mean(predicted == test_labels):.2%} of {len(test_labels)} test images")
TARGET_ACCURACY = 0.89
print(
    f"\n| variant | test accuracy (target {TARGET_ACCURACY:.0%}) | wall-clock "
    f"| CPU time (budget {BUDGET_S:.0f} s) |"
)
print("|---|---|---|---|")
for name, result in results.items():
    reached = "reached" if result["test_acc"] >= TARGET_ACCURACY else "MISSED"
    within = "within" if result["cpu_s"] <= BUDGET_S else "OVER"
    print(
        f"| {name} | {result['test_acc']:.2%} ({reached}) | {result['wall_s']:.1f} s "
        f"| {result['cpu_s']:.1f} s ({within} budget) |"
    )

# %%
# ## Speed: the same CNN in plain torch, and the two Jax variants
#
# The plain torch twin of the flax CNN, trained by the very same `Classifier`. Each network is
# trained for `speed_steps` steps by a `Trainer` (without validation or logging), and a small
# Lightning `Callback` times the steps after a few warm-up ones (which include compilation).
# The three are timed one after the other in this run, twice, keeping the best of the two:
# only these ratios are meaningful, not the absolute numbers of a shared machine. The
# repository's `benchmarks/bench_flax_cnn.py` times the same three against a pure-Jax loop
# (jit + optax, no Lightning), over more rounds.
from lightning.pytorch.callbacks import Callback


class TorchCNN(torch.nn.Module):
    """The same architecture as `FlaxCNN`, in plain torch (channels first)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, 5, stride=2, padding=2)
        self.conv2 = torch.nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.dense1 = torch.nn.Linear(64 * 7 * 7, 128)
        self.dense2 = torch.nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.dense2(F.relu(self.dense1(x.flatten(1))))


class StepTimer(Callback):
    """Times the training steps after the first `warmup` ones (wall-clock and CPU seconds)."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            self.start = (time.perf_counter(), time.process_time())
            self.samples = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step > self.warmup:
            self.samples += len(batch[0])
            self.wall = time.perf_counter() - self.start[0]
            self.cpu = time.process_time() - self.start[1]


def samples_per_second(make_model) -> tuple[float, float]:
    """Train a fresh model for `speed_steps` timed steps; return samples/s and CPU cores used."""
    timer = StepTimer(warmup=5)
    trainer = pl.Trainer(
        max_steps=timer.warmup + config.speed_steps,
        devices=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(make_model(), datamodule=datamodule)
    return timer.samples / timer.wall, timer.cpu / timer.wall


contenders = {
    "plain torch": lambda: Classifier(TorchCNN(), config.learning_rate),
    "jax-network": lambda: Classifier(
        FlaxModule(FlaxCNN(), example_input, seed=config.seed), config.learning_rate
    ),
    "jax-step": lambda: JaxStepClassifier(
        FlaxModule(FlaxCNN(), example_input, seed=config.seed), config.learning_rate
    ),
}
contenders = {k: v for k, v in contenders.items() if k == "plain torch" or k in models}
speed: dict[str, tuple[float, float]] = {}
for _ in range(2):
    for name, make_model in contenders.items():
        measured = samples_per_second(make_model)
        speed[name] = max(speed.get(name, measured), measured)
print(f"| network (batch {config.batch_size}) | samples/s | vs plain torch | CPU cores used |")
print("|---|---|---|---|")
for name, (rate, cores) in speed.items():
    print(f"| {name} | {rate:,.0f} | {rate / speed['plain torch'][0]:.2f}x | {cores:.1f} |")

# %%
# ## Figures
#
# The curves come from the `metrics.csv` files written by Lightning's `CSVLogger`: training
# loss per logged step and validation accuracy per epoch, for each variant. Then the confusion
# matrix of the last variant on the test set, and a grid of test images with the predicted
# and true classes (red when wrong).
import csv

import matplotlib.pyplot as plt
from sklearn.metrics import ConfusionMatrixDisplay


def read_metrics(name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each metric of a CSVLogger run as (steps, values), skipping the rows without it."""
    (path,) = (log_root / name).glob("version_*/metrics.csv")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    columns = {}
    for key in rows[0]:
        points = [(int(r["step"]), float(r[key])) for r in rows if r[key] not in ("", None)]
        columns[key] = tuple(np.array(v) for v in zip(*points, strict=True)) if points else None
    return columns


fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
for name in models:
    metrics = read_metrics(name)
    ax_loss.plot(*metrics["train_loss"], label=name, alpha=0.8)
    steps, accuracy = metrics["val_acc"]
    ax_acc.plot(np.arange(1, len(accuracy) + 1), accuracy, "o-", label=name)
ax_loss.set(xlabel="training step", ylabel="cross-entropy", title="Training loss")
ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Validation accuracy")
ax_acc.xaxis.get_major_locator().set_params(integer=True)
for ax in (ax_loss, ax_acc):
    ax.legend()
    ax.grid(alpha=0.3)
fig.tight_layout()

name, predicted = next(reversed(predictions.items()))
fig, ax = plt.subplots(figsize=(7.5, 6.5))
ConfusionMatrixDisplay.from_predictions(
    test_labels,
    predicted,
    display_labels=datamodule.classes,
    xticks_rotation=45,
    colorbar=False,
    ax=ax,
)
ax.set_title(f"{name}: confusion matrix on {len(test_labels)} test images")
fig.tight_layout()

fig, axes = plt.subplots(4, 8, figsize=(12, 6.8))
for ax, index in zip(axes.flat, range(len(test_labels)), strict=False):
    ax.imshow(test_images[index], cmap="gray_r")
    right = predicted[index] == test_labels[index]
    ax.set_title(
        f"{datamodule.classes[predicted[index]]}\n({datamodule.classes[test_labels[index]]})",
        fontsize=8,
        color="black" if right else "red",
    )
    ax.axis("off")
fig.suptitle(f"{name}: predicted (true) class of test images")
fig.tight_layout()
plt.show()
