"""What `bench_interop.py` and `bench_flax_cnn.py` share, so that their ratios compare.

- the network: the flax CNN of `examples/plot_flax_cnn_lightning.py` (NCHW input, batch 128);
- the pure-Jax baseline: one jitted step (flax forward, `jax.value_and_grad` of the softmax
  cross-entropy, optax Adam), parameters and optimizer state donated, fed NumPy batches;
- the CPU cores: `pin_cpus` restricts the whole process (torch, XLA's thread pool and Python
  alike) to the first `n` allowed cores before jax starts. The XLA flags
  `--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1` do not do this: with
  them the pure-Jax step still used about 1.4 cores of two;
- the estimator: rounds of every contender in a random order (`random_order_rounds`), the
  ratio to pure Jax taken within each round, the median of these ratios reported (and of
  samples per CPU-second).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plot_flax_cnn_lightning.py"
T = TypeVar("T")


def copy_site_project(dest: Path) -> Path:
    """Copy what the site is built from into `dest` (a throwaway project to build the site in).

    The library is copied too (editing it in the copy must not touch the checkout); the site's
    KaTeX and Mermaid are linked from the checkout's `node_modules` (`make env`).
    """
    import shutil

    for name in ("docs", "examples", "src", "tools"):
        shutil.copytree(
            ROOT / name,
            dest / name,
            ignore=shutil.ignore_patterns("generated", "__pycache__", "*.egg-info"),
        )
    # The benchmark records the pages render their measured figures from.
    shutil.copytree(ROOT / "benchmarks" / "results", dest / "benchmarks" / "results")
    # pyproject.toml and README.md go into the source archive the example pages offer.
    for name in ("mkdocs.yml", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    (dest / "node_modules").symlink_to(ROOT / "node_modules")
    return dest


def random_order_rounds(
    contenders: dict[str, Callable[[], T]],
    rounds: int,
    after_round: Callable[[int, dict[str, list[T]]], None] | None = None,
) -> dict[str, list[T]]:
    """Each contender's results over `rounds` rounds, in which every contender runs once.

    The order is drawn at random in each round (seed 1): a contender may run faster or slower
    after another (caches, XLA's thread pool still awake or not), so none always goes first.
    `after_round(index, results)` runs after each round (to print its line).
    """
    import numpy as np  # here: importing it must not come before `pin_cpus`

    names = list(contenders)
    results: dict[str, list[T]] = {name: [] for name in names}
    order = np.random.default_rng(1)
    for round_index in range(rounds):
        for index in order.permutation(len(names)):
            results[names[index]].append(contenders[names[index]]())
        if after_round is not None:
            after_round(round_index, results)
    return results


def print_round(round_index: int, runs: dict[str, list[tuple[float, float]]]) -> None:
    """`random_order_rounds`' `after_round` for (samples/s, ...) results: one line a round."""
    line = ", ".join(f"{name} {r[-1][0]:,.0f}" for name, r in runs.items())
    print(f"round {round_index + 1}: samples/s {line}", flush=True)


def pin_cpus(cpus: int) -> str:
    """Run this process on its first `cpus` allowed cores (0: all); return a description.

    Call it before importing jax: XLA sizes its thread pool when the CPU client starts.
    """
    allowed = sorted(os.sched_getaffinity(0))
    if cpus > 0:
        allowed = allowed[:cpus]
        os.sched_setaffinity(0, allowed)
    return f"cores {','.join(map(str, allowed))}"


def add_malloc_flag(parser: Any) -> None:
    """The `--malloc` option both interop benchmarks take (read it with `apply_malloc`)."""
    parser.add_argument(
        "--malloc",
        choices=("keep", "default"),
        default="keep",
        help="keep: gallery_lib.keep_freed_memory() first, as the example does; default: glibc's",
    )


def apply_malloc(mode: str) -> str:
    """Set glibc's malloc up as `--malloc` asks (`keep` or `default`); return a description.

    `keep` calls `gallery_lib.keep_freed_memory()`, as the flax CNN example does: freed Jax
    buffers stay in the heap for the next step instead of going back to the kernel. It applies
    to every contender of the process alike. `MALLOC_*` variables set in the environment are
    reported too.
    """
    from gallery_lib import keep_freed_memory

    kept = mode == "keep" and keep_freed_memory()
    tunables = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("MALLOC_"))
    described = "keep_freed_memory()" if kept else "glibc defaults"
    return "malloc " + " ".join([described, *tunables])


def pure_jax_step(model: Any, tx: Any) -> Any:
    """The pure-Jax baseline: a jitted training step that donates parameters and optimizer state.

    `step(params, opt_state, x, y) -> (params, opt_state, loss)`.
    """
    import jax
    import optax

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params: Any, opt_state: Any, x: Any, y: Any) -> Any:
        def loss_fn(params: Any) -> Any:
            logits = model.apply({"params": params}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def timed_build(project: Path, env: dict[str, str]) -> tuple[float, str]:
    """`mkdocs build --strict` of `project`: wall seconds and the build's output; exits on
    failure with the end of the log."""
    import subprocess
    import sys
    import time

    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"build of {project} failed:\n{result.stdout[-3000:]}{result.stderr[-5000:]}")
    return seconds, result.stdout + result.stderr
