"""`enable_compile_cache`: jax's persistent compilation cache, in the gallery's cache folder."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

from ._fetch import cache_dir
from ._pages import env_flag

COMPILE_CACHE_ENV_VAR = "GALLERY_COMPILE_CACHE"
"""Environment variable that turns the compilation cache off when set to ``0`` (or false/no/off)."""

# The settings this module last handed jax in this process, or None.
_applied: tuple[str, int, float] | None = None


def _versioned_folder(root: Path) -> Path:
    """The folder of compiled programs for this jax and jaxlib under the cache root `root`."""
    import jax
    import jaxlib

    return root / "xla" / f"{jax.__version__}-{jaxlib.__version__}"


def enable_compile_cache(
    enabled: bool = True,
    *,
    cache: str | os.PathLike[str] | None = None,
    max_size_bytes: int = 1 << 30,
    min_compile_time_s: float = 0.1,
) -> Path | None:
    """Keep the programs jax compiles on disk, so that the next process loads them instead.

    Jax compiles every jitted function with XLA the first time it meets it in a process; for a
    whole training loop that takes seconds (the PPO example's loop compiles for far longer
    than it trains). With jax's
    [persistent compilation cache](https://docs.jax.dev/en/latest/persistent_compilation_cache.html)
    on, the compiled program is written to a folder and later processes read it back instead
    (they still trace and lower it: a warm start is not free).
    This turns it on in `<cache>/xla/<jax version>-<jaxlib version>` (see
    [`cache_dir`][gallery_lib.cache_dir]), so a new jax never meets programs compiled by an
    old one, and returns that folder.

    - What is cached: programs that took at least `min_compile_time_s` to compile. Reading a
      program back costs a small part of its compile time at every size measured
      (`benchmarks/bench_compile_cache.py --thresholds` prints both), so any program saves
      most of its compile; but one that compiles in under 0.1 s saves under 0.1 s, and such
      programs are mostly jax's
      one-operation ones (a `jnp` call outside `jit`), one per shape and type: they would fill
      the folder with files that every write scans (jax lists the folder to evict).
    - The bound: beyond `max_size_bytes` the least recently used programs are deleted.
    - Several processes at once (the docs build, DDP ranks, two scripts): jax locks the folder
      (with `filelock`) around each read and write of a bounded cache; a program compiled by
      two processes at once is written once.
    - Results never change: a program read back is the executable XLA produced for the same
      program, backend and compile options, which the cache key covers.

    The environment variable `GALLERY_COMPILE_CACHE=0` turns it off whatever `enabled` says.
    Off, nothing is written, and a cache this function turned on earlier in the process is
    turned off; jax's own settings (`JAX_COMPILATION_CACHE_DIR`) are left as they are.
    To clear the cache, delete the folder.

    Args:
        enabled: Whether to use the cache (the examples' `--compile-cache` flag).
        cache: The gallery's cache root (see [`cache_dir`][gallery_lib.cache_dir]).
        max_size_bytes: The size bound of the folder, in bytes (default 1 GiB).
        min_compile_time_s: Programs that compile faster are not written (default 0.1 s).

    Returns:
        The folder of compiled programs, created; `None` when the cache is off.

    Raises:
        ValueError: `max_size_bytes` is not positive, `min_compile_time_s` is negative, or
            `GALLERY_COMPILE_CACHE` is not a boolean.

    Examples:
        >>> folder = enable_compile_cache()  # as every example does (None when turned off)
        >>> folder is None or (folder.parent.name == "xla" and folder.is_dir())
        True
    """
    global _applied
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    if not (enabled and env_flag(COMPILE_CACHE_ENV_VAR, default=True)):
        if _applied is not None:
            jax.config.update("jax_compilation_cache_dir", None)
            compilation_cache.reset_cache()
            _applied = None
        return None
    if max_size_bytes <= 0:
        raise ValueError(
            f"max_size_bytes must be positive, got {max_size_bytes}; to turn the cache off, "
            "call enable_compile_cache(False) or set GALLERY_COMPILE_CACHE=0."
        )
    if min_compile_time_s < 0:
        raise ValueError(f"min_compile_time_s must be >= 0 seconds, got {min_compile_time_s}.")
    folder = _versioned_folder(cache_dir(cache))
    folder.mkdir(parents=True, exist_ok=True)
    settings = (str(folder), int(max_size_bytes), float(min_compile_time_s))
    if settings != _applied:
        jax.config.update("jax_compilation_cache_dir", settings[0])
        jax.config.update("jax_compilation_cache_max_size", settings[1])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", settings[2])
        # -1: no size floor (compile time decides), and no filesystem-specific override.
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
        # jax opens its cache once per process; this makes it reopen with these settings.
        compilation_cache.reset_cache()
        _applied = settings
    return folder


@dataclasses.dataclass
class CompileCacheEvents:
    """What jax's persistent compilation cache did inside a
    [`watch_compile_cache`][gallery_lib.watch_compile_cache] block."""

    hits: int = 0
    """Programs read back from the cache instead of being compiled."""
    writes: int = 0
    """Programs compiled and written to the cache."""
    saved_s: float = 0.0
    """Compile time the hits saved, by jax's record: the compile time stored with each entry
    (in whole seconds) minus the time it took to read it."""


_watchers: list[CompileCacheEvents] = []
_listening = False


def _on_event(event: str, **_: object) -> None:
    for events in _watchers:
        if event == "/jax/compilation_cache/cache_hits":
            events.hits += 1
        elif event == "/jax/compilation_cache/cache_misses":
            events.writes += 1


def _on_duration(event: str, seconds: float, **_: object) -> None:
    if event == "/jax/compilation_cache/compile_time_saved_sec":
        for events in _watchers:
            events.saved_s += seconds


@contextlib.contextmanager
def watch_compile_cache() -> Iterator[CompileCacheEvents]:
    """Count what jax's persistent compilation cache does inside a `with` block.

    It listens to the events jax reports through
    [`jax.monitoring`](https://docs.jax.dev/en/latest/jax.monitoring.html).

    Yields:
        A [`CompileCacheEvents`][gallery_lib.CompileCacheEvents], filled in as the block runs.

    Examples:
        >>> with watch_compile_cache() as events:
        ...     pass
        >>> events
        CompileCacheEvents(hits=0, writes=0, saved_s=0.0)
    """
    global _listening
    import jax

    if not _listening:
        jax.monitoring.register_event_listener(_on_event)
        jax.monitoring.register_event_duration_secs_listener(_on_duration)
        _listening = True
    events = CompileCacheEvents()
    _watchers.append(events)
    try:
        yield events
    finally:
        _watchers.remove(events)
