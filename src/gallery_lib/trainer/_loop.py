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
    """The traced training run, in phases that either mode of `JaxTrainer` compiles.

    `loop(rng, restored, first_epoch)` is the whole run as one program (`loop="scan"`): it
    scans over epochs and steps. The phases (`start`, `epoch_start`, `step`, `epoch_end`,
    `finish`) are what `loop="steps"` compiles one by one and calls from Python (see
    `_stepwise.StepwiseRun`). Both run the same code in the same order. The run returns the
    final state, the evaluation metrics of the epochs run (leading axis of epochs) and the
    final [`LoopStatus`][gallery_lib.trainer._loop.LoopStatus].
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

    @functools.cached_property
    def hooks(self) -> dict[str, list[JaxCallback]]:
        """The callbacks that override each hook run on the host (the others add nothing)."""
        return {
            name: [cb for cb in self.callbacks if overrides(cb, name)] for name in HOOKS_IN_LOOP
        }

    @functools.cached_property
    def stoppers(self) -> list[JaxCallback]:
        """The callbacks whose traced `should_stop` can end training early."""
        return [cb for cb in self.callbacks if overrides(cb, "should_stop")]

    @property
    def guarded(self) -> bool:
        """Whether training can stop early (then stopped steps are skipped)."""
        return self.detect_nan or bool(self.stoppers)

    @property
    def want_epoch_metrics(self) -> bool:
        """Whether a hook reads the epoch's mean training metrics (else none are kept)."""
        return bool(self.hooks["on_train_epoch_end"])

    def emit(self, name: str, status: LoopStatus, *args: Any) -> LoopStatus:
        """Call the callbacks' hook `name` on the host, after the hooks emitted before it."""
        if not self.hooks[name]:
            return status

        def call_hooks(token: np.ndarray, *host_args: Any) -> np.ndarray:
            for callback in self.hooks[name]:
                getattr(callback, name)(self.trainer, self.module, *host_args)
            return np.asarray(token + 1, dtype=np.int32)

        token = io_callback(
            call_hooks, jax.ShapeDtypeStruct((), jnp.int32), status.token, *host_view(args)
        )
        return status._replace(token=token)

    def start(self, rng: jax.Array, restored: Any) -> tuple[Any, LoopStatus]:
        """The initial (or restored) state and status, after `on_fit_start`."""
        state = self.methods.init_train_state(rng) if restored is None else restored
        minus_one = jnp.int32(-1)
        status = LoopStatus(jnp.int32(0), jnp.bool_(False), minus_one, minus_one, minus_one)
        return state, self.emit("on_fit_start", status, state)

    def epoch_start(self, carry: Any, epoch: jax.Array) -> Any:
        """`on_train_epoch_start`."""
        state, status = carry
        return state, self.emit("on_train_epoch_start", status, state, epoch)

    def step(self, carry: Any, batch_idx: jax.Array, epoch: jax.Array) -> Any:
        """One training step that runs (it is not skipped): batch, update, hooks, NaN check.

        Returns the new carry and what the epoch mean needs: the metrics (with, when training
        can stop early, whether the step ran), or None when no hook reads them.
        """
        previous, status = carry
        state, batch = self.methods.get_batch(previous, batch_idx)
        batch = self.shard(batch)
        status = self.emit("on_train_batch_start", status, state, batch, batch_idx, epoch)
        state, metrics = self.methods.training_step(batch_idx, state, batch)
        status = self.emit("on_train_batch_end", status, state, metrics, batch_idx, epoch)
        if self.detect_nan:
            state, status = _drop_non_finite(previous, state, status, metrics, (epoch, batch_idx))
        return (state, status), self.step_output(metrics, jnp.bool_(True))

    def step_output(self, metrics: Any, ran: jax.Array) -> Any:
        """What a step hands to the epoch mean: its metrics, and whether it ran if guarded."""
        if not self.want_epoch_metrics:
            return None
        return (metrics, ran) if self.guarded else metrics

    def epoch_end(self, carry: Any, outputs: Any, epoch: jax.Array) -> Any:
        """`on_train_epoch_end`, `evaluate`, `on_validation_end`, then the stop decision.

        `outputs` are the epoch's step outputs, stacked (leading axis of steps).
        """
        state, status = carry
        if self.want_epoch_metrics:
            mean = _epoch_mean(outputs, self.guarded)
            status = self.emit("on_train_epoch_end", status, state, mean, epoch)
        eval_metrics = self.methods.evaluate(state)
        status = self.emit("on_validation_end", status, state, eval_metrics, epoch)
        if self.stoppers:
            stop = jnp.any(jnp.stack([jnp.all(s.should_stop(eval_metrics)) for s in self.stoppers]))
            status = status._replace(
                stop_epoch=jnp.where(stop & ~status.stopped, epoch, status.stop_epoch),
                stopped=status.stopped | stop,
            )
        return (state, status), eval_metrics

    def finish(self, carry: Any) -> LoopStatus:
        """`on_fit_end`; the final status."""
        state, status = carry
        return self.emit("on_fit_end", status, state)

    def __call__(self, rng: jax.Array, restored: Any, first_epoch: int) -> Any:
        carry = self.start(rng, restored)
        output_shape = jax.eval_shape(lambda c: self.step(c, jnp.int32(0), 0)[1], carry)

        def skip(carry: Any) -> Any:
            zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), output_shape)
            return carry, zeros

        def train_step(carry: Any, batch_idx: jax.Array, epoch: jax.Array) -> Any:
            if not self.guarded:
                return self.step(carry, batch_idx, epoch)
            return jax.lax.cond(
                carry[1].stopped, skip, lambda c: self.step(c, batch_idx, epoch), carry
            )

        def train_epoch(carry: Any, epoch: jax.Array) -> Any:
            carry = self.epoch_start(carry, epoch)
            steps = jnp.arange(self.trainer.training_steps_per_epoch, dtype=jnp.int32)
            carry, outputs = jax.lax.scan(functools.partial(train_step, epoch=epoch), carry, steps)
            return self.epoch_end(carry, outputs, epoch)

        epochs = jnp.arange(first_epoch, self.trainer.max_epochs, dtype=jnp.int32)
        carry, eval_metrics = jax.lax.scan(train_epoch, carry, epochs)
        return carry[0], eval_metrics, self.finish(carry)


def _drop_non_finite(
    previous: Any,
    state: Any,
    status: LoopStatus,
    metrics: Any,
    where: tuple[jax.Array, jax.Array],
) -> tuple[Any, LoopStatus]:
    """Stop at the step `where` (epoch, batch_idx) if its metrics are not finite.

    The state from before that step is kept, so that hooks and checkpoints never see NaNs.
    """
    finite = jnp.bool_(True)
    for leaf in jax.tree.leaves(metrics):
        finite &= jnp.all(jnp.isfinite(leaf))
    bad = ~finite
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
