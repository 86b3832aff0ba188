"""gallery_lib: what the Jax + PyTorch Lightning gallery examples share.

The public names are re-exported here; they are implemented in small private modules.
"""

from ._callbacks import JaxCallback as JaxCallback
from ._checkpoint import CheckpointCallback as CheckpointCallback
from ._cli import example_config as example_config
from ._cli import quick_mode as quick_mode
from ._early_stopping import EarlyStopping as EarlyStopping
from ._loggers import LoggerCallback as LoggerCallback
from ._module import JaxModule as JaxModule
from ._progress import ProgressBarCallback as ProgressBarCallback
from ._trainer import JaxTrainer as JaxTrainer

__all__ = [
    "CheckpointCallback",
    "EarlyStopping",
    "JaxCallback",
    "JaxModule",
    "JaxTrainer",
    "LoggerCallback",
    "ProgressBarCallback",
    "example_config",
    "quick_mode",
]
__version__ = "0.1.0"
