"""`LinearRegressionProbe`: a `JaxModule` with a known answer, and a hand-written loop for it."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

TRUE_WEIGHTS = jnp.array([2.0, -1.0, 0.5])
TRUE_BIAS = 0.25


class ProbeState(NamedTuple):
    """The probe's training state: its parameters and the key of its batches."""

    weights: jax.Array
    bias: jax.Array
    rng: jax.Array


class LinearRegressionProbe:
    """Learns `y = x @ TRUE_WEIGHTS + TRUE_BIAS` (noise-free) by SGD on fresh random batches.

    A [`JaxModule`][gallery_lib.JaxModule] whose answer is known: `evaluate` returns the squared
    distance of the parameters to the true ones (`param_error`), which training drives to 0.

    Args:
        batch_size: Rows of `x` per batch.
        learning_rate: The SGD step size.

    Examples:
        >>> from gallery_lib import JaxTrainer
        >>> trainer = JaxTrainer(2, 50, enable_progress_bar=False)
        >>> _, eval_metrics = trainer.fit(LinearRegressionProbe(), jax.random.key(0))
        >>> bool(eval_metrics["param_error"][-1] < 1e-6)
        True
    """

    def __init__(self, batch_size: int = 32, learning_rate: float = 0.1) -> None:
        self.batch_size = batch_size
        self.learning_rate = learning_rate

    def init_train_state(self, rng: jax.Array) -> ProbeState:
        rng, key = jax.random.split(rng)
        return ProbeState(jax.random.normal(key, (3,)), jnp.zeros(()), rng)

    def get_batch(
        self, train_state: ProbeState, batch_idx: jax.Array
    ) -> tuple[ProbeState, tuple[jax.Array, jax.Array]]:
        rng, key = jax.random.split(train_state.rng)
        x = jax.random.normal(key, (self.batch_size, 3))
        return train_state._replace(rng=rng), (x, x @ TRUE_WEIGHTS + TRUE_BIAS)

    def loss(
        self, params: tuple[jax.Array, jax.Array], batch: tuple[jax.Array, jax.Array]
    ) -> jax.Array:
        """The mean squared error of `params` on `batch`."""
        x, y = batch
        weights, bias = params
        return jnp.mean((x @ weights + bias - y) ** 2)

    def training_step(
        self, batch_idx: jax.Array, train_state: ProbeState, batch: tuple[jax.Array, jax.Array]
    ) -> tuple[ProbeState, dict[str, jax.Array]]:
        params = (train_state.weights, train_state.bias)
        loss, grads = jax.value_and_grad(self.loss)(params, batch)
        weights, bias = jax.tree.map(lambda p, g: p - self.learning_rate * g, params, grads)
        return train_state._replace(weights=weights, bias=bias), {"loss": loss}

    def evaluate(self, train_state: ProbeState) -> dict[str, jax.Array]:
        error = jnp.sum((train_state.weights - TRUE_WEIGHTS) ** 2)
        return {"param_error": error + (train_state.bias - TRUE_BIAS) ** 2}


def hand_written_fit(module: Any, rng: jax.Array, max_epochs: int, steps: int) -> Any:
    """The same training as `JaxTrainer.fit` without callbacks, as a bare `lax.scan`.

    The reference that the trainer's results and speed are compared with.

    Returns:
        The final training state and the evaluation metrics stacked over epochs.
    """

    def step(state, batch_idx):
        state, batch = module.get_batch(state, batch_idx)
        state, _ = module.training_step(batch_idx, state, batch)
        return state, None

    def epoch(state, _):
        state, _ = jax.lax.scan(step, state, jnp.arange(steps, dtype=jnp.int32))
        return state, module.evaluate(state)

    return jax.lax.scan(epoch, module.init_train_state(rng), None, length=max_epochs)
