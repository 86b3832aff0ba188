"""Scaling out: start Jax on several processes, and average Jax gradients over DDP processes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import torch
import torch.distributed as dist

from .interop import jax_to_torch, torch_to_jax

Tree = TypeVar("Tree")


def _slurm_task_count() -> int:
    """The number of tasks of the enclosing `srun` step (1 outside SLURM or outside srun)."""
    if "SLURM_JOB_ID" not in os.environ or "SLURM_PROCID" not in os.environ:
        return 1
    return int(os.environ.get("SLURM_NTASKS", "1"))


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: int | Sequence[int] | None = None,
) -> bool:
    """Join this process to a multi-process Jax run (`jax.distributed.initialize`), if any.

    Call it first thing in a script, before any Jax computation. Then `jax.devices()` lists
    the devices of all processes, and a [`JaxTrainer`][gallery_lib.JaxTrainer] shards its
    batches over all of them: each process runs the same program on its own devices, and XLA
    exchanges what the sharded computation needs (the gradient all-reduce).

    Which run to join is found, in this order:

    1. from the arguments, when `coordinator_address` is given (every process passes the same
       address and `num_processes`, and its own `process_id`);
    2. from SLURM's environment, inside an `srun` step of more than one task: Jax's own SLURM
       detection reads the node list, the task count and the task id;
    3. otherwise there is nothing to join: one process, nothing is done.

    It also tells Lightning's `rank_zero_only` (used by its loggers and rank-zero prints) this
    process's index, so that loggers write from process 0 only.

    Args:
        coordinator_address: `host:port` of process 0, reachable from every process.
        num_processes: Number of processes in the run.
        process_id: This process's index, `0 <= process_id < num_processes`.
        local_device_ids: The local devices this process uses (default: all it sees).

    Returns:
        True when Jax runs multi-process (now or from an earlier call), False for one process.

    Raises:
        ValueError: `num_processes` or `process_id` given without `coordinator_address`.
        RuntimeError: Jax already computed something in this process (from Jax: call this
            function before any other Jax code).

    Examples:
        Outside SLURM and without arguments, a single process stays single:

        >>> initialize_distributed()
        False
    """
    if jax.distributed.is_initialized():
        return True
    if coordinator_address is not None:
        jax.distributed.initialize(
            coordinator_address, num_processes, process_id, local_device_ids=local_device_ids
        )
    elif any(arg is not None for arg in (num_processes, process_id)):
        raise ValueError(
            "initialize_distributed got num_processes/process_id but no coordinator_address; "
            "pass all three (coordinator_address='host:port' of process 0), or none of them "
            "inside a SLURM `srun` step."
        )
    elif _slurm_task_count() > 1:
        jax.distributed.initialize(local_device_ids=local_device_ids)
    else:
        return False
    from lightning.pytorch.utilities import rank_zero_only

    rank_zero_only.rank = jax.process_index()  # type: ignore[attr-defined]
    return True


def all_reduce_mean(tree: Tree) -> Tree:
    """Average a pytree of Jax arrays over the processes of `torch.distributed` (DDP).

    Lightning's DDP strategy averages the gradients of torch parameters during
    `loss.backward()`. A training step written in Jax (manual optimization) computes its
    gradients outside torch's autograd, so it averages them itself: between the jitted
    gradient function and the jitted optimizer update, call `grads = all_reduce_mean(grads)`.

    The leaves are copied into one flat torch buffer per dtype (Jax arrays are immutable and
    are never written to), all-reduced with one collective each (as DDP's buckets are), and
    returned as Jax arrays that view the reduced buffers. With one process (no process group,
    or a world of size 1) `tree` is returned unchanged, so the same code runs everywhere.

    Args:
        tree: A pytree of floating-point Jax arrays, identical in structure and shapes on
            every process (e.g. gradients).

    Returns:
        A pytree of the same structure: the mean of each leaf over the processes.

    Examples:
        Without a process group (one process) nothing changes:

        >>> import jax.numpy as jnp
        >>> grads = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
        >>> all_reduce_mean(grads) is grads
        True
    """
    leaves, treedef = jax.tree.flatten(tree)
    for leaf in leaves:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            raise TypeError(
                f"all_reduce_mean averages floating-point arrays; got a leaf of dtype "
                f"{jnp.result_type(leaf)} and shape {jnp.shape(leaf)}. Leave integer leaves "
                "out of the tree (e.g. `float0` gradients of integer inputs)."
            )
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return tree
    world = dist.get_world_size()
    groups: dict[Any, list[int]] = {}
    tensors = [jax_to_torch(jnp.asarray(leaf)) for leaf in leaves]
    for index, tensor in enumerate(tensors):
        groups.setdefault((tensor.dtype, tensor.device), []).append(index)
    reduced: list[Any] = [None] * len(leaves)
    for indices in groups.values():
        flat = torch.cat([tensors[i].reshape(-1) for i in indices])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat.div_(world)
        for i, part in zip(indices, flat.split([tensors[i].numel() for i in indices]), strict=True):
            reduced[i] = torch_to_jax(part.view(tensors[i].shape))
    return jax.tree.unflatten(treedef, reduced)
