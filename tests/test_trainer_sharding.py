"""Batches sharded over 2 host devices give the result of 1 device (run in subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from support import ROOT

SCRIPT = textwrap.dedent(
    """
    import sys
    import jax
    import numpy as np
    from gallery_lib.testing import LinearRegressionProbe
    from gallery_lib import JaxCallback, JaxTrainer
    from gallery_lib.testing import to_numpy

    class Epochs(JaxCallback):
        def __init__(self):
            self.epochs = []

            self.batch_rows = 0

        def on_train_batch_start(self, trainer, module, train_state, batch, batch_idx, epoch):
            self.batch_rows += len(batch[0])  # the whole batch, gathered from the devices

        def on_validation_end(self, trainer, module, train_state, eval_metrics, epoch):
            self.epochs.append(int(epoch))

    epochs = Epochs()
    trainer = JaxTrainer(3, 10, callbacks=[epochs], enable_progress_bar=False)
    module = LinearRegressionProbe(batch_size=64)
    single = trainer.fit(module, jax.random.key(0))
    many = trainer.fit_many(module, jax.random.split(jax.random.key(0), 4))
    assert epochs.epochs == [0, 1, 2] * 2, epochs.epochs
    assert epochs.batch_rows == 3 * 10 * (64 + 4), epochs.batch_rows
    # fit_many shards the seed axis of the state: it ends spread over all devices.
    assert len(many[0].weights.sharding.device_set) == jax.device_count()
    if jax.device_count() == 2:
        # Data parallel: each device computes on half of the 64 rows, gradients are summed.
        bare = JaxTrainer(3, 10, enable_progress_bar=False)
        run = jax.jit(lambda rng: bare.fit(module, rng))
        hlo = run.lower(jax.random.key(0)).compile().as_text()
        assert "f32[32,3]" in hlo and "all-reduce" in hlo
    leaves = jax.tree.leaves(to_numpy((single, many)))
    np.savez(sys.argv[1], jax.device_count(), *leaves)
    """
)


def run(tmp_path: Path, devices: int, script: str = SCRIPT) -> list[np.ndarray]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])
    out = tmp_path / f"{devices}.npz"
    # A timeout: multi-device CPU runs have been seen to deadlock (see STACK_NOTES).
    result = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # on a hang, TimeoutExpired fails the test (and kills the child)
    if result.returncode:
        pytest.fail(f"the {devices}-device run failed:\n{result.stderr[-4000:]}")
    with np.load(out) as data:
        arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
    assert int(arrays[0]) == devices
    return arrays[1:]


def test_two_devices_give_the_one_device_result(tmp_path) -> None:
    one, two = run(tmp_path, 1), run(tmp_path, 2)
    assert len(one) == len(two)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


SEEDS_SCRIPT = textwrap.dedent(
    """
    import sys
    import jax
    import jax.numpy as jnp
    import numpy as np
    from gallery_lib import JaxCallback, JaxTrainer
    from gallery_lib.testing import to_numpy

    class OrthogonalProbe:
        # Initialized like PPO's flax networks, with orthogonal kernels: QR factorizations,
        # which vmapped over seeds are batched LAPACK calls that jaxlib splits over XLA's
        # intra-op threads (this used to hang on 2 forced devices and 2 cores).
        def init_train_state(self, rng):
            init = jax.nn.initializers.orthogonal()
            return sum(init(key, (64, 64)) for key in jax.random.split(rng, 6))

        def get_batch(self, train_state, batch_idx):
            return train_state, jnp.ones((8, 64))

        def training_step(self, batch_idx, train_state, batch):
            update = jnp.tanh(batch @ train_state).mean(0)
            return 0.9 * train_state + 0.01 * update, {"update": update.mean()}

        def evaluate(self, train_state):
            return {"trace": jnp.trace(train_state)}

    class Epochs(JaxCallback):
        def __init__(self):
            self.seen = []

        def on_validation_end(self, trainer, module, train_state, eval_metrics, epoch):
            self.seen.append(np.asarray(eval_metrics["trace"]).shape)

    epochs = Epochs()
    trainer = JaxTrainer(2, 3, callbacks=[epochs], enable_progress_bar=False)
    states, metrics = trainer.fit_many(OrthogonalProbe(), jax.random.split(jax.random.key(0), 8))
    assert epochs.seen == [(8,), (8,)], epochs.seen
    assert len(states.sharding.device_set) == jax.device_count()
    np.savez(sys.argv[1], jax.device_count(), *jax.tree.leaves(to_numpy((states, metrics))))
    """
)


def test_fit_many_with_a_batched_qr_init_does_not_hang_on_two_devices(tmp_path) -> None:
    """Regression: 8 seeds over 2 host devices of a module with an orthogonal init (as PPO's
    flax networks) used to deadlock at 0% CPU; now they finish and equal the 1-device run."""
    one, two = run(tmp_path, 1, SEEDS_SCRIPT), run(tmp_path, 2, SEEDS_SCRIPT)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
