"""`CheckpointCallback`: orbax checkpoints of the training state at the end of epochs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from ._callback import JaxCallback, TrainerView
from ._resume import describe, module_name


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

    def setup(self, trainer: TrainerView, module: Any, stage: str) -> None:
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
        self, trainer: TrainerView, module: Any, train_state: Any, eval_metrics: Any, epoch: Any
    ) -> None:
        """Save a checkpoint when this epoch is one to save."""
        self._history.append(eval_metrics)
        epoch = int(epoch)
        if (epoch + 1) % self.every_n_epochs and epoch + 1 != trainer.max_epochs:
            return
        history = jax.tree.map(lambda *xs: np.stack(xs), *self._history)
        meta = {"epoch": epoch, **describe(module_name(module, trainer.fitting_many), train_state)}
        assert self._manager is not None
        self._manager.save(
            epoch,
            args=ocp.args.Composite(
                train_state=ocp.args.StandardSave(train_state),
                eval_history=ocp.args.StandardSave(history),
                meta=ocp.args.JsonSave(meta),
            ),
        )

    def teardown(self, trainer: TrainerView, module: Any, stage: str) -> None:
        """Wait for pending writes and close the checkpoint manager."""
        if self._manager is not None:
            self._manager.wait_until_finished()
            self._manager.close()
            self._manager = None
