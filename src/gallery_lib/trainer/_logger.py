"""`LoggerCallback`: sends the trainer's metrics to Lightning loggers (CSV, TensorBoard, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from ._callback import JaxCallback, TrainerView


def flatten_metrics(metrics: Any, prefix: str = "") -> dict[str, float]:
    """Flatten a pytree of metrics into `{"prefix/key/subkey": float}`.

    Leaves that are not scalars (e.g. one value per seed in `fit_many`) are averaged; a bare
    scalar is named by the prefix alone.

    Examples:
        >>> flatten_metrics({"loss": 0.5, "acc": {"top1": np.array([0.25, 0.75])}}, prefix="val/")
        {'val/acc/top1': 0.5, 'val/loss': 0.5}
        >>> flatten_metrics(np.float32(2.0), prefix="train/")
        {'train': 2.0}
    """
    flat, _ = jax.tree_util.tree_flatten_with_path(metrics)
    out = {}
    for path, value in flat:
        name = "/".join(_key_name(key) for key in path)
        out[prefix + name if name else prefix.rstrip("/") or "value"] = float(np.mean(value))
    return out


def _key_name(key: Any) -> str:
    for attribute in ("key", "name", "idx"):
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key)


class LoggerCallback(JaxCallback):
    """Logs the metrics of each epoch to Lightning loggers (what `JaxTrainer(logger=...)` adds).

    At each epoch end it calls `logger.log_metrics` with the mean training metrics of the epoch
    as `train/<name>` and the evaluation metrics as `val/<name>`, at step
    `(epoch + 1) * training_steps_per_epoch` (the number of training steps done), then
    `logger.save()`; at the end it calls `logger.finalize("success")`. The trainer's settings
    are logged once with `log_hyperparams`. Any object with those methods works, e.g.
    `lightning.pytorch.loggers.CSVLogger` or `TensorBoardLogger`.

    Args:
        loggers: The loggers to write to.

    Examples:
        >>> from lightning.pytorch.loggers import CSVLogger
        >>> import tempfile
        >>> callback = LoggerCallback([CSVLogger(tempfile.mkdtemp(), name="run")])
    """

    def __init__(self, loggers: Sequence[Any]) -> None:
        self.loggers = list(loggers)

    def setup(self, trainer: TrainerView, module: Any, stage: str) -> None:
        """Log the trainer's settings as hyper-parameters."""
        hparams = {
            "max_epochs": trainer.max_epochs,
            "training_steps_per_epoch": trainer.training_steps_per_epoch,
            "module": type(module).__qualname__,
        }
        for logger in self.loggers:
            logger.log_hyperparams(hparams)

    def on_train_epoch_end(
        self, trainer: TrainerView, module: Any, train_state: Any, metrics: Any, epoch: Any
    ) -> None:
        """Log the epoch's mean training metrics as `train/<name>`."""
        self._log(trainer, flatten_metrics(metrics, "train/"), epoch)

    def on_validation_end(
        self, trainer: TrainerView, module: Any, train_state: Any, eval_metrics: Any, epoch: Any
    ) -> None:
        """Log the evaluation metrics as `val/<name>` and save the loggers."""
        self._log(trainer, flatten_metrics(eval_metrics, "val/"), epoch)
        for logger in self.loggers:
            logger.save()

    def teardown(self, trainer: TrainerView, module: Any, stage: str) -> None:
        """Finalize the loggers (writes the CSV file, closes TensorBoard's writer)."""
        for logger in self.loggers:
            logger.finalize("success")

    def _log(self, trainer: TrainerView, metrics: dict[str, float], epoch: Any) -> None:
        step = (int(epoch) + 1) * trainer.training_steps_per_epoch
        for logger in self.loggers:
            logger.log_metrics({**metrics, "epoch": float(epoch)}, step=step)
