"""Callbacks the tests give `JaxTrainer`."""

from __future__ import annotations

from gallery_lib import JaxCallback


class Interrupt(JaxCallback):
    """Stops the run by raising when `epoch` starts, as a crash or a kill would."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, module, train_state, epoch):
        if epoch == self.epoch:
            raise KeyboardInterrupt(f"interrupted at epoch {epoch}")
