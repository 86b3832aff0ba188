"""The persistent compilation cache: a second (warm) process against a first (cold) one.

Each measurement is a fresh Python process pinned to one core, with its own cache root
(`GALLERY_CACHE`) that starts empty in every round:

1. `off`: the cache turned off (`GALLERY_COMPILE_CACHE=0`), what the gallery did before;
2. `cold`: the cache on and empty: the process compiles and writes the programs;
3. `warm`: the same again: it reads them back.

Two workloads, built from the examples' own definitions and defaults:

- `ppo`: `examples/plot_jax_ppo.py`'s one-seed run (its `Config` defaults with the
  CartPole-v1 preset, built by the page's own `build`, through `JaxTrainer`). Time to a
  mean evaluation return of 475, compilation included: the first `fit` minus a second,
  compiled `fit` (the compile time), plus the second fit's time up to the first evaluation
  that reached 475 (epochs take equal time), as in `bench_ppo.py`.
- `cnn`: `examples/plot_flax_cnn_lightning.py`'s network, the time to its first training step
  done (network built, one step on a batch of 128) in both of the example's variants: the
  Jax network with torch's Adam (`FlaxModule`, part 1), and the whole step in Jax (one jitted
  step with optax's Adam, as `_common.pure_jax_step`, part 2). The batch is synthetic.

The warm/cold ratio of each round is taken, and the median over rounds reported (targets:
<= 0.35 for both workloads). Results must be bit-identical in all three processes: the
sha256 of the trained parameters and the evaluation curve (PPO), of the parameters after the
step (CNN). Import time is the same for the three and is not counted (it is printed).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_compile_cache.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import EXAMPLE, pin_cpus
from _results import RESULTS as RESULTS_DIR
from _results import save_results

ROOT = Path(__file__).resolve().parents[1]
PPO_EXAMPLE = ROOT / "examples" / "plot_jax_ppo.py"
RESULTS = RESULTS_DIR / "compile_cache.json"
TARGET = 0.35
MODES = ("off", "cold", "warm")


def tree_digest(*trees: object) -> str:
    """The sha256 of the bytes of every leaf of `trees`, in order."""
    import jax
    import numpy as np

    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(trees):
        digest.update(np.asarray(leaf).tobytes())
    return digest.hexdigest()


def ppo_child() -> dict:
    """Time the PPO example's one-seed run to a mean return of 475, compile included."""
    import jax
    import numpy as np

    from gallery_lib import example_definitions

    ppo = example_definitions(PPO_EXAMPLE)
    config = ppo.with_preset(ppo.Config(), keep=set())  # the page's defaults: CartPole-v1
    module, trainer = ppo.build(config)
    jax.devices()  # start the CPU client before the clock, as any earlier jax call would

    def timed_fit() -> tuple[float, object, dict]:
        start = time.perf_counter()
        train_state, metrics = jax.block_until_ready(
            trainer.fit(module, jax.random.key(config.seed))
        )
        return time.perf_counter() - start, train_state, metrics

    first, train_state, metrics = timed_fit()
    run = timed_fit()[0]
    compile_s = max(first - run, 0.0)
    curve = np.asarray(metrics["eval_return"])
    solved = np.flatnonzero(curve >= config.solved_return)
    to_solve = compile_s + run * (solved[0] + 1) / config.evals if solved.size else None
    return {
        "first_fit_s": first,
        "compile_s": compile_s,
        "run_s": run,
        "time_s": to_solve,
        "digest": tree_digest(train_state.params, metrics),
    }


def cnn_child() -> dict:
    """Time the flax CNN example's first training step, network built, in both variants."""
    import jax
    import numpy as np
    import optax
    import torch
    import torch.nn.functional as F
    from _common import pure_jax_step

    from gallery_lib import FlaxModule, example_definitions

    cnn = example_definitions(EXAMPLE)
    config = cnn.Config()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    images = rng.random((128, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, 128).astype(np.int64)
    jax.devices()

    start = time.perf_counter()
    network = FlaxModule(cnn.FlaxCNN(), torch.from_numpy(images[:2]), seed=config.seed)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate, fused=True)
    loss = F.cross_entropy(network(torch.from_numpy(images)), torch.from_numpy(labels))
    loss.backward()
    optimizer.step()
    part1 = time.perf_counter() - start
    part1_params = [p.detach().numpy() for p in network.parameters()]

    start = time.perf_counter()
    model = cnn.FlaxCNN()
    params = model.init(jax.random.key(config.seed), images[:2])["params"]
    tx = optax.adam(config.learning_rate)
    step = pure_jax_step(model, tx)
    params, _, _ = jax.block_until_ready(
        step(params, tx.init(params), images, labels.astype(np.int32))
    )
    part2 = time.perf_counter() - start
    return {
        "jax-network (part 1)": part1,
        "jax step (part 2)": part2,
        "time_s": part1 + part2,
        "digest": tree_digest(part1_params, params),
    }


def sizes_child() -> dict:
    """Compile (or read back) programs of growing size; report each one's time and entry."""
    import jax
    import jax.numpy as jnp

    durations: dict[str, float] = {}
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, seconds, **_: durations.__setitem__(event, seconds)
    )
    rows = []
    for layers in (1, 2, 4, 8, 16, 32, 64, 128):

        def gradient(ws: list, x: jax.Array, layers: int = layers) -> list:
            def loss(ws: list) -> jax.Array:
                h = x
                for i in range(layers):
                    h = jnp.tanh(h @ ws[i % len(ws)])
                return jnp.mean(h**2)

            return jax.grad(loss)(ws)

        gradient.__name__ = f"gradient_{layers}_layers"  # names its cache entry
        durations.clear()
        ws = [jnp.full((32, 32), 0.01) for _ in range(4)]
        jax.block_until_ready(jax.jit(gradient)(ws, jnp.ones((8, 32))))
        rows.append(
            {
                "layers": layers,
                "compile_s": durations.get("/jax/core/compile/backend_compile_duration", 0.0),
                "read_s": durations.get("/jax/compilation_cache/cache_retrieval_time_sec"),
            }
        )
    return {"rows": rows}


def child(kind: str) -> None:
    pin_cpus(1)
    started = time.perf_counter()
    import jax  # noqa: F401  (imports counted apart)

    import gallery_lib

    imports = time.perf_counter() - started
    # The thresholds run caches every program, however fast it compiles.
    gallery_lib.enable_compile_cache(**({"min_compile_time_s": 0.0} if kind == "sizes" else {}))
    children = {"ppo": ppo_child, "cnn": cnn_child, "sizes": sizes_child}
    with gallery_lib.watch_compile_cache() as events:
        result = children[kind]()
    result.update(imports_s=imports, hits=events.hits, writes=events.writes)
    print("RESULT " + json.dumps(result))


def run_child(kind: str, mode: str, root: Path, timeout: int) -> dict:
    env = dict(os.environ)
    env.update(
        GALLERY_CACHE=str(root),
        GALLERY_COMPILE_CACHE="0" if mode == "off" else "1",
        OMP_NUM_THREADS="1",
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")])),
    )
    command = [sys.executable, __file__, "--child", kind]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode or not lines:
        raise SystemExit(f"{kind} ({mode}) failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def thresholds(timeout: int) -> None:
    """What is worth caching: compile time against read-back time, by program size."""
    with tempfile.TemporaryDirectory(prefix="bench_compile_cache_") as root:
        cold = run_child("sizes", "cold", Path(root), timeout)["rows"]
        warm = run_child("sizes", "warm", Path(root), timeout)["rows"]
        sizes = {
            int(entry.name.split("_")[2]): entry.stat().st_size
            for entry in Path(root).glob("xla/*/jit_gradient_*-cache")
        }
    print(f"load average {os.getloadavg()[0]:.1f}, 1 core per process\n")
    print("| layers (grad of tanh(x @ w)) | entry (KB) | compile (ms, cold) | read back (ms) |")
    print("|---|---|---|---|")
    for c, w in zip(cold, warm, strict=True):
        print(
            f"| {c['layers']} | {sizes.get(c['layers'], 0) / 1e3:.1f} | "
            f"{c['compile_s'] * 1e3:.0f} | {(w['read_s'] or float('nan')) * 1e3:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of off, cold, warm")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per process")
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=("ppo", "cnn"),
        default=["ppo", "cnn"],
        help="what to time",
    )
    parser.add_argument(
        "--results", default=str(RESULTS), help="where to write the JSON record of the run"
    )
    parser.add_argument(
        "--thresholds",
        action="store_true",
        help="only compare compile and read-back times of programs of growing size",
    )
    parser.add_argument("--child", choices=("ppo", "cnn", "sizes"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if args.thresholds:
        thresholds(args.timeout)
        return
    load = os.getloadavg()[0]
    runs: dict[str, list[dict[str, dict]]] = {kind: [] for kind in args.workloads}
    for round_index in range(args.rounds):
        for kind in runs:
            with tempfile.TemporaryDirectory(prefix="bench_compile_cache_") as root:
                outcome = {mode: run_child(kind, mode, Path(root), args.timeout) for mode in MODES}
            runs[kind].append(outcome)
            times = ", ".join(f"{mode} {outcome[mode]['time_s']:.2f} s" for mode in MODES)
            print(f"round {round_index + 1}, {kind}: {times}", flush=True)

    summary: dict[str, dict] = {}
    failed = []
    labels = {
        "ppo": "PPO example, one seed: time to mean return 475, compile included",
        "cnn": "flax CNN example: time to the first training step done (both variants)",
    }
    print(
        f"\n{platform.processor() or platform.machine()}, 1 core per process, load average "
        f"{load:.1f} at start, {args.rounds} rounds\n"
    )
    table = [
        "| workload | off (s) | cold (s) | warm (s) | warm / cold | cold / off | identical |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, rounds in runs.items():
        if any(r[mode]["time_s"] is None for r in rounds for mode in MODES):
            failed.append(f"{kind}: a run did not reach its goal (mean return 475)")
            continue
        warm_ratio = statistics.median(r["warm"]["time_s"] / r["cold"]["time_s"] for r in rounds)
        cold_ratio = statistics.median(r["cold"]["time_s"] / r["off"]["time_s"] for r in rounds)
        identical = all(len({r[mode]["digest"] for mode in MODES}) == 1 for r in rounds)
        identical &= len({r["off"]["digest"] for r in rounds}) == 1
        cached = all(r["warm"]["hits"] > 0 and r["cold"]["writes"] > 0 for r in rounds)
        median = {mode: statistics.median(r[mode]["time_s"] for r in rounds) for mode in MODES}
        table.append(
            f"| {labels[kind]} | {median['off']:.2f} | {median['cold']:.2f} | "
            f"{median['warm']:.2f} | {warm_ratio:.3f} | {cold_ratio:.3f} | {identical} |"
        )
        summary[kind] = {
            "median_s": median,
            "warm_over_cold": warm_ratio,
            "cold_over_off": cold_ratio,
            "bit_identical": identical,
            "warm_hits_cold_writes": cached,
            "target_met": warm_ratio <= TARGET,
        }
        if not identical:
            failed.append(f"{kind}: results differ between processes")
        if not cached:
            failed.append(f"{kind}: the warm process did not read from the cache")
    imports = statistics.median(
        r[mode]["imports_s"] for rounds in runs.values() for r in rounds for mode in MODES
    )
    print("\n".join(table))
    print(f"\nimports (not counted): {imports:.1f} s per process (median)")
    for kind, result in summary.items():
        verdict = "met" if result["target_met"] else "MISSED"
        print(f"target {kind}: warm / cold {result['warm_over_cold']:.3f} <= {TARGET}: {verdict}")
    numbers: dict[str, float | int | None] = {"rounds": args.rounds, "imports_s": imports}
    for kind, result in summary.items():
        numbers[f"{kind}_warm_over_cold"] = result["warm_over_cold"]
        numbers[f"{kind}_cold_over_off"] = result["cold_over_off"]
        numbers[f"{kind}_identical"] = int(result["bit_identical"])
        for mode, seconds in result["median_s"].items():
            numbers[f"{kind}_{mode}_s"] = seconds
    path = save_results(Path(args.results), numbers, {"compile_cache": "\n".join(table)}, load)
    print(f"written: {path}")
    if failed:
        raise SystemExit("FAILED: " + "; ".join(failed))


if __name__ == "__main__":
    main()
