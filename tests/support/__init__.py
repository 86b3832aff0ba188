"""What the tests share: the project's paths, quick-mode subprocesses and quick site builds.

Imported as `from support import ...` (`tests/` is on pytest's `pythonpath`).
"""

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
    "build_site",
    "copy_project",
    "fake_distribution",
    "quick_env",
]
