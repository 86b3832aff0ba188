"""Four ways to train the gallery's CNN on Fashion-MNIST, side by side, and JaxTrainer's loops.

The same network (the flax CNN, or its torch twin), the same data (the 55,000 training images,
validation on the 5,000 held out after each epoch, the 10,000 test images at the end), the
same batch size and epochs, and Adam with the same one-cycle schedule, trained in one process
pinned to `--cpus` cores (1 by default, as `_common.py` pins):

- `plain torch`: the torch CNN in Lightning (the flax CNN page's `Classifier`);
- `jax-network`: the flax CNN wrapped by `FlaxModule` in the same `Classifier`;
- `jax-step`: the flax CNN page's `JaxStepClassifier`, the whole step one jitted Jax function;
- `jax-trainer`: the image-classification page's `ImageClassifier` trained by `JaxTrainer`
  (its `loop="auto"`), data held on the device and batched inside compiled code.

Part 1 trains each way for the full budget and reports end-to-end samples per second (training
samples over the wall time of `fit`, compilation and validation included) and per CPU-second,
test accuracy, compile time (in CPU seconds: the first steps' time beyond steady steps; for
`JaxTrainer`, a one-step fit minus the same fit compiled) and lines of user code (the
definitions each way needs, without blank lines, comments and docstrings).
Part 2 times `--steps` training steps of each (no validation) in `--rounds` rounds, in a
random order in each round, beside a hand-written Python loop of one jitted step over the same
device-resident data (`hand loop`): ratios are taken within rounds, their median reported, in
samples per second and per CPU-second (the process is pinned, so its CPU time is what a run
costs whatever else the machine runs).
Part 3 times the trainer's step in each of its loop modes, `scan` and `steps`, in CPU time.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_jax_image.py

Targets (issue 15): jax-trainer >= 0.95x the hand loop and >= 1.3x plain torch, in samples/s.
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    EXAMPLE,
    add_malloc_flag,
    apply_malloc,
    pin_cpus,
    print_round,
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

from gallery_lib import FlaxModule, JaxTrainer, example_definitions
from gallery_lib.datasets import FashionMNISTDataModule
from gallery_lib.testing import quiet_lightning_trainer

PAGE = Path(__file__).resolve().parents[1] / "examples" / "plot_jax_image_classification.py"
WARMUP = 5


def clock() -> tuple[float, float]:
    """Wall-clock and CPU time of the process (pinned to its cores: CPU time is what a run
    costs whatever else the machine runs)."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    """Wall-clock and CPU seconds since `start` (a `clock()`)."""
    now = clock()
    return now[0] - start[0], now[1] - start[1]


class StepClock(pl.Callback):
    """CPU time at the end of every training step (and at the start of the first)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self.times:
            self.times.append(time.process_time())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.times.append(time.process_time())


def compile_seconds(times: list[float]) -> float:
    """The first `WARMUP` steps' CPU time beyond that many steady steps (the median after)."""
    steps = np.diff(times)
    steady = float(np.median(steps[WARMUP:]))
    return max(float(np.sum(steps[:WARMUP])) - WARMUP * steady, 0.0)


def code_lines(*objects: Any) -> int:
    """Lines of code of classes and functions: no blank lines, comments or docstrings."""
    total = 0
    for obj in objects:
        source = inspect.getsource(obj)
        docstring = inspect.getdoc(obj) or ""
        doc_lines = len(docstring.splitlines()) if docstring else 0
        lines = [line.strip() for line in source.splitlines()]
        total += sum(1 for line in lines if line and not line.startswith("#")) - doc_lines
    return total


def lightning_run(cnn, dm, make_model: Callable[[], pl.LightningModule], epochs: int) -> dict:
    """Train `epochs` epochs with validation; test accuracy, samples/s end to end, compile."""
    step_clock = StepClock()
    trainer = quiet_lightning_trainer(max_epochs=epochs, callbacks=[step_clock])
    model = make_model()
    start = clock()
    trainer.fit(model, datamodule=dm)
    wall, cpu = since(start)
    predictions = torch.cat(
        quiet_lightning_trainer().predict(model, dataloaders=dm.test_dataloader())
    )
    accuracy = float((predictions == dm.test_set.tensors[1]).float().mean())
    samples = trainer.global_step * dm.batch_size
    return {
        "sps": samples / wall,
        "sps_cpu": samples / cpu,
        "acc": accuracy,
        "compile": compile_seconds(step_clock.times),
    }


def trainer_module(page, dm: FashionMNISTDataModule, epochs: int, lr: float, evaluate=True):
    """The page's `ImageClassifier` on the data module's splits (channels last, int32)."""
    images = {
        name: (jnp.asarray(s.tensors[0].numpy()[:, 0, ..., None]), jnp.asarray(s.tensors[1]))
        for name, s in (("train", dm.train_set), ("val", dm.val_set))
    }
    steps = len(images["train"][1]) // dm.batch_size
    schedule = optax.cosine_onecycle_schedule(epochs * steps, lr)
    cls = page.ImageClassifier if evaluate else _without_evaluation(page.ImageClassifier)
    labels = {k: v[1].astype(jnp.int32) for k, v in images.items()}
    return cls(
        images["train"][0], labels["train"], images["val"][0], labels["val"],
        page.CNN(), optax.adam(schedule), dm.batch_size,
    ), steps  # fmt: skip


def _without_evaluation(cls: type) -> type:
    """`cls` with a free `evaluate`: the speed rounds time training steps only."""

    class TrainingOnly(cls):
        def evaluate(self, state):
            return {"step": state.opt_state[0].count}

    return TrainingOnly


def trainer_run(page, dm, epochs: int, lr: float, seed: int) -> dict:
    """The page's way: `JaxTrainer.fit` for `epochs` epochs, validating after each."""
    module, steps = trainer_module(page, dm, epochs, lr)
    trainer = JaxTrainer(epochs, steps, enable_progress_bar=False)
    start = clock()
    state, _ = trainer.fit(module, jax.random.key(seed))
    jax.block_until_ready(state)
    wall, cpu = since(start)
    test_x = jnp.asarray(dm.test_set.tensors[0].numpy()[:, 0, ..., None])
    test_y = jnp.asarray(dm.test_set.tensors[1].numpy().astype(np.int32))
    metrics = jax.jit(lambda p: page.loss_and_accuracy(page.CNN(), p, test_x, test_y)[1])
    accuracy = float(metrics(state.params)["accuracy"])
    # Compile time: a one-step fit on a fresh trainer, minus the same fit once compiled.
    one_step = JaxTrainer(1, 1, enable_progress_bar=False)
    times = []
    for _ in range(2):
        tick = clock()
        jax.block_until_ready(one_step.fit(module, jax.random.key(seed)))
        times.append(since(tick)[1])
    samples = epochs * steps * dm.batch_size
    return {
        "sps": samples / wall,
        "sps_cpu": samples / cpu,
        "acc": accuracy,
        "compile": max(times[0] - times[1], 0.0),
    }


def time_trainer(module: Any, steps: int, loop: str, seed: int) -> tuple[float, float]:
    """Samples per second and per CPU-second of `JaxTrainer(loop=loop)` over one epoch of
    `steps` steps, compiled first."""
    trainer = JaxTrainer(1, steps, enable_progress_bar=False, loop=loop)
    jax.block_until_ready(trainer.fit(module, jax.random.key(seed)))
    start = clock()
    jax.block_until_ready(trainer.fit(module, jax.random.key(seed)))
    wall, cpu = since(start)
    return steps * module.batch_size / wall, steps * module.batch_size / cpu


def time_hand_loop(page, module: Any, steps: int, seed: int) -> tuple[float, float]:
    """Samples per second and per CPU-second of a Python loop over one jitted, donating
    step, on the same device data."""
    tx, cnn, batch = module.optimizer, module.network, module.batch_size
    n = len(module.train_labels)

    @jax.jit
    def start(key):
        params = cnn.init(key, jnp.zeros((1, 28, 28, 1)))["params"]
        return params, tx.init(params), jax.random.permutation(key, n)

    def step(params, opt_state, order, images, labels, i):
        idx = jax.lax.dynamic_slice_in_dim(order, i * batch, batch)
        grad_fn = jax.grad(page.loss_and_accuracy, argnums=1, has_aux=True)
        grads, _ = grad_fn(cnn, params, images[idx], labels[idx])
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    jitted = jax.jit(step, donate_argnums=(0, 1))

    def run() -> tuple[float, float]:
        params, opt_state, order = start(jax.random.key(seed))
        jax.block_until_ready(params)
        tick = clock()
        for i in range(steps):
            params, opt_state = jitted(
                params, opt_state, order, module.train_images, module.train_labels, np.int32(i)
            )
        jax.block_until_ready(params)
        return since(tick)

    run()  # compiles
    wall, cpu = run()
    return steps * batch / wall, steps * batch / cpu


def time_lightning(cnn_page, dm, make_model, steps: int) -> tuple[float, float]:
    """Samples per second and per CPU-second of Lightning's `fit` over `steps` steps after
    warm-up (no validation)."""
    timer = cnn_page.StepTimer(warmup=WARMUP)
    trainer = quiet_lightning_trainer(
        max_steps=WARMUP + steps, limit_val_batches=0, callbacks=[timer]
    )
    trainer.fit(make_model(), datamodule=dm)
    return timer.samples / timer.wall, timer.samples / timer.cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per contender")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the speed contenders")
    parser.add_argument("--scan-steps", type=int, default=20, help="steps timed in scan mode")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--cpus", type=int, default=1, help="cores to pin the process to (0: all)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 epoch on 1,024 images, 1,000 tests"
    )
    add_malloc_flag(parser)
    parser.add_argument("--results", help="default benchmarks/results/jax_image.json")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    malloc = apply_malloc(args.malloc)
    torch.set_num_threads(args.threads)
    page, cnn_page = example_definitions(PAGE), example_definitions(EXAMPLE)
    config = page.Config()
    epochs, lr, seed = config.epochs, config.learning_rate, config.seed
    sizes = {"train_size": 1024, "test_size": 1000} if args.quick else {}
    if args.quick:
        epochs = 1
    dm = FashionMNISTDataModule(batch_size=config.batch_size, seed=seed, **sizes)
    dm.prepare_data()
    dm.setup()
    example_input = dm.train_set[:2][0]

    def flax_network() -> FlaxModule:
        return FlaxModule(cnn_page.FlaxCNN(), example_input, seed=seed)

    lightning_models = {
        "plain torch": lambda: cnn_page.Classifier(cnn_page.TorchCNN(), lr),
        "jax-network": lambda: cnn_page.Classifier(flax_network(), lr),
        "jax-step": lambda: cnn_page.JaxStepClassifier(flax_network(), lr),
    }
    lines_of_code = {
        "plain torch": code_lines(cnn_page.Classifier, cnn_page.TorchCNN),
        "jax-network": code_lines(cnn_page.Classifier, cnn_page.FlaxCNN),
        "jax-step": code_lines(
            cnn_page.Classifier,
            cnn_page.JaxStepClassifier,
            cnn_page.OptaxState,
            cnn_page.FlaxCNN,
            *[cnn_page.make_train_step] * hasattr(cnn_page, "make_train_step"),
        ),
        "jax-trainer": code_lines(
            page.CNN, page.loss_and_accuracy, page.TrainState, page.ImageClassifier
        ),
    }

    # Part 1: each way for the whole training budget.
    full: dict[str, dict] = {}
    for name, make_model in lightning_models.items():
        pl.seed_everything(seed, verbose=False)
        full[name] = lightning_run(cnn_page, dm, make_model, epochs)
        print(f"{name}: {full[name]}", flush=True)
    full["jax-trainer"] = trainer_run(page, dm, epochs, lr, seed)
    print(f"jax-trainer: {full['jax-trainer']}", flush=True)

    # Part 2: training steps only, in rounds.
    steps = min(args.steps, len(dm.train_set) // dm.batch_size)
    timed_module, _ = trainer_module(page, dm, epochs, lr, evaluate=False)
    contenders: dict[str, Callable[[], tuple[float, float]]] = {
        "hand loop": lambda: time_hand_loop(page, timed_module, steps, seed),
        "jax-trainer": lambda: time_trainer(timed_module, steps, "auto", seed),
        **{
            name: (lambda make=make: time_lightning(cnn_page, dm, make, steps))
            for name, make in lightning_models.items()
        },
    }
    runs = random_order_rounds(contenders, args.rounds, after_round=print_round)

    # Part 3: the trainer's step in each loop mode.
    scan_steps = min(args.scan_steps, steps)
    step_ms = {
        loop: 1e3 * timed_module.batch_size / time_trainer(timed_module, n, loop, seed)[1]
        for loop, n in (("scan", scan_steps), ("steps", steps))
    }
    auto_mode = JaxTrainer(1, 1, enable_progress_bar=False)
    auto_mode.fit(timed_module, jax.random.key(seed))
    report(args, full, runs, step_ms, lines_of_code, auto_mode.loop_used, epochs, load, malloc)


def _ratios(runs: dict, name: str, base: str, cpu: bool = False) -> list[float]:
    """Per-round ratios of `name` to `base`, in samples per second (or per CPU-second)."""
    i = int(cpu)
    return [a[i] / b[i] for a, b in zip(runs[name], runs[base], strict=True)]


def report(args, full, runs, step_ms, lines_of_code, auto, epochs, load, malloc) -> None:
    """Print the tables and write the record."""
    print(
        f"\n{epochs} epochs, batch 128, {CORES}, {malloc}, torch threads {args.threads}, "
        f"jax {jax.__version__}, torch {torch.__version__}, load average {load:.1f} at start"
    )
    table = [
        "| way | samples/s end to end | samples/CPU-s | test accuracy | compile time (CPU) "
        "| lines of user code |",
        "|---|---|---|---|---|---|",
    ]
    numbers: dict[str, float | int | None] = {"epochs": epochs, "rounds": args.rounds}
    for name, result in full.items():
        slug = name.replace(" ", "_").replace("-", "_")
        table.append(
            f"| {name} | {result['sps']:,.0f} | {result['sps_cpu']:,.0f} | {result['acc']:.2%} | "
            f"{result['compile']:.1f} s | {lines_of_code[name]} |"
        )
        numbers.update(
            {
                f"{slug}_samples_per_s": result["sps"],
                f"{slug}_samples_per_cpu_s": result["sps_cpu"],
                f"{slug}_test_accuracy": result["acc"],
                f"{slug}_compile_s": result["compile"],
                f"{slug}_lines": lines_of_code[name],
            }
        )
    print("\n".join(table))
    speed = [
        "| contender | samples/s (median) | jax-trainer / contender: median (range) "
        "| per CPU-second: median (range) |",
        "|---|---|---|---|",
    ]
    for name in runs:
        ratios, cpu = _ratios(runs, "jax-trainer", name), _ratios(runs, "jax-trainer", name, True)
        speed.append(
            f"| {name} | {statistics.median(r[0] for r in runs[name]):,.0f} | "
            f"{statistics.median(ratios):.3f}x ({min(ratios):.3f}-{max(ratios):.3f}) | "
            f"{statistics.median(cpu):.3f}x ({min(cpu):.3f}-{max(cpu):.3f}) |"
        )
    print("\n".join(speed))
    hand = _ratios(runs, "jax-trainer", "hand loop")
    torch_ratios = _ratios(runs, "jax-trainer", "plain torch")
    hand_cpu = _ratios(runs, "jax-trainer", "hand loop", cpu=True)
    torch_cpu = _ratios(runs, "jax-trainer", "plain torch", cpu=True)
    numbers.update(
        {
            "trainer_vs_hand_loop": statistics.median(hand),
            "trainer_vs_hand_loop_min": min(hand),
            "trainer_vs_hand_loop_max": max(hand),
            "trainer_vs_torch": statistics.median(torch_ratios),
            "trainer_vs_torch_min": min(torch_ratios),
            "trainer_vs_torch_max": max(torch_ratios),
            "trainer_vs_hand_loop_cpu": statistics.median(hand_cpu),
            "trainer_vs_torch_cpu": statistics.median(torch_cpu),
            "scan_step_ms": step_ms["scan"],
            "steps_step_ms": step_ms["steps"],
            "scan_over_steps": step_ms["scan"] / step_ms["steps"],
        }
    )
    print(
        f"JaxTrainer per step (CPU time): scan {step_ms['scan']:.1f} ms, steps "
        f"{step_ms['steps']:.1f} ms "
        f"({step_ms['scan'] / step_ms['steps']:.1f}x); loop='auto' chose {auto!r}"
    )
    print(
        f"targets: jax-trainer / hand loop {statistics.median(hand):.4f} (>= 0.95), "
        f"/ plain torch {statistics.median(torch_ratios):.4f} (>= 1.3); per CPU-second "
        f"{statistics.median(hand_cpu):.4f} and {statistics.median(torch_cpu):.4f}"
    )
    path = Path(args.results) if args.results else RESULTS / "jax_image.json"
    save_results(path, numbers, {"ways": "\n".join(table), "speed": "\n".join(speed)}, load)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
