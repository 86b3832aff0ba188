"""Conversion of tensors and whole pytrees between torch and jax, zero-copy through DLPack.

The leaves are converted with `torch-jax-interop`; this module adds what it lacks: walking any
container (tuples, named tuples, lists, dicts with any keys, dataclasses, registered pytree
nodes such as flax structs), copying only the tensors DLPack rejects, refusing tensors on a
device jax cannot see, and never narrowing 64-bit dtypes silently.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import jax
import torch
from torch_jax_interop.to_torch import jax_to_torch_tensor

T = TypeVar("T")

OnNarrowing = Literal["warn", "error"]
"""What `torch_to_jax` does with a 64-bit tensor while `jax_enable_x64` is off."""

_WIDE_DTYPES = {
    torch.float64: "float32",
    torch.int64: "int32",
    torch.complex128: "complex64",
    torch.uint64: "uint32",
}


class X64NarrowingWarning(UserWarning):
    """A 64-bit torch tensor became a 32-bit jax array because `jax_enable_x64` is off."""


def _x64_enabled() -> bool:
    return bool(jax.config.read("jax_enable_x64"))


def _jax_platforms() -> set[str]:
    return {device.platform for device in jax.devices()}


def _check_device(tensor: torch.Tensor) -> None:
    device_type = tensor.device.type
    if device_type == "cpu":
        return
    if device_type == "meta":
        raise ValueError(
            f"Cannot convert a tensor of shape {tuple(tensor.shape)} on the 'meta' device to jax: "
            "a meta tensor has a shape but no values yet. Materialise it first (for a module: "
            "`module.to_empty(device='cpu')` then load a state_dict)."
        )
    wanted = {"cuda": "gpu", "xla": "tpu"}.get(device_type, device_type)
    platforms = _jax_platforms()
    if wanted not in platforms and not (wanted == "gpu" and "cuda" in platforms):
        raise ValueError(
            f"Cannot convert a tensor on torch device '{tensor.device}' to jax: jax only sees "
            f"{jax.devices()}. Move the tensor with `.cpu()`, or install the jax build for that "
            "accelerator."
        )


def _narrowing(tensor: torch.Tensor, on_narrowing: OnNarrowing) -> bool:
    """Warn (or raise) if jax will narrow this tensor's dtype; True when it will."""
    narrow = _WIDE_DTYPES.get(tensor.dtype)
    if narrow is None or _x64_enabled():
        return False
    message = (
        f"A torch {tensor.dtype} tensor of shape {tuple(tensor.shape)} becomes a jax {narrow} "
        "array because 64-bit types are disabled in jax. Enable them with "
        "`jax.config.update('jax_enable_x64', True)` (or the JAX_ENABLE_X64=1 environment "
        f"variable), or cast the tensor yourself (e.g. `.to(torch.{narrow})`)."
    )
    if on_narrowing == "error":
        raise TypeError(message)
    warnings.warn(message, X64NarrowingWarning, stacklevel=4)
    return True


def tensor_to_jax(tensor: torch.Tensor, on_narrowing: OnNarrowing = "warn") -> jax.Array:
    """Convert one tensor: a zero-copy view when DLPack allows it, else a compact copy."""
    tensor = tensor.detach()
    _check_device(tensor)
    narrows = _narrowing(tensor, on_narrowing)
    if tensor.is_conj() or tensor.is_neg():
        tensor = tensor.resolve_conj().resolve_neg()
    if not tensor.is_contiguous():
        # DLPack in jax rejects broadcast (stride-0) and sliced layouts: copy only those.
        tensor = tensor.contiguous()
    if not narrows:
        return jax.dlpack.from_dlpack(tensor)
    with warnings.catch_warnings():
        # jax canonicalises 64-bit dtypes with a warning of its own; ours said it first.
        warnings.simplefilter("ignore", UserWarning)
        return jax.dlpack.from_dlpack(tensor)


def array_to_torch(array: jax.Array) -> torch.Tensor:
    """Convert one jax array to a torch tensor sharing its memory."""
    if isinstance(array, jax.core.Tracer):
        raise TypeError(
            "Cannot convert a traced jax value to torch: `jax_to_torch` was called inside "
            "`jax.jit`, `jax.grad` or `jax.vmap`. Convert concrete arrays outside the "
            "transformed function."
        )
    if not isinstance(array.sharding, jax.sharding.SingleDeviceSharding):
        raise ValueError(
            f"Cannot convert a jax array sharded over {len(array.devices())} devices to one "
            "torch tensor; gather it first (e.g. `jax.device_get` or `array.addressable_data(0)`)."
        )
    return jax_to_torch_tensor(array)


def _map_tree(fn: Callable[[Any], Any], tree: Any, leaf_type: type | tuple[type, ...]) -> Any:
    if isinstance(tree, leaf_type):
        return fn(tree)
    if isinstance(tree, Mapping):
        items = [(key, _map_tree(fn, value, leaf_type)) for key, value in tree.items()]
        if isinstance(tree, dict) and type(tree) is not dict:
            # OrderedDict, defaultdict and friends: copy (keeping their own state), then refill.
            out = tree.copy()
            out.clear()
            out.update(items)
            return out
        return type(tree)(items) if type(tree) is not dict else dict(items)
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_map_tree(fn, value, leaf_type) for value in tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map_tree(fn, value, leaf_type) for value in tree)
    children, treedef = jax.tree_util.tree_flatten(tree, is_leaf=lambda node: node is not tree)
    if not (treedef.num_leaves == 1 and treedef.num_nodes == 1):
        # A registered pytree node (flax struct, optax state...): only its data fields change.
        return jax.tree_util.tree_unflatten(
            treedef, [_map_tree(fn, child, leaf_type) for child in children]
        )
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        changes = {
            field.name: _map_tree(fn, getattr(tree, field.name), leaf_type)
            for field in dataclasses.fields(tree)
            if field.init
        }
        return dataclasses.replace(tree, **changes)
    return tree


def torch_to_jax(tree: T, *, on_narrowing: OnNarrowing = "warn") -> T:
    """Convert every torch tensor in `tree` to a jax array, sharing memory where DLPack allows.

    Containers keep their type: tuples, named tuples, lists, dicts with any keys (their order
    kept), dataclasses (nested ones stay dataclasses) and registered pytree nodes such as flax
    structs. Other leaves (numbers, strings, `None`, numpy arrays) are returned unchanged.

    A contiguous tensor becomes a jax array over the *same* memory (no copy); a broadcast
    (stride-0), sliced or transposed tensor is copied into a compact one first, because jax's
    DLPack import rejects those layouts. Gradients are detached. Jax on the CPU also copies a
    tensor whose memory is not aligned to 64 bytes: torch's own allocations are, but a tensor
    made with `torch.from_numpy` may not be (`tensor.clone()` gives an aligned one).

    Args:
        tree: A tensor, or any nest of containers holding tensors.
        on_narrowing: What to do with a float64/int64/complex128/uint64 tensor while
            `jax_enable_x64` is off (jax would make it 32-bit): `"warn"` (an
            `X64NarrowingWarning`, then convert) or `"error"` (a `TypeError`).

    Returns:
        The same structure with jax arrays in place of the tensors.

    Raises:
        ValueError: A tensor is on a device jax cannot see (a GPU with CPU-only jax, 'meta').
        TypeError: A 64-bit tensor with x64 off and `on_narrowing="error"`.

    Examples:
        >>> import torch
        >>> x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
        >>> batch = torch_to_jax({"x": x, 0: (x[0], [x.sum()])})
        >>> batch["x"].shape, batch[0][1][0].item()
        ((2, 3), 15.0)
        >>> batch["x"].unsafe_buffer_pointer() == x.data_ptr()  # a view, no copy
        True
    """
    return _map_tree(lambda tensor: tensor_to_jax(tensor, on_narrowing), tree, torch.Tensor)


def jax_to_torch(tree: T) -> T:
    """Convert every jax array in `tree` to a torch tensor sharing its memory (zero-copy).

    Containers keep their type, as in [`torch_to_jax`][gallery_lib.torch_to_jax]. jax arrays are
    always compact, so no copy is ever needed. Keep in mind that jax treats its arrays as
    immutable: write into the returned tensors only if no jax code uses the arrays again.

    Args:
        tree: A jax array, or any nest of containers holding jax arrays.

    Returns:
        The same structure with torch tensors in place of the arrays.

    Raises:
        TypeError: Called on a traced value (inside `jax.jit` / `jax.grad`).
        ValueError: An array is sharded over several devices.

    Examples:
        >>> import jax.numpy as jnp
        >>> params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
        >>> tensors = jax_to_torch(params)
        >>> tensors["w"].sum().item(), tensors["b"].dtype
        (4.0, torch.float32)
    """
    return _map_tree(array_to_torch, tree, jax.Array)
