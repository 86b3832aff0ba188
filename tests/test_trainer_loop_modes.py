"""JaxTrainer's two loops: the compiled scan and the compiled step called from Python.

Both must call the same hooks with the same values, for one seed, many seeds, a resumed run,
early stopping and NaN detection; `auto` picks the steps for a convolutional module on the CPU
and the scan otherwise. Without convolutions the two loops end bit-identical. With them, XLA
compiles the convolution's gradient with other layouts inside the scan (the cause of its
slowness, jax#12868), which changes its rounding: the loops then agree to float32 rounding,
and each loop is bit-identical with itself across resumes and `fit_many`.
"""

from __future__ import annotations

import threading
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import struct

from gallery_lib import CheckpointCallback, EarlyStopping, JaxCallback, JaxTrainer
from gallery_lib.testing import LinearRegressionProbe, assert_trees_equal, to_numpy
from gallery_lib.trainer._trainer import module_arrays

EPOCHS, STEPS, BATCH = 3, 4, 8


class TinyCNN(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(nn.Conv(4, (3, 3), strides=2)(x))
        return nn.Dense(3)(x.reshape(x.shape[0], -1))


class ConvProbe(struct.PyTreeNode):
    """A small convolutional classifier that holds its data, shuffled by its key each step."""

    images: jax.Array
    labels: jax.Array

    def init_train_state(self, rng):
        params = TinyCNN().init(rng, self.images[:1])["params"]
        return {"params": params, "opt": optax.adam(1e-2).init(params), "rng": rng}

    def get_batch(self, state, batch_idx):
        rng, key = jax.random.split(state["rng"])
        idx = jax.random.choice(key, len(self.labels), (BATCH,), replace=False)
        return {**state, "rng": rng}, (self.images[idx], self.labels[idx])

    def loss(self, params, images, labels):
        logits = TinyCNN().apply({"params": params}, images)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    def training_step(self, batch_idx, state, batch):
        loss, grads = jax.value_and_grad(self.loss)(state["params"], *batch)
        updates, opt = optax.adam(1e-2).update(grads, state["opt"], state["params"])
        return {**state, "params": optax.apply_updates(state["params"], updates), "opt": opt}, {
            "loss": loss
        }

    def evaluate(self, state):
        return {"loss": self.loss(state["params"], self.images, self.labels)}


def conv_probe(size: int = 32) -> ConvProbe:
    rng = np.random.default_rng(0)
    images = rng.normal(size=(size, 8, 8, 1)).astype(np.float32)
    return ConvProbe(jnp.asarray(images), jnp.asarray(rng.integers(0, 3, size), jnp.int32))


class Recorder(JaxCallback):
    """Records every hook's name and arguments (host copies), in order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def on_fit_start(self, trainer, module, train_state):
        self.calls.append(("fit_start", train_state))

    def on_train_epoch_start(self, trainer, module, train_state, epoch):
        self.calls.append(("epoch_start", train_state, epoch))

    def on_train_batch_start(self, trainer, module, train_state, batch, batch_idx, epoch):
        self.calls.append(("batch_start", train_state, batch, batch_idx, epoch))

    def on_train_batch_end(self, trainer, module, train_state, metrics, batch_idx, epoch):
        self.calls.append(("batch_end", train_state, metrics, batch_idx, epoch))

    def on_train_epoch_end(self, trainer, module, train_state, metrics, epoch):
        self.calls.append(("epoch_end", train_state, metrics, epoch))

    def on_validation_end(self, trainer, module, train_state, eval_metrics, epoch):
        self.calls.append(("validation_end", train_state, eval_metrics, epoch))

    def on_fit_end(self, trainer, module, train_state):
        self.calls.append(("fit_end", train_state))


def trainer(loop: str, *callbacks, epochs: int = EPOCHS, **kwargs) -> JaxTrainer:
    return JaxTrainer(
        epochs, STEPS, callbacks=list(callbacks), enable_progress_bar=False, loop=loop, **kwargs
    )


def assert_trees_close(actual, expected) -> None:
    """Equal structure, values equal to float32 rounding (integers and keys exactly)."""

    def close(a, e) -> None:
        if np.issubdtype(np.asarray(a).dtype, np.floating):
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(a, e)

    jax.tree.map(close, to_numpy(actual), to_numpy(expected))


@pytest.mark.parametrize(
    ("module", "compare"),
    [(LinearRegressionProbe(), assert_trees_equal), (conv_probe(), assert_trees_close)],
    ids=["bit-identical without convolutions", "rounding-close with convolutions"],
)
def test_both_loops_call_the_same_hooks_with_the_same_values(module, compare) -> None:
    results, calls = {}, {}
    for loop in ("scan", "steps"):
        recorder = Recorder()
        rng = jax.random.key(3)
        t = trainer(loop, recorder)
        results[loop] = t.fit(module, rng)
        assert t.loop_used == loop
        assert not rng.is_deleted()  # the steps donate their own buffers, never the caller's
        calls[loop] = recorder.calls
    compare(results["steps"], results["scan"])
    assert [c[0] for c in calls["steps"]] == [c[0] for c in calls["scan"]]
    assert len(calls["scan"]) == 2 + EPOCHS * (3 + 2 * STEPS)
    compare(calls["steps"], calls["scan"])


def test_auto_takes_the_steps_for_a_convolution_on_the_cpu_and_the_scan_otherwise() -> None:
    assert jax.default_backend() == "cpu"
    cnn, probe = trainer("auto", epochs=1), trainer("auto", epochs=1)
    cnn.fit(conv_probe(), jax.random.key(0))
    probe.fit(LinearRegressionProbe(), jax.random.key(0))
    assert (cnn.loop_used, probe.loop_used) == ("steps", "scan")


def test_fit_many_agrees_in_both_loops() -> None:
    rngs = jax.random.split(jax.random.key(1), 2)
    probe = LinearRegressionProbe()
    assert_trees_equal(
        trainer("steps", Recorder()).fit_many(probe, rngs),
        trainer("scan", Recorder()).fit_many(probe, rngs),
    )
    scan = trainer("scan", Recorder()).fit_many(conv_probe(), rngs)
    steps = trainer("steps", Recorder()).fit_many(conv_probe(), rngs)
    assert steps[1]["loss"].shape == (2, EPOCHS)
    assert_trees_close(steps, scan)


@pytest.mark.parametrize("many", [False, True], ids=["fit", "fit_many"])
def test_a_run_resumed_in_steps_is_bit_identical_to_an_uninterrupted_one(
    tmp_path, many: bool
) -> None:
    module = conv_probe()
    rng = jax.random.split(jax.random.key(2), 2) if many else jax.random.key(2)
    fit = "fit_many" if many else "fit"
    expected = getattr(trainer("steps"), fit)(module, rng)
    getattr(trainer("steps", CheckpointCallback(tmp_path), epochs=1), fit)(module, rng)
    resumed_trainer = trainer("steps", CheckpointCallback(tmp_path))
    resumed = getattr(resumed_trainer, fit)(module, rng, ckpt_path=str(tmp_path))
    assert resumed_trainer.start_epoch == 1
    assert_trees_equal(resumed, expected)


def test_early_stopping_stops_at_the_same_epoch_in_both_loops() -> None:
    module = LinearRegressionProbe()
    runs = {}
    for loop in ("scan", "steps"):
        recorder = Recorder()
        t = trainer(loop, EarlyStopping("param_error", 1.0, mode="min"), recorder, epochs=6)
        runs[loop] = (t.fit(module, jax.random.key(0)), t.stopped_epoch, recorder.calls)
    assert runs["scan"][1] is not None and runs["scan"][1] < 5
    assert runs["steps"][1] == runs["scan"][1]
    assert_trees_equal(to_numpy(runs["steps"][0]), to_numpy(runs["scan"][0]))
    assert_trees_equal(runs["steps"][2], runs["scan"][2])


def test_nan_detection_names_the_same_step_in_both_loops() -> None:
    module = LinearRegressionProbe(learning_rate=50.0)
    messages = {}
    for loop in ("scan", "steps"):
        with pytest.raises(FloatingPointError) as error:
            trainer(loop, detect_nan=True).fit(module, jax.random.key(0))
        messages[loop] = str(error.value)
    assert "NaN or infinite at epoch" in messages["scan"]
    assert messages["steps"] == messages["scan"]


def test_a_module_s_arrays_are_arguments_of_the_program_not_constants() -> None:
    module = conv_probe(size=4096)  # 1 MiB of images
    arrays, rebuild = module_arrays(module)
    assert [a.shape for a in arrays] == [(4096, 8, 8, 1), (4096,)]
    assert rebuild(arrays) == module
    t = trainer("scan", epochs=1)
    program = t._compiled(module, False, None, "scan")
    text = program.lower(arrays, jax.random.key(0), None, 0).as_text()
    assert len(text) < 200_000, "the images were compiled into the program"


def test_an_unknown_loop_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"loop='fast'.*'auto', 'scan'.*'steps'"):
        JaxTrainer(1, 1, loop="fast")


def test_why_convolutions_round_differently_in_the_scan() -> None:
    """XLA:CPU computes a convolution's kernel gradient in other layouts in a loop body
    (jax#12868), which changes its rounding; the forward pass is unchanged. When this test
    fails, upstream fixed it: then both loops should be bit-identical for convolutions too,
    and `test_both_loops_call_the_same_hooks_with_the_same_values` can say so."""
    module = conv_probe()
    params = module.init_train_state(jax.random.key(0))["params"]
    grad = jax.grad(module.loss)
    top = jax.jit(grad)(params, module.images, module.labels)
    in_scan = jax.jit(
        lambda p: jax.lax.scan(
            lambda c, _: (c, grad(p, module.images, module.labels)), 0, None, length=2
        )[1]
    )(params)
    kernel = np.asarray(top["Conv_0"]["kernel"])
    kernel_in_scan = np.asarray(in_scan["Conv_0"]["kernel"][0])
    assert not np.array_equal(kernel, kernel_in_scan)
    np.testing.assert_allclose(kernel, kernel_in_scan, rtol=1e-5, atol=1e-7)


class ComputingHook(JaxCallback):
    """A hook that runs jax computations of its own, as a user's might."""

    def __init__(self) -> None:
        self.totals: list[float] = []

    def on_train_batch_end(self, trainer, module, train_state, metrics, batch_idx, epoch):
        self.totals.append(float(jnp.sum(jnp.asarray(metrics["loss"]) + 1.0)))

    def on_validation_end(self, trainer, module, train_state, eval_metrics, epoch):
        time.sleep(0.2)  # long enough for the loop to queue the next step meanwhile
        self.totals.append(float(jnp.mean(jnp.asarray(eval_metrics["loss"]))))


def test_hooks_may_compute_with_jax_while_the_steps_run() -> None:
    """Steps are dispatched asynchronously; a phase with hooks must finish before the next is
    queued, or a hook's own jax computation waits behind it forever (seen: a deadlock)."""
    hook = ComputingHook()
    done = threading.Event()

    def fit() -> None:
        trainer("steps", hook, epochs=6).fit(conv_probe(), jax.random.key(0))
        done.set()

    threading.Thread(target=fit, daemon=True).start()
    assert done.wait(timeout=300), "the steps loop hung in a hook"
    assert len(hook.totals) == 6 * (STEPS + 1)


def test_fit_many_in_steps_equals_each_seed_s_fit_bit_for_bit() -> None:
    """The steps loop unrolls the seeds (vmapped convolutions with per-seed weights become
    grouped convolutions, slow on the CPU), so each seed runs exactly what `fit` runs."""
    rngs = jax.random.split(jax.random.key(4), 2)
    states, metrics = trainer("steps").fit_many(conv_probe(), rngs)
    for seed in range(2):
        state, seed_metrics = trainer("steps").fit(conv_probe(), rngs[seed])
        assert_trees_equal(
            jax.tree.map(lambda x, i=seed: x[i], (states["params"], metrics)),
            (state["params"], seed_metrics),
        )
