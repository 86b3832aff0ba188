"""`ProgressBarCallback`: a progress bar over epochs, updated from inside the compiled loop."""

from __future__ import annotations

import sys
from typing import Any, Literal

import jax

from ._callback import JaxCallback, TrainerView
from ._logger import flatten_metrics


class ProgressBarCallback(JaxCallback):
    """A progress bar over epochs that shows the latest evaluation metrics.

    `JaxTrainer` adds a rich one unless `enable_progress_bar=False`; Lightning's
    `RichProgressBar` and `TQDMProgressBar` given as callbacks become one of these. It moves
    once per epoch (a per-step bar would need a host call at every step, which slows small
    steps down); the bar appears before compilation starts, so its clock includes it.

    Args:
        backend: `"rich"` (a `rich.progress.Progress` bar) or `"tqdm"`.

    Examples:
        >>> bar = ProgressBarCallback(backend="tqdm")
    """

    def __init__(self, backend: Literal["rich", "tqdm"] = "rich") -> None:
        if backend not in ("rich", "tqdm"):
            raise ValueError(f"ProgressBarCallback(backend={backend!r}): use 'rich' or 'tqdm'.")
        self.backend = backend
        self._bar: Any = None
        self._task: Any = None

    def setup(self, trainer: TrainerView, module: Any, stage: str) -> None:
        """Show the bar, at the epoch the run starts from."""
        if jax.process_index() != 0:
            return  # several processes (jax.distributed): the hooks run in process 0 only
        description = f"{type(module).__qualname__}: epochs"
        if self.backend == "tqdm":
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=trainer.max_epochs, initial=trainer.start_epoch, desc=description
            )
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
        )
        self._task = self._bar.add_task(
            description, total=trainer.max_epochs, completed=trainer.start_epoch, metrics=""
        )
        self._bar.start()

    def on_validation_end(
        self, trainer: TrainerView, module: Any, train_state: Any, eval_metrics: Any, epoch: Any
    ) -> None:
        """Advance by one epoch and show the evaluation metrics."""
        metrics = flatten_metrics(eval_metrics)
        text = " ".join(f"{name}={value:.4g}" for name, value in list(metrics.items())[:4])
        if self.backend == "tqdm":
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.update(1)
        else:
            self._bar.update(self._task, advance=1, metrics=text)

    def teardown(self, trainer: TrainerView, module: Any, stage: str) -> None:
        """Close the bar."""
        if self._bar is None:
            return
        if self.backend == "tqdm":
            self._bar.close()
        else:
            self._bar.stop()
        self._bar = None


def from_lightning_progress_bar(callback: Any) -> ProgressBarCallback | None:
    """The bar that stands for Lightning's `RichProgressBar` or `TQDMProgressBar`, else None."""
    if "lightning.pytorch" not in sys.modules:
        return None  # then `callback` cannot be one of Lightning's (it would have imported it)
    from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar

    if isinstance(callback, RichProgressBar):
        return ProgressBarCallback("rich")
    if isinstance(callback, TQDMProgressBar):
        return ProgressBarCallback("tqdm")
    return None
