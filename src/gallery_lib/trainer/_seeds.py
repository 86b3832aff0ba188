"""Devices and seeds: a module's methods vmapped over seeds, and the shardings of the loop."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def device_mesh(enabled: bool) -> Mesh | None:
    """A one-axis mesh (`"data"`) of every device, or None when disabled or on one device."""
    devices = jax.devices()
    if not enabled or len(devices) == 1:
        return None
    return Mesh(np.array(devices), ("data",))


def seed_mesh(enabled: bool, seeds: int) -> Mesh | None:
    """The mesh `fit_many` splits its seeds over, or None to keep them on one device.

    The seeds are split only when their number divides evenly over the devices.
    """
    mesh = device_mesh(enabled)
    return None if mesh is None or seeds % mesh.size else mesh


def batch_sharder(mesh: Mesh | None, axis: int | None) -> Callable[[Any], Any]:
    """Shard `axis` of each leaf of a batch over `mesh` (the identity without mesh or axis).

    Leaves whose size along `axis` does not divide evenly over the devices stay whole.
    """
    if mesh is None or axis is None:
        return lambda tree: tree
    sharding = NamedSharding(mesh, PartitionSpec(*([None] * axis), "data"))

    def constrain(x: Any) -> Any:
        if getattr(x, "ndim", 0) > axis and x.shape[axis] % mesh.size == 0:
            return jax.lax.with_sharding_constraint(x, sharding)
        return x

    return lambda tree: jax.tree.map(constrain, tree)


class SeedBatchedModule:
    """A module whose methods are `module`'s, vmapped over a leading axis of seeds.

    With a `mesh`, each method runs under `jax.shard_map`: every device runs its share of the
    seeds on its own, with no communication between devices (seeds are independent, and a
    `while_loop` over vmapped seeds would otherwise reduce its condition across devices at
    every iteration). The hooks stay outside, in the program around the methods.
    """

    def __init__(self, module: Any, mesh: Mesh | None = None, unroll: bool = False) -> None:
        self.module = module
        self.mesh = mesh
        self.unroll = unroll

    def _batched(self, method: Callable[..., Any], in_axes: tuple[int | None, ...]) -> Any:
        """`method` over the seed axis: vmapped, or with `unroll`, traced once per seed.

        Unrolled, each seed runs its own copy of the method in the same program. The steps
        loop uses it for convolutions on the CPU: vmapped over seeds, a convolution with
        per-seed weights becomes a grouped convolution, which XLA:CPU runs many times slower
        than the seeds' convolutions one after the other.
        """
        if not self.unroll:
            return jax.vmap(method, in_axes)

        def unrolled(*args: Any) -> Any:
            batched = [arg for arg, axis in zip(args, in_axes, strict=True) if axis == 0]
            seeds = len(jax.tree.leaves(batched)[0])
            outputs = [
                method(
                    *(
                        jax.tree.map(lambda x, i=i: x[i], arg) if axis == 0 else arg
                        for arg, axis in zip(args, in_axes, strict=True)
                    )
                )
                for i in range(seeds)
            ]
            return jax.tree.map(lambda *xs: jnp.stack(xs), *outputs)

        return unrolled

    def _split(self, batched: Callable[..., Any], in_axes: tuple[int | None, ...]) -> Any:
        """`batched` (a function of seed-batched arguments), split over the mesh's devices."""
        if self.mesh is None:
            return batched
        specs = tuple(
            PartitionSpec() if axis is None else PartitionSpec("data") for axis in in_axes
        )
        # check_vma=False: the methods hold no collectives, and user code (a scan whose carry
        # starts from a constant) need not annotate which values vary across devices.
        return jax.shard_map(
            batched,
            mesh=self.mesh,
            in_specs=specs,
            out_specs=PartitionSpec("data"),
            check_vma=False,
        )

    def init_train_state(self, rngs: jax.Array) -> Any:
        # One seed after the other (`lax.map`), not vmapped: a vmapped initializer can hold
        # batched LAPACK calls (flax's orthogonal initializer is a QR factorization), which
        # jaxlib splits over XLA's CPU thread pool and then blocks a pool thread waiting for
        # the pieces; two of them at once (two host devices, or two independent layers) on
        # a 2-thread pool wait for each other forever, idle. Unbatched, they run inline.
        init = functools.partial(jax.lax.map, self.module.init_train_state)
        return self._split(init, (0,))(rngs)

    def get_batch(self, train_state: Any, batch_idx: Any) -> Any:
        in_axes = (0, None)
        return self._split(self._batched(self.module.get_batch, in_axes), in_axes)(
            train_state, batch_idx
        )

    def training_step(self, batch_idx: Any, train_state: Any, batch: Any) -> Any:
        in_axes = (None, 0, 0)
        return self._split(self._batched(self.module.training_step, in_axes), in_axes)(
            batch_idx, train_state, batch
        )

    def evaluate(self, train_state: Any) -> Any:
        return self._split(self._batched(self.module.evaluate, (0,)), (0,))(train_state)
