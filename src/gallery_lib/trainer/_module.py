"""The `JaxModule` protocol: what an algorithm provides to be trained by `JaxTrainer`."""

from __future__ import annotations

from typing import Protocol, TypeVar, runtime_checkable

import jax

TrainState = TypeVar("TrainState")
"""The training state: a pytree with everything that changes during training."""
Batch = TypeVar("Batch")
"""What `get_batch` produces and `training_step` consumes: a pytree of arrays."""
Metrics = TypeVar("Metrics")
"""Metrics returned by `training_step` and `evaluate`: a pytree of scalars."""


@runtime_checkable
class JaxModule(Protocol[TrainState, Batch, Metrics]):
    """An algorithm that `JaxTrainer` can train end to end under `jit`.

    Any class with these four methods satisfies the protocol; no inheritance is needed. Every
    method must be a pure function of its arguments (no Python side effects, no randomness
    other than keys carried in the state), because the trainer traces them once and compiles
    the whole training run.

    The trainer calls them like this (see [`JaxTrainer`][gallery_lib.JaxTrainer] for the
    full loop):

    ```python
    train_state = module.init_train_state(rng)
    for epoch in range(max_epochs):
        for batch_idx in range(training_steps_per_epoch):
            train_state, batch = module.get_batch(train_state, batch_idx)
            train_state, metrics = module.training_step(batch_idx, train_state, batch)
        eval_metrics = module.evaluate(train_state)
    ```

    Examples:
        A module that learns the mean of a Gaussian by stochastic gradient descent:

        >>> import jax, jax.numpy as jnp
        >>> class MeanEstimator:
        ...     def init_train_state(self, rng):
        ...         return {"mean": jnp.zeros(()), "rng": rng}
        ...
        ...     def get_batch(self, train_state, batch_idx):
        ...         rng, key = jax.random.split(train_state["rng"])
        ...         batch = 3.0 + jax.random.normal(key, (32,))
        ...         return {**train_state, "rng": rng}, batch
        ...
        ...     def training_step(self, batch_idx, train_state, batch):
        ...         loss, grad = jax.value_and_grad(lambda m: jnp.mean((batch - m) ** 2))(
        ...             train_state["mean"]
        ...         )
        ...         return {**train_state, "mean": train_state["mean"] - 0.1 * grad}, {"loss": loss}
        ...
        ...     def evaluate(self, train_state):
        ...         return {"error": jnp.abs(train_state["mean"] - 3.0)}
        >>> isinstance(MeanEstimator(), JaxModule)
        True
    """

    def init_train_state(self, rng: jax.Array) -> TrainState:
        """Create the initial training state (parameters, optimizer state, keys, ...) from `rng`."""
        ...

    def get_batch(
        self, train_state: TrainState, batch_idx: int | jax.Array
    ) -> tuple[TrainState, Batch]:
        """Produce the next batch (e.g. collect a rollout), returning the updated state with it."""
        ...

    def training_step(
        self, batch_idx: int | jax.Array, train_state: TrainState, batch: Batch
    ) -> tuple[TrainState, Metrics]:
        """Do one update on `batch`; return the new state and the step's training metrics."""
        ...

    def evaluate(self, train_state: TrainState) -> Metrics:
        """Evaluate the current state (e.g. mean episode return); called after each epoch."""
        ...


PROTOCOL_METHODS: tuple[str, ...] = tuple(
    name for name, value in vars(JaxModule).items() if callable(value) and not name.startswith("_")
)
"""The methods a `JaxModule` has, in the order the protocol defines them."""


def check_module(module: object) -> None:
    """Raise `TypeError` naming the `JaxModule` methods that `module` lacks.

    Examples:
        >>> check_module(object())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        TypeError: object is not a JaxModule: it has no method `init_train_state`, ...
    """
    missing = [name for name in PROTOCOL_METHODS if not callable(getattr(module, name, None))]
    if missing:
        signatures = ", ".join(
            f"{name}({', '.join(_parameters(name))})" for name in PROTOCOL_METHODS
        )
        raise TypeError(
            f"{type(module).__qualname__} is not a JaxModule: it has no method "
            + ", ".join(f"`{name}`" for name in missing)
            + f". A JaxModule needs {signatures}."
        )


def _parameters(method: str) -> list[str]:
    """The parameter names of the protocol's `method`, without `self`."""
    code = getattr(JaxModule, method).__code__
    return list(code.co_varnames[1 : code.co_argcount])
