"""`JaxTrainer`: trains a `JaxModule` with its whole loop compiled by `jax.jit`."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from ._callback import JaxCallback
from ._defaults import resolve_callbacks
from ._loop import LoopStatus, TrainingLoop
from ._module import JaxModule, Metrics, TrainState, check_module
from ._resume import module_name, restore_checkpoint
from ._seeds import SeedBatchedModule, batch_sharder, device_mesh, seed_mesh
from ._stepwise import StepwiseRun

LoopMode = Literal["auto", "scan", "steps"]


class JaxTrainer:
    """Trains a [`JaxModule`][gallery_lib.JaxModule] with its whole loop compiled by `jax.jit`.

    `fit(module, rng)` traces the module's four methods once and runs this loop compiled by
    XLA (hooks are the callbacks' methods, run on the host through `io_callback`):

    ```python
    state = module.init_train_state(rng)  # or restored from a checkpoint
    on_fit_start(state)
    for epoch in range(max_epochs):  # lax.scan
        on_train_epoch_start(state, epoch)
        for batch_idx in range(training_steps_per_epoch):  # lax.scan
            if stopped:  # with detect_nan or EarlyStopping: lax.cond
                continue
            state, batch = module.get_batch(state, batch_idx)
            batch = shard(batch, module.batch_axis)  # on several devices
            on_train_batch_start(state, batch, batch_idx, epoch)
            state, metrics = module.training_step(batch_idx, state, batch)
            on_train_batch_end(state, metrics, batch_idx, epoch)
            stopped |= detect_nan and not all_finite(metrics)
        on_train_epoch_end(state, mean_over_the_epoch(metrics), epoch)
        eval_metrics[epoch] = module.evaluate(state)
        on_validation_end(state, eval_metrics[epoch], epoch)  # log, save
        stopped |= early_stopping.should_stop(eval_metrics[epoch])
    on_fit_end(state)
    return state, eval_metrics  # eval_metrics: leading axis of max_epochs
    ```

    A module may hold arrays, such as a data set that `get_batch` cuts batches from: when it
    is a pytree (e.g. a `flax.struct.PyTreeNode`), its array fields are passed to the
    compiled program as arguments, not copied into it as constants.

    Many seeds at once: [`fit_many`][gallery_lib.JaxTrainer.fit_many] vmaps the module's
    methods over a batch of keys and keeps the hooks outside the vmap, so callbacks, loggers
    and the progress bar see every seed at once (arrays with a leading seed axis; loggers log
    the mean over seeds). `jax.vmap(lambda rng: trainer.fit(module, rng))` also works, but
    only on a trainer with no callbacks, no logger, no progress bar and no `detect_nan` (host
    hooks would run once per seed; `fit` raises a `ValueError` saying so); `fit_many` is the
    supported way.

    Two ways to run that loop (`loop`): as one compiled program, the scans above, with no
    Python between two steps (`"scan"`), or with each phase (the start, an epoch's start, one
    training step, an epoch's end, the end) compiled on its own and called from a Python loop
    (`"steps"`). The scan suits many small steps, such as PPO's; the steps suit convolutional
    networks on the CPU, where XLA runs a convolution's gradient many times slower inside a
    loop body than in a program of its own (upstream
    [jax#12868](https://github.com/jax-ml/jax/issues/12868)), so the dispatch a step costs
    from Python is cheap beside what it saves. In the steps, `fit_many` traces the module's
    methods once per seed instead of vmapping them (a vmapped convolution with per-seed
    weights is a grouped convolution, which XLA:CPU also runs slowly), so each seed's result
    equals its own `fit` bit for bit. Both call the same hooks in the same order
    with the same values. Their states are bit-identical for the same key, except for
    convolutions on the CPU: XLA computes a convolution's kernel gradient in other layouts
    inside a loop body (the slowness above), which rounds differently, so the two modes then
    agree to float32 rounding (each mode stays bit-identical with itself, resumed or not).

    Several devices: when `jax.device_count() > 1`, `fit` shards each batch along the axis
    the module names in an optional `batch_axis` attribute (default 0; leaves whose size
    there does not divide evenly stay whole; `batch_axis = None` keeps batches whole, e.g.
    for a time-major rollout that a scan walks through) over a one-axis mesh of all devices,
    and XLA partitions the rest of the step (data parallelism). `fit_many` instead splits
    the seeds: when their number divides evenly, each device runs its share of the seeds
    under `jax.shard_map`, independently (no communication between devices but for the
    hooks, whose arguments are gathered). The seeds' initial states are computed one after
    the other (`lax.map`): vmapped, batched LAPACK calls such as an orthogonal
    initializer's QR can deadlock XLA's CPU thread pool when it has few threads.

    Args:
        max_epochs: Number of epochs; `evaluate` runs after each one.
        training_steps_per_epoch: Number of `get_batch` + `training_step` calls per epoch.
        callbacks: [`JaxCallback`][gallery_lib.JaxCallback]s, called in this order. Lightning's
            `RichProgressBar` or `TQDMProgressBar` are accepted and replaced by a
            [`ProgressBarCallback`][gallery_lib.ProgressBarCallback] of the same kind.
        logger: A Lightning logger (`CSVLogger`, `TensorBoardLogger`, ...) or a list of them:
            the mean training metrics of each epoch are logged as `train/<name>` and the
            evaluation metrics as `val/<name>`, at step `(epoch + 1) * training_steps_per_epoch`.
        enable_progress_bar: Show a rich progress bar over epochs (unless `callbacks` has one).
        detect_nan: Check the training metrics at every step; on a NaN or infinity the state
            of that step is dropped (hooks and checkpoints keep the last finite one), the
            remaining steps are skipped and `fit` raises `FloatingPointError` naming the epoch
            and step.
        shard_batch: Use the devices when there are several: shard `fit`'s batches, split
            `fit_many`'s seeds.
        compiler_options: XLA options for the compiled loop, passed to `jax.jit`. The loop is
            one large program, so its compilation can take longer than a short run: on the
            CPU, `{"xla_backend_optimization_level": 2}` (LLVM's `-O2` instead of the default
            `-O3`) compiled the PPO example's loop faster with the same run time
            (`benchmarks/bench_ppo.py --compile-breakdown` measures it).
            An unknown option fails at the first `fit`, naming it.
        loop: `"scan"`, `"steps"` (see above), or `"auto"`: `"steps"` on the CPU when the
            compiled loop holds a convolution, else `"scan"` (the "Using Jax with PyTorch
            Lightning" page shows the measurements behind this choice). The mode of the last
            run is in `loop_used`. Inside a jax transformation (`jax.vmap` of `fit`) the loop
            is always the scan.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> class MeanEstimator:
        ...     def init_train_state(self, rng):
        ...         return {"mean": jnp.zeros(()), "rng": rng}
        ...
        ...     def get_batch(self, train_state, batch_idx):
        ...         rng, key = jax.random.split(train_state["rng"])
        ...         return {**train_state, "rng": rng}, 3.0 + jax.random.normal(key, (64,))
        ...
        ...     def training_step(self, batch_idx, train_state, batch):
        ...         grad = 2 * (train_state["mean"] - batch.mean())
        ...         return {**train_state, "mean": train_state["mean"] - 0.1 * grad}, {"grad": grad}
        ...
        ...     def evaluate(self, train_state):
        ...         return {"error": jnp.abs(train_state["mean"] - 3.0)}
        >>> trainer = JaxTrainer(
        ...     max_epochs=4, training_steps_per_epoch=25, enable_progress_bar=False
        ... )
        >>> train_state, eval_metrics = trainer.fit(MeanEstimator(), jax.random.key(0))
        >>> eval_metrics["error"].shape
        (4,)
        >>> bool(eval_metrics["error"].min() < 0.1)
        True
    """

    def __init__(
        self,
        max_epochs: int,
        training_steps_per_epoch: int,
        callbacks: Sequence[Any] = (),
        logger: Any = None,
        enable_progress_bar: bool = True,
        detect_nan: bool = False,
        shard_batch: bool = True,
        compiler_options: Mapping[str, Any] | None = None,
        loop: LoopMode = "auto",
    ) -> None:
        self.max_epochs = _positive_int("max_epochs", max_epochs)
        self.training_steps_per_epoch = _positive_int(
            "training_steps_per_epoch", training_steps_per_epoch
        )
        self.callbacks: list[JaxCallback] = resolve_callbacks(
            callbacks, logger, enable_progress_bar
        )
        self.detect_nan = detect_nan
        self.shard_batch = shard_batch
        self.compiler_options = dict(compiler_options or {})
        if loop not in ("auto", "scan", "steps"):
            raise ValueError(
                f"JaxTrainer(loop={loop!r}): expected 'auto', 'scan' (the whole run as one "
                "compiled program) or 'steps' (one compiled step, called from Python)."
            )
        self.loop = loop
        self.loop_used: Literal["scan", "steps"] | None = None
        """How the last run was driven: `"scan"` or `"steps"` (what `loop="auto"` chose)."""
        self.start_epoch = 0
        """The first epoch of the current run (above 0 when resumed from a checkpoint)."""
        self.restored_eval_history: Any = None
        """Evaluation metrics of the epochs before `start_epoch`, read from the checkpoint."""
        self.stopped_epoch: int | None = None
        """The epoch at whose end a callback's `should_stop` (e.g. `EarlyStopping`) stopped the
        last run, if any."""
        self._fitting_many = False
        self._programs: dict[tuple[Any, ...], tuple[Any, Any]] = {}
        self._auto_modes: dict[tuple[Any, ...], tuple[Any, str]] = {}

    @property
    def fitting_many(self) -> bool:
        """Whether the current (or last) run is a `fit_many` (arrays have a seed axis)."""
        return self._fitting_many

    def fit(
        self,
        module: JaxModule[TrainState, Any, Metrics],
        rng: jax.Array,
        ckpt_path: str | None = None,
    ) -> tuple[TrainState, Metrics]:
        """Train `module` from `rng`; return the final training state and evaluation metrics.

        Args:
            module: Any object with the four methods of [`JaxModule`][gallery_lib.JaxModule].
            rng: The key the training state is created from.
            ckpt_path: A checkpoint directory written by
                [`CheckpointCallback`][gallery_lib.CheckpointCallback]: training resumes from its
                latest epoch (the state is read from it; `rng` only gives its structure).

        Returns:
            The final training state and the pytree returned by `module.evaluate`, stacked
            over epochs (leading axis of length `max_epochs`).

        Raises:
            TypeError: `module` lacks one of the protocol's methods.
            ValueError: The checkpoint belongs to another module or state structure.
            FloatingPointError: `detect_nan` is on and a training metric was not finite.
        """
        return self._fit(module, rng, ckpt_path, many=False)

    def fit_many(
        self,
        module: JaxModule[TrainState, Any, Metrics],
        rngs: jax.Array,
        ckpt_path: str | None = None,
    ) -> tuple[TrainState, Metrics]:
        """Train one run per key in `rngs` at once (vmapped), in one compiled program.

        Each seed's result equals (up to float rounding of batched operations) the result of
        `fit(module, rngs[i])`. Callbacks see arrays with a leading seed axis; `EarlyStopping`
        stops when every seed meets its threshold; `detect_nan` stops all seeds at the first
        non-finite metric of any seed.

        Args:
            module: Any object with the four methods of [`JaxModule`][gallery_lib.JaxModule].
            rngs: A batch of keys, e.g. `jax.random.split(jax.random.key(0), 8)`.
            ckpt_path: As in `fit` (a checkpoint written by a `fit_many` run).

        Returns:
            The final training states and the evaluation metrics, every leaf with a leading
            axis of seeds (then, for the metrics, of epochs), as `jax.vmap` of `fit` would.

        Examples:
            A module that learns a constant (the seed only sets the starting point):

            >>> import jax, jax.numpy as jnp
            >>> class Constant:
            ...     def init_train_state(self, rng):
            ...         return jax.random.normal(rng)
            ...
            ...     def get_batch(self, train_state, batch_idx):
            ...         return train_state, jnp.float32(2.0)
            ...
            ...     def training_step(self, batch_idx, train_state, batch):
            ...         return train_state + 0.5 * (batch - train_state), {}
            ...
            ...     def evaluate(self, train_state):
            ...         return {"error": jnp.abs(train_state - 2.0)}
            >>> trainer = JaxTrainer(3, 10, enable_progress_bar=False)
            >>> rngs = jax.random.split(jax.random.key(0), 8)
            >>> states, eval_metrics = trainer.fit_many(Constant(), rngs)
            >>> states.shape, eval_metrics["error"].shape
            ((8,), (8, 3))
        """
        return self._fit(module, rngs, ckpt_path, many=True)

    def _fit(self, module: Any, rng: jax.Array, ckpt_path: str | None, many: bool) -> Any:
        check_module(module)
        mesh = seed_mesh(self.shard_batch, len(rng)) if many else device_mesh(self.shard_batch)
        if isinstance(rng, jax.core.Tracer):
            # Inside a jax transformation: the bare loop, traced into the caller's program.
            self._check_traceable(ckpt_path)
            train_state, eval_metrics, _ = self._loop(module, module, many, mesh)(rng, None, 0)
            return train_state, _seeds_first(eval_metrics, many)
        self.start_epoch, self.restored_eval_history, self.stopped_epoch = 0, None, None
        self._fitting_many = many
        restored = None
        if ckpt_path is not None:
            restored, self.restored_eval_history, self.start_epoch = restore_checkpoint(
                ckpt_path,
                module_name(module, many),
                _methods(module, many, mesh).init_train_state,
                rng,
                self.max_epochs,
            )
        arrays, _ = module_arrays(module)
        run = (arrays, rng, restored, self.start_epoch)
        self.loop_used = self._loop_mode(module, many, mesh, run)
        try:
            for callback in self.callbacks:
                callback.setup(self, module, "fit")
            program = self._compiled(module, many, mesh, self.loop_used)
            train_state, eval_metrics, status = program(*run)
            jax.block_until_ready((train_state, eval_metrics, status))
        finally:
            for callback in self.callbacks:
                callback.teardown(self, module, "fit")
        self._raise_on_nan(status)
        if int(status.stop_epoch) >= 0:
            self.stopped_epoch = int(status.stop_epoch)
        if self.restored_eval_history is not None:
            eval_metrics = jax.tree.map(
                lambda old, new: jnp.concatenate([jnp.asarray(old), new]),
                self.restored_eval_history,
                eval_metrics,
            )
        return train_state, _seeds_first(eval_metrics, many)

    def _loop(
        self, module: Any, traced: Any, many: bool, mesh: Any, unroll: bool = False
    ) -> TrainingLoop:
        """The training run of `module` (whose methods are called on `traced`, the module
        rebuilt inside the trace): over a batch of seeds split over `mesh` when `many`, else
        over batches sharded along the module's `batch_axis` (default 0) over `mesh`. With
        `unroll` (the steps loop), the seeds are unrolled rather than vmapped."""
        shard = batch_sharder(None if many else mesh, getattr(module, "batch_axis", 0))
        methods = _methods(traced, many, mesh, unroll)
        return TrainingLoop(self, module, methods, self.callbacks, self.detect_nan, shard)

    def _compiled(self, module: Any, many: bool, mesh: Any, mode: str) -> Any:
        """The jitted run of `module`, made once so that later fits reuse its compilation.

        It is called as `program(arrays, rng, restored, first_epoch)`: the module's array
        fields come in as arguments (see `module_arrays`).
        """
        key = (id(module), many, mesh, mode)
        if key not in self._programs or self._programs[key][0] is not module:
            _, rebuild = module_arrays(module)

            def traced_loop(arrays: Any) -> TrainingLoop:
                return self._loop(module, rebuild(arrays), many, mesh, unroll=mode == "steps")

            if mode == "steps":
                program: Any = StepwiseRun(
                    self._loop(module, module, many, mesh, unroll=True),
                    traced_loop,
                    self.compiler_options,
                )
            else:
                # The first epoch is static: it sets the length of the scan over epochs.
                program = jax.jit(
                    lambda arrays, *args: traced_loop(arrays)(*args),
                    static_argnums=3,
                    compiler_options=self.compiler_options,
                )
            self._programs[key] = (module, program)
        return self._programs[key][1]

    def _loop_mode(self, module: Any, many: bool, mesh: Any, run: tuple[Any, ...]) -> str:
        """The mode of this run: `loop`, or for `"auto"`, `"steps"` on the CPU when the
        program holds a convolution (jax#12868; see `_stepwise`), else `"scan"`.

        The scan program is traced to look for one; jit keeps that trace, so a run that then
        takes the scan does not trace it again.
        """
        if self.loop != "auto":
            return self.loop
        key = (id(module), many, mesh)
        if key not in self._auto_modes or self._auto_modes[key][0] is not module:
            mode = "scan"
            if jax.default_backend() == "cpu":
                jaxpr = self._compiled(module, many, mesh, "scan").trace(*run).jaxpr
                mode = "steps" if _has_convolution(jaxpr.jaxpr) else "scan"
            self._auto_modes[key] = (module, mode)
        return self._auto_modes[key][1]

    def _check_traceable(self, ckpt_path: str | None) -> None:
        """Inside `jax.vmap` or `jax.jit`, only the bare loop can run (see the class docstring)."""
        host_side = [type(cb).__name__ for cb in self.callbacks]
        if self.detect_nan:
            host_side.append("detect_nan=True")
        if ckpt_path is not None:
            host_side.append("ckpt_path")
        if host_side:
            raise ValueError(
                "JaxTrainer.fit was called inside a jax transformation (jax.vmap or jax.jit), "
                f"where {', '.join(host_side)} cannot work (hooks would run once per seed or at "
                "trace time, and errors cannot be raised). Use trainer.fit_many(module, rngs) "
                "to train many seeds with callbacks, or a JaxTrainer(..., callbacks=[], "
                "logger=None, enable_progress_bar=False) inside the transformation."
            )

    def _raise_on_nan(self, status: LoopStatus) -> None:
        if int(status.nan_epoch) >= 0:
            raise FloatingPointError(
                f"A training metric was NaN or infinite at epoch {int(status.nan_epoch)}, "
                f"step {int(status.nan_step)} (batch_idx): training stopped there. Look at "
                "the loss and the learning rate, or run that step outside jit to debug it."
            )


def module_arrays(module: Any) -> tuple[list[Any], Callable[[list[Any]], Any]]:
    """The array fields of a module that is a pytree, and how to rebuild it around others.

    The trainer passes these arrays to its compiled programs as arguments: closed over, they
    would be copied into the program as constants (a data set held by the module would make
    compilation slow and the program huge). Other leaves (Python numbers) and modules that
    are not pytrees stay as they are, compiled in as constants.

    Examples:
        >>> import jax.numpy as jnp
        >>> from flax import struct
        >>> class Data(struct.PyTreeNode):
        ...     images: jnp.ndarray
        ...     scale: float = 2.0
        >>> arrays, rebuild = module_arrays(Data(jnp.zeros(3)))
        >>> len(arrays), rebuild([jnp.ones(3)]).images.tolist()
        (1, [1.0, 1.0, 1.0])
    """
    leaves, treedef = jax.tree.flatten(module)
    positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, jax.Array | np.ndarray)]
    if not positions:
        return [], lambda arrays: module

    def rebuild(arrays: list[Any]) -> Any:
        new = list(leaves)
        for position, array in zip(positions, arrays, strict=True):
            new[position] = array
        return jax.tree.unflatten(treedef, new)

    return [leaves[i] for i in positions], rebuild


def _has_convolution(jaxpr: Any) -> bool:
    """Whether `jaxpr`, or any jaxpr nested in it (loop bodies, branches, calls), convolves."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            return True
        for value in eqn.params.values():
            for inner in value if isinstance(value, tuple | list) else (value,):
                inner = getattr(inner, "jaxpr", inner)  # a ClosedJaxpr holds a Jaxpr
                if hasattr(inner, "eqns") and _has_convolution(inner):
                    return True
    return False


def _methods(module: Any, many: bool, mesh: Any, unroll: bool = False) -> Any:
    """The module's methods as the loop calls them: batched over seeds (split over `mesh`)
    for `fit_many`, vmapped or, with `unroll`, one copy per seed; else the module itself."""
    return SeedBatchedModule(module, mesh, unroll) if many else module


def _seeds_first(eval_metrics: Any, many: bool) -> Any:
    """`fit_many`'s metrics with the seed axis first (the loop stacks epochs first)."""
    return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), eval_metrics) if many else eval_metrics


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"JaxTrainer({name}={value!r}): expected a positive integer (1 or more); "
            f"pass e.g. {name}=10."
        )
    return int(value)
