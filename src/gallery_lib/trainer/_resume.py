"""Resuming from a checkpoint: what a checkpoint records of a module, and reading it back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from ._callback import host_view, is_key


def module_name(module: Any, many: bool) -> str:
    """How checkpoints name a module (runs of `fit_many` hold a batch of seeds)."""
    name = type(module).__qualname__
    return f"fit_many[{name}]" if many else name


def describe(module_name: str, train_state: Any) -> dict[str, Any]:
    """What a checkpoint records to check that it fits a module: names, structure, shapes.

    The structure is the list of the leaves' paths (e.g. `.params['dense']['kernel']`), not the
    tree definition's text, which would hold the reprs of static fields (functions, optax
    transformations) and change from one process to the next.
    """
    leaves = jax.tree_util.tree_flatten_with_path(train_state)[0]
    return {
        "module": module_name,
        "structure": [jax.tree_util.keystr(path) for path, _ in leaves],
        "shapes": [[list(np.shape(x)), str(_dtype(x))] for _, x in leaves],
    }


def _dtype(leaf: Any) -> np.dtype[Any]:
    return np.dtype(leaf.dtype) if hasattr(leaf, "dtype") else np.asarray(leaf).dtype


def restore_checkpoint(
    directory: str | Path,
    module_name: str,
    init_train_state: Callable[[jax.Array], Any],
    rng: jax.Array,
    max_epochs: int,
) -> tuple[Any, Any, int]:
    """Read the latest checkpoint in `directory` for resuming.

    `init_train_state(rng)` gives the structure, shapes and dtypes expected (it is only traced).

    Returns:
        The training state, the evaluation metrics of the epochs done (stacked), and the
        first epoch still to run.

    Raises:
        FileNotFoundError: `directory` holds no checkpoint.
        ValueError: The checkpoint is from another module or a state of another structure or
            shape, or it is already at or past `max_epochs`.
    """
    directory = Path(directory).absolute()
    manager = ocp.CheckpointManager(directory)
    step = manager.latest_step()
    if step is None:
        raise FileNotFoundError(
            f"No checkpoint in {directory}: pass the `directory` of a CheckpointCallback "
            "that has saved at least one epoch, or ckpt_path=None to start from scratch."
        )
    meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    abstract_saved = jax.eval_shape(lambda key: host_view(init_train_state(key)), rng)
    expected = describe(module_name, abstract_saved)
    for field in ("module", "structure", "shapes"):
        if meta[field] != expected[field]:
            raise ValueError(
                f"The checkpoint {directory} (epoch {meta['epoch']}) does not fit this module: "
                f"its {field} is {_short(meta[field])}, but the module's training state has "
                f"{_short(expected[field])}. Resume with the module (and settings) that wrote "
                "it, or point ckpt_path at another directory."
            )
    start_epoch = int(meta["epoch"]) + 1
    if start_epoch >= max_epochs:
        raise ValueError(
            f"The checkpoint {directory} is at epoch {meta['epoch']}: a trainer with "
            f"max_epochs={max_epochs} has nothing left to do. Raise max_epochs to train on."
        )
    restored = manager.restore(
        step,
        args=ocp.args.Composite(
            train_state=ocp.args.StandardRestore(abstract_saved),
            eval_history=ocp.args.StandardRestore(),
        ),
    )
    manager.close()

    def rewrap_keys(key: jax.Array, saved: Any) -> Any:
        """The fresh state's structure (and static fields) with the saved leaves; typed keys
        wrapped back from their data (the fresh state's values are otherwise unused)."""
        fresh, treedef = jax.tree.flatten(init_train_state(key))
        leaves = [
            jax.random.wrap_key_data(data, impl=jax.random.key_impl(like)) if is_key(like) else data
            for data, like in zip(jax.tree.leaves(saved), fresh, strict=True)
        ]
        return jax.tree.unflatten(treedef, leaves)

    train_state = jax.jit(rewrap_keys)(rng, restored["train_state"])
    return train_state, restored["eval_history"], start_epoch


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) < 300 else text[:300] + "..."
