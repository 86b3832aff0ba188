"""`EarlyStopping`: stop training, inside the compiled loop, once a metric reaches a threshold."""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp

from ._callback import JaxCallback


class EarlyStopping(JaxCallback):
    """Stop training once an evaluation metric crosses a threshold.

    Unlike Lightning's `EarlyStopping`, the decision is made by a jax function traced into the
    compiled loop (`should_stop`), not on the host: after the epoch whose evaluation meets the
    threshold, the remaining training steps become no-ops (a `jax.lax.cond` skips them), the
    state stays as it was, and later evaluations repeat the last one. The run still lasts
    `max_epochs` scan iterations (their length is fixed at compile time), but skipped steps
    cost almost nothing. After `fit`, `trainer.stopped_epoch` says at which epoch it stopped.

    With `fit_many`, training stops when every seed meets the threshold.

    Args:
        monitor: Key of the metric in the dict returned by `evaluate`.
        threshold: The value to reach.
        mode: `"max"` stops when the metric is at least `threshold`, `"min"` when it is at
            most `threshold`.

    Examples:
        >>> stopper = EarlyStopping(monitor="accuracy", threshold=0.9, mode="max")
        >>> bool(stopper.should_stop({"accuracy": jnp.float32(0.95)}))
        True
    """

    def __init__(self, monitor: str, threshold: float, mode: Literal["min", "max"] = "max") -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping(mode={mode!r}): expected 'min' or 'max'.")
        self.monitor = monitor
        self.threshold = threshold
        self.mode = mode

    def should_stop(self, eval_metrics: Any) -> jax.Array:
        """The traced decision: whether `eval_metrics[monitor]` has reached the threshold."""
        try:
            value = eval_metrics[self.monitor]
        except (KeyError, TypeError, IndexError) as error:
            raise KeyError(
                f"EarlyStopping(monitor={self.monitor!r}): `evaluate` returned no such metric; "
                f"it returned {jax.tree.structure(eval_metrics)}. Pass one of its keys."
            ) from error
        if self.mode == "max":
            return jnp.asarray(value >= self.threshold)
        return jnp.asarray(value <= self.threshold)
