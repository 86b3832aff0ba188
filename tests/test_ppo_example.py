"""The PPO example: its parts against hand computations, its presets, its checkpoints.

The example is run once in quick mode (a module fixture); the tests then use its functions.
"""

from __future__ import annotations

import dataclasses
import os
import runpy
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments.classic_control.pendulum import Pendulum
from support import ROOT, Interrupt

from gallery_lib import CheckpointCallback, JaxTrainer
from gallery_lib.testing import assert_trees_equal

EXAMPLE = ROOT / "examples" / "plot_jax_ppo.py"


@pytest.fixture(scope="module")
def ppo() -> dict:
    """The namespace of the example, run in quick mode (tiny budgets)."""
    import matplotlib

    matplotlib.use("Agg")
    previous = os.environ.get("GALLERY_QUICK")
    os.environ["GALLERY_QUICK"] = "1"
    try:
        namespace = runpy.run_path(str(EXAMPLE), run_name="ppo_example")
    finally:
        if previous is None:
            del os.environ["GALLERY_QUICK"]
        else:
            os.environ["GALLERY_QUICK"] = previous
    import matplotlib.pyplot as plt

    plt.close("all")
    return namespace


def make_module(ppo: dict, env_id: str = "CartPole-v1", eval_episodes: int = 4, **settings):
    """The example's module for `env_id` with its preset, changed by `settings`."""
    config = ppo["with_preset"](ppo["Config"](env_id=env_id), keep=set())
    config = dataclasses.replace(config, **settings)
    env, env_params = ppo["make_env"](env_id)
    return ppo["PPO"].create(env, env_params, config, eval_episodes=eval_episodes)


def test_the_page_runs_and_reports(ppo: dict) -> None:
    assert ppo["curves"].shape == (2, 4)
    assert np.isfinite(ppo["curves"]).all()
    assert ppo["compile_time"] > 0 and ppo["run_time"] > 0
    assert list(ppo["results"].index) == ["Pendulum-v1"]
    assert np.isfinite(ppo["results"].loc["Pendulum-v1", "final return"])


def test_gae_matches_a_python_loop(ppo: dict) -> None:
    rewards = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    values = np.array([0.5, -1.0, 2.0, 0.0, 1.5])
    next_values = np.array([3.0, 1.0, -2.0, 4.0, 0.25])
    terminated, done = np.array([0, 1, 0, 0, 0]), np.array([0, 1, 0, 1, 0])
    gamma, lam = 0.9, 0.8
    expected, next_advantage = [], 0.0
    for t in reversed(range(5)):
        delta = rewards[t] + gamma * next_values[t] * (1 - terminated[t]) - values[t]
        next_advantage = delta + gamma * lam * (1 - done[t]) * next_advantage
        expected.insert(0, next_advantage)
    got = ppo["gae"](
        *(jnp.asarray(x, jnp.float32) for x in (rewards, values, next_values, terminated, done)),
        gamma,
        lam,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_running_stats_match_numpy_over_uneven_batches(ppo: dict) -> None:
    data = np.random.default_rng(0).normal(3.0, [5.0, 0.1], size=(37, 2)).astype(np.float32)
    stats = ppo["RunningStats"].zeros(2)
    for part in np.split(data, [1, 11, 30]):
        stats = ppo["update_stats"](stats, jnp.asarray(part))
    np.testing.assert_allclose(stats.mean, data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.var, data.var(0), rtol=1e-4)
    assert float(stats.count) == 37


def test_shuffled_indices_is_a_permutation(ppo: dict) -> None:
    for n in (1, 7, 500, 5000, 10_000, 70_000):
        order = np.asarray(ppo["shuffled_indices"](jax.random.key(n), n))
        assert sorted(order.tolist()) == list(range(n))
    first = ppo["shuffled_indices"](jax.random.key(0), 500)
    second = ppo["shuffled_indices"](jax.random.key(1), 500)
    assert not np.array_equal(first, second)


def test_shuffled_indices_are_uniform(ppo: dict) -> None:
    # Three items: each of the 6 orders about equally often (chi-square, 5 degrees of freedom,
    # 20.5 is its 0.999 quantile). 10,000 items (three rounds of sorting): where an item lands
    # does not depend on where it started (a round that kept tied items in index order, or
    # too few rounds, would correlate them).
    keys = jax.random.split(jax.random.key(0), 6000)
    orders = np.asarray(jax.vmap(lambda key: ppo["shuffled_indices"](key, 3))(keys))
    _, counts = np.unique(orders, axis=0, return_counts=True)
    assert len(counts) == 6
    assert ((counts - 1000) ** 2 / 1000).sum() < 20.5
    keys = jax.random.split(jax.random.key(1), 200)
    big = np.asarray(jax.vmap(lambda key: ppo["shuffled_indices"](key, 10_000))(keys))
    positions = np.argsort(big, axis=1)  # where each item landed
    items = np.broadcast_to(np.arange(10_000), positions.shape)
    assert abs(np.corrcoef(items.ravel(), positions.ravel())[0, 1]) < 0.01
    assert abs(positions[:, 0].mean() - 4999.5) < 3 * 2887 / np.sqrt(200)


def test_same_seed_same_curve_and_vmapped_seeds_equal_separate_runs(ppo: dict) -> None:
    module = make_module(ppo)
    trainer = JaxTrainer(max_epochs=3, training_steps_per_epoch=2, enable_progress_bar=False)
    keys = jax.random.split(jax.random.key(3), 2)
    state_a, curve_a = trainer.fit(module, keys[0])
    _, curve_again = trainer.fit(module, keys[0])
    state_b, curve_b = trainer.fit(module, keys[1])
    np.testing.assert_array_equal(curve_a["eval_return"], curve_again["eval_return"])
    many_state, many_curves = trainer.fit_many(module, keys)
    for i, (state, curve) in enumerate([(state_a, curve_a), (state_b, curve_b)]):
        np.testing.assert_allclose(many_curves["eval_return"][i], curve["eval_return"])
        for single, batched in zip(
            jax.tree.leaves(state.params), jax.tree.leaves(many_state.params), strict=True
        ):
            np.testing.assert_allclose(batched[i], single, rtol=2e-4, atol=2e-6)


# ---------------------------------------------------------------------------------- presets


def test_a_preset_fills_the_settings_of_its_environment(ppo: dict) -> None:
    config = ppo["load_config"](["--env-id", "Pendulum-v1"], quick={})
    assert (config.num_envs, config.num_steps, config.num_minibatches) == (100, 100, 10)
    assert config.activation == "swish" and config.normalize_observations
    assert (config.learning_rate, config.gamma, config.ent_coef) == (1e-3, 0.995, 0.0)
    cartpole = ppo["load_config"]([], quick={})
    assert (cartpole.env_id, cartpole.solved_return, cartpole.num_envs) == ("CartPole-v1", 475, 5)


def test_flags_override_the_preset(ppo: dict) -> None:
    args = ["--env-id", "Pendulum-v1", "--num-envs", "8", "--learning_rate=0.01"]
    config = ppo["load_config"]([*args, "--no-normalize-observations"], quick={})
    assert (config.num_envs, config.learning_rate, config.normalize_observations) == (
        8,
        0.01,
        False,
    )
    assert config.num_steps == 100 and config.activation == "swish"  # the rest: the preset's
    # A flag equal to the generic default still wins over the preset.
    assert (
        ppo["load_config"](["--env-id", "Pendulum-v1", "--gamma", "0.99"], quick={}).gamma == 0.99
    )


def test_quick_mode_keeps_its_budget_over_the_preset(
    ppo: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GALLERY_QUICK", "1")
    config = ppo["load_config"](["--env-id", "Pendulum-v1"], quick={"total_steps": 123})
    assert config.total_steps == 123 and config.num_envs == 100


def test_an_environment_without_preset_runs_the_generic_defaults(
    ppo: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ppo["load_config"](["--env-id", "Reacher-misc"], quick={})
    assert "Reacher-misc has no preset" in capsys.readouterr().out
    generic = ppo["Config"]()
    assert dataclasses.replace(config, env_id=generic.env_id) == generic


def test_unknown_environment_lists_the_available_ones() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), GALLERY_QUICK="1")
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--env-id", "NoSuchEnv-v0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "Unknown environment id 'NoSuchEnv-v0'" in result.stderr
    assert "CartPole-v1" in result.stderr and "Pendulum-v1" in result.stderr


# ------------------------------------------------------------------ observation normalization


def test_observation_statistics_are_checkpointed_and_resumed_bit_identically(
    ppo: dict, tmp_path
) -> None:
    module = make_module(ppo, "Acrobot-v1", num_envs=2, num_steps=8, num_minibatches=2)
    assert module.normalize_observations

    def trainer(*callbacks):
        return JaxTrainer(4, 2, callbacks=list(callbacks), enable_progress_bar=False)

    expected = trainer().fit(module, jax.random.key(5))
    with pytest.raises(Exception, match="interrupted at epoch 2"):
        trainer(CheckpointCallback(tmp_path), Interrupt(2)).fit(module, jax.random.key(5))
    resumed_trainer = trainer(CheckpointCallback(tmp_path))
    resumed = resumed_trainer.fit(module, jax.random.key(5), ckpt_path=str(tmp_path))
    assert resumed_trainer.start_epoch == 2
    assert_trees_equal(resumed, expected)
    stats = expected[0].obs_stats
    assert float(stats.count) == 4 * 2 * 2 * 8  # every observation the policy acted on
    assert np.all(np.asarray(stats.var) != 1.0)  # the statistics moved from their start


def test_each_seed_of_fit_many_keeps_its_own_statistics(ppo: dict) -> None:
    module = make_module(ppo, "Acrobot-v1", num_envs=2, num_steps=8, num_minibatches=2)
    trainer = JaxTrainer(1, 2, enable_progress_bar=False)
    keys = jax.random.split(jax.random.key(0), 2)
    many = trainer.fit_many(module, keys)[0].obs_stats
    for i, key in enumerate(keys):
        single = trainer.fit(module, key)[0].obs_stats
        np.testing.assert_allclose(many.mean[i], single.mean, rtol=1e-5)
    assert not np.allclose(many.mean[0], many.mean[1])


# ----------------------------------------------------------------------------- bounded actions


class ActionEcho(Pendulum):
    """Pendulum whose reward is the largest absolute action it was given: a probe."""

    def step_env(self, key, state, action, params):
        obs, state, _, done, info = super().step_env(key, state, action, params)
        return obs, state, jnp.max(jnp.abs(action)), done, info


def test_bounded_actions_never_leave_the_action_space(ppo: dict) -> None:
    config = ppo["with_preset"](ppo["Config"](env_id="Pendulum-v1"), keep=set())
    config = dataclasses.replace(config, num_envs=4, num_steps=50, num_minibatches=2)
    env = ActionEcho()
    module = ppo["PPO"].create(env, env.default_params, config, eval_episodes=3)
    state = module.init_train_state(jax.random.key(0))
    # A policy far wider and further off-centre than the torque limit of 2.
    params = jax.tree_util.tree_map_with_path(
        lambda path, leaf: leaf + 5.0 if "log_std" in str(path) or "bias" in str(path) else leaf,
        state.params,
    )
    state = state.replace(params=params)
    state, rollout = ppo["collect_rollout"](module, state)
    assert float(jnp.abs(rollout.action).max()) > 10  # what the policy sampled
    received = np.asarray(rollout.reward)  # what the environment got
    assert received.max() <= 2.0 and np.isclose(received.max(), 2.0)
    greedy = ppo["evaluate_greedy"](module, state)
    assert float(greedy["eval_return"]) <= 2.0 * env.default_params.max_steps_in_episode
    space = env.action_space(env.default_params)
    for action in (jnp.array([[-1e6], [1e6], [0.5]]), jnp.array([[jnp.inf], [-jnp.inf], [2.0]])):
        clipped = ppo["to_env_action"](space, action)
        assert clipped.shape == (3, 1) and bool(jnp.all(jnp.abs(clipped) <= 2.0))


def test_continuous_actions_train(ppo: dict) -> None:
    module = make_module(
        ppo, "MountainCarContinuous-v0", num_envs=2, num_steps=8, num_minibatches=2
    )
    assert not module.network.discrete
    trainer = JaxTrainer(max_epochs=1, training_steps_per_epoch=2, enable_progress_bar=False)
    state, metrics = trainer.fit(module, jax.random.key(0))
    assert np.isfinite(metrics["eval_return"]).all()
    assert int(state.env_steps) == 2 * 2 * 8


@pytest.mark.slow
def test_learns_cartpole(ppo: dict) -> None:
    """The default hyper-parameters reach a mean evaluation return of 475 within 100k steps."""
    module = make_module(ppo, eval_episodes=16)
    trainer = JaxTrainer(max_epochs=20, training_steps_per_epoch=10, enable_progress_bar=False)
    _, metrics = trainer.fit(module, jax.random.key(0))
    returns = np.asarray(metrics["eval_return"])
    assert returns.max() >= 475, returns
    assert returns[-5:].mean() >= 400, returns


def test_the_cost_section_shows_cold_and_warm_compile(ppo: dict, compile_cache) -> None:
    assert ppo["cold_text"].endswith(("s", "(jax's record)"))
    if compile_cache is None:
        assert ppo["warm_text"] == "cache off"
    else:
        assert ppo["warm_text"].endswith(" s")
