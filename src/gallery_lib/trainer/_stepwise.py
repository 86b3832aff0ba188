"""`loop="steps"`: the training loop driven from Python, one compiled step at a time.

Why a second mode: XLA's CPU backend runs a convolutional network's training step many times
slower inside a loop (`lax.scan`, `fori_loop`, and `lax.cond` too) than as a program of its
own: the convolution gradients keep non-canonical layouts in a loop body (upstream
[jax#12868](https://github.com/jax-ml/jax/issues/12868); the "Using Jax with PyTorch
Lightning" page shows what it costs the gallery's CNN). Compiling the step on its own and
calling it from Python costs a dispatch per step instead, which is little beside a
convolutional step and a lot beside a small MLP's (PPO's steps), whose loop stays compiled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._loop import LoopStatus, TrainingLoop


class StepwiseRun:
    """The phases of a `TrainingLoop`, each compiled once, called in the loop's order.

    `run(arrays, rng, restored, first_epoch)` returns what `TrainingLoop.__call__` returns,
    computed by the same phases with the same values: the step's program is the body of the
    scan, compiled on its own. Skipped steps (after an early stop) are not run at all; the
    host learns that training stopped from the status, which it reads once per epoch (and,
    with `detect_nan`, after every step).

    Args:
        loop: The loop built around the module itself: says which phases run.
        traced_loop: Builds the same loop around the module rebuilt from `arrays` (the
            module's array fields, passed to each program as arguments, not as constants).
        compiler_options: XLA options, as for the scan.
    """

    def __init__(
        self,
        loop: TrainingLoop,
        traced_loop: Callable[[Any], TrainingLoop],
        compiler_options: dict[str, Any],
    ) -> None:
        self.loop = loop

        def jit(phase: str, **kwargs: Any) -> Any:
            return jax.jit(
                lambda arrays, *args: getattr(traced_loop(arrays), phase)(*args),
                compiler_options=compiler_options,
                **kwargs,
            )

        # The carry (state and status) is handed on and never read again: its buffers are
        # donated, so the step updates the parameters in place.
        self.start = self._synced(jit("start"), "on_fit_start")
        self.epoch_start = self._synced(
            jit("epoch_start", donate_argnums=1), "on_train_epoch_start"
        )
        self.step_program = jit("step", donate_argnums=1)
        self.step = self._synced(self.step_program, "on_train_batch_start", "on_train_batch_end")
        self.epoch_end = self._synced(
            jit("epoch_end", donate_argnums=1), "on_train_epoch_end", "on_validation_end"
        )
        self.finish = self._synced(jit("finish"), "on_fit_end")

    def _synced(self, phase: Any, *hooks: str) -> Any:
        """`phase`, which returns only once done when it calls hooks.

        Calls return before the program has run (jax dispatches asynchronously), so the next
        phase could be queued while this one waits in a hook; a hook that then runs a jax
        computation of its own would wait behind that next phase, which waits for this one:
        a deadlock. Phases without hooks stay asynchronous.
        """
        if not any(self.loop.hooks[hook] for hook in hooks):
            return phase

        def run_to_completion(*args: Any) -> Any:
            return jax.block_until_ready(phase(*args))

        return run_to_completion

    def __call__(self, arrays: Any, rng: jax.Array, restored: Any, first_epoch: int) -> Any:
        loop = self.loop
        carry = self.start(arrays, rng, restored)
        eval_metrics = []
        for epoch in range(first_epoch, loop.trainer.max_epochs):
            epoch_idx = np.int32(epoch)
            if loop.hooks["on_train_epoch_start"]:  # else the phase does nothing: not compiled
                carry = self.epoch_start(arrays, carry, epoch_idx)
            stopped = loop.guarded and bool(carry[1].stopped)
            outputs = []
            for batch_idx in range(loop.trainer.training_steps_per_epoch):
                if stopped:
                    outputs.append(self._skipped(arrays, carry))
                    continue
                carry, output = self.step(arrays, carry, np.int32(batch_idx), epoch_idx)
                outputs.append(output)
                stopped = loop.detect_nan and bool(carry[1].stopped)
            carry, metrics = self.epoch_end(arrays, carry, _stack(outputs), epoch_idx)
            eval_metrics.append(metrics)
        status: LoopStatus = self.finish(arrays, carry) if loop.hooks["on_fit_end"] else carry[1]
        return carry[0], _stack(eval_metrics), status

    def _skipped(self, arrays: Any, carry: Any) -> Any:
        """What a skipped step hands to the epoch mean: zeros, marked as not run."""
        shape = jax.eval_shape(self.step_program, arrays, carry, np.int32(0), np.int32(0))[1]
        return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shape)


def _stack(outputs: list[Any]) -> Any:
    """Per-step (or per-epoch) pytrees stacked along a new leading axis, as a scan stacks."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outputs)
