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
# Each number declares the range it may take, and a value outside it is refused with a
# message that names the flag. `--variant` picks which part(s) to train. `--accelerator`,
# `--devices`, `--num-nodes` and `--strategy` go to Lightning's `Trainer`:
# `--accelerator gpu --devices 4 --strategy ddp` trains on 4 GPUs, `srun` on a SLURM cluster
# (see [Scaling out](../../scaling-out.md)); the code stays the same. The defaults train on
# one CPU process, so that building the docs never starts several.
import dataclasses
from typing import Annotated, Literal

from annotated_types import Ge, Gt


@dataclasses.dataclass
class Config:
    """Train a flax CNN on Fashion-MNIST with Lightning, with a torch or a Jax optimizer."""

    variant: Literal["both", "jax-network", "jax-step"] = "both"
    """Part 1 (`jax-network`: Jax network, torch optimizer), part 2 (`jax-step`), or both."""
    epochs: Annotated[int, Ge(1)] = 3
    """Passes over the training set."""
    batch_size: Literal[64, 128, 256] = 128
    """Training batch size (one of a few that suit the one-cycle schedule)."""
    learning_rate: Annotated[float, Gt(0)] = 3e-3
    """Peak learning rate of the one-cycle schedule (Adam)."""
    train_size: Annotated[int, Ge(0)] = 0
    """Train on this many images only (0: all 55,000 left after the validation split)."""
    test_size: Annotated[int, Ge(0)] = 0
    """Test on this many images only (0: the full 10,000-image test set)."""
    speed_steps: Annotated[int, Ge(1)] = 150
    """Training steps timed for each network in the speed comparison."""
    seed: Annotated[int, Ge(0)] = 0
    """Seed of the data split and shuffling, and of the network initialisation."""
    threads: Annotated[int, Ge(1)] = 1
    """Torch CPU threads (Jax picks its own)."""
    accelerator: str = "cpu"
    """Lightning's accelerator: `cpu`, or `gpu` (which needs a CUDA build of jax)."""
    devices: str = "1"
    """Devices per machine (`2`, `0,1`, `auto`); several train data-parallel."""
    num_nodes: Annotated[int, Ge(1)] = 1
    """Machines to train on (on a SLURM cluster, as many as `srun --nodes`)."""
    strategy: str = "auto"
    """Lightning's strategy: `auto` (DDP on several devices), `ddp`, ..."""
    compile_cache: bool = True
    """Keep compiled programs on disk, so that the next run loads them."""


# %%
# ## Reading the settings
#
# [`example_config`][gallery_lib.example_config] returns the defaults above in the docs build
# (smaller ones in quick mode) and parses the command line when the file runs as a script.
# [`enable_compile_cache`][gallery_lib.enable_compile_cache] is about speed (see the last
# section). Lightning's informational log lines ("GPU available: False", ...) are turned
# off: the page shows what the example prints, nothing else.
import logging
import warnings

import lightning.pytorch as pl
import torch

from gallery_lib import enable_compile_cache, example_config

# mkdocs_gallery_thumbnail_number = 1
config = example_config(
    Config, quick={"epochs": 1, "train_size": 1024, "test_size": 500, "speed_steps": 10}
)
enable_compile_cache(config.compile_cache)
torch.set_num_threads(config.threads)
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # after importing it
warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # from Lightning's _pytree.py
print(config)

# %%
# ## The data
#
# [`FashionMNISTDataModule`][gallery_lib.datasets.FashionMNISTDataModule] is a
# `LightningDataModule`: 55,000 training and 5,000 validation images (a seeded split of the
# official training set) and the official 10,000 test images, as normalised `(batch, 1, 28,
# 28)` float32 tensors. It reads the original files that Debian's `dataset-fashion-mnist`
# package installs, or downloads them (`datamodule.source` says which). Everything on the
# data side is torch: the `DataLoader`s, their batches, their memory.
from gallery_lib.datasets import FashionMNISTDataModule

datamodule = FashionMNISTDataModule(
    batch_size=config.batch_size,
    train_size=config.train_size or None,
    test_size=config.test_size or None,
    seed=config.seed,
)
datamodule.prepare_data()
datamodule.setup()
print(f"Fashion-MNIST: {datamodule.source}")
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
# the torch network of the last section. Flax creates the parameters when `init` first sees
# an input: their shapes follow from the input's.
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


example_input = datamodule.train_set[:2][0]  # two images, to set the shapes
variables = FlaxCNN().init(jax.random.key(config.seed), jnp.asarray(example_input.numpy()))
logits = FlaxCNN().apply(variables, jnp.asarray(example_input.numpy()))
print(f"logits {logits.shape}, {sum(p.size for p in jax.tree.leaves(variables)):,} parameters")

# %%
# ## The loss: cross-entropy
#
# The network gives ten logits $z_0, \dots, z_9$ per image; the softmax turns them into class
# probabilities, and the loss is minus the log-probability of the true class $y$, averaged
# over the $N$ images of a batch:
#
# $$
# \mathcal{L} = -\frac{1}{N} \sum_{i=1}^{N} \log \frac{e^{z_{i, y_i}}}{\sum_{k=0}^{9} e^{z_{i,k}}}.
# $$
#
# Part 1 computes it with torch (`F.cross_entropy`), part 2 with optax
# (`softmax_cross_entropy_with_integer_labels`). The check: both give the same number on the
# logits above.
import numpy as np
import optax
import torch.nn.functional as F

labels = datamodule.train_set[:2][1]
torch_loss = F.cross_entropy(torch.from_numpy(np.array(logits)), labels)
optax_loss = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(labels.numpy()))
print(f"torch {torch_loss:.6f}, optax {optax_loss.mean():.6f}")

# %%
# ## A `LightningModule` for any torch network
#
# This module would train a plain torch CNN just as well: the loss, the metrics, the optimizer
# and its schedule are torch, and Lightning calls `backward()` and `optimizer.step()` itself
# (*automatic optimization*). `estimated_stepping_batches` gives the one-cycle schedule its
# length.
from torch.optim.lr_scheduler import OneCycleLR


class Classifier(pl.LightningModule):
    """Classify images with `network`, trained with torch's Adam and a one-cycle schedule."""

    def __init__(self, network: torch.nn.Module, learning_rate: float) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["network"])
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        loss = F.cross_entropy(self(batch[0]), batch[1])
        self.log("train_loss", loss)
        return loss

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        logits = self(batch[0])
        # sync_dist: on several processes (DDP), log the mean over all of them.
        self.log(f"{stage}_loss", F.cross_entropy(logits, batch[1]), sync_dist=True)
        self.log(f"{stage}_acc", (logits.argmax(-1) == batch[1]).float().mean(), sync_dist=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        return self(batch[0]).argmax(-1)

    def configure_optimizers(self):
        lr = self.hparams.learning_rate
        optimizer = torch.optim.Adam(self.parameters(), lr=lr, fused=True)  # fused: see the end
        # cycle_momentum=False keeps Adam's betas fixed, as optax's schedule in part 2 does.
        steps = self.trainer.estimated_stepping_batches
        schedule = OneCycleLR(optimizer, max_lr=lr, total_steps=steps, cycle_momentum=False)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


# %%
# ## Training with Lightning, timed
#
# Every run uses the same `Trainer` settings and the `CSVLogger`, whose `metrics.csv` gives
# the curves further down; Lightning's default `ModelCheckpoint` saves the model at the end
# of each epoch. `fit` is timed in wall-clock and in CPU seconds: this machine may be shared,
# and CPU time is what the training costs whatever else runs beside it.
import tempfile
import time
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger


def train(
    model: pl.LightningModule,
    name: str,
    datamodule: pl.LightningDataModule,
    config: Config,
    log_root: Path,
) -> tuple[pl.Trainer, dict[str, float]]:
    """Fit `model` for `config.epochs` epochs, then test it; return the trainer and results."""
    pl.seed_everything(config.seed, verbose=False)
    steps_per_epoch = len(datamodule.train_dataloader())
    trainer = pl.Trainer(
        max_epochs=config.epochs,
        logger=CSVLogger(log_root, name=name),
        default_root_dir=log_root,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        # Several points per epoch, also when DDP shares the epoch's steps between processes.
        log_every_n_steps=min(20, max(1, steps_per_epoch // 4)),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule=datamodule)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    (test,) = trainer.test(model, datamodule=datamodule, verbose=False)
    return trainer, {"test_acc": test["test_acc"], "wall_s": wall, "cpu_s": cpu}


# %%
# ## Part 1: a Jax network, torch loss and optimizer
#
# [`FlaxModule`][gallery_lib.FlaxModule] initialises the flax variables, then hands them to
# torch: **torch owns the parameter memory**, one `torch.nn.Parameter` per flax leaf (named
# after its flax path), as the table shows. Jax reads them through zero-copy DLPack views. At
# every step:
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
# d(loss)/d(parameters) back.
import pandas as pd

from gallery_lib import FlaxModule

jax_network = FlaxModule(FlaxCNN(), example_input, seed=config.seed)
pd.DataFrame(
    [(name, tuple(p.shape), p.numel()) for name, p in jax_network.named_parameters()],
    columns=["torch parameter", "shape", "numbers"],
)

# %%
# ### Training part 1
#
# The `Classifier` above, as is, with the wrapped network inside.
log_root = Path(tempfile.mkdtemp(prefix="flax_cnn_lightning_"))
models: dict[str, pl.LightningModule] = {}
trainers: dict[str, pl.Trainer] = {}
results: dict[str, dict[str, float]] = {}
if config.variant in ("both", "jax-network"):
    models["jax-network"] = Classifier(jax_network, learning_rate=config.learning_rate)
    trainers["jax-network"], results["jax-network"] = train(
        models["jax-network"], "jax-network", datamodule, config, log_root
    )
    print(f"jax-network: test accuracy {results['jax-network']['test_acc']:.2%}")

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
# With several processes (DDP), the gradients are averaged between them by
# [`all_reduce_mean`][gallery_lib.all_reduce_mean] outside the compiled code, so the step is
# cut in two there: the gradient, then the update.
from gallery_lib import all_reduce_mean


def make_train_step(apply_fn, tx: optax.GradientTransformation, processes: int):
    """`step(params, opt_state, x, y) -> (params, opt_state, loss)`: loss, gradient, update."""

    def loss_fn(params, x: jax.Array, y: jax.Array) -> jax.Array:
        logits = apply_fn({"params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def update(params, opt_state, grads):
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    grad_fn = jax.value_and_grad(loss_fn)
    if processes > 1:  # all_reduce_mean runs outside compiled code: compile the halves apart
        grad_fn, update = jax.jit(grad_fn), jax.jit(update)

    def step(params, opt_state, x: jax.Array, y: jax.Array):
        loss, grads = grad_fn(params, x, y)
        params, opt_state = update(params, opt_state, all_reduce_mean(grads))
        return params, opt_state, loss

    # One process: one compiled program; the optimizer state donates its buffers (see the end).
    return jax.jit(step, donate_argnums=1) if processes == 1 else step


# %%
# ### An optimizer that holds the optax state
#
# With `automatic_optimization = False`, Lightning leaves the step to `training_step`. It
# still counts `trainer.global_step` as the number of `optimizer.step()` calls, and saves each
# optimizer's `state_dict()` in checkpoints. So the optax state lives in `OptaxState`, a
# `torch.optim.Optimizer` that holds it: its `step(closure)` runs the closure, our jitted Jax
# step; its `state_dict()` turns the optax state into tensors (Lightning loads checkpoints
# with `torch.load(weights_only=True)`, which accepts tensors, not Jax arrays).


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


# %%
# ### The classifier, trained by one jitted Jax function per step
#
# The same `Classifier`, with two methods replaced: `configure_optimizers` builds optax's
# Adam with its one-cycle schedule and the jitted step, and `training_step` calls the step
# through Lightning's optimizer wrapper, so that Lightning counts it.
from gallery_lib import jax_to_torch, torch_to_jax


class JaxStepClassifier(Classifier):
    """The same classifier, trained by one jitted Jax function per step (optax Adam)."""

    def __init__(self, network: FlaxModule, learning_rate: float) -> None:
        super().__init__(network, learning_rate)
        self.automatic_optimization = False

    def configure_optimizers(self) -> OptaxState:
        steps, lr = self.trainer.estimated_stepping_batches, self.hparams.learning_rate
        tx = optax.adam(optax.cosine_onecycle_schedule(steps, lr))
        self.train_step = make_train_step(self.network.apply_fn, tx, self.trainer.world_size)
        return OptaxState(self.parameters(), tx.init(self.network.jax_params))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        # Jax computes in 32 bits by default: hand it int32 labels rather than torch's int64.
        x, y = torch_to_jax(batch[0]), torch_to_jax(batch[1].to(torch.int32))
        optimizer = self.optimizers()  # Lightning's wrapper around our OptaxState
        state = optimizer.optimizer

        def jax_step() -> jax.Array:
            params, state.opt_state, loss = self.train_step(
                self.network.jax_params, state.opt_state, x, y
            )
            self.network.load_jax_params(params)
            return loss

        loss = optimizer.step(closure=jax_step)  # Lightning counts it in trainer.global_step
        self.log("train_loss", jax_to_torch(loss))


# %%
# ### Training part 2
#
# After a multi-process (DDP) run, every process has trained and tested; process 0 alone goes
# on with the rest of the page.
if config.variant in ("both", "jax-step"):
    network = FlaxModule(FlaxCNN(), example_input, seed=config.seed)
    models["jax-step"] = JaxStepClassifier(network, config.learning_rate)
    trainers["jax-step"], results["jax-step"] = train(
        models["jax-step"], "jax-step", datamodule, config, log_root
    )
    print(f"jax-step: test accuracy {results['jax-step']['test_acc']:.2%}")
    print(f"trainer.global_step = {trainers['jax-step'].global_step}")
if torch.distributed.is_initialized():  # trained on several processes (DDP):
    torch.distributed.destroy_process_group()
    if next(iter(trainers.values())).global_rank > 0:  # the rest is for process 0 alone
        raise SystemExit

# %%
# ## Learning curves
#
# The `CSVLogger` of each run wrote every logged value to a `metrics.csv`: the training loss
# every few steps, the validation accuracy once an epoch. The validation accuracy of both
# parts, epoch by epoch, against the target this page sets itself:
import matplotlib.pyplot as plt
from matplotlib.ticker import PercentFormatter

plt.rcParams.update({"font.size": 13})
TARGET_ACCURACY = 0.89


def read_metrics(run_dir: Path) -> pd.DataFrame:
    """The `metrics.csv` of a `CSVLogger` run (one row per logging call, empty cells NaN)."""
    (path,) = run_dir.glob("version_*/metrics.csv")
    return pd.read_csv(path)


metrics = {name: read_metrics(log_root / name) for name in models}
fig, ax = plt.subplots(figsize=(7, 4.5))
for name, rows in metrics.items():
    accuracy = rows["val_acc"].dropna()
    ax.plot(range(1, len(accuracy) + 1), accuracy, "o-", lw=2, label=name)
ax.axhline(TARGET_ACCURACY, color="gray", ls="--", label="target")
ax.set(xlabel="epoch", ylabel="validation accuracy", title="Fashion-MNIST, flax CNN")
ax.set_xticks(range(1, config.epochs + 1))
ax.yaxis.set_major_formatter(PercentFormatter(1.0))
ax.legend()
fig.tight_layout()
plt.show()

# %%
# ### The training loss
#
# The same runs, step by step: both parts follow the one-cycle schedule, whose learning rate
# climbs for the first third of the run, then anneals.
fig, ax = plt.subplots(figsize=(7, 4.5))
for name, rows in metrics.items():
    loss = rows.dropna(subset="train_loss")
    ax.plot(loss["step"], loss["train_loss"], label=name, alpha=0.8)
ax.set(xlabel="training step", ylabel="cross-entropy", title="Training loss")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# ## Against the target, within the budget
#
# Each part against the page's targets: `TARGET_ACCURACY` on the test images, within a
# training budget of `BUDGET_S` seconds (`fit`, validation and compilation included), counted
# in CPU seconds because the machine that builds these docs may be shared; the wall-clock
# time is shown beside it.
BUDGET_S = 60.0
for name, result in results.items():
    print(f"{name}: test accuracy {result['test_acc']:.2%}, {result['cpu_s']:.1f} CPU seconds")
table = pd.DataFrame(results).T
table["target reached"] = table["test_acc"] >= TARGET_ACCURACY
table["within budget"] = table["cpu_s"] <= BUDGET_S
table.round({"test_acc": 4, "wall_s": 1, "cpu_s": 1})

# %%
# ## What Lightning sees: the model summary and a checkpoint
#
# Lightning's `ModelSummary` counts the flax parameters as torch parameters, layer by layer.
from lightning.pytorch.utilities.model_summary import ModelSummary

name, model = next(reversed(models.items()))
summary = ModelSummary(model, max_depth=3)
pd.DataFrame(
    {"type": summary.layer_types, "parameters": summary.param_nums}, index=summary.layer_names
)

# %%
# ### Restoring a checkpoint
#
# The `Trainer`'s default `ModelCheckpoint` wrote a checkpoint at the end of training. It
# holds the flax parameters in `state_dict` (and, for part 2, the optax state beside them);
# loading it into a fresh module, whose network was initialised with another seed, restores
# the very Jax parameters that were trained.
checkpoint_path = trainers[name].checkpoint_callback.best_model_path
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
# ## Test-set predictions
#
# `Trainer.predict` runs the network on the test set, and the predicted classes give a
# confusion matrix: each row is a true class, the share of its test images given each class.
# The most frequent mistake is printed above it.
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

predictor = pl.Trainer(logger=False, enable_progress_bar=False, devices=1)
predicted = torch.cat(predictor.predict(model, datamodule=datamodule)).numpy()
test_images, test_labels = (t.numpy() for t in datamodule.test_set.tensors)
print(f"{name}: {np.mean(predicted == test_labels):.2%} of {len(test_labels)} test images")
mistakes = confusion_matrix(test_labels, predicted, labels=range(10)) * (1 - np.eye(10, dtype=int))
true, guess = np.unravel_index(mistakes.argmax(), mistakes.shape)
print(f"most frequent mistake: {datamodule.classes[true]} taken for {datamodule.classes[guess]}")
fig, ax = plt.subplots(figsize=(7, 7))
ConfusionMatrixDisplay.from_predictions(
    test_labels,
    predicted,
    display_labels=datamodule.classes,
    normalize="true",
    values_format=".0%",
    xticks_rotation=90,
    colorbar=False,
    ax=ax,
    text_kw={"fontsize": 12},
)
ax.set_title(f"{name}: confusion matrix")
fig.tight_layout()
plt.show()

# %%
# ### A few test images
#
# The predicted class of the first test images, with the true class in parentheses when it
# differs (in red).
fig, axes = plt.subplots(3, 4, figsize=(7, 6.5))
for ax, image, guess, truth in zip(axes.flat, test_images, predicted, test_labels, strict=False):
    ax.imshow(image[0], cmap="gray_r")
    title = datamodule.classes[guess]
    if guess != truth:
        title += f"\n({datamodule.classes[truth]})"
    ax.set_title(title, fontsize=12, color="black" if guess == truth else "red")
    ax.axis("off")
fig.tight_layout()
plt.show()

# %%
# ## Where the speed comes from
#
# Four choices on this page are there for speed, not for the teaching; each was measured by the
# repository's benchmarks (one core; the records' dates, machines and commands are linked
# from [Using Jax with PyTorch Lightning](../../jax-and-lightning.md)):
#
# - **The whole step in one compiled program** (part 2). Against a pure-Jax training loop
#   (jit and optax, no Lightning) on the same CNN, part 2 ran at
#   {{ bench:flax_cnn.jax_step_ratio:.2f }}x its samples per second, part 1 at
#   {{ bench:flax_cnn.jax_network_ratio:.2f }}x, the plain torch CNN at
#   {{ bench:flax_cnn.plain_torch_ratio:.2f }}x (medians of
#   {{ bench:flax_cnn.rounds }} rounds, `bench_flax_cnn.py`). Donating the optimizer state
#   (`donate_argnums=1`) lets XLA write the new Adam moments into the old ones' memory.
# - **Freed memory kept for reuse.** The residuals that part 1's forward hands to its
#   backward (about 13 MB per step) are new Jax buffers at every step; by default glibc's
#   `malloc` returns freed memory to the system and faults it in again at the next step.
#   [`keep_freed_memory`][gallery_lib.keep_freed_memory] tells it to keep that memory: in a
#   bare training loop the wrapper then ran at {{ bench:interop.wrapper_ratio:.2f }}x the
#   speed of pure Jax, against {{ bench:interop_malloc_default.wrapper_ratio:.2f }}x without
#   (`bench_interop.py`); inside Lightning, whose own allocations keep the heap busy, the
#   difference was within the noise.
# - **The compilation cache.** [`enable_compile_cache`][gallery_lib.enable_compile_cache]
#   keeps compiled programs on disk: the first training step of both parts, compilation
#   included, took {{ bench:compile_cache.cnn_warm_over_cold:.2f }}x as long when the cache
#   was warm as when it was cold (`bench_compile_cache.py`).
# - **Torch's fused Adam** (`fused=True`, part 1 and plain torch): one kernel updates all the
#   parameters; it is not measured apart from the rest here.
#
# The cells below measure the three networks in this very run: each is trained for
# `speed_steps` steps by a `Trainer` (no validation, no logging), a small Lightning
# `Callback` times the steps after a few warm-up ones (which include compilation), and the
# three run one after the other, twice, keeping the best of the two. Only the ratios mean
# something on a shared machine, not the absolute numbers.
from gallery_lib import keep_freed_memory

print("keep_freed_memory:", keep_freed_memory())

# %%
# ### The same CNN in plain torch, and a step timer


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


class StepTimer(pl.Callback):
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


# %%
# ### Timing the three


def samples_per_second(
    model: pl.LightningModule, datamodule: pl.LightningDataModule, steps: int
) -> tuple[float, float]:
    """Train `model` for `steps` timed steps; return samples/s and CPU cores used."""
    timer = StepTimer(warmup=5)
    trainer = pl.Trainer(
        max_steps=timer.warmup + steps,
        devices=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(model, datamodule=datamodule)
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
        measured = samples_per_second(make_model(), datamodule, config.speed_steps)
        speed[name] = max(speed.get(name, measured), measured)
print(f"samples/s at batch {config.batch_size}:", {k: round(v[0]) for k, v in speed.items()})
table = pd.DataFrame(speed, index=["samples/s", "CPU cores used"]).T
table["vs plain torch"] = table["samples/s"] / table.loc["plain torch", "samples/s"]
table.round({"samples/s": 0, "CPU cores used": 1, "vs plain torch": 2})
