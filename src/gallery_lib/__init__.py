"""gallery_lib: what the Jax + PyTorch Lightning gallery examples share.

The public names are re-exported here; they are implemented in small private modules.
"""

from ._cli import example_config as example_config
from ._cli import quick_mode as quick_mode
from ._module import JaxModule as JaxModule

__all__ = ["JaxModule", "example_config", "quick_mode"]
__version__ = "0.1.0"
