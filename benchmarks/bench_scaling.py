"""1 vs 2 devices on this CPU: Lightning DDP (flax CNN, text classifier), JaxTrainer sharding.

Four measurements, each a ratio of samples/s with 2 "devices" to samples/s with 1, taken in
this one run (absolute numbers on a shared 2-core machine mean little):

- `ddp jax-network` and `ddp jax-step`: the flax CNN example's two LightningModules trained by
  Lightning's `Trainer(accelerator="cpu")`, one process, then `strategy="ddp", devices=2`
  (two processes, gloo). Each process keeps the batch `--batch-size` (so the global batch
  doubles, as when adding GPUs); steps are timed on process 0 after warm-up steps.
- `ddp text`: the same for the text example's `SentimentClassifier` with its `minilm` body
  (a bag of 64-wide embeddings over an 8,000-token vocabulary beside 2,304 frozen features,
  one linear layer), on random token ids and features, at `--text-batch-size` per device.
- `JaxTrainer`: the same flax CNN as a `JaxModule` (random images generated in `get_batch`)
  fitted by `JaxTrainer` on 1 and on 2 host devices
  (`XLA_FLAGS=--xla_force_host_platform_device_count=2`, each in a fresh subprocess), with the
  global batch `2 * --batch-size` sharded over the devices in both cases.

Each is the best of `--rounds` measurements. The CPU time used per wall-clock second
("cores") is printed beside each: two processes on a
2-core machine cannot do better than 2x, and a process that already keeps both cores busy
cannot gain at all.

    .venv/bin/python benchmarks/bench_scaling.py --steps 30 --rounds 2
    .venv/bin/python benchmarks/bench_scaling.py --runs text --steps 100 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plot_flax_cnn_lightning.py"
TEXT_EXAMPLE = ROOT / "examples" / "plot_text_classification.py"
WARMUP = 5
RUNS = ("jax", "cnn", "text")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps per measurement")
    parser.add_argument("--batch-size", type=int, default=128, help="batch per device")
    parser.add_argument("--rounds", type=int, default=2, help="keep the best of this many")
    parser.add_argument(
        "--text-batch-size", type=int, default=64, help="batch per device of the text runs"
    )
    parser.add_argument(
        "--runs", default=",".join(RUNS), help=f"comma-separated, among {', '.join(RUNS)}"
    )
    parser.add_argument("--jax-devices", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    return parser.parse_args()


def timed_fit(module, data, devices: int, batch_size: int, args: argparse.Namespace) -> dict:
    """Samples/s (all processes together) and cores of `module` fitted on `devices`."""
    import lightning.pytorch as pl

    from gallery_lib.testing import quiet_lightning_trainer

    class Timer(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if trainer.global_step == WARMUP:
                self.start = (time.perf_counter(), time.process_time())

        def on_train_end(self, trainer, pl_module) -> None:
            self.wall = time.perf_counter() - self.start[0]
            self.cpu = time.process_time() - self.start[1]

    timer = Timer()
    trainer = quiet_lightning_trainer(
        max_steps=WARMUP + args.steps,
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        limit_val_batches=0,
        callbacks=[timer],
    )
    trainer.fit(module, data)
    # Every process times the same synchronised steps; process 0's CPU time is one process's.
    samples = args.steps * batch_size * devices
    return {"rate": samples / timer.wall, "cores": devices * timer.cpu / timer.wall}


def lightning_rate(example, variant: str, devices: int, args: argparse.Namespace) -> dict:
    """Samples/s (all processes together) of one flax CNN variant under Lightning."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from gallery_lib import FlaxModule

    n = args.batch_size * (WARMUP + args.steps) * devices
    x = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(1))
    data = DataLoader(TensorDataset(x, y), batch_size=args.batch_size, shuffle=True)
    network = FlaxModule(example.FlaxCNN(), x[:2])
    module = {"jax-network": example.Classifier, "jax-step": example.JaxStepClassifier}[variant]
    model = module(network, learning_rate=example.Config().learning_rate)
    return timed_fit(model, data, devices, args.batch_size, args)


def text_rate(text_example, devices: int, args: argparse.Namespace) -> dict:
    """Samples/s (all processes together) of the text example's classifier under Lightning."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    config = text_example.Config()
    vocab, tokens, batch = config.vocab_size, config.max_tokens, args.text_batch_size
    n = batch * (WARMUP + args.steps) * devices
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(4, 47, (n, 1), generator=generator)  # padded to 64, as the example
    ids = torch.randint(1, vocab, (n, tokens), generator=generator)
    ids = ids * (torch.arange(tokens) < lengths)
    features = torch.randn(n, text_example.MiniLMFeatures.width, generator=generator)
    y = torch.randint(0, 2, (n,), generator=generator)
    data = DataLoader(TensorDataset(ids, features, y), batch_size=batch, shuffle=True)
    body = text_example.make_body("minilm", vocab)
    module = text_example.SentimentClassifier(body, config.learning_rate, config.weight_decay)
    return timed_fit(module, data, devices, batch, args)


def jax_trainer_rate(args: argparse.Namespace) -> None:
    """In a subprocess with `--jax-devices` host devices: JaxTrainer samples/s, to `--out`."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax.training.train_state import TrainState

    from gallery_lib import JaxTrainer, example_definitions

    assert jax.device_count() == args.jax_devices
    network = example_definitions(EXAMPLE).FlaxCNN()
    batch = 2 * args.batch_size

    class RandomImages:
        """The flax CNN on random images and labels, drawn in `get_batch` (a JaxModule)."""

        def init_train_state(self, rng):
            params = network.init(rng, jnp.zeros((1, 1, 28, 28)))["params"]
            return TrainState.create(apply_fn=network.apply, params=params, tx=optax.adam(1e-3))

        def get_batch(self, state, batch_idx):
            key = jax.random.fold_in(jax.random.key(0), state.step)
            x = jax.random.normal(key, (batch, 1, 28, 28))
            return state, (x, jax.random.randint(key, (batch,), 0, 10))

        def training_step(self, batch_idx, state, batch):
            def loss_fn(params):
                logits = state.apply_fn({"params": params}, batch[0])
                return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()

            loss, grads = jax.value_and_grad(loss_fn)(state.params)
            return state.apply_gradients(grads=grads), {"loss": loss}

        def evaluate(self, state):
            return {"step": state.step}

    trainer = JaxTrainer(1, args.steps, enable_progress_bar=False)
    module = RandomImages()
    jax.block_until_ready(trainer.fit(module, jax.random.key(0)))  # compiles
    wall, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(trainer.fit(module, jax.random.key(0)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = {"rate": args.steps * batch / wall, "cores": cpu / wall}
    Path(args.out).write_text(json.dumps(result))


def run_jax_trainer(devices: int, args: argparse.Namespace, out: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE")}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    command = [sys.executable, __file__, f"--jax-devices={devices}", f"--out={out}"]
    command += [f"--steps={args.steps}", f"--batch-size={args.batch_size}"]
    runs = []
    for _ in range(args.rounds):
        subprocess.run(command, env=env, check=True, timeout=600)
        runs.append(json.loads(out.read_text()))
    return max(runs, key=lambda r: r["rate"])


def main() -> None:
    args = parse()
    if args.jax_devices:
        jax_trainer_rate(args)
        return
    import tempfile

    import torch

    from gallery_lib import example_definitions

    runs = args.runs.split(",")
    if unknown := set(runs) - set(RUNS):
        raise SystemExit(f"--runs: unknown {sorted(unknown)}; choose among {', '.join(RUNS)}")
    torch.set_num_threads(1)
    example = example_definitions(EXAMPLE)
    text_example = example_definitions(TEXT_EXAMPLE)
    # Every Lightning measurement: (its name, a function of the number of devices).
    measured = [
        (f"ddp {variant}", lambda d, v=variant: lightning_rate(example, v, d, args))
        for variant in ("jax-network", "jax-step")
        if "cnn" in runs
    ]
    if "text" in runs:
        measured.append(("ddp text (minilm body)", lambda d: text_rate(text_example, d, args)))
    rank = int(os.environ.get("LOCAL_RANK", 0))
    results: dict[str, dict[int, dict]] = {}
    if "LOCAL_RANK" not in os.environ:  # process 0, before Lightning starts process 1
        if "jax" in runs:
            with tempfile.TemporaryDirectory() as tmp:
                results["JaxTrainer"] = {
                    d: run_jax_trainer(d, args, Path(tmp) / f"{d}.json") for d in (1, 2)
                }
        for name, rate in measured:
            results[name] = {1: max((rate(1) for _ in range(args.rounds)), key=lambda r: r["rate"])}
    for name, rate in measured:
        best = max((rate(2) for _ in range(args.rounds)), key=lambda r: r["rate"])
        if rank == 0:
            results[name][2] = best
    if rank != 0:
        return
    print(
        f"\nbatch {args.batch_size} per device ({args.text_batch_size} for text), {args.steps} "
        f"timed steps, best of {args.rounds} rounds, {os.cpu_count()} CPUs"
    )
    print("| run | 1 device: samples/s (cores) | 2 devices: samples/s (cores) | 2 vs 1 |")
    print("|---|---|---|---|")
    for name, (one, two) in ((k, (v[1], v[2])) for k, v in results.items()):
        print(
            f"| {name} | {one['rate']:,.0f} ({one['cores']:.1f}) | "
            f"{two['rate']:,.0f} ({two['cores']:.1f}) | {two['rate'] / one['rate']:.2f}x |"
        )


if __name__ == "__main__":
    main()
