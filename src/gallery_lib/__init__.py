"""gallery_lib: what the Jax + PyTorch Lightning gallery examples share.

The public names are re-exported here; they are implemented in small private modules.
"""

from ._compile_cache import CompileCacheEvents as CompileCacheEvents
from ._compile_cache import enable_compile_cache as enable_compile_cache
from ._compile_cache import watch_compile_cache as watch_compile_cache
from ._distributed import all_reduce_mean as all_reduce_mean
from ._distributed import initialize_distributed as initialize_distributed
from ._fetch import cache_dir as cache_dir
from ._fetch import fetch_sdist as fetch_sdist
from ._fetch import sha256_of as sha256_of
from ._memory import keep_freed_memory as keep_freed_memory
from ._pages import example_config as example_config
from ._pages import example_definitions as example_definitions
from ._pages import quick_mode as quick_mode
from .interop import FlaxModule as FlaxModule
from .interop import X64NarrowingWarning as X64NarrowingWarning
from .interop import jax_to_torch as jax_to_torch
from .interop import torch_to_jax as torch_to_jax
from .trainer import CheckpointCallback as CheckpointCallback
from .trainer import EarlyStopping as EarlyStopping
from .trainer import JaxCallback as JaxCallback
from .trainer import JaxModule as JaxModule
from .trainer import JaxTrainer as JaxTrainer
from .trainer import LoggerCallback as LoggerCallback
from .trainer import ProgressBarCallback as ProgressBarCallback
from .trainer import TrainerView as TrainerView

__all__ = [
    "CheckpointCallback",
    "CompileCacheEvents",
    "EarlyStopping",
    "FlaxModule",
    "JaxCallback",
    "JaxModule",
    "JaxTrainer",
    "LoggerCallback",
    "ProgressBarCallback",
    "TrainerView",
    "X64NarrowingWarning",
    "all_reduce_mean",
    "cache_dir",
    "enable_compile_cache",
    "example_config",
    "example_definitions",
    "fetch_sdist",
    "initialize_distributed",
    "jax_to_torch",
    "keep_freed_memory",
    "quick_mode",
    "sha256_of",
    "torch_to_jax",
    "watch_compile_cache",
]
__version__ = "0.1.0"
