"""PPO on gymnax classic control: the gallery example (JaxTrainer) against rejax 0.1.3.

**Equal terms (the first table, the one the docs quote).** rejax is used as published; the
example's PPO is configured from here to run rejax's algorithm (`RejaxAlgorithm`, a subclass
of the example's `PPO` overriding three methods; the example itself is not changed). Read in
rejax 0.1.3's `algos/ppo.py`, `networks.py` and `evaluate.py`, the differences were:

- gradient clipping: the example clips the global norm to 0.5 (`clip_by_global_norm`),
  rejax each element to +-0.5 (`optax.clip`). Equal terms: each element.
- Adam eps: the example 1e-5, rejax optax's default 1e-8. Equal terms: 1e-8.
- initialisation: the example orthogonal (sqrt 2; 0.01 for the actor's head, 1 for the
  critic's), rejax flax's default (LeCun normal kernels, zero biases). Equal terms: flax's.
- truncated episodes: the example bootstraps them from the value of the final observation,
  rejax treats them as terminal (`done`). Equal terms: terminal.
- evaluation: the example plays greedily in its own loop; rejax samples actions (`make_act`)
  in `rejax.evaluate`. Equal terms: `rejax.evaluate` on both sides, greedy (or
  `--eval-policy sampled`), with the evaluation env steps counted.
- XLA optimization level: the example 2 (its `--xla-opt-level`), rejax XLA's default (3).
  Equal terms: the same on both (`--xla-opt-level`, default 2).

rejax keeps separate actor and critic optimizers; with element-wise clipping and Adam (both
element-wise) that equals one optimizer over both networks, as the example has. Everything
else (hyper-parameters: rejax's CartPole settings, which are the example's defaults; GAE;
clipped value loss; advantage normalisation per minibatch; 64x64 tanh networks) was already
the same. Evaluation env steps (the lengths of the evaluation episodes) are counted and
reported apart from the training env steps, and a second equal-terms table runs both with no
evaluation at all (pure training throughput).

**Each with its own defaults (the last table).** The example as published against rejax as
published (its own evaluation, sampled, and XLA's default optimization level): what a user of
each gets without configuring anything. Not a comparison of equal work.

Method: every one-seed contender runs in one subprocess pinned to one core (a seed uses one
core), after one compiling call; then `--repeats` compiled runs each, seeds 1, 2, ..., the two
sides of a pair alternating which goes first. Reported: medians with their range (min-max)
over repeats; a ratio is the median of the per-repeat ratios (each within one repeat), with
its range, to three decimals; a target is compared on the unrounded median. Compile time is
the first call minus the median compiled run. Time to a mean evaluation return of 475 is
compile time plus the share of the run up to the first evaluation that reached it (epochs take
equal time), median over the runs that reached it. Many seeds: 8 seeds in a process with 2
host devices, `JaxTrainer.fit_many` sharding them, against the example's one-seed rate.

The run is written to `benchmarks/results/ppo.json` (`--results`), which the docs build reads.

**Every classic-control preset (`--envs`).** For each environment, in its own process pinned
to one core: (1) *learning*: `--seeds` seeds of the example with its preset (`fit_many`)
and of rejax 0.1.3 with its published settings (`REJAX_CONFIGS`, copied from rejax's
`configs/gymnax/*.yaml`; `jax.vmap(algo.train)`), each seed's final policy measured by the
same `rejax.evaluate` on `--final-episodes` greedy episodes; the env steps each side trained
(rejax's loop can train more than its `total_timesteps`, see `rejax_schedule`) and the env
steps after which the seeds' mean first reached the preset's goal (each side's curve measured
by the same evaluation); (2) *speed*: one seed each, the preset's settings on both sides (rejax
given the same hyper-parameters, activation and observation normalization) and the same
evaluation schedule, a compiling call then `--repeats` interleaved runs; the ratio of
env steps per second, median and range. Written to `benchmarks/results/ppo_envs.json`.

**The example's speed tricks (`--tricks`).** One seed of CartPole-v1 on one core, the example
against itself with one trick taken out: the rollout's randomness drawn per step, the shuffle
by `jax.random.permutation`, Adam per weight matrix, LLVM -O3. Written to
`benchmarks/results/ppo_tricks.json`.

**Where an update's time goes (`--parts`).** For each environment, in a process pinned to one
core, with the preset's settings on both sides: milliseconds per update of the example's
rollout, its advantages (the batched network pass and GAE) and its gradient steps, and of
rejax's rollout and the rest of its update (each piece chained in one `lax.scan`). Printed,
not recorded.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_ppo.py
    PYTHONPATH=src .venv/bin/python benchmarks/bench_ppo.py --quick --results /tmp/ppo.json
    PYTHONPATH=src .venv/bin/python benchmarks/bench_ppo.py --compile-breakdown
    PYTHONPATH=src .venv/bin/python benchmarks/bench_ppo.py --envs CartPole-v1 Acrobot-v1 \\
        MountainCar-v0 MountainCarContinuous-v0 Pendulum-v1 --repeats 5 --seeds 4
    PYTHONPATH=src .venv/bin/python benchmarks/bench_ppo.py --tricks --repeats 5
    PYTHONPATH=src .venv/bin/python benchmarks/bench_ppo.py --parts CartPole-v1 Acrobot-v1 \\
        MountainCar-v0 MountainCarContinuous-v0 Pendulum-v1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS, ROOT, save_results

SOLVED, TARGET_RATIO, TARGET_SCALE, TARGET_SOLVE_S = 475.0, 1.3, 1.8, 6.0
FULL = dict(total_steps=100_000, evals=20, eval_episodes=16, seeds=8)
QUICK = dict(total_steps=2_000, evals=2, eval_episodes=2, seeds=2)
SHAPE_FIELDS = ("num_envs", "num_steps", "num_epochs", "num_minibatches")
HPARAM_FIELDS = (
    "learning_rate", "gamma", "gae_lambda", "clip_eps", "ent_coef", "vf_coef", "max_grad_norm",
)  # fmt: skip
PAIRS = {
    "equal": "equal terms, with evaluation",
    "train_only": "equal terms, no evaluation",
    "own": "each with its own defaults",
}


def load_example():
    """The example's definitions (functions and classes; nothing trained)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    from gallery_lib import example_definitions

    return example_definitions(ROOT / "examples" / "plot_jax_ppo.py", "ppo_example")


def settings(ppo, env_id: str = "CartPole-v1"):
    """The example's `Config` for `env_id`: its defaults with the environment's preset."""
    return ppo.with_preset(ppo.Config(env_id=env_id), keep=set())


def hyperparameters(config) -> tuple[dict, dict, dict]:
    """rejax's PPO arguments from a `Config`: numbers, shape fields, network and flags."""
    numbers = {name: getattr(config, name) for name in HPARAM_FIELDS}
    shape = {name: getattr(config, name) for name in SHAPE_FIELDS}
    flags = {
        "agent_kwargs": {"activation": config.activation},
        "normalize_observations": config.normalize_observations,
    }
    return numbers, shape, flags


class FiveTuple:
    """gymnax 1.0 steps return 6 values; rejax 0.1.3 expects the older 5 (`done` = either)."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        return obs, state, reward, terminated | truncated, info


def shared_evaluation(env, env_params, episodes: int):
    """`evaluate(act, rng) -> {"eval_return", "eval_steps"}`, the same code for both sides.

    rejax's own `evaluate` (episodes vmapped, each until done or the time limit) with the
    policy `act(obs, rng) -> action`; `eval_steps` sums the episodes' lengths. No episodes: no
    evaluation at all (zeros).
    """
    import jax.numpy as jnp
    from rejax.evaluate import evaluate

    wrapped = FiveTuple(env)

    def run(act, rng):
        if episodes == 0:
            return {"eval_return": jnp.zeros(()), "eval_steps": jnp.zeros((), jnp.int32)}
        lengths, returns = evaluate(
            act, rng, wrapped, env_params, episodes, env_params.max_steps_in_episode
        )
        return {"eval_return": returns.mean(), "eval_steps": lengths.sum()}

    return run


def rejax_algorithm(ppo):
    """The example's `PPO` running rejax 0.1.3's algorithm (see the module docstring)."""
    import jax
    import optax
    from flax import linen as nn

    class RejaxAlgorithm(ppo.PPO):
        """Element-wise clipping, Adam eps 1e-8, flax's default init, truncation terminal."""

        def optimizer(self) -> optax.GradientTransformation:
            hp = self.hparams
            return optax.flatten(
                optax.chain(optax.clip(hp.max_grad_norm), optax.adam(hp.learning_rate))
            )

        def init_train_state(self, rng):
            state = super().init_train_state(rng)
            leaves, tree = jax.tree_util.tree_flatten_with_path(state.params)
            keys = jax.random.split(jax.random.fold_in(rng, 17), len(leaves))
            default_kernel = nn.initializers.lecun_normal()
            params = jax.tree_util.tree_unflatten(
                tree,
                [
                    default_kernel(key, leaf.shape) if path[-1].key == "kernel" else leaf
                    for key, (path, leaf) in zip(keys, leaves, strict=True)
                ],
            )
            return state.replace(params=params, opt_state=self.optimizer().init(params))

        def get_batch(self, train_state, batch_idx):
            train_state, rollout = super().get_batch(train_state, batch_idx)
            return train_state, rollout.replace(terminated=rollout.done)

    return RejaxAlgorithm


def example_act(ppo, module, train_state, policy: str):
    """The example's policy (normalization included) as rejax's `act(obs, rng)`."""
    import jax.numpy as jnp

    space = module.env.action_space(module.env_params)

    def act(obs, rng):
        seen = module.observe(train_state.obs_stats, ppo.flat(jnp.asarray(obs)[None]))
        pi, _ = module.network.apply(train_state.params, seen)
        if policy == "greedy":
            action = pi.mode()
        else:
            action = pi.sample(type(pi).noise(rng, (1, module.network.action_dim)))
        return ppo.to_env_action(space, action)[0]

    return act


def rejax_act(algo, ts, policy: str):
    """rejax's policy (its normalization included) as `act(obs, rng)`, greedy or sampled."""
    import jax.numpy as jnp

    space = algo.env.action_space(algo.env_params)

    def act(obs, rng):
        if algo.normalize_observations:
            obs = algo.normalize_obs(ts.obs_rms_state, obs)
        dist = algo.actor.apply(ts.actor_ts.params, obs[None], method="_action_dist")
        action = (dist.mode() if policy == "greedy" else dist.sample(seed=rng))[0]
        if algo.discrete:
            return action
        return jnp.clip(action, space.low, space.high)

    return act


def run_config(ppo, run: dict, env_id: str = "CartPole-v1"):
    """The example's preset for `env_id` with `run`'s budget and evaluations (if it has any)."""
    import dataclasses

    config = settings(ppo, env_id)
    overrides = {key: run[key] for key in ("total_steps", "evals", "eval_episodes") if key in run}
    return dataclasses.replace(config, **overrides)


def example_fit(ppo, run: dict, kind: str, opt_level: int, policy: str, env_id="CartPole-v1"):
    """`fit(seed) -> metrics` of the example through `JaxTrainer`.

    kind: "equal" (rejax's algorithm, shared evaluation), "train_only" (the same, no
    evaluation), "own" (as published), "many" (as published, `run["seeds"]` seeds), "preset"
    (as published with the preset of `env_id`, shared evaluation), "preset_own" (the same
    with its own evaluation, `evaluate_greedy`), "preset_train_only" (no evaluation).
    """
    import dataclasses

    import jax

    config = dataclasses.replace(run_config(ppo, run, env_id), xla_opt_level=opt_level)
    env, env_params = ppo.make_env(env_id)
    cls = rejax_algorithm(ppo) if kind in ("equal", "train_only") else ppo.PPO
    if kind in ("equal", "train_only", "preset", "preset_train_only"):
        episodes = 0 if kind.endswith("train_only") else config.eval_episodes
        evaluation = shared_evaluation(env, env_params, episodes)

        def evaluate(self, train_state):
            act = example_act(ppo, self, train_state, policy)
            rng = jax.random.fold_in(train_state.rng, 1)
            return {**evaluation(act, rng), "env_steps": train_state.env_steps}

        cls = type(cls.__name__, (cls,), {"evaluate": evaluate})
    module, trainer = ppo.build(config)
    module = cls.create(env, env_params, config, eval_episodes=config.eval_episodes)
    if kind == "many":
        return lambda seed: trainer.fit_many(
            module, jax.random.split(jax.random.key(seed), run["seeds"])
        )[1]
    return lambda seed: trainer.fit(module, jax.random.key(seed))[1]


def rejax_algo(config, total_steps: int, eval_freq: int, eval_callback=None):
    """rejax 0.1.3's PPO with `config`'s hyper-parameters (rejax's own evaluation if None)."""
    import gymnax
    from rejax import PPO

    numbers, shape, flags = hyperparameters(config)
    env, env_params = gymnax.make(config.env_id)
    algo = PPO.create(
        env=FiveTuple(env),
        env_params=env_params,
        total_timesteps=total_steps,
        eval_freq=eval_freq,
        skip_initial_evaluation=True,
        **shape,
        **numbers,
        **flags,
    )
    return algo if eval_callback is None else algo.replace(eval_callback=eval_callback)


def rejax_fit(ppo, run: dict, kind: str, opt_level: int | None, policy: str, env_id="CartPole-v1"):
    """`fit(seed) -> metrics` of rejax 0.1.3's PPO; `opt_level` None: XLA's default."""
    import gymnax
    import jax
    from rejax.evaluate import evaluate

    config = run_config(ppo, run, env_id)
    if kind == "own":

        def eval_callback(algo, ts, rng):
            lengths, returns = evaluate(
                algo.make_act(ts), rng, algo.env, algo.env_params, config.eval_episodes
            )
            return {"eval_return": returns.mean(), "eval_steps": lengths.sum()}

    else:
        env, env_params = gymnax.make(env_id)
        episodes = 0 if kind.endswith("train_only") else config.eval_episodes
        evaluation = shared_evaluation(env, env_params, episodes)

        def eval_callback(algo, ts, rng):
            return evaluation(rejax_act(algo, ts, policy), rng)

    eval_freq = config.total_steps // config.evals
    algo = rejax_algo(config, config.total_steps, eval_freq, eval_callback)
    options = None if opt_level is None else {"xla_backend_optimization_level": opt_level}
    train = jax.jit(algo.train, compiler_options=options)
    return lambda seed: train(jax.random.key(seed))[1]


def timed(fit, seed: int) -> tuple[float, float, dict]:
    """Wall and CPU seconds of `fit(seed)`, and its metrics as NumPy arrays."""
    import jax
    import numpy as np

    wall, cpu = time.perf_counter(), time.process_time()
    metrics = jax.block_until_ready(fit(seed))
    elapsed = time.perf_counter() - wall, time.process_time() - cpu
    return *elapsed, {k: np.asarray(v) for k, v in metrics.items() if k != "env_steps"}


def summarize(first: tuple, runs: list[tuple], run: dict, seeds: int) -> dict:
    """Medians and ranges of one contender's compiled runs, with compile time and time to 475."""
    import numpy as np

    walls = [r[0] for r in runs]
    wall = statistics.median(walls)
    cpu = statistics.median(r[1] for r in runs)
    compile_s = max(first[0] - wall, 0.0)
    train_steps = seeds * run["total_steps"]
    solve = []
    for elapsed, _, metrics in runs:
        for curve in np.asarray(metrics["eval_return"]).reshape(-1, run["evals"]):
            hit = np.flatnonzero(curve >= SOLVED)
            if hit.size:
                solve.append(compile_s + elapsed * (hit[0] + 1) / run["evals"])
    # The example as published does not count its evaluation steps.
    eval_steps = [float(np.sum(r[2]["eval_steps"])) for r in runs if "eval_steps" in r[2]]
    return {
        "steps_per_s": [train_steps / w for w in walls],
        "steps_per_s_median": train_steps / wall,
        "eval_steps_median": statistics.median(eval_steps) if eval_steps else None,
        "cores_used": cpu / wall,
        "compile_s": compile_s,
        "time_to_solve_s": statistics.median(solve) if solve else None,
        "solved": len(solve),
        "runs": len(runs) * seeds,
    }


def child(mode: str, run: dict, repeats: int, opt_level: int, policy: str) -> None:
    """Measure in this process and print one `RESULT {json}` line."""
    if mode == "single":
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    import jax

    ppo = load_example()
    if mode == "single":
        fits = {}
        for kind in PAIRS:
            rejax_level = None if kind == "own" else opt_level
            fits[kind] = (
                example_fit(ppo, run, kind, opt_level, policy),
                rejax_fit(ppo, run, kind, rejax_level, policy),
            )
    else:
        fits = {"many": (example_fit(ppo, run, "many", opt_level, policy),)}
    firsts = {kind: [timed(fit, 0) for fit in pair] for kind, pair in fits.items()}
    runs = {kind: [[] for _ in pair] for kind, pair in fits.items()}
    for repeat in range(repeats):
        for kind, pair in fits.items():
            order = range(len(pair)) if repeat % 2 == 0 else reversed(range(len(pair)))
            for side in order:
                runs[kind][side].append(timed(pair[side], 1 + repeat))
    seeds = run["seeds"] if mode == "many" else 1
    out = {"devices": jax.device_count()}
    for kind in fits:
        out[kind] = [
            summarize(first, side_runs, run, seeds)
            for first, side_runs in zip(firsts[kind], runs[kind], strict=True)
        ]
    print("RESULT " + json.dumps(out))


def child_result(command: list[str], devices: int, timeout: int, label: str) -> dict:
    """Run a child `command` with `devices` host devices; its parsed `RESULT` line."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    # Every run compiles: the example turns on the persistent compilation cache, which would
    # make the compile times (and the times to 475) of later runs those of a warm cache.
    env["GALLERY_COMPILE_CACHE"] = "0"
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode or not lines:
        raise SystemExit(f"{label} run failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def run_child(mode: str, args: argparse.Namespace, devices: int) -> dict:
    """Run `child` in a subprocess with `devices` host devices; its parsed result."""
    command = [sys.executable, __file__, "--child", mode, "--repeats", str(args.repeats)]
    command += ["--xla-opt-level", str(args.xla_opt_level), "--eval-policy", args.eval_policy]
    command += ["--quick"] if args.quick else []
    return child_result(command, devices, args.timeout, mode)


# rejax 0.1.3's published PPO settings for gymnax classic control: the `ppo` sections of
# `configs/gymnax/{cartpole,acrobot,mountaincar,continuous_mountaincar,pendulum}.yaml` in
# github.com/keraJLi/rejax (commit 4954fbf), in rejax's own argument names.
_REJAX_COMMON = dict(clip_eps=0.2, vf_coef=0.5, gamma=0.99, gae_lambda=0.95)
_REJAX_CARTPOLE = dict(
    activation="tanh", num_envs=5, num_steps=100, num_epochs=5, num_minibatches=5,
    learning_rate=7.5e-4, max_grad_norm=0.5, total_timesteps=100_000, eval_freq=1_000,
    ent_coef=0.01, normalize_observations=False,
)  # fmt: skip
REJAX_CONFIGS = {
    "CartPole-v1": _REJAX_COMMON | _REJAX_CARTPOLE,
    "Acrobot-v1": _REJAX_COMMON | _REJAX_CARTPOLE | {"normalize_observations": True},
    "MountainCar-v0": _REJAX_COMMON | dict(
        activation="tanh", num_envs=10, num_steps=20, num_epochs=5, num_minibatches=5,
        learning_rate=2.5e-4, max_grad_norm=0.5, total_timesteps=100_000, eval_freq=1_000,
        gae_lambda=0.98, ent_coef=0.0, normalize_observations=False,
    ),
    "MountainCarContinuous-v0": _REJAX_COMMON | dict(
        activation="relu", num_envs=5, num_steps=100, num_epochs=10, num_minibatches=10,
        learning_rate=3e-4, max_grad_norm=10.0, total_timesteps=200_000, eval_freq=2_000,
        gamma=0.9, ent_coef=0.0, normalize_observations=False,
    ),
    "Pendulum-v1": _REJAX_COMMON | dict(
        activation="swish", num_envs=100, num_steps=100, num_epochs=10, num_minibatches=10,
        learning_rate=1e-3, max_grad_norm=10.0, total_timesteps=150_000, eval_freq=2_000,
        gamma=0.995, ent_coef=0.0, normalize_observations=True,
    ),
}  # fmt: skip
SHORT_NAMES = {
    "CartPole-v1": "cartpole",
    "Acrobot-v1": "acrobot",
    "MountainCar-v0": "mountaincar",
    "MountainCarContinuous-v0": "mountaincar_continuous",
    "Pendulum-v1": "pendulum",
}


def rejax_schedule(published: dict) -> tuple[int, int, int]:
    """rejax's loop for a config: (evaluations, updates per evaluation, env steps trained).

    `OnPolicyMixin.train` runs ceil(total_timesteps / eval_freq) evaluations, each after
    ceil(eval_freq / (num_envs * num_steps)) updates: when an update is larger than
    `eval_freq` (Pendulum-v1), it trains more than `total_timesteps`.
    """
    import math

    batch = published["num_envs"] * published["num_steps"]
    evals = math.ceil(published["total_timesteps"] / published["eval_freq"])
    updates = math.ceil(published["eval_freq"] / batch)
    return evals, updates, evals * updates * batch


def rejax_published(env_id: str, quick: bool, eval_callback):
    """rejax's PPO with its published settings for `env_id` (quick: two tiny evaluations)."""
    import gymnax
    from rejax import PPO

    published = dict(REJAX_CONFIGS[env_id])
    if quick:
        batch = published["num_envs"] * published["num_steps"]
        published.update(total_timesteps=2 * batch, eval_freq=batch)
    env, env_params = gymnax.make(env_id)
    activation = published.pop("activation")
    algo = PPO.create(
        env=FiveTuple(env),
        env_params=env_params,
        agent_kwargs={"activation": activation},
        skip_initial_evaluation=True,
        **published,
    ).replace(eval_callback=eval_callback)
    return algo, rejax_schedule({**published, "activation": activation})


def quick_preset(ppo, env_id: str, quick: bool):
    """The example's preset for `env_id`; quick: two evaluations after one update each."""
    import dataclasses

    config = settings(ppo, env_id)
    if quick:
        batch = config.num_envs * config.num_steps
        config = dataclasses.replace(config, total_steps=2 * batch, evals=2, eval_episodes=2)
    return config


def steps_to_goal(steps, curves, goal: float) -> int | None:
    """Env steps at the first evaluation whose mean over seeds reached `goal`."""
    import numpy as np

    reached = np.flatnonzero(np.asarray(curves).mean(0) >= goal)
    return int(steps[reached[0]]) if reached.size else None


def learning_child(ppo, env_id: str, args) -> dict:
    """Several seeds of each side at once: final greedy returns and learning curves."""
    import jax
    import numpy as np

    config = quick_preset(ppo, env_id, args.quick)
    env, env_params = ppo.make_env(env_id)
    final_evaluation = shared_evaluation(env, env_params, 2 if args.quick else args.final_episodes)
    curve_evaluation = shared_evaluation(env, env_params, config.eval_episodes)
    keys = jax.random.split(jax.random.key(100), args.seeds)
    final_keys = jax.random.split(jax.random.key(200), args.seeds)

    module, trainer = ppo.build(config)
    states, metrics = trainer.fit_many(module, keys)
    ours = jax.jit(
        jax.vmap(lambda s, k: final_evaluation(example_act(ppo, module, s, args.eval_policy), k))
    )(states, final_keys)
    algo, (evals, updates, rejax_steps) = rejax_published(
        env_id,
        args.quick,
        lambda algo, ts, rng: curve_evaluation(rejax_act(algo, ts, args.eval_policy), rng),
    )
    rejax_states, rejax_curves = jax.jit(jax.vmap(algo.train))(keys)
    theirs = jax.jit(
        jax.vmap(lambda s, k: final_evaluation(rejax_act(algo, s, args.eval_policy), k))
    )(rejax_states, final_keys)
    batch = algo.num_envs * algo.num_steps
    rejax_steps_axis = np.arange(1, evals + 1) * updates * batch
    example_steps_axis = np.asarray(metrics["env_steps"][0])
    return {
        "goal": config.solved_return,
        "example_final": np.asarray(ours["eval_return"]).tolist(),
        "rejax_final": np.asarray(theirs["eval_return"]).tolist(),
        "example_steps": int(example_steps_axis[-1]),
        "rejax_steps": rejax_steps,
        "example_to_goal": steps_to_goal(
            example_steps_axis, metrics["eval_return"], config.solved_return
        ),
        "rejax_to_goal": steps_to_goal(
            rejax_steps_axis, rejax_curves["eval_return"], config.solved_return
        ),
    }


def update_only(ppo, config, opt_level: int):
    """`fit(seed)`: the example's training steps alone, as many as its run makes, all on one
    rollout: what its run would take if collecting rollouts and evaluating cost nothing."""
    import jax
    import jax.numpy as jnp

    module, trainer = ppo.build(config)
    iterations = config.evals * trainer.training_steps_per_epoch

    def run(key):
        state, batch = module.get_batch(module.init_train_state(key), 0)

        def step(state, index):
            return module.training_step(index, state, batch)[0], None

        params = jax.lax.scan(step, state, jnp.arange(iterations))[0].params
        return {"params_norm": sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(params))}

    compiled = jax.jit(run, compiler_options={"xla_backend_optimization_level": opt_level})
    return lambda seed: compiled(jax.random.key(seed))


SPEED_PAIRS = {
    "own_evaluation": ("preset_own", "preset"),
    "train_only": ("preset_train_only", "preset_train_only"),
}


def speed_child(ppo, env_id: str, args) -> dict:
    """One seed each, the preset's settings on both, env steps/s; interleaved repeats.

    Pairs: `own_evaluation`, each side evaluating with its own code on the same schedule
    (the example's `evaluate_greedy`, rejax's `rejax.evaluate` with its greedy policy; the
    same episodes after the same updates); `train_only`, no evaluation on either side. The
    `ceiling` is rejax's `own_evaluation` time over the example's training steps alone
    (`update_only`): the ratio the example would reach if its rollouts and evaluations
    were free.
    """
    config = quick_preset(ppo, env_id, args.quick)
    run = {"total_steps": config.total_steps, "evals": config.evals}
    run["eval_episodes"] = config.eval_episodes
    level, policy = args.xla_opt_level, args.eval_policy
    fits = {
        name: (
            example_fit(ppo, run, ours, level, policy, env_id),
            rejax_fit(ppo, run, theirs, level, policy, env_id),
        )
        for name, (ours, theirs) in SPEED_PAIRS.items()
    }
    fits["ceiling"] = (update_only(ppo, run_config(ppo, run, env_id), level),)
    firsts = {name: [timed(fit, 0) for fit in pair] for name, pair in fits.items()}
    walls: dict = {name: [[] for _ in pair] for name, pair in fits.items()}
    for repeat in range(args.repeats):
        for name, pair in fits.items():
            for side in range(len(pair)) if repeat % 2 == 0 else reversed(range(len(pair))):
                walls[name][side].append(timed(pair[side], 1 + repeat)[0])
    steps = config.total_steps
    out = {}
    for name in SPEED_PAIRS:
        (ours, theirs), (first_ours, first_theirs) = walls[name], firsts[name]
        prefix = "" if name == "own_evaluation" else f"{name}_"
        out[f"{prefix}example_steps_per_s"] = [steps / w for w in ours]
        out[f"{prefix}rejax_steps_per_s"] = [steps / w for w in theirs]
        out[f"{prefix}ratios"] = [b / a for a, b in zip(ours, theirs, strict=True)]
        if not prefix:
            out["example_compile_s"] = max(first_ours[0] - statistics.median(ours), 0.0)
            out["rejax_compile_s"] = max(first_theirs[0] - statistics.median(theirs), 0.0)
    rejax_walls = walls["own_evaluation"][1]
    out["ceiling_ratios"] = [b / a for a, b in zip(walls["ceiling"][0], rejax_walls, strict=True)]
    return out


def envs_child(env_id: str, args) -> None:
    """Measure one environment in this process (pinned to one core); print `RESULT {json}`."""
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    ppo = load_example()
    result = {
        "speed": speed_child(ppo, env_id, args),
        "learning": learning_child(ppo, env_id, args),
    }
    print("RESULT " + json.dumps(result))


PARTS_UPDATES = 20


def parts_child(env_id: str, args) -> None:
    """Milliseconds per update of each piece of both sides' updates, the preset's settings,
    one core (each piece chained `PARTS_UPDATES` times in one `lax.scan`, so that dispatch
    does not count); print `RESULT {json}`."""
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    import jax

    ppo = load_example()
    config = quick_preset(ppo, env_id, args.quick)
    module, _ = ppo.build(config)
    algo = rejax_algo(config, config.total_steps, config.total_steps, lambda *_: {})

    def rollout_and_data(state):
        after, rollout = ppo.collect_rollout(module, state)
        data = ppo.training_data(module.network, module.hparams, state.params, rollout)
        # Keep the training data alive (XLA drops what nothing reads).
        return after.replace(obs=after.obs + 1e-9 * data["advantages"].sum())

    def whole_update(state):
        state, batch = module.get_batch(state, 0)
        return module.training_step(0, state, batch)[0]

    ours, theirs = module.init_train_state(jax.random.key(0)), algo.init_state(jax.random.key(0))
    pieces = {
        "example_rollout": (lambda s: ppo.collect_rollout(module, s)[0], ours),
        "example_rollout_and_advantages": (rollout_and_data, ours),
        "example_update": (whole_update, ours),
        "rejax_rollout": (lambda s: algo.collect_trajectories(s)[0], theirs),
        "rejax_update": (algo.train_iteration, theirs),
    }
    options = {"xla_backend_optimization_level": args.xla_opt_level}
    out = {}
    for name, (piece, state) in pieces.items():
        chained = jax.jit(
            lambda s, piece=piece: jax.lax.scan(
                lambda c, _: (piece(c), None), s, None, PARTS_UPDATES
            )[0],
            compiler_options=options,
        )
        jax.block_until_ready(chained(state))
        times = []
        for _ in range(max(3, args.repeats)):
            start = time.perf_counter()
            jax.block_until_ready(chained(state))
            times.append((time.perf_counter() - start) * 1e3 / PARTS_UPDATES)
        out[name] = statistics.median(times)
    print("RESULT " + json.dumps(out))


def parts_report(args: argparse.Namespace, load: float) -> None:
    """Where an update's time goes, example and rejax, per environment (no record)."""
    header = (
        "environment",
        "example: rollout",
        "example: advantages",
        "example: gradient steps",
        "rejax: rollout",
        "rejax: advantages and gradient steps",
        "example / rejax, whole update",
    )
    rows = []
    for env_id in args.parts:
        command = [
            sys.executable,
            __file__,
            "--child-parts",
            env_id,
            "--repeats",
            str(args.repeats),
        ]
        command += ["--xla-opt-level", str(args.xla_opt_level)] + (
            ["--quick"] if args.quick else []
        )
        ms = child_result(command, 1, args.timeout, env_id)
        rows.append(
            (
                env_id,
                f"{ms['example_rollout']:.3f}",
                f"{ms['example_rollout_and_advantages'] - ms['example_rollout']:.3f}",
                f"{ms['example_update'] - ms['example_rollout_and_advantages']:.3f}",
                f"{ms['rejax_rollout']:.3f}",
                f"{ms['rejax_update'] - ms['rejax_rollout']:.3f}",
                f"{ms['rejax_update'] / ms['example_update']:.3f}x",
            )
        )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    print(
        f"\nms per update (median of {max(3, args.repeats)} runs of {PARTS_UPDATES} chained "
        f"updates), one core, load average {load:.1f} at the start\n\n" + "\n".join(lines)
    )


def per_step_randomness(ppo):
    """The example's PPO with the textbook rollout: keys split and episodes reset at each step."""
    import jax

    class PerStepRandomness(ppo.PPO):
        def get_batch(self, train_state, batch_idx):
            env, env_params, stats = self.env, self.env_params, train_state.obs_stats
            space = env.action_space(env_params)
            step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

            def env_step(carry, _):
                env_state, obs, rng = carry
                rng, action_key, step_key = jax.random.split(rng, 3)
                pi, _ = self.network.apply(train_state.params, self.observe(stats, obs))
                shape = (self.num_envs, self.network.action_dim)
                action = pi.sample(type(pi).noise(action_key, shape))
                keys = jax.random.split(step_key, self.num_envs)
                next_obs, env_state, reward, terminated, truncated, info = step(
                    keys, env_state, ppo.to_env_action(space, action), env_params
                )
                final_obs = ppo.flat(info["final_observation"])
                transition = ppo.Rollout(
                    obs, action, reward, final_obs, terminated, terminated | truncated
                )
                return (env_state, ppo.flat(next_obs), rng), transition

            rng, key = jax.random.split(train_state.rng)
            carry = (train_state.env_state, train_state.obs, key)
            (env_state, obs, _), raw = jax.lax.scan(env_step, carry, None, self.num_steps)
            rollout = raw.replace(
                obs=self.observe(stats, raw.obs), next_obs=self.observe(stats, raw.next_obs)
            )
            if self.normalize_observations:
                stats = ppo.update_stats(stats, raw.obs)
            return train_state.replace(
                env_state=env_state,
                obs=obs,
                rng=rng,
                obs_stats=stats,
                env_steps=train_state.env_steps + self.batch_size,
            ), rollout

    return PerStepRandomness


def per_leaf_adam(ppo):
    """The example's PPO with Adam updating each weight matrix apart (no `optax.flatten`)."""
    import optax

    class PerLeafAdam(ppo.PPO):
        def optimizer(self) -> optax.GradientTransformation:
            hp = self.hparams
            clip = optax.clip_by_global_norm(hp.max_grad_norm)
            return optax.chain(clip, optax.adam(hp.learning_rate, eps=1e-5))

    return PerLeafAdam


def tricks_child(args) -> None:
    """Each speed trick of the example taken out in turn, one core; print `RESULT {json}`."""
    import dataclasses

    import jax

    from gallery_lib import example_definitions

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    ppo = load_example()
    # A second copy of the page's definitions, whose update shuffles with jax's permutation.
    permuting = example_definitions(ROOT / "examples" / "plot_jax_ppo.py", "ppo_permutation")
    permuting.shuffled_indices = lambda key, n: jax.random.permutation(key, n)
    run = QUICK if args.quick else FULL
    config = run_config(ppo, run)

    def fit_of(definitions, cls, level: int):
        module, trainer = definitions.build(dataclasses.replace(config, xla_opt_level=level))
        module = cls.create(module.env, module.env_params, config, config.eval_episodes)
        return lambda seed: trainer.fit(module, jax.random.key(seed))[1]

    level = args.xla_opt_level
    fits = {
        "example": fit_of(ppo, ppo.PPO, level),
        "presampled": fit_of(ppo, per_step_randomness(ppo), level),
        "sort_shuffle": fit_of(permuting, permuting.PPO, level),
        "flat_adam": fit_of(ppo, per_leaf_adam(ppo), level),
        "opt2": fit_of(ppo, ppo.PPO, 3),
    }
    firsts = {name: timed(fit, 0)[0] for name, fit in fits.items()}
    walls: dict[str, list[float]] = {name: [] for name in fits}
    for repeat in range(args.repeats):
        names = list(fits) if repeat % 2 == 0 else list(reversed(fits))
        for name in names:
            walls[name].append(timed(fits[name], 1 + repeat)[0])
    out = {"walls": walls, "compile": {n: firsts[n] - statistics.median(walls[n]) for n in fits}}
    print("RESULT " + json.dumps(out))


def tricks_report(args: argparse.Namespace, load: float) -> None:
    """What each speed trick buys: the example's speed with it over without it."""
    command = [sys.executable, __file__, "--child-tricks", "--repeats", str(args.repeats)]
    command += ["--xla-opt-level", str(args.xla_opt_level)] + (["--quick"] if args.quick else [])
    result = child_result(command, 1, args.timeout, "tricks")
    walls, compile_s = result["walls"], result["compile"]
    labels = {
        "presampled": "rollout randomness drawn before the loop (against keys split per step)",
        "sort_shuffle": "sort-based shuffle (against jax.random.permutation)",
        "flat_adam": "Adam over one flat vector (against one update per weight matrix)",
        "opt2": f"LLVM -O{args.xla_opt_level} (against -O3)",
    }
    lines = [
        "| trick | example / without it, steps/s, median (range) | compile (s), with / without |",
        "|---|---|---|",
    ]
    numbers = {}
    for name, label in labels.items():
        # Each repeat's ratio: the same run time of the example over the variant's.
        ratios = [w / e for e, w in zip(walls["example"], walls[name], strict=True)]
        median = statistics.median(ratios)
        lines.append(
            f"| {label} | {median:.3f}x ({min(ratios):.3f}-{max(ratios):.3f}) | "
            f"{compile_s['example']:.1f} / {compile_s[name]:.1f} |"
        )
        numbers.update({f"{name}_ratio": median, f"{name}_ratio_min": min(ratios)})
        numbers[f"{name}_ratio_max"] = max(ratios)
    numbers.update(
        opt2_compile_s=compile_s["example"], opt3_compile_s=compile_s["opt2"], repeats=args.repeats
    )
    table = "\n".join(lines)
    print(f"PPO CartPole-v1, one seed, one core, {args.repeats} repeats\n\n{table}")
    path = save_results(Path(args.results), numbers, {"tricks": table}, load)
    print(f"\nwritten to {path}")


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):,.1f} ± {statistics.pstdev(values):,.1f}"


def envs_report(args: argparse.Namespace, load: float) -> None:
    """The per-environment table: learning (several seeds) and speed (one seed, one core)."""
    rows, numbers = [], {}
    for env_id in args.envs:
        command = [sys.executable, __file__, "--child-env", env_id, "--repeats", str(args.repeats)]
        command += ["--seeds", str(args.seeds), "--final-episodes", str(args.final_episodes)]
        command += ["--xla-opt-level", str(args.xla_opt_level), "--eval-policy", args.eval_policy]
        command += ["--quick"] if args.quick else []
        result = child_result(command, 1, args.timeout, env_id)
        learning, speed = result["learning"], result["speed"]
        ours, theirs = learning["example_final"], learning["rejax_final"]
        ratios = speed["ratios"]
        ahead = statistics.mean(ours) >= statistics.mean(theirs)
        within = learning["example_steps"] <= learning["rejax_steps"]
        rows.append(
            (
                env_id,
                mean_std(ours),
                mean_std(theirs),
                f"{learning['example_steps']:,} / {learning['rejax_steps']:,}",
                " / ".join(
                    "-" if v is None else f"{v:,}"
                    for v in (learning["example_to_goal"], learning["rejax_to_goal"])
                )
                + f" (goal {learning['goal']:g})",
                f"{statistics.median(speed['example_steps_per_s']):,.0f} / "
                f"{statistics.median(speed['rejax_steps_per_s']):,.0f}",
                spread_ratio(ratios),
                spread_ratio(speed["train_only_ratios"]),
                spread_ratio(speed["ceiling_ratios"]),
                f"{speed['example_compile_s']:.1f} / {speed['rejax_compile_s']:.1f}",
                "yes" if ahead and within else "no",
            )
        )
        short = SHORT_NAMES.get(env_id, env_id.replace("-", "_").lower())
        numbers.update(
            {
                f"{short}_example_return": statistics.mean(ours),
                f"{short}_example_return_std": statistics.pstdev(ours),
                f"{short}_rejax_return": statistics.mean(theirs),
                f"{short}_rejax_return_std": statistics.pstdev(theirs),
                f"{short}_example_steps": learning["example_steps"],
                f"{short}_rejax_steps": learning["rejax_steps"],
                f"{short}_speed_ratio": statistics.median(ratios),
                f"{short}_speed_ratio_min": min(ratios),
                f"{short}_speed_ratio_max": max(ratios),
                f"{short}_train_only_ratio": statistics.median(speed["train_only_ratios"]),
                f"{short}_ceiling_ratio": statistics.median(speed["ceiling_ratios"]),
                f"{short}_example_compile_s": speed["example_compile_s"],
                f"{short}_rejax_compile_s": speed["rejax_compile_s"],
            }
        )
        print(f"{env_id}: done", flush=True)
    header = (
        "environment",
        f"final return, example (mean ± std, {args.seeds} seeds)",
        "final return, rejax",
        "env steps trained, example / rejax",
        "env steps to goal, example / rejax",
        "env steps/s (one seed), example / rejax",
        "example / rejax steps/s, median (range)",
        "the same, no evaluation",
        "ceiling: rejax / example's updates alone",
        "compile (s), example / rejax",
        "return >= rejax's within its budget",
    )
    table = "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        + ["| " + " | ".join(row) + " |" for row in rows]
    )
    print(
        f"\nPPO presets against rejax 0.1.3's published settings; {args.repeats} repeats of the "
        f"speed runs, {args.final_episodes} final {args.eval_policy} episodes per seed\n\n{table}"
    )
    least = min(numbers[f"{SHORT_NAMES.get(e, e)}_speed_ratio"] for e in args.envs)
    print(
        f"\nlowest median speed ratio: {least:.3f}x; target >= {TARGET_RATIO}x "
        f"{'met' if least >= TARGET_RATIO else 'missed'} (unrounded {least!r})"
    )
    numbers.update(repeats=args.repeats, seeds=args.seeds, final_episodes=args.final_episodes)
    path = save_results(Path(args.results), numbers, {"envs": table}, load)
    print(f"\nwritten to {path}")


def spread_ratio(ratios: list[float]) -> str:
    """`1.234x (1.100-1.300)`: the median ratio and its range."""
    return f"{statistics.median(ratios):.3f}x ({min(ratios):.3f}-{max(ratios):.3f})"


def spread(values: list[float], digits: int = 0) -> str:
    """`median (min-max)` of `values`, with thousands separators."""
    return (
        f"{statistics.median(values):,.{digits}f} "
        f"({min(values):,.{digits}f}-{max(values):,.{digits}f})"
    )


def pair_ratios(pair: list[dict]) -> list[float]:
    """Example / rejax env steps per second, within each repeat."""
    ours, theirs = pair[0]["steps_per_s"], pair[1]["steps_per_s"]
    return [a / b for a, b in zip(ours, theirs, strict=True)]


def table(rows: list[tuple[str, dict]]) -> str:
    """The markdown table of some contenders."""
    header = (
        "run",
        "training env steps/s, median (range)",
        "evaluation env steps per run",
        "cores used",
        "compile (s)",
        "time to 475, compile incl. (s)",
        "runs solved",
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, r in rows:
        solve = f"{r['time_to_solve_s']:.1f}" if r["time_to_solve_s"] is not None else "-"
        cells = (
            name,
            spread(r["steps_per_s"]),
            "not counted" if r["eval_steps_median"] is None else f"{r['eval_steps_median']:,.0f}",
            f"{r['cores_used']:.2f}",
            f"{r['compile_s']:.1f}",
            solve,
            f"{r['solved']}/{r['runs']}",
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compile_breakdown(repeats: int, run: dict) -> None:
    """Where one seed's compile time goes, and what XLA's optimization level changes (1 core)."""
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    import jax

    from gallery_lib import JaxTrainer

    ppo = load_example()
    module, built = ppo.build(run_config(ppo, run))
    trainer = JaxTrainer(
        built.max_epochs, built.training_steps_per_epoch, enable_progress_bar=False
    )
    # A trainer without host callbacks may run inside jit: the same loop, staged step by step.
    program = jax.jit(lambda rng: trainer.fit(module, rng)[1])
    rng = jax.random.key(0)
    start = time.perf_counter()
    lowered = program.trace(rng).lower()
    print(f"tracing + lowering to StableHLO: {time.perf_counter() - start:.2f} s (one core)")
    print("| xla_backend_optimization_level | XLA compile (s) | compiled run (s, median) |")
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
        print(f"| {level}{default} | {compile_s:.2f} | {statistics.median(runs):.3f} |")


def report(args: argparse.Namespace, run: dict, load: float) -> None:
    """Run the measurements, print the tables and write the results file."""
    # Measurements run one after the other; `--quick` measures nothing, so it runs both at once.
    with ThreadPoolExecutor(max_workers=2 if args.quick else 1) as pool:
        single_run = pool.submit(run_child, "single", args, 1)
        many_run = pool.submit(run_child, "many", args, 2)
        single = single_run.result()
        try:
            many = many_run.result()["many"][0]
        except (SystemExit, subprocess.TimeoutExpired) as error:
            print(f"many-seed run on 2 devices gave no result: {str(error)[:300]}")
            many = None
    print(
        f"PPO CartPole-v1, {run['total_steps']:,} training env steps per seed, "
        f"{run['evals']} evaluations of {run['eval_episodes']} episodes "
        f"({args.eval_policy} policy on equal terms); {args.repeats} repeats\n"
    )
    level = f"xla_backend_optimization_level={args.xla_opt_level} on both"
    tables, numbers = {}, {}
    for kind, title in PAIRS.items():
        ours, theirs = single[kind]
        if kind == "own":
            names = (
                f"example as published (level {args.xla_opt_level}, greedy evaluation)",
                "rejax 0.1.3 as published (XLA's default level, sampled evaluation)",
            )
        else:
            names = ("example running rejax's algorithm", f"rejax 0.1.3 ({level})")
        tables[kind] = table([(names[0], ours), (names[1], theirs)])
        ratios = pair_ratios(single[kind])
        median = statistics.median(ratios)
        print(f"## {title}\n\n{tables[kind]}\n")
        print(
            f"example / rejax, training env steps/s: {median:.3f}x "
            f"(range {min(ratios):.3f}-{max(ratios):.3f} over {len(ratios)} repeats)\n"
        )
        numbers.update(
            {
                f"{kind}_ratio": median,
                f"{kind}_ratio_min": min(ratios),
                f"{kind}_ratio_max": max(ratios),
                f"{kind}_example_steps_per_s": ours["steps_per_s_median"],
                f"{kind}_rejax_steps_per_s": theirs["steps_per_s_median"],
                f"{kind}_example_compile_s": ours["compile_s"],
                f"{kind}_rejax_compile_s": theirs["compile_s"],
                f"{kind}_example_time_to_solve_s": ours["time_to_solve_s"],
                f"{kind}_rejax_time_to_solve_s": theirs["time_to_solve_s"],
                f"{kind}_eval_steps_per_run": ours["eval_steps_median"],
            }
        )
    ratio = numbers["equal_ratio"]
    verdict = "ahead of" if ratio > 1 else "behind"
    print(
        f"one seed, equal terms: the example is {verdict} rejax by {abs(ratio - 1):.1%} "
        f"({ratio:.3f}x); target >= {TARGET_RATIO}x "
        f"{'met' if ratio >= TARGET_RATIO else 'missed'} (unrounded {ratio!r})"
    )
    if many:
        scale = many["steps_per_s_median"] / numbers["own_example_steps_per_s"]
        tables["many"] = table([(f"example, {run['seeds']} seeds on 2 devices", many)])
        numbers.update(many_seeds_scale=scale, many_seeds_steps_per_s=many["steps_per_s_median"])
        print(f"\n{tables['many']}\n")
        print(
            f"{run['seeds']} seeds on 2 devices / one seed (example as published): {scale:.3f}x; "
            f"target >= {TARGET_SCALE}x {'met' if scale >= TARGET_SCALE else 'missed'}"
        )
    solve = numbers["own_example_time_to_solve_s"]
    if solve is not None:
        print(
            f"time to 475, one seed, example as published, compile included: {solve:.2f} s; "
            f"target <= {TARGET_SOLVE_S} s {'met' if solve <= TARGET_SOLVE_S else 'missed'}"
        )
    numbers.update(
        repeats=args.repeats,
        total_steps=run["total_steps"],
        xla_opt_level=args.xla_opt_level,
        target_ratio=TARGET_RATIO,
    )
    path = save_results(Path(args.results), numbers, tables, load)
    print(f"\nwritten to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="compiled runs per contender")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per subprocess")
    parser.add_argument(
        "--xla-opt-level",
        type=int,
        choices=range(4),
        default=2,
        help="LLVM optimization level of both sides' compiled loop on equal terms (default 2, "
        "the example's; 3 is XLA's default)",
    )
    parser.add_argument(
        "--eval-policy",
        choices=("greedy", "sampled"),
        default="greedy",
        help="the policy both sides evaluate on equal terms",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"tiny settings that only check the script runs ({QUICK})",
    )
    parser.add_argument(
        "--results",
        default=str(RESULTS / "ppo.json"),
        help="where to write the JSON record (default benchmarks/results/ppo.json)",
    )
    parser.add_argument(
        "--compile-breakdown",
        action="store_true",
        help="only time tracing, lowering and XLA's compile at optimization levels 3, 2, 1",
    )
    parser.add_argument(
        "--envs",
        nargs="+",
        metavar="ENV_ID",
        help="instead: the per-environment table, each preset against rejax's published "
        "settings (e.g. --envs " + " ".join(REJAX_CONFIGS) + ")",
    )
    parser.add_argument(
        "--seeds", type=int, default=4, help="--envs: seeds trained at once for the returns"
    )
    parser.add_argument(
        "--final-episodes",
        type=int,
        default=64,
        help="--envs: greedy episodes per seed that measure the final return",
    )
    parser.add_argument("--child", choices=["single", "many"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--tricks",
        action="store_true",
        help="instead: take each of the example's speed tricks out in turn (CartPole-v1)",
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        metavar="ENV_ID",
        help="instead: milliseconds per update of the rollout, the advantages and the gradient "
        "steps, the example's and rejax's, with each preset (no record written)",
    )
    parser.add_argument("--child-env", help=argparse.SUPPRESS)
    parser.add_argument("--child-parts", help=argparse.SUPPRESS)
    parser.add_argument("--child-tricks", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    run = QUICK if args.quick else FULL
    if args.results == parser.get_default("results"):
        if args.envs:
            args.results = str(RESULTS / "ppo_envs.json")
        elif args.tricks:
            args.results = str(RESULTS / "ppo_tricks.json")
    if args.compile_breakdown:
        compile_breakdown(args.repeats, run)
    elif args.child_env:
        envs_child(args.child_env, args)
    elif args.child_parts:
        parts_child(args.child_parts, args)
    elif args.parts:
        parts_report(args, os.getloadavg()[0])
    elif args.child_tricks:
        tricks_child(args)
    elif args.tricks:
        tricks_report(args, os.getloadavg()[0])
    elif args.child:
        child(args.child, run, args.repeats, args.xla_opt_level, args.eval_policy)
    elif args.envs:
        envs_report(args, os.getloadavg()[0])
    else:
        report(args, run, os.getloadavg()[0])


if __name__ == "__main__":
    main()
