"""The PPO example's algorithm: it learns CartPole, deterministically, and vmap changes nothing.

The example is run once in quick mode (a module fixture); the tests then use its classes.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from support import ROOT

from gallery_lib import JaxTrainer

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


def make_module(ppo: dict, env_id: str = "CartPole-v1", **kwargs):
    env, env_params = ppo["make_env"](env_id)
    return ppo["PPO"].create(env, env_params, **kwargs)


def test_the_page_runs_and_reports(ppo: dict) -> None:
    assert ppo["curves"].shape == (2, 4)
    assert np.isfinite(ppo["curves"]).all()
    assert ppo["compile_time"] > 0 and ppo["run_time"] > 0


def test_gae_matches_a_python_loop(ppo: dict) -> None:
    module = make_module(ppo, num_envs=1, num_steps=4, num_minibatches=2)
    rollout = ppo["Rollout"](
        obs=jnp.zeros((4, 1, 4)),
        action=jnp.zeros((4, 1), jnp.int32),
        reward=jnp.array([[1.0], [2.0], [3.0], [4.0]]),
        next_obs=jnp.zeros((4, 1, 4)),
        terminated=jnp.array([[False], [True], [False], [False]]),
        done=jnp.array([[False], [True], [False], [True]]),
    )
    params = module.init_train_state(jax.random.key(0)).params
    data = module.advantages(params, rollout)
    # All observations are equal, so every value is the same number v.
    v = float(data["value"][0, 0])
    gamma, lam = 0.99, 0.95
    terminated, done = [0, 1, 0, 0], [0, 1, 0, 1]
    rewards = [1.0, 2.0, 3.0, 4.0]
    expected, next_advantage = [], 0.0
    for t in reversed(range(4)):
        delta = rewards[t] + gamma * v * (1 - terminated[t]) - v
        next_advantage = delta + gamma * lam * (1 - done[t]) * next_advantage
        expected.insert(0, next_advantage)
    np.testing.assert_allclose(data["advantages"][:, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(data["targets"][:, 0], np.array(expected) + v, rtol=1e-5)


def test_shuffled_indices_is_a_permutation(ppo: dict) -> None:
    for n in (1, 7, 500, 5000):
        order = np.asarray(ppo["shuffled_indices"](jax.random.key(n), n))
        assert sorted(order.tolist()) == list(range(n))
    first = ppo["shuffled_indices"](jax.random.key(0), 500)
    second = ppo["shuffled_indices"](jax.random.key(1), 500)
    assert not np.array_equal(first, second)


def test_same_seed_same_curve_and_vmapped_seeds_equal_separate_runs(ppo: dict) -> None:
    module = make_module(ppo, eval_episodes=4)
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


def test_continuous_actions(ppo: dict) -> None:
    module = make_module(
        ppo, "Pendulum-v1", num_envs=2, num_steps=8, num_minibatches=2, eval_episodes=2
    )
    assert not module.network.discrete
    trainer = JaxTrainer(max_epochs=1, training_steps_per_epoch=2, enable_progress_bar=False)
    state, metrics = trainer.fit(module, jax.random.key(0))
    assert np.isfinite(metrics["eval_return"]).all()
    assert int(state.env_steps) == 2 * 2 * 8


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


@pytest.mark.slow
def test_learns_cartpole(ppo: dict) -> None:
    """The default hyper-parameters reach a mean evaluation return of 475 within 100k steps."""
    module = make_module(ppo)
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
