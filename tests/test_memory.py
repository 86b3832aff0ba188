"""`keep_freed_memory`: freed blocks are reused instead of being taken again from the kernel."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from support import ROOT

from gallery_lib import keep_freed_memory

# Allocate and free four ~8 MB blocks (touched, so their pages are faulted in) six times, the
# way a training step's outputs come and go, and print the page faults of each round.
PROBE = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    if sys.argv[1] == "keep":
        from gallery_lib import keep_freed_memory
        assert keep_freed_memory()
    counts = []
    for _ in range(6):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        blocks = [np.ones(2_000_000 + 1024 * i, dtype=np.float32) for i in range(4)]
        del blocks
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(*counts)
    """
)


def page_faults_per_round(mode: str) -> list[int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env = {k: v for k, v in env.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [int(n) for n in out.stdout.split()]


def test_freed_blocks_are_reused_without_page_faults() -> None:
    default = page_faults_per_round("default")
    kept = page_faults_per_round("keep")
    # The first round faults the pages in either way (32 MB: at least 16 huge pages).
    assert default[0] > 16 and kept[0] > 16
    # With glibc's defaults every later round takes its pages from the kernel again...
    assert min(default[1:]) > default[0] // 2
    # ...after keep_freed_memory() the freed blocks are reused: next to no page faults.
    assert max(kept[1:]) < default[0] // 20


def test_bad_limits_are_refused() -> None:
    for limit in (0, -1, 2**31):
        with pytest.raises(ValueError, match="0 < limit_bytes < 2\\*\\*31"):
            keep_freed_memory(limit)
