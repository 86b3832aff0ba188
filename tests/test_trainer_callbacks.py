"""JaxTrainer's hooks, Lightning loggers and progress bars."""

from __future__ import annotations

import csv

import jax
import numpy as np
import pytest

from gallery_lib import JaxCallback, JaxTrainer, ProgressBarCallback, TrainerView
from gallery_lib.testing import LinearRegressionProbe

EPOCHS, STEPS = 2, 3


class Recorder(JaxCallback):
    """Records every hook call: its name and its epoch and batch index, when it has them."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def setup(self, trainer, module, stage):
        self.calls.append(("setup", stage))

    def on_fit_start(self, trainer, module, train_state):
        self.calls.append(("on_fit_start",))

    def on_train_epoch_start(self, trainer, module, train_state, epoch):
        self.calls.append(("on_train_epoch_start", int(epoch)))

    def on_train_batch_start(self, trainer, module, train_state, batch, batch_idx, epoch):
        self.calls.append(("on_train_batch_start", int(epoch), int(batch_idx)))

    def on_train_batch_end(self, trainer, module, train_state, metrics, batch_idx, epoch):
        self.calls.append(("on_train_batch_end", int(epoch), int(batch_idx)))

    def on_train_epoch_end(self, trainer, module, train_state, metrics, epoch):
        self.calls.append(("on_train_epoch_end", int(epoch)))

    def on_validation_end(self, trainer, module, train_state, eval_metrics, epoch):
        self.calls.append(("on_validation_end", int(epoch), float(eval_metrics["param_error"])))

    def on_fit_end(self, trainer, module, train_state):
        self.calls.append(("on_fit_end",))

    def teardown(self, trainer, module, stage):
        self.calls.append(("teardown", stage))


def expected_calls(eval_metrics) -> list[tuple]:
    calls: list[tuple] = [("setup", "fit"), ("on_fit_start",)]
    for epoch in range(EPOCHS):
        calls.append(("on_train_epoch_start", epoch))
        for batch_idx in range(STEPS):
            calls.append(("on_train_batch_start", epoch, batch_idx))
            calls.append(("on_train_batch_end", epoch, batch_idx))
        calls.append(("on_train_epoch_end", epoch))
        calls.append(("on_validation_end", epoch, float(eval_metrics["param_error"][epoch])))
    return [*calls, ("on_fit_end",), ("teardown", "fit")]


def test_hooks_run_in_loop_order_with_the_loop_values() -> None:
    recorder = Recorder()
    trainer = JaxTrainer(EPOCHS, STEPS, callbacks=[recorder], enable_progress_bar=False)
    _, eval_metrics = trainer.fit(LinearRegressionProbe(), jax.random.key(0))
    assert recorder.calls == expected_calls(eval_metrics)


class StateCheck(JaxCallback):
    """Compares what the hooks see with a run of the module by hand."""

    def __init__(self) -> None:
        self.batches: list = []
        self.losses: list = []
        self.final = None

    def on_train_batch_start(self, trainer, module, train_state, batch, batch_idx, epoch):
        self.batches.append(batch)

    def on_train_batch_end(self, trainer, module, train_state, metrics, batch_idx, epoch):
        self.losses.append(float(metrics["loss"]))

    def on_train_epoch_end(self, trainer, module, train_state, metrics, epoch):
        expected = np.mean(self.losses[-STEPS:], dtype=np.float32)
        np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-6)

    def on_fit_end(self, trainer, module, train_state):
        self.final = train_state


def test_hooks_see_the_batches_metrics_and_final_state() -> None:
    module, check = LinearRegressionProbe(), StateCheck()
    trainer = JaxTrainer(EPOCHS, STEPS, callbacks=[check], enable_progress_bar=False)
    state, _ = trainer.fit(module, jax.random.key(0))
    by_hand = module.init_train_state(jax.random.key(0))
    for index in range(EPOCHS * STEPS):
        by_hand, batch = module.get_batch(by_hand, index % STEPS)
        np.testing.assert_allclose(check.batches[index][0], batch[0], rtol=1e-6)
        by_hand, metrics = module.training_step(index % STEPS, by_hand, batch)
        np.testing.assert_allclose(check.losses[index], metrics["loss"], rtol=1e-5)
    np.testing.assert_array_equal(check.final.weights, state.weights)
    np.testing.assert_array_equal(check.final.rng, jax.random.key_data(state.rng))


def test_fit_many_hooks_see_all_seeds_at_once() -> None:
    recorder = Recorder()
    recorder.on_validation_end = lambda trainer, module, train_state, eval_metrics, epoch: (
        recorder.calls.append(np.shape(eval_metrics["param_error"]))
    )
    trainer = JaxTrainer(EPOCHS, STEPS, callbacks=[recorder], enable_progress_bar=False)
    trainer.fit_many(LinearRegressionProbe(), jax.random.split(jax.random.key(0), 3))
    assert [call for call in recorder.calls if call == (3,)] == [(3,)] * EPOCHS
    assert recorder.calls.count(("on_fit_start",)) == 1


def test_csv_logger_gets_train_and_val_metrics(tmp_path) -> None:
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(tmp_path, name="probe", version=0)
    trainer = JaxTrainer(EPOCHS, STEPS, logger=logger, enable_progress_bar=False)
    _, eval_metrics = trainer.fit(LinearRegressionProbe(), jax.random.key(0))
    with open(tmp_path / "probe" / "version_0" / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    val = [row for row in rows if row.get("val/param_error")]
    train = [row for row in rows if row.get("train/loss")]
    assert [int(row["step"]) for row in val] == [STEPS * (e + 1) for e in range(EPOCHS)]
    assert len(train) == EPOCHS
    np.testing.assert_allclose(
        [float(row["val/param_error"]) for row in val], eval_metrics["param_error"], rtol=1e-6
    )
    hparams = (tmp_path / "probe" / "version_0" / "hparams.yaml").read_text()
    assert f"max_epochs: {EPOCHS}" in hparams


def test_tensorboard_logger_writes_an_event_file(tmp_path) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger

    logger = TensorBoardLogger(tmp_path, name="probe", version=0)
    JaxTrainer(EPOCHS, STEPS, logger=[logger], enable_progress_bar=False).fit(
        LinearRegressionProbe(), jax.random.key(0)
    )
    assert list((tmp_path / "probe" / "version_0").glob("events.out.tfevents.*"))


def test_rich_progress_bar_by_default_and_one_flag_turns_it_off() -> None:
    assert any(isinstance(cb, ProgressBarCallback) for cb in JaxTrainer(1, 1).callbacks)
    quiet = JaxTrainer(1, 1, enable_progress_bar=False)
    assert not any(isinstance(cb, ProgressBarCallback) for cb in quiet.callbacks)


@pytest.mark.parametrize("kind", ["RichProgressBar", "TQDMProgressBar"])
def test_lightning_progress_bars_are_accepted(kind: str, capsys) -> None:
    import lightning.pytorch.callbacks as lightning_callbacks

    trainer = JaxTrainer(EPOCHS, STEPS, callbacks=[getattr(lightning_callbacks, kind)()])
    bars = [cb for cb in trainer.callbacks if isinstance(cb, ProgressBarCallback)]
    assert [bar.backend for bar in bars] == ["rich" if kind == "RichProgressBar" else "tqdm"]
    trainer.fit(LinearRegressionProbe(), jax.random.key(0))
    captured = capsys.readouterr()
    assert "LinearRegressionProbe: epochs" in captured.out + captured.err


def test_other_lightning_callbacks_are_rejected_with_advice() -> None:
    from lightning.pytorch.callbacks import LearningRateMonitor

    with pytest.raises(TypeError, match=r"subclass gallery_lib\.JaxCallback"):
        JaxTrainer(1, 1, callbacks=[LearningRateMonitor()])


def test_any_callback_can_stop_training_through_its_traced_hook() -> None:
    class StopAtOnce(JaxCallback):
        """Not an EarlyStopping: the loop finds the hook the way it finds the others."""

        def __init__(self) -> None:
            self.evaluations = 0

        def on_validation_end(self, trainer, module, train_state, eval_metrics, epoch):
            self.evaluations += 1

        def should_stop(self, eval_metrics):
            return eval_metrics["param_error"] < 1e9  # true from the first epoch on

    stopper = StopAtOnce()
    trainer = JaxTrainer(4, STEPS, callbacks=[stopper], enable_progress_bar=False)
    _, eval_metrics = trainer.fit(LinearRegressionProbe(), jax.random.key(0))
    assert trainer.stopped_epoch == 0
    errors = np.asarray(eval_metrics["param_error"])
    np.testing.assert_array_equal(errors[1:], errors[0])  # the state froze after epoch 0
    assert stopper.evaluations == 4  # the loop's length is fixed; later epochs are no-ops
    _, one_epoch = JaxTrainer(1, STEPS, enable_progress_bar=False).fit(
        LinearRegressionProbe(), jax.random.key(0)
    )
    np.testing.assert_array_equal(one_epoch["param_error"][0], errors[0])


def test_callbacks_read_the_trainer_through_its_view() -> None:
    seen = []

    class Reader(JaxCallback):
        def on_fit_start(self, trainer, module, train_state):
            assert isinstance(trainer, TrainerView)
            seen.append(
                (
                    trainer.max_epochs,
                    trainer.training_steps_per_epoch,
                    trainer.start_epoch,
                    trainer.fitting_many,
                )
            )

    trainer = JaxTrainer(EPOCHS, STEPS, callbacks=[Reader()], enable_progress_bar=False)
    trainer.fit(LinearRegressionProbe(), jax.random.key(0))
    trainer.fit_many(LinearRegressionProbe(), jax.random.split(jax.random.key(0), 2))
    assert seen == [(EPOCHS, STEPS, 0, False), (EPOCHS, STEPS, 0, True)]
