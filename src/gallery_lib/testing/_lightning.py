"""`quiet_lightning_trainer`: a Lightning `Trainer` for tests and benchmarks."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

QUIET = {
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
}
"""The settings that keep a Lightning `Trainer` from writing logs or checkpoints, or printing."""


def quiet_lightning_trainer(**kwargs: Any) -> pl.Trainer:
    """A Lightning `Trainer` that writes no logs or checkpoints and prints no bar or summary.

    Tests and benchmarks time or check what a `LightningModule` computes; the trainer's own
    output would only get in the way (and cost time).

    Args:
        **kwargs: Any `Trainer` argument; they win over the quiet settings (`QUIET`).

    Returns:
        The `Trainer`.

    Examples:
        >>> trainer = quiet_lightning_trainer(max_steps=2, accelerator="cpu")
        >>> trainer.logger is None, trainer.checkpoint_callback is None
        (True, True)
    """
    return pl.Trainer(**{**QUIET, **kwargs})
