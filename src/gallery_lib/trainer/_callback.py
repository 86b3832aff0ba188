"""`JaxCallback`: hooks that `JaxTrainer` calls from inside its compiled training loop."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

HOOKS_IN_LOOP = (
    "on_fit_start",
    "on_train_epoch_start",
    "on_train_batch_start",
    "on_train_batch_end",
    "on_train_epoch_end",
    "on_validation_end",
    "on_fit_end",
)
"""The hooks that run on the host from inside the jitted loop (through `io_callback`)."""

TRACED_HOOKS = ("should_stop",)
"""The hooks that are jax functions traced into the loop (they can steer training)."""


@runtime_checkable
class TrainerView(Protocol):
    """What a callback may read of the trainer that calls it (`JaxTrainer` provides it).

    Examples:
        >>> from gallery_lib import JaxTrainer
        >>> isinstance(JaxTrainer(2, 10, enable_progress_bar=False), TrainerView)
        True
    """

    @property
    def max_epochs(self) -> int:
        """The number of epochs of the run."""
        ...

    @property
    def training_steps_per_epoch(self) -> int:
        """The number of training steps in each epoch."""
        ...

    @property
    def start_epoch(self) -> int:
        """The first epoch of the current run (above 0 when resumed from a checkpoint)."""
        ...

    @property
    def restored_eval_history(self) -> Any:
        """Evaluation metrics of the epochs before `start_epoch` (read from the checkpoint)."""
        ...

    @property
    def fitting_many(self) -> bool:
        """Whether the run is a `fit_many` (every array has a leading axis of seeds)."""
        ...


class JaxCallback:
    """Base class of the callbacks of `JaxTrainer`: override the hooks you need.

    The hooks mirror Lightning's `Callback` hooks. `setup` and `teardown` run in Python before
    and after the compiled run; the others are called *from inside* the jitted loop, through
    `jax.experimental.io_callback`, in the order of the loop (the trainer chains them so that
    they run one after the other, even on several devices). Inside the loop:

    - the values they receive are arrays on the host (jax arrays on the CPU device, which
      `np.asarray` reads; typed PRNG keys as their raw data, `jax.random.key_data`);
    - `epoch` and `batch_idx` are NumPy integer scalars (`batch_idx` counts from 0 in each
      epoch, as in Lightning);
    - with [`JaxTrainer.fit_many`][gallery_lib.JaxTrainer.fit_many], every array has a leading
      axis of seeds;
    - their return value is ignored, and they cannot change the training state.

    One hook is different: `should_stop` is a jax function traced *into* the loop, so that it
    can steer training (it is how [`EarlyStopping`][gallery_lib.EarlyStopping] works).

    A hook that no callback overrides is not compiled into the loop at all, so the per-batch
    hooks cost nothing unless used (when used, they copy the batch to the host at every step).

    Examples:
        A callback that records the evaluation metrics of every epoch, while a module that
        halves its distance to 2 at each step is trained:

        >>> import jax, jax.numpy as jnp
        >>> from gallery_lib import JaxTrainer
        >>> class History(JaxCallback):
        ...     def __init__(self):
        ...         self.values = []
        ...
        ...     def on_validation_end(self, trainer, module, train_state, eval_metrics, epoch):
        ...         self.values.append((int(epoch), float(eval_metrics["error"])))
        >>> class Halving:
        ...     def init_train_state(self, rng):
        ...         return jnp.float32(0.0)
        ...
        ...     def get_batch(self, train_state, batch_idx):
        ...         return train_state, None
        ...
        ...     def training_step(self, batch_idx, train_state, batch):
        ...         return train_state + 0.5 * (2.0 - train_state), {}
        ...
        ...     def evaluate(self, train_state):
        ...         return {"error": 2.0 - train_state}
        >>> history = History()
        >>> trainer = JaxTrainer(3, 2, callbacks=[history], enable_progress_bar=False)
        >>> _ = trainer.fit(Halving(), jax.random.key(0))
        >>> history.values
        [(0, 0.5), (1, 0.125), (2, 0.03125)]
    """

    def setup(self, trainer: TrainerView, module: Any, stage: str) -> None:
        """Called in Python when `fit` begins, before the loop is compiled (`stage="fit"`)."""

    def on_fit_start(self, trainer: TrainerView, module: Any, train_state: Any) -> None:
        """Called inside the loop when training starts, with the initial (or restored) state."""

    def on_train_epoch_start(
        self, trainer: TrainerView, module: Any, train_state: Any, epoch: Any
    ) -> None:
        """Called inside the loop when an epoch starts, before its first batch."""

    def on_train_batch_start(
        self,
        trainer: TrainerView,
        module: Any,
        train_state: Any,
        batch: Any,
        batch_idx: Any,
        epoch: Any,
    ) -> None:
        """Called inside the loop when a batch is ready, before `training_step` sees it."""

    def on_train_batch_end(
        self,
        trainer: TrainerView,
        module: Any,
        train_state: Any,
        metrics: Any,
        batch_idx: Any,
        epoch: Any,
    ) -> None:
        """Called inside the loop when `training_step` has returned its state and metrics."""

    def on_train_epoch_end(
        self, trainer: TrainerView, module: Any, train_state: Any, metrics: Any, epoch: Any
    ) -> None:
        """Called inside the loop when an epoch's steps are done, with their mean metrics."""

    def on_validation_end(
        self, trainer: TrainerView, module: Any, train_state: Any, eval_metrics: Any, epoch: Any
    ) -> None:
        """Called inside the loop when `evaluate` has run at the end of an epoch."""

    def should_stop(self, eval_metrics: Any) -> jax.Array:
        """Traced into the loop after each evaluation: whether to stop training there.

        Unlike the other hooks it runs as jax code on the device, so it must be a pure jax
        function of `eval_metrics` (with `fit_many`, of every seed's; training stops once every
        seed wants to). When it returns true, the remaining steps are skipped (see
        [`EarlyStopping`][gallery_lib.EarlyStopping]). A callback that does not override it
        never stops training and adds nothing to the loop.
        """
        return jnp.bool_(False)

    def on_fit_end(self, trainer: TrainerView, module: Any, train_state: Any) -> None:
        """Called inside the loop when the last epoch is done, with the final state."""

    def teardown(self, trainer: TrainerView, module: Any, stage: str) -> None:
        """Called in Python when `fit` ends, after the run (also when it failed)."""


def is_key(x: Any) -> bool:
    """Whether `x` is a typed PRNG key array (`jax.random.key`), which NumPy cannot hold."""
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def host_view(tree: Any) -> Any:
    """`tree` with typed keys replaced by their raw data (`jax.random.key_data`)."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, tree)


def overrides(callback: JaxCallback, hook: str) -> bool:
    """Whether `callback` defines its own `hook` (a hook left as the no-op is not compiled)."""
    return getattr(type(callback), hook) is not getattr(JaxCallback, hook)
