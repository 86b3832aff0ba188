"""JaxTrainer.fit on a probe with a known answer: results, many seeds, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gallery_lib import EarlyStopping, JaxCallback, JaxModule, JaxTrainer, LoggerCallback
from gallery_lib.testing import (
    TRUE_BIAS,
    TRUE_WEIGHTS,
    LinearRegressionProbe,
    assert_trees_equal,
    hand_written_fit,
    to_numpy,
)

EPOCHS, STEPS = 4, 20


def quiet_trainer(**kwargs) -> JaxTrainer:
    kwargs.setdefault("max_epochs", EPOCHS)
    kwargs.setdefault("training_steps_per_epoch", STEPS)
    return JaxTrainer(enable_progress_bar=False, **kwargs)


def test_fit_learns_the_known_parameters() -> None:
    state, eval_metrics = quiet_trainer().fit(LinearRegressionProbe(), jax.random.key(0))
    assert eval_metrics["param_error"].shape == (EPOCHS,)
    assert np.all(np.diff(eval_metrics["param_error"]) < 0)
    np.testing.assert_allclose(state.weights, TRUE_WEIGHTS, atol=1e-3)
    np.testing.assert_allclose(state.bias, TRUE_BIAS, atol=1e-3)


def test_fit_equals_a_hand_written_scan() -> None:
    module = LinearRegressionProbe()
    state, eval_metrics = quiet_trainer().fit(module, jax.random.key(3))
    ref_state, ref_metrics = jax.jit(lambda rng: hand_written_fit(module, rng, EPOCHS, STEPS))(
        jax.random.key(3)
    )
    assert_trees_equal((state, eval_metrics), (ref_state, ref_metrics))


def test_fit_many_equals_each_single_seed_run() -> None:
    module = LinearRegressionProbe()
    trainer = quiet_trainer(max_epochs=2)
    rngs = jax.random.split(jax.random.key(1), 3)
    states, eval_metrics = trainer.fit_many(module, rngs)
    assert eval_metrics["param_error"].shape == (3, 2)
    for seed in range(3):
        state, metrics = trainer.fit(module, rngs[seed])
        jax.tree.map(
            lambda many, one, i=seed: np.testing.assert_allclose(
                many[i], one, rtol=1e-5, atol=1e-7
            ),
            to_numpy((states, eval_metrics)),
            to_numpy((state, metrics)),
        )


def test_vmap_over_fit_without_callbacks() -> None:
    module = LinearRegressionProbe()
    trainer = quiet_trainer(max_epochs=2)
    rngs = jax.random.split(jax.random.key(1), 2)
    _, vmapped = jax.vmap(lambda rng: trainer.fit(module, rng))(rngs)
    _, many = trainer.fit_many(module, rngs)
    np.testing.assert_allclose(vmapped["param_error"], many["param_error"], rtol=1e-6)


def test_vmap_over_fit_with_callbacks_says_to_use_fit_many() -> None:
    trainer = JaxTrainer(max_epochs=1, training_steps_per_epoch=1)  # has a progress bar
    rngs = jax.random.split(jax.random.key(1), 2)
    with pytest.raises(ValueError, match=r"ProgressBarCallback cannot work.*fit_many"):
        jax.vmap(lambda rng: trainer.fit(LinearRegressionProbe(), rng))(rngs)


def test_probe_satisfies_the_protocol() -> None:
    assert isinstance(LinearRegressionProbe(), JaxModule)


class NoEvaluate:
    def init_train_state(self, rng):
        return rng

    def get_batch(self, train_state, batch_idx):
        return train_state, None

    def training_step(self, batch_idx, train_state, batch):
        return train_state, {}


def test_a_module_missing_a_method_is_named() -> None:
    with pytest.raises(
        TypeError, match=r"NoEvaluate is not a JaxModule: it has no method `evaluate`"
    ):
        quiet_trainer().fit(NoEvaluate(), jax.random.key(0))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
@pytest.mark.parametrize("argument", ["max_epochs", "training_steps_per_epoch"])
def test_step_counts_must_be_positive_integers(argument: str, bad) -> None:
    kwargs = {"max_epochs": 2, "training_steps_per_epoch": 2, argument: bad}
    with pytest.raises(ValueError, match=rf"{argument}=.*expected a positive integer"):
        JaxTrainer(**kwargs)


class DivergingProbe(LinearRegressionProbe):
    """Diverges: the learning rate is far too large, so the loss overflows to inf, then NaN."""

    def __init__(self) -> None:
        super().__init__(learning_rate=50.0)


def test_nan_in_training_metrics_names_epoch_and_step() -> None:
    module = DivergingProbe()
    _, reference = quiet_trainer(max_epochs=3, training_steps_per_epoch=10).fit(
        module, jax.random.key(0)
    )
    assert not np.all(np.isfinite(reference["param_error"]))
    # The first non-finite loss, found by running the same steps one by one:
    state = module.init_train_state(jax.random.key(0))
    for index in range(30):
        last_finite = state
        state, batch = module.get_batch(state, index % 10)
        state, metrics = module.training_step(index % 10, state, batch)
        if not np.isfinite(metrics["loss"]):
            break
    epoch, step = divmod(index, 10)

    class FinalState(JaxCallback):
        def on_fit_end(self, trainer, module, train_state):
            self.weights = train_state.weights

    final = FinalState()
    trainer = quiet_trainer(
        max_epochs=3, training_steps_per_epoch=10, detect_nan=True, callbacks=[final]
    )
    with pytest.raises(FloatingPointError, match=rf"at epoch {epoch}, step {step} "):
        trainer.fit(module, jax.random.key(0))
    # The hooks saw the last finite state, the one before the failing step.
    np.testing.assert_allclose(final.weights, last_finite.weights, rtol=1e-4)


def test_early_stopping_freezes_the_state_after_the_threshold() -> None:
    stopper = EarlyStopping(monitor="param_error", threshold=1e-2, mode="min")
    trainer = quiet_trainer(max_epochs=6, training_steps_per_epoch=5, callbacks=[stopper])
    _, eval_metrics = trainer.fit(LinearRegressionProbe(), jax.random.key(0))
    errors = np.asarray(eval_metrics["param_error"])
    stopped = trainer.stopped_epoch
    assert stopped is not None and stopped < 5
    assert errors[stopped] <= 1e-2 and np.all(errors[:stopped] > 1e-2)
    np.testing.assert_array_equal(errors[stopped:], errors[stopped])
    _, full = quiet_trainer(max_epochs=stopped + 1, training_steps_per_epoch=5).fit(
        LinearRegressionProbe(), jax.random.key(0)
    )
    np.testing.assert_array_equal(full["param_error"], errors[: stopped + 1])


def test_early_stopping_names_a_missing_metric() -> None:
    trainer = quiet_trainer(callbacks=[EarlyStopping(monitor="accuracy", threshold=0.5)])
    with pytest.raises(KeyError, match="monitor='accuracy'"):
        trainer.fit(LinearRegressionProbe(), jax.random.key(0))


def test_int_keys_work_too() -> None:
    _, metrics = quiet_trainer(max_epochs=1).fit(LinearRegressionProbe(), jax.random.PRNGKey(0))
    assert jnp.isfinite(metrics["param_error"][0])


class Counter:
    """The smallest module: the state counts steps; no batch, no metrics, a bare scalar eval."""

    def init_train_state(self, rng):
        return jnp.zeros((), jnp.int32)

    def get_batch(self, train_state, batch_idx):
        return train_state, None

    def training_step(self, batch_idx, train_state, batch):
        return train_state + 1, {}

    def evaluate(self, train_state):
        return train_state


def test_bare_module_counts_its_steps(tmp_path) -> None:
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(tmp_path, name="counter", version=0)
    trainer = quiet_trainer(max_epochs=3, training_steps_per_epoch=4, detect_nan=True)
    trainer.callbacks.append(LoggerCallback([logger]))
    state, eval_metrics = trainer.fit(Counter(), jax.random.key(0))
    assert int(state) == 12
    np.testing.assert_array_equal(eval_metrics, [4, 8, 12])
    assert "val" in (tmp_path / "counter" / "version_0" / "metrics.csv").read_text().splitlines()[0]


class Halving:
    """Each step halves the distance to 2 from a random start in [0, 10): a known schedule."""

    def init_train_state(self, rng):
        return 10.0 * jax.random.uniform(rng)

    def get_batch(self, train_state, batch_idx):
        return train_state, None

    def training_step(self, batch_idx, train_state, batch):
        return train_state + 0.5 * (2.0 - train_state), {}

    def evaluate(self, train_state):
        return {"error": jnp.abs(2.0 - train_state)}


def test_early_stopping_in_fit_many_waits_for_every_seed() -> None:
    rngs = jax.random.split(jax.random.key(0), 4)
    starts = np.abs(2.0 - np.asarray(jax.vmap(Halving().init_train_state)(rngs)))
    # After epoch e (one step each), a seed's error is start / 2 ** (e + 1).
    first_below = [int(np.argmax(start / 2.0 ** np.arange(1, 30) <= 1e-2)) for start in starts]
    assert len(set(first_below)) > 1  # the seeds reach the threshold at different epochs
    stopper = EarlyStopping(monitor="error", threshold=1e-2, mode="min")
    trainer = quiet_trainer(max_epochs=30, training_steps_per_epoch=1, callbacks=[stopper])
    _, eval_metrics = trainer.fit_many(Halving(), rngs)
    assert trainer.stopped_epoch == max(first_below)
    errors = np.asarray(eval_metrics["error"])
    np.testing.assert_array_equal(errors[:, -1], errors[:, max(first_below)])


def test_compiler_options_reach_xla_and_keep_the_result() -> None:
    module = LinearRegressionProbe()
    rng = jax.random.key(3)
    default = JaxTrainer(3, 50, enable_progress_bar=False).fit(module, rng)
    options = {"xla_backend_optimization_level": 1}
    trainer = JaxTrainer(3, 50, enable_progress_bar=False, compiler_options=options)
    tuned = trainer.fit(module, rng)
    np.testing.assert_allclose(tuned[1]["param_error"], default[1]["param_error"], rtol=1e-5)
    np.testing.assert_allclose(tuned[0].weights, default[0].weights, rtol=1e-5)
    # The options are XLA's: one it does not know fails the compilation, by its name.
    bogus = JaxTrainer(3, 50, enable_progress_bar=False, compiler_options={"xla_no_such": 1})
    with pytest.raises(jax.errors.JaxRuntimeError, match="xla_no_such"):
        bogus.fit(module, rng)
