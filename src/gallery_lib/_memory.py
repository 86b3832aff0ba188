"""`keep_freed_memory`: stop glibc from handing freed memory back to the system at every step."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# mallopt(3) parameter numbers, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc refuses an mmap threshold above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit) in some versions.
_MMAP_THRESHOLD_CAP = 32 * 1024 * 1024


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library of this process if it is glibc (which has `mallopt`), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (only glibc has it)
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


def keep_freed_memory(limit_bytes: int = 1 << 30) -> bool:
    """Make glibc's `malloc` keep freed memory for reuse instead of returning it to the system.

    Jax on the CPU allocates the arrays a jitted call returns with `malloc`, and frees them when
    Python drops them. A training loop that does not donate its buffers (a
    [`FlaxModule`][gallery_lib.FlaxModule]'s forward hands the backward about 13 MB of
    residuals per step for the example CNN at batch 128; a jitted step that returns new
    parameters) allocates and frees the same sizes at every step. By default glibc serves
    large blocks with `mmap` and gives freed memory at the top of its heap back to the system
    (`M_MMAP_THRESHOLD`, `M_TRIM_THRESHOLD`, both adjusted as the program runs), so the next
    step takes the pages again from the kernel, one page fault at a time, each page zeroed:
    milliseconds per step. This function raises both thresholds (`mallopt(3)`), process-wide,
    so that freed blocks stay in the heap and the next step reuses them.

    The same can be done before Python starts with the environment variables
    `MALLOC_TRIM_THRESHOLD_` and `MALLOC_MMAP_THRESHOLD_`; an allocator such as jemalloc or
    tcmalloc (`LD_PRELOAD`) avoids the problem too. The cost: the process keeps up to
    `limit_bytes` of freed memory instead of returning it, so its resident size stays near its
    peak. Blocks larger than the mmap threshold still come from `mmap`.

    Args:
        limit_bytes: How much freed memory at the top of the heap glibc may keep, and the size
            up to which blocks come from the heap (capped at what glibc accepts, 32 MiB on some
            versions).

    Returns:
        True if the thresholds were set; False where the C library is not glibc (macOS,
        Windows, musl), where this does nothing.

    Raises:
        ValueError: `limit_bytes` is not positive or does not fit a C `int`.

    Examples:
        >>> import sys
        >>> keep_freed_memory() == sys.platform.startswith("linux")  # glibc Linux here
        True
    """
    if not 0 < limit_bytes < 2**31:
        raise ValueError(
            f"keep_freed_memory needs 0 < limit_bytes < 2**31 (a C int), got {limit_bytes}."
        )
    libc = _glibc()
    if libc is None:
        return False
    trimmed = libc.mallopt(_M_TRIM_THRESHOLD, limit_bytes)
    mapped = libc.mallopt(_M_MMAP_THRESHOLD, limit_bytes) or libc.mallopt(
        _M_MMAP_THRESHOLD, min(limit_bytes, _MMAP_THRESHOLD_CAP)
    )
    return bool(trimmed and mapped)
