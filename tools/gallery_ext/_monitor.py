"""Watch each example while mkdocs-gallery runs it: time, peak memory and a timeout.

mkdocs-gallery offers two documented extension points that are called around example code:
`reset_modules` (callables run before each example) and `show_memory` given as a callable
(`call_memory(func) -> (memory_mb, func())`, run around each code block). `ExampleMonitor`
provides both, so nothing of mkdocs-gallery is patched.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


class ExampleTimeoutError(TimeoutError):
    """Raised inside an example that ran longer than its time budget."""


@dataclasses.dataclass
class Measure:
    """What one run of an example cost."""

    seconds: float = 0.0
    """Time spent executing the example's code blocks."""
    peak_mb: float = 0.0
    """Highest resident memory of the build process while the example ran, in MiB."""


def resident_mb() -> float:
    """The resident memory of this process in MiB (Linux `/proc`; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        scale = 2**20 if sys.platform == "darwin" else 2**10
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


class _PeakSampler:
    """Samples the resident memory in a thread while a block runs."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = resident_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, resident_mb())

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, resident_mb())


class ExampleMonitor:
    """Measures every example mkdocs-gallery executes and stops the ones that overrun.

    Args:
        timeout: Seconds one example may spend in its code blocks, in total. The block running
            when the budget is spent is interrupted with `ExampleTimeoutError` (through
            `SIGALRM`, so only when the build runs in the main thread, as `mkdocs build` and
            `mkdocs serve` do; elsewhere the example fails after the block that overran).
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.current: Path | None = None
        self.measures: dict[Path, Measure] = {}

    def reset_module(self, gallery_conf: dict[str, Any], file: Path | None) -> None:
        """mkdocs-gallery `reset_modules` entry: an example (or a folder, `file=None`) starts."""
        if file is not None:
            self.current = Path(file)
            self.measures[self.current] = Measure()

    def call_memory(self, func: Callable[[], T]) -> tuple[float, T]:
        """mkdocs-gallery `show_memory` callable: run one code block of the current example."""
        example = self.current
        if example is None:
            return 0.0, func()
        measure = self.measures[example]
        remaining = self.timeout - measure.seconds
        if remaining <= 0:
            raise ExampleTimeoutError(self._message(example))
        start = time.perf_counter()
        try:
            with _PeakSampler() as sampler, self._alarm(example, remaining):
                result = func()
        finally:
            measure.seconds += time.perf_counter() - start
        measure.peak_mb = max(measure.peak_mb, sampler.peak)
        if measure.seconds > self.timeout:
            raise ExampleTimeoutError(self._message(example))
        return sampler.peak, result

    def _message(self, example: Path) -> str:
        return (
            f"{example.name} ran longer than its timeout of {self.timeout:g} s and was stopped. "
            "Make its docs-build defaults cheaper, or raise the limit with `extra: gallery: "
            "timeout:` in mkdocs.yml or the GALLERY_TIMEOUT environment variable."
        )

    def _alarm(self, example: Path, seconds: float) -> _Alarm:
        return _Alarm(seconds, self._message(example))


class _Alarm:
    """Raise `ExampleTimeoutError` after `seconds`, in the main thread only (else a no-op)."""

    def __init__(self, seconds: float, message: str) -> None:
        self.seconds = seconds
        self.message = message
        self.active = threading.current_thread() is threading.main_thread() and hasattr(
            signal, "setitimer"
        )
        self._previous: Any = None

    def _fire(self, signum: int, frame: FrameType | None) -> None:
        raise ExampleTimeoutError(self.message)

    def __enter__(self) -> _Alarm:
        if self.active:
            self._previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
