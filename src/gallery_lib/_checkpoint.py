"""`CheckpointCallback`: orbax checkpoints at epoch ends, and the restore that resumes a run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from ._callbacks import JaxCallback, host_view, is_key


class CheckpointCallback(JaxCallback):
    """Save the training state with orbax at the end of epochs, to resume training later.

    Each checkpoint (one orbax step per saved epoch, in `directory`) holds the training state,
    the evaluation metrics of every epoch so far, and a description of the module and of the
    state's structure, so that resuming into another module or another shape fails clearly.
    Resume with `trainer.fit(module, rng, ckpt_path=directory)`: the run continues from the
    latest checkpoint and ends bit-identical to a run that was never interrupted (training
    must then get all its randomness from keys in the training state, as a `JaxModule` should).

    The state is copied to the host and written synchronously at each saved epoch, from inside
    the compiled loop, so save every few epochs when the state is large.

    Args:
        directory: Where the checkpoints go (created if needed).
        every_n_epochs: Save after every `every_n_epochs`-th epoch (and always after the last).
        max_to_keep: Keep only the newest `max_to_keep` checkpoints (`None` keeps all).
        overwrite: Delete the checkpoints of the epochs this run will write, when `directory`
            already has some (otherwise `fit` refuses to start).

    Examples:
        >>> import tempfile
        >>> checkpoints = CheckpointCallback(tempfile.mkdtemp(), every_n_epochs=2, max_to_keep=3)
    """

    def __init__(
        self,
        directory: str | Path,
        every_n_epochs: int = 1,
        max_to_keep: int | None = None,
        overwrite: bool = False,
    ) -> None:
        if every_n_epochs < 1:
            raise ValueError(
                f"CheckpointCallback(every_n_epochs={every_n_epochs}): expected 1 or more."
            )
        self.directory = Path(directory).absolute()
        self.every_n_epochs = every_n_epochs
        self.max_to_keep = max_to_keep
        self.overwrite = overwrite
        self._manager: ocp.CheckpointManager | None = None
        self._history: list[Any] = []

    def setup(self, trainer: Any, module: Any, stage: str) -> None:
        """Open the checkpoint directory; start from the restored metrics when resuming."""
        if jax.process_count() > 1:
            raise NotImplementedError(
                f"CheckpointCallback cannot save a run of {jax.process_count()} processes "
                "(jax.distributed): the trainer's hooks run in process 0 only, while orbax "
                "expects every process to take part in a save, so the run would hang. Train "
                "without it, or save the returned state with orbax from every process."
            )
        options = ocp.CheckpointManagerOptions(
            max_to_keep=self.max_to_keep, enable_async_checkpointing=False, create=True
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)
        self._history = []
        existing = [step for step in self._manager.all_steps() if step >= trainer.start_epoch]
        if existing and not self.overwrite:
            raise FileExistsError(
                f"CheckpointCallback: {self.directory} already holds checkpoints of epochs "
                f"{sorted(existing)}, which this run would not replace (orbax skips steps that "
                "exist). Resume from them with fit(..., ckpt_path=...), choose another "
                "directory, or pass CheckpointCallback(..., overwrite=True)."
            )
        for step in existing:
            self._manager.delete(step)
        if trainer.restored_eval_history is not None:
            history = trainer.restored_eval_history
            for epoch in range(trainer.start_epoch):
                self._history.append(jax.tree.map(lambda x, e=epoch: np.asarray(x[e]), history))

    def on_validation_end(
        self, trainer: Any, module: Any, train_state: Any, eval_metrics: Any, epoch: Any
    ) -> None:
        """Save a checkpoint when this epoch is one to save."""
        self._history.append(eval_metrics)
        epoch = int(epoch)
        if (epoch + 1) % self.every_n_epochs and epoch + 1 != trainer.max_epochs:
            return
        history = jax.tree.map(lambda *xs: np.stack(xs), *self._history)
        meta = {"epoch": epoch, **describe(module_name(module, trainer._fitting_many), train_state)}
        assert self._manager is not None
        self._manager.save(
            epoch,
            args=ocp.args.Composite(
                train_state=ocp.args.StandardSave(train_state),
                eval_history=ocp.args.StandardSave(history),
                meta=ocp.args.JsonSave(meta),
            ),
        )

    def teardown(self, trainer: Any, module: Any, stage: str) -> None:
        """Wait for pending writes and close the checkpoint manager."""
        if self._manager is not None:
            self._manager.wait_until_finished()
            self._manager.close()
            self._manager = None


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
