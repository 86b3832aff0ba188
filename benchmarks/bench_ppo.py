"""PPO on gymnax CartPole-v1: the gallery example (through JaxTrainer) against rejax 0.1.3.

Every contender runs the same PPO hyper-parameters (rejax's CartPole settings: 5 envs x 100
steps, 5 epochs of 5 minibatches, Adam 7.5e-4, gradient clipping 0.5, GAE 0.95, clip 0.2,
entropy 0.01, value 0.5, 64x64 tanh networks) for the same env steps, and the same
evaluation schedule (20 evaluations of 16 episodes). Each measurement runs in its own
subprocess, with a timeout (multi-device CPU runs have been seen to deadlock):

- one seed: the process is pinned to one core (one seed uses one core; pinning also keeps
  XLA from waiting on a busy second core), rejax and the example interleaved, repeated;
- many seeds: 8 seeds in a process with 2 host devices
  (`--xla_force_host_platform_device_count=2`), `JaxTrainer.fit_many`, which shards the seed
  axis over the devices (4 seeds on each).

Compile time is the first call minus a compiled call (so it includes tracing). Time to a
mean evaluation return of 475 is compile time plus the run time up to the first evaluation
that reached it (epochs take equal time). Ratios are what to read; absolute numbers depend on
the load of the machine.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_ppo.py
    PYTHONPATH=src .venv/bin/python benchmarks/bench_ppo.py --compile-breakdown
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOTAL_STEPS, EVALS, EVAL_EPISODES, SOLVED = 100_000, 20, 16, 475.0
HPARAMS = dict(
    learning_rate=7.5e-4,
    gamma=0.99,
    gae_lambda=0.95,
    clip_eps=0.2,
    ent_coef=0.01,
    vf_coef=0.5,
    max_grad_norm=0.5,
)
SHAPE = dict(num_envs=5, num_steps=100, num_epochs=5, num_minibatches=5)


def load_example() -> dict:
    """The example's definitions: the script run up to its first training cell."""
    import types

    os.environ.setdefault("MPLBACKEND", "Agg")
    source = (ROOT / "examples" / "plot_jax_ppo.py").read_text()
    head = source.split("# ## Training one seed with `JaxTrainer`")[0]
    module = types.ModuleType("ppo_example")
    sys.modules[module.__name__] = module
    exec(compile(head, "plot_jax_ppo.py", "exec"), module.__dict__)
    return module.__dict__


def example_module(namespace: dict):
    """The example's PPO on CartPole-v1 with the benchmark's hyper-parameters and shape."""
    env, env_params = namespace["make_env"]("CartPole-v1")
    return namespace["PPO"].create(
        env,
        env_params,
        hparams=namespace["PPOHParams"](**HPARAMS),
        eval_episodes=EVAL_EPISODES,
        **SHAPE,
    )


def example_fit(namespace: dict, many: int = 0, opt_level: int | None = None):
    import jax

    from gallery_lib import JaxTrainer

    module = example_module(namespace)
    steps_per_epoch = TOTAL_STEPS // module.batch_size // EVALS
    # The example's XLA optimization level for the loop (its `--xla-opt-level`), unless given.
    level = namespace["Config"].xla_opt_level if opt_level is None else opt_level
    options = {"xla_backend_optimization_level": level}
    trainer = JaxTrainer(
        EVALS, steps_per_epoch, enable_progress_bar=False, compiler_options=options
    )
    if many:
        return lambda seed: trainer.fit_many(module, jax.random.split(jax.random.key(seed), many))[
            1
        ]
    return lambda seed: trainer.fit(module, jax.random.key(seed))[1]


def rejax_fit():
    import gymnax
    import jax
    from rejax import PPO
    from rejax.evaluate import evaluate

    class FiveTuple:
        """gymnax 1.0 steps return 6 values; rejax 0.1.3 expects the older 5."""

        def __init__(self, env):
            self.env = env

        def __getattr__(self, name):
            if name == "env":
                raise AttributeError(name)
            return getattr(self.env, name)

        def step(self, key, state, action, params=None):
            obs, state, reward, terminated, truncated, info = self.env.step(
                key, state, action, params
            )
            return obs, state, reward, terminated | truncated, info

    def eval_callback(algo, ts, rng):
        act = algo.make_act(ts)
        max_steps = algo.env_params.max_steps_in_episode
        return evaluate(act, rng, algo.env, algo.env_params, EVAL_EPISODES, max_steps)

    env, env_params = gymnax.make("CartPole-v1")
    algo = PPO.create(
        env=FiveTuple(env),
        env_params=env_params,
        agent_kwargs={"activation": "tanh"},
        total_timesteps=TOTAL_STEPS,
        eval_freq=TOTAL_STEPS // EVALS,
        skip_initial_evaluation=True,
        **SHAPE,
        **HPARAMS,
    ).replace(eval_callback=eval_callback)
    train = jax.jit(algo.train)

    def fit(seed):
        _, (_, returns) = train(jax.random.key(seed))
        return {"eval_return": returns.mean(-1)}

    return fit


def timed(fit, seed: int) -> tuple[float, float, dict]:
    import jax

    wall, cpu = time.perf_counter(), time.process_time()
    metrics = jax.block_until_ready(fit(seed))
    return time.perf_counter() - wall, time.process_time() - cpu, metrics


def child(kind: str, repeats: int, opt_level: int | None) -> None:
    if kind == "single":
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    import jax
    import numpy as np

    namespace = load_example()
    fits = {"example (JaxTrainer)": example_fit(namespace, opt_level=opt_level)}
    if kind == "single":
        fits["rejax 0.1.3"] = rejax_fit()
    else:
        fits = {
            "example, 8 seeds (fit_many, sharded)": example_fit(
                namespace, many=8, opt_level=opt_level
            )
        }
    results = {name: {"first": timed(fit, 0), "runs": []} for name, fit in fits.items()}
    for repeat in range(repeats):
        for name, fit in fits.items():
            results[name]["runs"].append(timed(fit, 1 + repeat))
    level = namespace["Config"].xla_opt_level if opt_level is None else opt_level
    out = {"devices": jax.device_count(), "xla_opt_level": level}
    for name, res in results.items():
        walls = sorted(r[0] for r in res["runs"])
        cpus = sorted(r[1] for r in res["runs"])
        wall, cpu = walls[0], cpus[len(cpus) // 2]
        curves = [np.asarray(r[2]["eval_return"]).reshape(-1, EVALS) for r in res["runs"]]
        seeds = 8 if "8 seeds" in name else 1
        compile_wall = max(res["first"][0] - wall, 0.0)
        solve = []
        for curve in curves:
            for row in curve:
                hit = np.flatnonzero(row >= SOLVED)
                solve.append(compile_wall + wall * (hit[0] + 1) / EVALS if hit.size else np.nan)
        out[name] = {
            "steps_per_s": seeds * TOTAL_STEPS / wall,
            "steps_per_cpu_s": seeds * TOTAL_STEPS / cpu,
            "compile_s": compile_wall,
            "compile_cpu_s": max(res["first"][1] - cpu, 0.0),
            "time_to_solve_s": float(np.nanmedian(solve)) if not np.isnan(solve).all() else None,
            "solved_runs": f"{int(np.sum(~np.isnan(solve)))}/{len(solve)}",
            "cpu_per_wall": cpu / wall,
        }
    print("RESULT " + json.dumps(out))


def run_child(kind: str, repeats: int, devices: int, timeout: int, opt_level: int | None) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    command = [sys.executable, __file__, "--child", kind, "--repeats", str(repeats)]
    if opt_level is not None:
        command += ["--xla-opt-level", str(opt_level)]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode or not lines:
        raise SystemExit(f"{kind} run failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def compile_breakdown(repeats: int) -> None:
    """Where one seed's compile time goes, and what XLA's optimization level changes (1 core)."""
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    import jax

    from gallery_lib import JaxTrainer

    module = example_module(load_example())
    trainer = JaxTrainer(
        EVALS, TOTAL_STEPS // module.batch_size // EVALS, enable_progress_bar=False
    )
    # A trainer without host callbacks may run inside jit: the same loop, staged step by step.
    run = jax.jit(lambda rng: trainer.fit(module, rng)[1])
    rng = jax.random.key(0)
    start = time.perf_counter()
    traced = run.trace(rng)
    lowered = traced.lower()
    stages = time.perf_counter() - start
    print(f"tracing + lowering to StableHLO: {stages:.2f} s (one core)")
    print("| xla_backend_optimization_level | XLA compile (s) | compiled run (s, fastest) |")
    print("|---|---|---|")
    for level in (3, 2, 1):
        start = time.perf_counter()
        compiled = lowered.compile({"xla_backend_optimization_level": level})
        compile_s = time.perf_counter() - start
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(compiled(rng))
            runs.append(time.perf_counter() - start)
        default = " (XLA's default)" if level == 3 else ""
        print(f"| {level}{default} | {compile_s:.2f} | {min(runs):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument(
        "--xla-opt-level",
        type=int,
        choices=range(4),
        help="LLVM optimization level of the example's compiled loop (default: the example's)",
    )
    parser.add_argument(
        "--compile-breakdown",
        action="store_true",
        help="only time tracing, lowering and XLA's compile at optimization levels 3, 2, 1",
    )
    parser.add_argument("--child", choices=["single", "many"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compile_breakdown:
        compile_breakdown(args.repeats)
        return
    if args.child:
        child(args.child, args.repeats, args.xla_opt_level)
        return
    load = os.getloadavg()[0]
    single = run_child("single", args.repeats, 1, args.timeout, args.xla_opt_level)
    try:
        many = run_child("many", max(2, args.repeats // 2), 2, args.timeout, args.xla_opt_level)
    except (SystemExit, subprocess.TimeoutExpired) as error:
        print(f"many-seed run on 2 devices gave no result: {str(error)[:300]}")
        many = None
    ours, rejax = single["example (JaxTrainer)"], single["rejax 0.1.3"]
    sharded = many["example, 8 seeds (fit_many, sharded)"] if many else None
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = platform.processor() or platform.machine()
    print(f"# {stamp}, {machine}, {os.cpu_count()} cores, load average {load:.1f} at start")
    print(
        f"PPO CartPole-v1, {TOTAL_STEPS:,} env steps per seed, "
        f"{EVALS} evaluations of {EVAL_EPISODES} episodes; the example's loop compiled with "
        f"xla_backend_optimization_level={single['xla_opt_level']}\n"
    )
    header = (
        "run",
        "env steps/s (wall)",
        "env steps per CPU-s",
        "cores used",
        "compile (s)",
        "time to 475, compile incl. (s)",
        "runs solved",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    rows = [
        ("rejax 0.1.3, one seed, 1 core", rejax),
        ("example via JaxTrainer, one seed, 1 core", ours),
    ]
    if sharded:
        rows.append((f"example, 8 seeds sharded over {many['devices']} devices", sharded))
    for name, r in rows:
        solve = f"{r['time_to_solve_s']:.1f}" if r["time_to_solve_s"] is not None else "-"
        cells = (
            name,
            f"{r['steps_per_s']:,.0f}",
            f"{r['steps_per_cpu_s']:,.0f}",
            f"{r['cpu_per_wall']:.2f}",
            f"{r['compile_s']:.1f}",
            solve,
            r["solved_runs"],
        )
        print("| " + " | ".join(cells) + " |")
    print()
    wall_ratio = ours["steps_per_s"] / rejax["steps_per_s"]
    cpu_ratio = ours["steps_per_cpu_s"] / rejax["steps_per_cpu_s"]
    print(
        f"one seed, example / rejax: {wall_ratio:.2f}x wall, {cpu_ratio:.2f}x per CPU-s "
        "(target >= 1.3x)"
    )
    if sharded:
        scale = sharded["steps_per_s"] / ours["steps_per_s"]
        print(f"8 seeds on 2 devices / one seed: {scale:.2f}x (target >= 1.8x)")
    print(
        f"time to 475, one seed, compile included: {ours['time_to_solve_s']:.1f} s (target <= 6 s)"
    )


if __name__ == "__main__":
    main()
