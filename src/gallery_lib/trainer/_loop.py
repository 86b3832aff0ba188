"""The training run that `JaxTrainer` compiles: scans over epochs and steps, hooks in order."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from ._callback import HOOKS_IN_LOOP, JaxCallback, TrainerView, host_view, overrides


class LoopStatus(NamedTuple):
    """What the loop carries besides the training state: hook order and stop requests."""

    token: jax.Array
    """Threads the host callbacks one after the other (each returns it plus one)."""
    stopped: jax.Array
    """True once training stopped early: the remaining steps do nothing."""
    stop_epoch: jax.Array
    """The epoch at whose end a callback's `should_stop` stopped training, or -1."""
    nan_epoch: jax.Array
    """The epoch of the first step with a non-finite training metric, or -1."""
    nan_step: jax.Array
    """The step (`batch_idx`) of that first non-finite training metric, or -1."""


@dataclasses.dataclass(frozen=True, eq=False)
class TrainingLoop:
    """The traced training run: `loop(rng, restored, first_epoch)` is what `fit` compiles.

    Returns the final state, the evaluation metrics of the epochs run (leading axis of epochs)
    and the final [`LoopStatus`][gallery_lib.trainer._loop.LoopStatus].
    """

    trainer: TrainerView
    """Passed to the hooks; gives the loop's lengths."""
    module: Any
    """The user's module, passed to the hooks."""
    methods: Any
    """The module's methods as the loop calls them (vmapped over seeds for `fit_many`)."""
    callbacks: Sequence[JaxCallback]
    detect_nan: bool
    shard: Callable[[Any], Any] = lambda batch: batch
    """Places a batch on the devices (a sharding constraint), or leaves it as it is."""

    def __call__(self, rng: jax.Array, restored: Any, first_epoch: int) -> Any:
        methods, trainer = self.methods, self.trainer
        hooks = {
            name: [cb for cb in self.callbacks if overrides(cb, name)] for name in HOOKS_IN_LOOP
        }
        stoppers = [cb for cb in self.callbacks if overrides(cb, "should_stop")]
        guarded = self.detect_nan or bool(stoppers)
        want_epoch_metrics = bool(hooks["on_train_epoch_end"])

        def emit(name: str, status: LoopStatus, *args: Any) -> LoopStatus:
            if not hooks[name]:
                return status

            def call_hooks(token: np.ndarray, *host_args: Any) -> np.ndarray:
                for callback in hooks[name]:
                    getattr(callback, name)(trainer, self.module, *host_args)
                return np.asarray(token + 1, dtype=np.int32)

            token = io_callback(
                call_hooks, jax.ShapeDtypeStruct((), jnp.int32), status.token, *host_view(args)
            )
            return status._replace(token=token)

        def step(state: Any, batch_idx: jax.Array, status: LoopStatus, epoch: jax.Array) -> Any:
            state, batch = methods.get_batch(state, batch_idx)
            batch = self.shard(batch)
            status = emit("on_train_batch_start", status, state, batch, batch_idx, epoch)
            state, metrics = methods.training_step(batch_idx, state, batch)
            status = emit("on_train_batch_end", status, state, metrics, batch_idx, epoch)
            return state, status, metrics

        state = methods.init_train_state(rng) if restored is None else restored
        minus_one = jnp.int32(-1)
        status = LoopStatus(jnp.int32(0), jnp.bool_(False), minus_one, minus_one, minus_one)
        status = emit("on_fit_start", status, state)
        metrics_shape = jax.eval_shape(lambda s: step(s, jnp.int32(0), status, 0)[2], state)

        def train_step(carry: Any, batch_idx: jax.Array, epoch: jax.Array) -> Any:
            state, status = carry
            if not guarded:
                state, status, metrics = step(state, batch_idx, status, epoch)
                return (state, status), (metrics if want_epoch_metrics else None)

            def skip(state: Any, status: LoopStatus) -> Any:
                zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metrics_shape)
                return state, status, zeros

            ran, previous = ~status.stopped, state
            state, status, metrics = jax.lax.cond(
                status.stopped, skip, lambda s, st: step(s, batch_idx, st, epoch), state, status
            )
            if self.detect_nan:
                state, status = _drop_non_finite(
                    previous, state, status, metrics, ran, (epoch, batch_idx)
                )
            return (state, status), ((metrics, ran) if want_epoch_metrics else None)

        def train_epoch(carry: Any, epoch: jax.Array) -> Any:
            state, status = carry
            status = emit("on_train_epoch_start", status, state, epoch)
            steps = jnp.arange(trainer.training_steps_per_epoch, dtype=jnp.int32)
            (state, status), outputs = jax.lax.scan(
                functools.partial(train_step, epoch=epoch), (state, status), steps
            )
            if want_epoch_metrics:
                status = emit(
                    "on_train_epoch_end", status, state, _epoch_mean(outputs, guarded), epoch
                )
            eval_metrics = methods.evaluate(state)
            status = emit("on_validation_end", status, state, eval_metrics, epoch)
            if stoppers:
                stop = jnp.any(jnp.stack([jnp.all(s.should_stop(eval_metrics)) for s in stoppers]))
                status = status._replace(
                    stop_epoch=jnp.where(stop & ~status.stopped, epoch, status.stop_epoch),
                    stopped=status.stopped | stop,
                )
            return (state, status), eval_metrics

        epochs = jnp.arange(first_epoch, trainer.max_epochs, dtype=jnp.int32)
        (state, status), eval_metrics = jax.lax.scan(train_epoch, (state, status), epochs)
        status = emit("on_fit_end", status, state)
        return state, eval_metrics, status


def _drop_non_finite(
    previous: Any,
    state: Any,
    status: LoopStatus,
    metrics: Any,
    ran: jax.Array,
    where: tuple[jax.Array, jax.Array],
) -> tuple[Any, LoopStatus]:
    """Stop at the step `where` (epoch, batch_idx) if its metrics are not finite.

    The state from before that step is kept, so that hooks and checkpoints never see NaNs.
    """
    finite = jnp.bool_(True)
    for leaf in jax.tree.leaves(metrics):
        finite &= jnp.all(jnp.isfinite(leaf))
    bad = ran & ~finite
    epoch, batch_idx = where
    state = jax.lax.cond(bad, lambda: previous, lambda: state)
    return state, status._replace(
        stopped=status.stopped | bad,
        nan_epoch=jnp.where(bad, epoch, status.nan_epoch),
        nan_step=jnp.where(bad, batch_idx, status.nan_step),
    )


def _epoch_mean(outputs: Any, guarded: bool) -> Any:
    """The mean of the training metrics over the steps of an epoch that ran."""
    if not guarded:
        return jax.tree.map(lambda x: jnp.mean(x, axis=0), outputs)
    metrics, ran = outputs
    count = jnp.maximum(jnp.sum(ran), 1)

    def mean(x: jax.Array) -> jax.Array:
        weights = ran.reshape(ran.shape + (1,) * (x.ndim - 1)).astype(x.dtype)
        return jnp.sum(x * weights, axis=0) / count.astype(x.dtype)

    return jax.tree.map(mean, metrics)
