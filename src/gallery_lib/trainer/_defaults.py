"""The trainer's callbacks: the user's, Lightning's progress bars translated, the defaults."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._callback import JaxCallback
from ._logger import LoggerCallback
from ._progress import ProgressBarCallback, from_lightning_progress_bar


def resolve_callbacks(
    callbacks: Iterable[Any], logger: Any, enable_progress_bar: bool
) -> list[JaxCallback]:
    """The trainer's callbacks: the user's, Lightning's progress bars translated, plus
    a logger callback and the default progress bar."""
    resolved: list[JaxCallback] = []
    for callback in callbacks:
        if isinstance(callback, JaxCallback):
            resolved.append(callback)
            continue
        progress_bar = from_lightning_progress_bar(callback)
        if progress_bar is None:
            raise TypeError(
                f"JaxTrainer(callbacks=[..., {callback!r}]): expected JaxCallback instances "
                "(or Lightning's RichProgressBar / TQDMProgressBar). Lightning's other "
                "callbacks need Lightning's Trainer; subclass gallery_lib.JaxCallback instead."
            )
        resolved.append(progress_bar)
    if logger is not None and logger is not False:
        loggers = list(logger) if isinstance(logger, list | tuple) else [logger]
        resolved.append(LoggerCallback(loggers))
    if enable_progress_bar and not any(isinstance(cb, ProgressBarCallback) for cb in resolved):
        resolved.append(ProgressBarCallback())
    return resolved
