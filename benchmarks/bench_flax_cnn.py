"""Training speed of the flax CNN example's two variants, against pure Jax and plain torch.

Four ways to train the same CNN on Fashion-MNIST batches, timed in one process:

- `pure jax`: a Python loop over one jitted step (flax forward, `jax.value_and_grad`, optax
  Adam, parameters and optimizer state donated), fed from NumPy arrays: the baseline;
- `jax-step`: part 2 of the example, the same jitted step inside Lightning's manual
  optimization (parameters held by torch);
- `jax-network`: part 1, the flax CNN wrapped by `FlaxModule`, torch loss and Adam, Lightning's
  automatic optimization;
- `plain torch`: the same CNN in torch, trained by the same `LightningModule` as part 1.

Then what Lightning's loop costs by itself: the same `Trainer` and `DataLoader` with a step
that does nothing (with and without `self.log`), per step and as a share of a pure-Jax step.

Each round times every contender for `--steps` steps after warm-up steps (compilation), one
after the other; ratios to pure Jax are taken within each round and their median reported,
which keeps them meaningful on a shared machine. Samples per CPU-second are reported too.
The network, the pure-Jax baseline, the pinning of the process to `--cpus` cores (1 by
default) and the estimator are those of `bench_interop.py` (see `_common.py`), so that the
two benchmarks' ratios compare. Targets from the issue: jax-step >= 0.95x pure Jax,
jax-network >= 0.9x.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_flax_cnn.py --steps 200 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import typing
from collections.abc import Callable
from pathlib import Path

from _common import (
    EXAMPLE,
    add_malloc_flag,
    apply_malloc,
    pin_cpus,
    print_round,
    pure_jax_step,
    random_order_rounds,
)
from _results import RESULTS, save_results

if __name__ == "__main__":
    CORES = pin_cpus(int(sys.argv[sys.argv.index("--cpus") + 1]) if "--cpus" in sys.argv else 1)

import jax
import jax.numpy as jnp
import lightning.pytorch as pl
import numpy as np
import optax
import torch

from gallery_lib import FlaxModule, example_definitions
from gallery_lib.datasets import FashionMNISTDataModule
from gallery_lib.testing import quiet_lightning_trainer

WARMUP = 20


def time_pure_jax(
    example, dm: FashionMNISTDataModule, steps: int, seed: int, learning_rate: float
) -> tuple[float, float]:
    """Samples/s and samples per CPU-second of a plain jit + optax loop."""
    images = dm.train_set.tensors[0].numpy()
    labels = dm.train_set.tensors[1].numpy().astype(np.int32)
    model = example.FlaxCNN()
    params = model.init(jax.random.key(seed), jnp.asarray(images[:2]))["params"]
    tx = optax.adam(optax.cosine_onecycle_schedule(WARMUP + steps, learning_rate))

    # The pure-Jax loop owns its parameters, so it donates them to the step as well.
    train_step = pure_jax_step(model, tx)

    opt_state = tx.init(params)
    rng = np.random.default_rng(seed)
    batch = dm.batch_size
    order = rng.permutation(len(labels))
    start = None
    for step in range(WARMUP + steps):
        if step == WARMUP:
            jax.block_until_ready(params)
            start = time.perf_counter(), time.process_time()
        position = (step * batch) % (len(labels) - batch + 1)
        if position < batch:
            order = rng.permutation(len(labels))
        idx = order[position : position + batch]
        params, opt_state, _ = train_step(params, opt_state, images[idx], labels[idx])
    jax.block_until_ready(params)
    wall, cpu = time.perf_counter() - start[0], time.process_time() - start[1]
    return steps * batch / wall, steps * batch / cpu


def time_lightning(example, dm, make_model: Callable[[], pl.LightningModule], steps: int):
    """Samples/s and samples per CPU-second of `Trainer.fit` on a fresh model."""
    timer = example.StepTimer(warmup=WARMUP)
    trainer = quiet_lightning_trainer(
        max_steps=WARMUP + steps,
        limit_val_batches=0,
        callbacks=[timer],
    )
    trainer.fit(make_model(), datamodule=dm)
    return timer.samples / timer.wall, timer.samples / timer.cpu


def main() -> None:
    example = example_definitions(EXAMPLE)
    defaults = example.Config()  # the example's settings: batch size, learning rate, seed
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per contender")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all contenders")
    batch_sizes = typing.get_args(typing.get_type_hints(example.Config)["batch_size"])
    parser.add_argument("--batch-size", type=int, choices=batch_sizes, default=defaults.batch_size)
    parser.add_argument("--threads", type=int, default=defaults.threads, help="torch CPU threads")
    parser.add_argument("--cpus", type=int, default=1, help="cores to pin the process to (0: all)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    add_malloc_flag(parser)
    parser.add_argument(
        "--results",
        help="where to write the JSON record (default benchmarks/results/flax_cnn.json, "
        "flax_cnn_malloc_default.json with --malloc default)",
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    malloc = apply_malloc(args.malloc)
    torch.set_num_threads(args.threads)

    learning_rate = defaults.learning_rate
    dm = FashionMNISTDataModule(batch_size=args.batch_size, seed=args.seed)
    dm.prepare_data()
    dm.setup()
    example_input = dm.train_set[:2][0]

    def flax_network() -> FlaxModule:
        return FlaxModule(example.FlaxCNN(), example_input, seed=args.seed)

    contenders: dict[str, Callable[[], tuple[float, float]]] = {
        "pure jax": lambda: time_pure_jax(example, dm, args.steps, args.seed, learning_rate),
        "jax-step": lambda: time_lightning(
            example,
            dm,
            lambda: example.JaxStepClassifier(flax_network(), learning_rate),
            args.steps,
        ),
        "jax-network": lambda: time_lightning(
            example, dm, lambda: example.Classifier(flax_network(), learning_rate), args.steps
        ),
        "plain torch": lambda: time_lightning(
            example, dm, lambda: example.Classifier(example.TorchCNN(), learning_rate), args.steps
        ),
    }
    runs = random_order_rounds(contenders, args.rounds, after_round=print_round)

    print(
        f"\nbatch {args.batch_size}, {args.steps} timed steps x {args.rounds} rounds, "
        f"{CORES}, {malloc}, torch threads {args.threads}, "
        f"jax {jax.__version__}, torch {torch.__version__}"
    )
    lines = [
        "| contender | samples/s (median) | samples/CPU-s | vs pure jax: median of rounds "
        "(range; per CPU-s) |",
        "|---|---|---|---|",
    ]
    print("\n".join(lines))
    base = runs["pure jax"]
    numbers: dict[str, float] = {"rounds": args.rounds, "steps": args.steps}
    for name, results in runs.items():
        ratios = [r[0] / b[0] for r, b in zip(results, base, strict=True)]
        cpu_ratio = statistics.median(r[1] for r in results) / statistics.median(b[1] for b in base)
        lines.append(
            f"| {name} | {statistics.median(r[0] for r in results):,.0f} "
            f"| {statistics.median(r[1] for r in results):,.0f} "
            f"| {statistics.median(ratios):.3f}x ({min(ratios):.3f}-{max(ratios):.3f}; "
            f"per CPU-s {cpu_ratio:.3f}x) |"
        )
        print(lines[-1])
        slug = name.replace(" ", "_").replace("-", "_")
        numbers.update(
            {
                f"{slug}_ratio": statistics.median(ratios),
                f"{slug}_ratio_min": min(ratios),
                f"{slug}_ratio_max": max(ratios),
                f"{slug}_cpu_ratio": cpu_ratio,
            }
        )

    # Lightning's own cost per step: the same loop, DataLoader and batch size, a step that
    # does nothing but Lightning's manual `optimizer.step` (and, second, `self.log` of a loss).
    pure_us = 1e6 * dm.batch_size / statistics.median(b[0] for b in base)
    for log in (False, True):
        rate, _ = time_lightning(example, dm, lambda log=log: NoopStep(log), args.steps)
        loop_us = 1e6 * dm.batch_size / rate
        print(
            f"Lightning's loop with a no-op step{' and self.log' if log else ''}: "
            f"{loop_us:.0f} us per step = {loop_us / pure_us:.1%} of a pure-Jax step"
        )
        suffix = "_log" if log else ""
        numbers[f"loop{suffix}_us"] = loop_us
        numbers[f"loop{suffix}_share"] = loop_us / pure_us
    numbers["pure_jax_step_us"] = pure_us
    default = "flax_cnn" if args.malloc == "keep" else "flax_cnn_malloc_default"
    path = Path(args.results) if args.results else RESULTS / f"{default}.json"
    save_results(path, numbers, {"contenders": "\n".join(lines)}, load)
    print(f"written to {path}")


class NoopStep(pl.LightningModule):
    """A manual-optimization step that does nothing: what Lightning's loop costs by itself."""

    def __init__(self, log: bool) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.log_loss = log

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.optimizers().step(closure=lambda: None)
        if self.log_loss:
            self.log("train_loss", torch.zeros(()))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


if __name__ == "__main__":
    main()
