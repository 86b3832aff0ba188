"""Checkpoints at epoch ends, and resuming a run bit-identically."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from trainer_probe import LinearRegressionProbe

from gallery_lib import CheckpointCallback, JaxCallback, JaxTrainer
from gallery_lib._callbacks import host_view
from gallery_lib._checkpoint import restore_checkpoint

EPOCHS, STEPS = 4, 5


class Interrupt(JaxCallback):
    """Stops the run by raising when `epoch` starts, as a crash or a kill would."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, module, train_state, epoch):
        if epoch == self.epoch:
            raise KeyboardInterrupt(f"interrupted at epoch {epoch}")


def trainer(*callbacks: JaxCallback) -> JaxTrainer:
    return JaxTrainer(EPOCHS, STEPS, callbacks=list(callbacks), enable_progress_bar=False)


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """A run that saved epochs 0 and 1, then crashed when epoch 2 started."""
    directory = tmp_path_factory.mktemp("checkpoints")
    with pytest.raises(Exception, match="interrupted at epoch 2"):
        trainer(CheckpointCallback(directory), Interrupt(2)).fit(
            LinearRegressionProbe(), jax.random.key(7)
        )
    return directory


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(interrupted_run) -> None:
    module = LinearRegressionProbe()
    expected = trainer().fit(module, jax.random.key(7))
    resumed_trainer = trainer(CheckpointCallback(interrupted_run))
    resumed = resumed_trainer.fit(module, jax.random.key(7), ckpt_path=str(interrupted_run))
    assert resumed_trainer.start_epoch == 2
    assert resumed[1]["param_error"].shape == (EPOCHS,)
    jax.tree.map(np.testing.assert_array_equal, host_view(resumed), host_view(expected))
    state, history, start = restore_checkpoint(
        interrupted_run, "LinearRegressionProbe", module.init_train_state, jax.random.key(0), 9
    )
    assert start == EPOCHS  # the resumed run saved its own epochs, up to the last
    jax.tree.map(np.testing.assert_array_equal, host_view(state), host_view(expected[0]))
    np.testing.assert_array_equal(history["param_error"], expected[1]["param_error"])


class OtherModule(LinearRegressionProbe):
    pass


def test_a_checkpoint_of_another_module_is_rejected(interrupted_run) -> None:
    with pytest.raises(ValueError, match="does not fit this module: its module is"):
        trainer().fit(OtherModule(), jax.random.key(7), ckpt_path=str(interrupted_run))


def test_a_checkpoint_of_another_shape_is_rejected(interrupted_run) -> None:
    def wider(rng):
        return LinearRegressionProbe().init_train_state(rng)._replace(weights=jnp.zeros(5))

    with pytest.raises(ValueError, match=r"its shapes is .*\[3\].*the module's training state"):
        restore_checkpoint(interrupted_run, "LinearRegressionProbe", wider, jax.random.key(0), 9)


def test_fit_many_checkpoint_is_not_a_single_seed_one(interrupted_run) -> None:
    rngs = jax.random.split(jax.random.key(7), 2)
    with pytest.raises(ValueError, match=r"fit_many\[LinearRegressionProbe\]"):
        trainer().fit_many(LinearRegressionProbe(), rngs, ckpt_path=str(interrupted_run))


def test_an_empty_directory_says_so(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="No checkpoint in"):
        trainer().fit(LinearRegressionProbe(), jax.random.key(7), ckpt_path=str(tmp_path))


def test_every_n_epochs_and_max_to_keep(tmp_path) -> None:
    callback = CheckpointCallback(tmp_path, every_n_epochs=3, max_to_keep=1)
    trainer(callback).fit(LinearRegressionProbe(), jax.random.key(7))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["3"]
