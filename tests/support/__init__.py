"""What the tests share: the project's paths, quick-mode subprocesses, quick site builds
and a callback that interrupts training.

Imported as `from support import ...` (`tests/` is on pytest's `pythonpath`).
"""

from ._callbacks import Interrupt
from ._distributions import fake_distribution
from ._site import (
    EXAMPLES,
    ROOT,
    TESTS,
    build_site,
    copy_project,
    quick_env,
)

__all__ = [
    "EXAMPLES",
    "ROOT",
    "TESTS",
    "Interrupt",
    "build_site",
    "copy_project",
    "fake_distribution",
    "quick_env",
]
