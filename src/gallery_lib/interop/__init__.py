"""Torch <-> Jax interoperability: pytree conversion and flax networks as torch modules."""

from ._convert import X64NarrowingWarning as X64NarrowingWarning
from ._convert import jax_to_torch as jax_to_torch
from ._convert import torch_to_jax as torch_to_jax
from ._flax_module import FlaxModule as FlaxModule

__all__ = ["FlaxModule", "X64NarrowingWarning", "jax_to_torch", "torch_to_jax"]
