"""Checkpoints at epoch ends, and resuming a run bit-identically."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from support import Interrupt

from gallery_lib import CheckpointCallback, JaxCallback, JaxTrainer
from gallery_lib.testing import LinearRegressionProbe, assert_trees_equal, to_numpy
from gallery_lib.trainer._resume import describe, restore_checkpoint

EPOCHS, STEPS = 4, 5


def trainer(*callbacks: JaxCallback) -> JaxTrainer:
    return JaxTrainer(EPOCHS, STEPS, callbacks=list(callbacks), enable_progress_bar=False)


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """A run that saved epochs 0 and 1, then crashed when epoch 2 started."""
    directory = tmp_path_factory.mktemp("checkpoints")
    with pytest.raises(Exception, match="interrupted at epoch 2"):
        trainer(CheckpointCallback(directory), Interrupt(2)).fit(
            LinearRegressionProbe(), jax.random.key(7)
        )
    return directory


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(interrupted_run) -> None:
    module = LinearRegressionProbe()
    expected = trainer().fit(module, jax.random.key(7))
    resumed_trainer = trainer(CheckpointCallback(interrupted_run))
    resumed = resumed_trainer.fit(module, jax.random.key(7), ckpt_path=str(interrupted_run))
    assert resumed_trainer.start_epoch == 2
    assert resumed[1]["param_error"].shape == (EPOCHS,)
    assert_trees_equal(resumed, expected)
    state, history, start = restore_checkpoint(
        interrupted_run, "LinearRegressionProbe", module.init_train_state, jax.random.key(0), 9
    )
    assert start == EPOCHS  # the resumed run saved its own epochs, up to the last
    assert_trees_equal(state, expected[0])
    np.testing.assert_array_equal(history["param_error"], expected[1]["param_error"])


class OtherModule(LinearRegressionProbe):
    pass


def test_a_checkpoint_of_another_module_is_rejected(interrupted_run) -> None:
    with pytest.raises(ValueError, match="does not fit this module: its module is"):
        trainer().fit(OtherModule(), jax.random.key(7), ckpt_path=str(interrupted_run))


def test_a_checkpoint_of_another_shape_is_rejected(interrupted_run) -> None:
    def wider(rng):
        return LinearRegressionProbe().init_train_state(rng)._replace(weights=jnp.zeros(5))

    with pytest.raises(ValueError, match=r"its shapes is .*\[3\].*the module's training state"):
        restore_checkpoint(interrupted_run, "LinearRegressionProbe", wider, jax.random.key(0), 9)


def test_fit_many_checkpoint_is_not_a_single_seed_one(interrupted_run) -> None:
    rngs = jax.random.split(jax.random.key(7), 2)
    with pytest.raises(ValueError, match=r"fit_many\[LinearRegressionProbe\]"):
        trainer().fit_many(LinearRegressionProbe(), rngs, ckpt_path=str(interrupted_run))


def test_an_empty_directory_says_so(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="No checkpoint in"):
        trainer().fit(LinearRegressionProbe(), jax.random.key(7), ckpt_path=str(tmp_path))


def test_every_n_epochs_and_max_to_keep(tmp_path) -> None:
    callback = CheckpointCallback(tmp_path, every_n_epochs=3, max_to_keep=1)
    trainer(callback).fit(LinearRegressionProbe(), jax.random.key(7))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["3"]


def test_the_recorded_structure_ignores_static_fields() -> None:
    import optax
    from flax.training.train_state import TrainState

    def state(learning_rate: float) -> TrainState:
        params = {"dense": {"kernel": jnp.ones((2, 3))}}
        apply = lambda params, x: x @ params["dense"]["kernel"]  # noqa: E731
        return TrainState.create(apply_fn=apply, params=params, tx=optax.adam(learning_rate))

    first, second = describe("M", state(1e-3)), describe("M", state(1e-2))
    assert first == second
    assert ".params['dense']['kernel']" in first["structure"]


class FlaxRegression:
    """A flax `TrainState` (static apply_fn and optax transformation) and a typed key."""

    def init_train_state(self, rng):
        import flax.linen as nn
        import optax
        from flax.training.train_state import TrainState

        network = nn.Dense(1)
        params = network.init(rng, jnp.ones((1, 3)))
        tx = optax.adam(1e-2)
        return {"ts": TrainState.create(apply_fn=network.apply, params=params, tx=tx), "rng": rng}

    def get_batch(self, train_state, batch_idx):
        rng, key = jax.random.split(train_state["rng"])
        x = jax.random.normal(key, (16, 3))
        return {**train_state, "rng": rng}, (x, x.sum(axis=1, keepdims=True))

    def training_step(self, batch_idx, train_state, batch):
        ts, (x, y) = train_state["ts"], batch
        loss, grads = jax.value_and_grad(lambda p: jnp.mean((ts.apply_fn(p, x) - y) ** 2))(
            ts.params
        )
        return {**train_state, "ts": ts.apply_gradients(grads=grads)}, {"loss": loss}

    def evaluate(self, train_state):
        return {"kernel_sum": jnp.sum(train_state["ts"].params["params"]["kernel"])}


def test_resume_a_flax_train_state(tmp_path) -> None:
    def run(epochs, *callbacks, **kwargs):
        trainer = JaxTrainer(epochs, 3, callbacks=list(callbacks), enable_progress_bar=False)
        return trainer.fit(FlaxRegression(), jax.random.key(0), **kwargs)

    expected = run(3)
    run(1, CheckpointCallback(tmp_path))
    resumed_trainer = JaxTrainer(3, 3, enable_progress_bar=False)
    resumed = resumed_trainer.fit(FlaxRegression(), jax.random.key(0), ckpt_path=str(tmp_path))
    assert resumed_trainer.start_epoch == 1, "resumed after the one saved epoch"
    resumed_leaves, expected_leaves = (jax.tree.leaves(to_numpy(r)) for r in (resumed, expected))
    for a, b in zip(resumed_leaves, expected_leaves, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fit_many_resumes_bit_identically(tmp_path) -> None:
    module, rngs = LinearRegressionProbe(), jax.random.split(jax.random.key(3), 2)
    expected = JaxTrainer(3, 2, enable_progress_bar=False).fit_many(module, rngs)
    JaxTrainer(1, 2, callbacks=[CheckpointCallback(tmp_path)], enable_progress_bar=False).fit_many(
        module, rngs
    )
    resumed_trainer = JaxTrainer(3, 2, enable_progress_bar=False)
    resumed = resumed_trainer.fit_many(module, rngs, ckpt_path=str(tmp_path))
    assert resumed_trainer.start_epoch == 1, "resumed after the one saved epoch"
    assert resumed[1]["param_error"].shape == (2, 3)
    assert_trees_equal(resumed, expected)


def test_a_fresh_run_refuses_to_mix_with_old_checkpoints(tmp_path) -> None:
    module = LinearRegressionProbe()

    def run(seed: int, **kwargs) -> None:
        callbacks = [CheckpointCallback(tmp_path, **kwargs)]
        JaxTrainer(2, 2, callbacks=callbacks, enable_progress_bar=False).fit(
            module, jax.random.key(seed)
        )

    run(0)
    with pytest.raises(FileExistsError, match=r"already holds checkpoints of epochs \[0, 1\]"):
        run(1)
    run(1, overwrite=True)
    state, _, _ = restore_checkpoint(
        tmp_path, "LinearRegressionProbe", module.init_train_state, jax.random.key(0), 9
    )
    expected, _ = JaxTrainer(2, 2, enable_progress_bar=False).fit(module, jax.random.key(1))
    assert_trees_equal(state, expected)
