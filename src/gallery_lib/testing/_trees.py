"""`to_numpy` and `assert_trees_equal`: compare training states, PRNG keys included."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def to_numpy(tree: Any) -> Any:
    """`tree` with every leaf a NumPy array; typed PRNG keys become their raw key data.

    Examples:
        >>> to_numpy({"w": jax.numpy.ones(2), "rng": jax.random.key(0)})["rng"]
        array([0, 0], dtype=uint32)
    """

    def leaf(x: Any) -> np.ndarray:
        if hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(x)

    return jax.tree.map(leaf, tree)


def assert_trees_equal(actual: Any, expected: Any) -> None:
    """Assert that two pytrees have the same structure and bit-identical leaves.

    Raises:
        AssertionError: naming the first leaf (by its path) that differs.

    Examples:
        >>> assert_trees_equal({"a": np.ones(2)}, {"a": np.ones(2)})
        >>> assert_trees_equal({"a": np.ones(2)}, {"a": np.zeros(2)})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        AssertionError: leaf ['a'] differs: ...
    """
    actual_leaves, actual_def = jax.tree_util.tree_flatten_with_path(to_numpy(actual))
    expected_leaves, expected_def = jax.tree_util.tree_flatten_with_path(to_numpy(expected))
    if actual_def != expected_def:
        raise AssertionError(f"tree structures differ: {actual_def} != {expected_def}")
    for (path, a), (_, e) in zip(actual_leaves, expected_leaves, strict=True):
        try:
            np.testing.assert_array_equal(a, e)
        except AssertionError as error:
            raise AssertionError(f"leaf {jax.tree_util.keystr(path)} differs: {error}") from None
