"""End-to-end Jax training: `JaxTrainer` compiles the whole loop of a `JaxModule`.

One module a job: the protocol (`_module`), the trainer (`_trainer`), the compiled loop
(`_loop`), seeds and devices (`_seeds`), the callback base and what callbacks may read of the
trainer (`_callback`), resuming (`_resume`), and one module per built-in callback.
"""

from ._callback import JaxCallback as JaxCallback
from ._callback import TrainerView as TrainerView
from ._checkpoint import CheckpointCallback as CheckpointCallback
from ._early_stopping import EarlyStopping as EarlyStopping
from ._logger import LoggerCallback as LoggerCallback
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
    "TrainerView",
]
