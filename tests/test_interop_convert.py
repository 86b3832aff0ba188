"""`torch_to_jax` / `jax_to_torch`: zero-copy where DLPack allows, containers kept, no narrowing."""

from __future__ import annotations

import collections
import dataclasses
import warnings
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from gallery_lib import X64NarrowingWarning, jax_to_torch, torch_to_jax


def test_contiguous_tensor_is_viewed_not_copied() -> None:
    tensor = torch.randn(4, 5)
    array = torch_to_jax(tensor)
    assert array.unsafe_buffer_pointer() == tensor.data_ptr()
    tensor.add_(1.0)  # the view sees torch's in-place writes
    np.testing.assert_array_equal(np.asarray(array), tensor.numpy())


def test_jax_array_is_viewed_not_copied() -> None:
    array = jnp.arange(12.0).reshape(3, 4)
    tensor = jax_to_torch(array)
    assert tensor.data_ptr() == array.unsafe_buffer_pointer()
    np.testing.assert_array_equal(tensor.numpy(), np.asarray(array))


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.ones(1).expand(3, 4),  # stride 0 (what `out.sum().backward()` hands over)
        lambda: torch.arange(12.0).reshape(3, 4)[:, ::2],  # sliced
        lambda: torch.arange(24.0).reshape(6, 4)[::2],  # every other row
        lambda: torch.arange(12.0).reshape(3, 4).t(),  # transposed
        lambda: torch.arange(4.0).reshape(2, 2).expand(3, 2, 2),  # broadcast on a new dim
    ],
    ids=["stride0", "sliced", "rows", "transposed", "broadcast"],
)
def test_non_compact_layouts_are_copied_correctly(make: Any) -> None:
    tensor = make()
    assert not tensor.is_contiguous()
    array = torch_to_jax(tensor)
    assert array.shape == tuple(tensor.shape)
    np.testing.assert_array_equal(np.asarray(array), tensor.numpy())


@pytest.mark.parametrize(
    "tensor",
    [
        torch.tensor(3.5),
        torch.empty(0, 3),
        torch.tensor([True, False]),
        torch.arange(6, dtype=torch.int32),
        torch.ones(2, dtype=torch.bfloat16),
        torch.ones(2, dtype=torch.float16),
        torch.ones(2, 3, requires_grad=True),
    ],
    ids=["scalar", "empty", "bool", "int32", "bfloat16", "float16", "requires_grad"],
)
def test_dtypes_and_shapes_round_trip(tensor: torch.Tensor) -> None:
    back = jax_to_torch(torch_to_jax(tensor))
    assert back.dtype == tensor.dtype
    assert back.shape == tensor.shape
    assert torch.equal(back, tensor.detach())


class Pair(NamedTuple):
    first: Any
    second: Any


@dataclasses.dataclass
class Inner:
    value: Any
    name: str = "inner"


@dataclasses.dataclass(frozen=True)
class Outer:
    inner: Inner
    items: list[Any]


@flax.struct.dataclass
class Struct:
    array: Any
    label: str = flax.struct.field(pytree_node=False, default="static")


def _same_structure(a: Any, b: Any, leaf: type) -> None:
    """`b` has the containers and keys (in order) of `a`, and a `leaf` for each tensor of `a`."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, leaf)
        np.testing.assert_array_equal(np.asarray(b), a.numpy())
        return
    if isinstance(a, np.ndarray):
        assert b is a
        return
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            _same_structure(a[key], b[key], leaf)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same_structure(x, y, leaf)
    elif dataclasses.is_dataclass(a):
        for field in dataclasses.fields(a):
            _same_structure(getattr(a, field.name), getattr(b, field.name), leaf)
    else:
        assert a == b


def _trees() -> dict[str, Any]:
    t = torch.arange(6.0).reshape(2, 3)
    default = collections.defaultdict(list, {"x": t})
    return {
        "tuple": (t, t + 1),
        "namedtuple": Pair(t, (t, None)),
        "list": [t, [t, 3, "text"]],
        "dict_int_keys": {2: t, 1: t * 2},
        "dict_mixed_keys": {"b": t, 1: t, (0, "k"): [t]},
        "ordered": collections.OrderedDict([("z", t), ("a", t)]),
        "defaultdict": default,
        "dataclass": Outer(Inner(t), [Inner(t, "second")]),
        "flax_struct": Struct(t, "kept"),
        "leaves": [None, 1, 2.5, "s", True, np.ones(2)],
    }


@pytest.mark.parametrize("kind", list(_trees()))
def test_containers_round_trip(kind: str) -> None:
    tree = _trees()[kind]
    as_jax = torch_to_jax(tree)
    _same_structure(tree, as_jax, jax.Array)
    back = jax_to_torch(as_jax)
    _same_structure(tree, back, torch.Tensor)
    if kind == "defaultdict":
        assert back.default_factory is list
    if kind == "flax_struct":
        assert back.label == "kept"


def test_containers_keep_zero_copy() -> None:
    t = torch.randn(3)
    tree = torch_to_jax({"a": (t, [t]), 0: Inner(t)})
    arrays = [tree["a"][0], tree["a"][1][0], tree[0].value]
    assert {a.unsafe_buffer_pointer() for a in arrays} == {t.data_ptr()}


@pytest.mark.parametrize("dtype", [torch.int64, torch.float64])
def test_64_bit_tensors_warn_when_x64_is_off(dtype: torch.dtype) -> None:
    tensor = torch.arange(3, dtype=dtype)
    with pytest.warns(X64NarrowingWarning, match="jax_enable_x64"):
        array = torch_to_jax(tensor)
    assert array.dtype.itemsize == 4
    with pytest.raises(TypeError, match="jax_enable_x64"):
        torch_to_jax({"labels": tensor}, on_narrowing="error")


def test_64_bit_tensors_are_kept_with_x64() -> None:
    tensor = torch.arange(3, dtype=torch.int64)
    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("error", X64NarrowingWarning)
        array = torch_to_jax(tensor)
        assert array.dtype == jnp.int64
        assert array.unsafe_buffer_pointer() == tensor.data_ptr()


def test_meta_tensor_is_refused() -> None:
    with pytest.raises(ValueError, match="'meta' device"):
        torch_to_jax(torch.empty(3, device="meta"))


def test_tracers_are_refused() -> None:
    with pytest.raises(TypeError, match=r"inside `jax\.jit`"):
        jax.jit(jax_to_torch)(jnp.ones(2))


def test_unaligned_memory_is_copied_by_jax() -> None:
    """Zero-copy needs 64-byte alignment: an offset view is copied, with the right values."""
    base = torch.arange(40.0)
    tensor = base[1:33]  # contiguous, but 4 bytes past an aligned address
    array = torch_to_jax(tensor)
    assert array.unsafe_buffer_pointer() != tensor.data_ptr()
    np.testing.assert_array_equal(np.asarray(array), tensor.numpy())
