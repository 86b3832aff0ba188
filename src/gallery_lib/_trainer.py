"""`JaxTrainer`: trains a `JaxModule` with its whole loop compiled by `jax.jit`."""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._callbacks import HOOKS_IN_LOOP, JaxCallback, host_view, overrides
from ._checkpoint import module_name, restore_checkpoint
from ._early_stopping import EarlyStopping
from ._loggers import LoggerCallback
from ._module import JaxModule, Metrics, TrainState
from ._progress import ProgressBarCallback, from_lightning_progress_bar

PROTOCOL_METHODS = ("init_train_state", "get_batch", "training_step", "evaluate")


class LoopStatus(NamedTuple):
    """What the loop carries besides the training state: hook order and stop requests."""

    token: jax.Array
    """Threads the host callbacks one after the other (each returns it plus one)."""
    stopped: jax.Array
    """True once training stopped early: the remaining steps do nothing."""
    stop_epoch: jax.Array
    """The epoch at whose end an `EarlyStopping` callback stopped training, or -1."""
    nan_epoch: jax.Array
    """The epoch of the first step with a non-finite training metric, or -1."""
    nan_step: jax.Array
    """The step (`batch_idx`) of that first non-finite training metric, or -1."""


class JaxTrainer:
    """Trains a [`JaxModule`][gallery_lib.JaxModule] with the whole loop compiled by `jax.jit`.

    `fit(module, rng)` traces the module's four methods once and runs this loop as one XLA
    program (hooks are the callbacks' methods, run on the host through `io_callback`):

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

    Many seeds at once: [`fit_many`][gallery_lib.JaxTrainer.fit_many] vmaps the module's
    methods over a batch of keys and keeps the hooks outside the vmap, so callbacks, loggers
    and the progress bar see every seed at once (arrays with a leading seed axis; loggers log
    the mean over seeds). `jax.vmap(lambda rng: trainer.fit(module, rng))` also works, but
    only on a trainer with no callbacks, no logger, no progress bar and no `detect_nan` (host
    hooks would run once per seed; `fit` raises a `ValueError` saying so); `fit_many` is the
    supported way.

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
            `-O3`) compiled the PPO example's loop about 30% faster with the same run time.
            An unknown option fails at the first `fit`, naming it.

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
    ) -> None:
        self.max_epochs = _positive_int("max_epochs", max_epochs)
        self.training_steps_per_epoch = _positive_int(
            "training_steps_per_epoch", training_steps_per_epoch
        )
        self.callbacks: list[JaxCallback] = _resolve_callbacks(
            callbacks, logger, enable_progress_bar
        )
        self.detect_nan = detect_nan
        self.shard_batch = shard_batch
        self.compiler_options = dict(compiler_options or {})
        self.start_epoch = 0
        """The first epoch of the current run (above 0 when resumed from a checkpoint)."""
        self.restored_eval_history: Any = None
        """Evaluation metrics of the epochs before `start_epoch`, read from the checkpoint."""
        self.stopped_epoch: int | None = None
        """The epoch at whose end an `EarlyStopping` callback stopped the last run, if any."""
        self._fitting_many = False
        self._programs: dict[tuple[Any, ...], tuple[Any, Callable[..., Any]]] = {}

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
        if isinstance(rng, jax.core.Tracer):
            self._check_traceable(ckpt_path)
            program = self._compiled_program(module, module)
            train_state, eval_metrics, _ = program(rng, None, 0)
            return train_state, eval_metrics
        loop_module = SeedBatchedModule(module, self._seed_mesh(rng)) if many else module
        self.start_epoch, self.restored_eval_history, self.stopped_epoch = 0, None, None
        self._fitting_many = many
        restored = None
        if ckpt_path is not None:
            restored, self.restored_eval_history, self.start_epoch = restore_checkpoint(
                ckpt_path,
                module_name(module, many),
                loop_module.init_train_state,
                rng,
                self.max_epochs,
            )
        try:
            for callback in self.callbacks:
                callback.setup(self, module, "fit")
            program = self._compiled_program(loop_module, module)
            train_state, eval_metrics, status = program(rng, restored, self.start_epoch)
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
        if many:
            eval_metrics = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), eval_metrics)
        return train_state, eval_metrics

    def _seed_mesh(self, rngs: jax.Array) -> Mesh | None:
        """The mesh `fit_many` splits the seeds over, or None to keep them on one device."""
        devices = jax.devices()
        if not self.shard_batch or len(devices) == 1 or len(rngs) % len(devices):
            return None
        return Mesh(np.array(devices), ("data",))

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

    def _compiled_program(self, loop_module: Any, module: Any) -> Any:
        """The jitted run for `module`, made once so that later fits reuse its compilation."""
        key = (id(module), type(loop_module), getattr(loop_module, "mesh", None))
        if key not in self._programs or self._programs[key][0] is not module:
            run = functools.partial(self._program, loop_module, module)
            # The first epoch is static: it sets the length of the scan over epochs.
            program = jax.jit(run, static_argnums=2, compiler_options=self.compiler_options)
            self._programs[key] = (module, program)
        return self._programs[key][1]

    def _program(
        self, loop_module: Any, module: Any, rng: jax.Array, restored: Any, first_epoch: int
    ) -> tuple[Any, Any, LoopStatus]:
        """The traced training run: what `fit` compiles (see the class docstring)."""
        hooks = {
            name: [cb for cb in self.callbacks if overrides(cb, name)] for name in HOOKS_IN_LOOP
        }
        stoppers = [cb for cb in self.callbacks if isinstance(cb, EarlyStopping)]
        guarded = self.detect_nan or bool(stoppers)
        want_epoch_metrics = bool(hooks["on_train_epoch_end"])
        many = isinstance(loop_module, SeedBatchedModule)
        # fit_many splits the seeds in SeedBatchedModule; fit splits the batch along the axis
        # the module declares (`batch_axis`, default 0; None keeps batches whole).
        shard = self._sharder(None if many else getattr(module, "batch_axis", 0))

        def emit(name: str, status: LoopStatus, *args: Any) -> LoopStatus:
            if not hooks[name]:
                return status

            def call_hooks(token: np.ndarray, *host_args: Any) -> np.ndarray:
                for callback in hooks[name]:
                    getattr(callback, name)(self, module, *host_args)
                return np.asarray(token + 1, dtype=np.int32)

            token = io_callback(
                call_hooks, jax.ShapeDtypeStruct((), jnp.int32), status.token, *host_view(args)
            )
            return status._replace(token=token)

        def step(state: Any, batch_idx: jax.Array, status: LoopStatus, epoch: jax.Array) -> Any:
            state, batch = loop_module.get_batch(state, batch_idx)
            batch = shard(batch)
            status = emit("on_train_batch_start", status, state, batch, batch_idx, epoch)
            state, metrics = loop_module.training_step(batch_idx, state, batch)
            status = emit("on_train_batch_end", status, state, metrics, batch_idx, epoch)
            return state, status, metrics

        state = loop_module.init_train_state(rng) if restored is None else restored
        minus_one = jnp.int32(-1)
        status = LoopStatus(jnp.int32(0), jnp.bool_(False), minus_one, minus_one, minus_one)
        status = emit("on_fit_start", status, state)
        metrics_shape = jax.eval_shape(lambda s: step(s, jnp.int32(0), status, 0)[2], state)

        def train_step(carry: Any, batch_idx: jax.Array, epoch: jax.Array) -> Any:
            state, status = carry
            if not guarded:
                state, status, metrics = step(state, batch_idx, status, epoch)
                return (state, status), (metrics if want_epoch_metrics else None)

            def skip(state: Any, status: LoopStatus) -> Any:
                zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metrics_shape)
                return state, status, zeros

            ran, previous = ~status.stopped, state
            state, status, metrics = jax.lax.cond(
                status.stopped, skip, lambda s, st: step(s, batch_idx, st, epoch), state, status
            )
            if self.detect_nan:
                finite = jnp.bool_(True)
                for leaf in jax.tree.leaves(metrics):
                    finite &= jnp.all(jnp.isfinite(leaf))
                bad = ran & ~finite
                # Keep the last finite state, so that hooks and checkpoints never see NaNs.
                state = jax.lax.cond(bad, lambda: previous, lambda: state)
                status = status._replace(
                    stopped=status.stopped | bad,
                    nan_epoch=jnp.where(bad, epoch, status.nan_epoch),
                    nan_step=jnp.where(bad, batch_idx, status.nan_step),
                )
            return (state, status), ((metrics, ran) if want_epoch_metrics else None)

        def train_epoch(carry: Any, epoch: jax.Array) -> Any:
            state, status = carry
            status = emit("on_train_epoch_start", status, state, epoch)
            steps = jnp.arange(self.training_steps_per_epoch, dtype=jnp.int32)
            (state, status), outputs = jax.lax.scan(
                functools.partial(train_step, epoch=epoch), (state, status), steps
            )
            if want_epoch_metrics:
                status = emit(
                    "on_train_epoch_end", status, state, _epoch_mean(outputs, guarded), epoch
                )
            eval_metrics = loop_module.evaluate(state)
            status = emit("on_validation_end", status, state, eval_metrics, epoch)
            if stoppers:
                stop = jnp.any(jnp.stack([jnp.all(s.should_stop(eval_metrics)) for s in stoppers]))
                status = status._replace(
                    stop_epoch=jnp.where(stop & ~status.stopped, epoch, status.stop_epoch),
                    stopped=status.stopped | stop,
                )
            return (state, status), eval_metrics

        epochs = jnp.arange(first_epoch, self.max_epochs, dtype=jnp.int32)
        (state, status), eval_metrics = jax.lax.scan(train_epoch, (state, status), epochs)
        status = emit("on_fit_end", status, state)
        return state, eval_metrics, status

    def _sharder(self, axis: int | None) -> Callable[[Any], Any]:
        """Shard `axis` of each leaf over all devices (identity on one device or for None)."""
        devices = jax.devices()
        if not self.shard_batch or len(devices) == 1 or axis is None:
            return lambda tree: tree
        mesh = Mesh(np.array(devices), ("data",))

        def constrain(x: Any) -> Any:
            ndim = getattr(x, "ndim", 0)
            if ndim > axis and x.shape[axis] % len(devices) == 0:
                spec = PartitionSpec(*([None] * axis), "data")
                return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))
            return x

        return lambda tree: jax.tree.map(constrain, tree)


def _epoch_mean(outputs: Any, guarded: bool) -> Any:
    """The mean of the training metrics over the steps of an epoch that ran."""
    if not guarded:
        return jax.tree.map(lambda x: jnp.mean(x, axis=0), outputs)
    metrics, ran = outputs
    count = jnp.maximum(jnp.sum(ran), 1)

    def mean(x: jax.Array) -> jax.Array:
        weights = ran.reshape(ran.shape + (1,) * (x.ndim - 1)).astype(x.dtype)
        return jnp.sum(x * weights, axis=0) / count.astype(x.dtype)

    return jax.tree.map(mean, metrics)


class SeedBatchedModule:
    """A module whose methods are `module`'s, vmapped over a leading axis of seeds.

    With a `mesh`, each method runs under `jax.shard_map`: every device runs its share of the
    seeds on its own, with no communication between devices (seeds are independent, and a
    `while_loop` over vmapped seeds would otherwise reduce its condition across devices at
    every iteration). The hooks stay outside, in the program around the methods.
    """

    def __init__(self, module: Any, mesh: Mesh | None = None) -> None:
        self.module = module
        self.mesh = mesh

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
        # a 2-thread pool wait for each other forever, at 0% CPU. Unbatched, they run inline.
        init = functools.partial(jax.lax.map, self.module.init_train_state)
        return self._split(init, (0,))(rngs)

    def get_batch(self, train_state: Any, batch_idx: Any) -> Any:
        in_axes = (0, None)
        return self._split(jax.vmap(self.module.get_batch, in_axes), in_axes)(
            train_state, batch_idx
        )

    def training_step(self, batch_idx: Any, train_state: Any, batch: Any) -> Any:
        in_axes = (None, 0, 0)
        return self._split(jax.vmap(self.module.training_step, in_axes), in_axes)(
            batch_idx, train_state, batch
        )

    def evaluate(self, train_state: Any) -> Any:
        return self._split(jax.vmap(self.module.evaluate), (0,))(train_state)


def check_module(module: Any) -> None:
    """Raise `TypeError` naming the protocol methods that `module` lacks."""
    missing = [name for name in PROTOCOL_METHODS if not callable(getattr(module, name, None))]
    if missing:
        raise TypeError(
            f"{type(module).__qualname__} is not a JaxModule: it has no method "
            + ", ".join(f"`{name}`" for name in missing)
            + ". A JaxModule needs init_train_state(rng), get_batch(train_state, batch_idx), "
            "training_step(batch_idx, train_state, batch) and evaluate(train_state)."
        )


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"JaxTrainer({name}={value!r}): expected a positive integer (1 or more); "
            f"pass e.g. {name}=10."
        )
    return int(value)


def _resolve_callbacks(
    callbacks: Iterable[Any], logger: Any, enable_progress_bar: bool
) -> list[JaxCallback]:
    """The trainer's callbacks: the user's, Lightning's progress bars translated, plus
    a logger callback and the default progress bar."""
    resolved: list[JaxCallback] = []
    for callback in callbacks:
        if isinstance(callback, JaxCallback):
            resolved.append(callback)
            continue
        progress_bar = from_lightning_progress_bar(callback)
        if progress_bar is None:
            raise TypeError(
                f"JaxTrainer(callbacks=[..., {callback!r}]): expected JaxCallback instances "
                "(or Lightning's RichProgressBar / TQDMProgressBar). Lightning's other "
                "callbacks need Lightning's Trainer; subclass gallery_lib.JaxCallback instead."
            )
        resolved.append(progress_bar)
    if logger is not None and logger is not False:
        loggers = list(logger) if isinstance(logger, list | tuple) else [logger]
        resolved.append(LoggerCallback(loggers))
    if enable_progress_bar and not any(isinstance(cb, ProgressBarCallback) for cb in resolved):
        resolved.append(ProgressBarCallback())
    return resolved
