"""gallery_lib: what the Jax + PyTorch Lightning gallery examples share.

The public names are re-exported here; they are implemented in small private modules.
"""

from ._cli import example_config as example_config
from ._cli import quick_mode as quick_mode
from ._fetch import cache_dir as cache_dir
from ._fetch import fetch_sdist as fetch_sdist
from ._fetch import sha256_of as sha256_of
from ._module import JaxModule as JaxModule

__all__ = [
    "JaxModule",
    "cache_dir",
    "example_config",
    "fetch_sdist",
    "quick_mode",
    "sha256_of",
]
__version__ = "0.1.0"
