"""JaxTrainer's overhead against a hand-written `lax.scan` loop of the same module.

Both run the probe module of the tests (linear regression by SGD, one compiled program for the
whole run) for the same epochs and steps. The script prints ratios measured in this one run:
run time after compilation, and compile time (first call minus a compiled call, which also
counts tracing), each as wall time (minimum over repeats) and as CPU time of this process
(median; steadier on a busy machine). Contenders are interleaved, their order rotated.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_trainer.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

import jax

from gallery_lib import JaxTrainer
from gallery_lib.testing import LinearRegressionProbe, hand_written_fit

BASE = "hand-written lax.scan"


def timed(function: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of `function()`, waiting for its arrays."""
    wall, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(function())
    return time.perf_counter() - wall, time.process_time() - cpu


def contenders(module, epochs: int, steps: int) -> dict[str, Callable[[], object]]:
    """Fresh (not yet compiled) runs of each contender."""
    from lightning.pytorch.loggers import CSVLogger

    rng = jax.random.key(0)
    hand = jax.jit(lambda key: hand_written_fit(module, key, epochs, steps))
    bare = JaxTrainer(epochs, steps, enable_progress_bar=False)
    logger = CSVLogger(tempfile.mkdtemp(), name="bench")
    logged = JaxTrainer(epochs, steps, logger=logger, enable_progress_bar=False)
    return {
        BASE: lambda: hand(rng),
        "JaxTrainer, no callbacks": lambda: bare.fit(module, rng),
        "JaxTrainer, CSV logger": lambda: logged.fit(module, rng),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=2000, help="training steps per epoch")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=10, help="compiled runs per contender")
    parser.add_argument("--compiles", type=int, default=3, help="compilations per contender")
    args = parser.parse_args()
    module = LinearRegressionProbe(batch_size=args.batch_size)

    # A throwaway compilation first: jax caches the traces of the functions all contenders
    # share (random, grad), which would favour whichever contender comes second.
    for run in contenders(module, 1, 1).values():
        timed(run)
    first: dict[str, list[tuple[float, float]]] = {}
    runs: dict[str, list[tuple[float, float]]] = {}
    for round_ in range(args.compiles):
        fresh = list(contenders(module, args.epochs, args.steps).items())
        fresh = fresh[round_ % len(fresh) :] + fresh[: round_ % len(fresh)]  # rotate the order
        for name, run in fresh:
            first.setdefault(name, []).append(timed(run))
        for _ in range(args.repeats // args.compiles + 1):
            for name, run in fresh:
                runs.setdefault(name, []).append(timed(run))
    # Wall time: the minimum (least disturbed by other processes); CPU time: the median.
    run_time = {
        name: (min(t[0] for t in times), statistics.median(t[1] for t in times))
        for name, times in runs.items()
    }
    compile_time = {
        name: tuple(min(t[i] for t in times) - run_time[name][i] for i in (0, 1))
        for name, times in first.items()
    }
    steps = args.epochs * args.steps
    print(
        f"{args.epochs} epochs x {args.steps} steps, batch {args.batch_size}, "
        f"min of {len(runs[BASE])} runs and {args.compiles} compiles, "
        f"jax {jax.__version__}, {jax.devices()[0].device_kind}"
    )
    print(
        f"{'':26s} {'run s':>7s} {'steps/s':>8s} {'run ratio':>10s} {'(cpu)':>6s}"
        f" {'compile s':>10s} {'compile ratio':>14s} {'(cpu)':>6s}"
    )
    for name in (BASE, *(name for name in runs if name != BASE)):
        (wall, cpu), (c_wall, c_cpu) = run_time[name], compile_time[name]
        print(
            f"{name:26s} {wall:7.3f} {steps / wall:8.0f} {wall / run_time[BASE][0]:10.3f}"
            f" {cpu / run_time[BASE][1]:6.3f} {c_wall:10.3f}"
            f" {c_wall / compile_time[BASE][0]:14.3f} {c_cpu / compile_time[BASE][1]:6.3f}"
        )


if __name__ == "__main__":
    main()
