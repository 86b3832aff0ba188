"""The flax-CNN-in-Lightning example: both of its variants, their checkpoints and its CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jax
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from support import ROOT, quick_env

from gallery_lib import FlaxModule, example_definitions
from gallery_lib.datasets import (
    FashionMNISTDataModule,
)
from gallery_lib.testing import quiet_lightning_trainer

EXAMPLE = ROOT / "examples" / "plot_flax_cnn_lightning.py"


@pytest.fixture(scope="module")
def example():
    """The example's networks and modules, without running its cells."""
    return example_definitions(EXAMPLE)


def _fit(
    model: pl.LightningModule,
    dm: FashionMNISTDataModule,
    steps: int,
    ckpt_path: Path | None = None,
    **kwargs,
) -> pl.Trainer:
    trainer = quiet_lightning_trainer(
        max_steps=steps,
        limit_val_batches=0,
        **kwargs,
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return trainer


def _mean_loss(model: pl.LightningModule, dm: FashionMNISTDataModule) -> float:
    images, labels = dm.train_set.tensors
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(model(images), labels))


@pytest.mark.parametrize("variant", ["jax-network", "jax-step"])
def test_a_few_training_steps_decrease_the_loss(
    example, small_datamodule: FashionMNISTDataModule, variant: str
) -> None:
    network = FlaxModule(example.FlaxCNN(), small_datamodule.train_set[:2][0], seed=0)
    cls = example.Classifier if variant == "jax-network" else example.JaxStepClassifier
    model = cls(network, learning_rate=3e-3)
    before = _mean_loss(model, small_datamodule)
    trainer = _fit(model, small_datamodule, steps=16)
    after = _mean_loss(model, small_datamodule)
    assert trainer.global_step == 16
    assert after < 0.75 * before, (before, after)


def test_the_jax_step_moves_the_parameters_by_minus_lr_times_the_torch_gradient(
    example, small_datamodule: FashionMNISTDataModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One real `JaxStepClassifier` step, through Lightning, with its optimizer made plain SGD.

    The step's parameter change must be `-lr * gradient`, the gradient computed by torch
    autograd through the wrapper on the batch the step saw, at the parameters before it.
    """
    import optax

    # The example builds `optax.adam(schedule)`; SGD with the same schedule makes the expected
    # change exactly -lr * gradient (Adam's first step would be -lr * sign(gradient)).
    monkeypatch.setattr(optax, "adam", optax.sgd)
    learning_rate = 1.0
    example_input = small_datamodule.train_set[:2][0]

    class Recording(example.JaxStepClassifier):
        def training_step(self, batch, batch_idx):
            self.seen = batch
            return super().training_step(batch, batch_idx)

    network = FlaxModule(example.FlaxCNN(), example_input, seed=0)
    before = jax.tree.map(np.array, network.jax_params)
    model = Recording(network, learning_rate=learning_rate)
    trainer = _fit(model, small_datamodule, steps=1)
    assert trainer.global_step == 1
    after = jax.tree.map(np.array, network.jax_params)

    reference = FlaxModule(example.FlaxCNN(), example_input, seed=0)
    images, labels = model.seen
    torch.nn.functional.cross_entropy(reference(images), labels).backward()
    torch_grads = {name: p.grad.numpy() for name, p in reference.named_parameters()}
    lr = optax.cosine_onecycle_schedule(trainer.estimated_stepping_batches, learning_rate)(0)
    moved = 0
    for path, new in jax.tree_util.tree_flatten_with_path(after)[0]:
        name = "params." + ".".join(k.key for k in path)
        old = before
        for key in path:
            old = old[key.key]
        np.testing.assert_allclose(
            new - old, -lr * torch_grads[name], rtol=1e-3, atol=1e-7, err_msg=name
        )
        moved += int(np.any(new != old))
    assert moved == len(torch_grads), "every parameter leaf moved"


def test_checkpoint_round_trip_keeps_jax_params_and_optax_state(
    example, small_datamodule: FashionMNISTDataModule, tmp_path: Path
) -> None:
    example_input = small_datamodule.train_set[:2][0]

    def fresh_model(seed: int):
        network = FlaxModule(example.FlaxCNN(), example_input, seed=seed)
        return example.JaxStepClassifier(network, example.Config().learning_rate)

    model = fresh_model(0)
    trainer = _fit(model, small_datamodule, steps=5, default_root_dir=tmp_path)
    path = tmp_path / "jax-step.ckpt"
    trainer.save_checkpoint(path)

    # Loading the weights into a network initialised differently restores the trained params.
    other = fresh_model(1)
    assert not np.array_equal(
        np.asarray(other.network.jax_params["Dense_0"]["kernel"]),
        np.asarray(model.network.jax_params["Dense_0"]["kernel"]),
    )
    restored = example.JaxStepClassifier.load_from_checkpoint(
        path, network=other.network, weights_only=True
    )
    jax.tree.map(
        np.testing.assert_array_equal, model.network.jax_params, restored.network.jax_params
    )

    # Resuming restores the optax state too (Adam's moments and its step count): with
    # max_steps already reached, fit restores everything and trains no further.
    resumed = fresh_model(2)
    resume_trainer = _fit(resumed, small_datamodule, steps=5, ckpt_path=path)
    assert resume_trainer.global_step == 5
    jax.tree.map(
        np.testing.assert_array_equal,
        trainer.optimizers[0].opt_state,
        resume_trainer.optimizers[0].opt_state,
    )
    jax.tree.map(
        np.testing.assert_array_equal, model.network.jax_params, resumed.network.jax_params
    )


def test_one_and_several_process_steps_compute_the_same_update(
    example, small_datamodule: FashionMNISTDataModule
) -> None:
    """`make_train_step` compiles one program for one process, two halves for several (the
    gradients averaged between them); without a process group both must agree."""
    import optax

    images, labels = small_datamodule.train_set[:32]
    x, y = jax.numpy.asarray(images.numpy()), jax.numpy.asarray(labels.numpy().astype(np.int32))
    model = example.FlaxCNN()
    params = model.init(jax.random.key(0), x)["params"]
    tx = optax.adam(1e-3)
    outcomes = []
    for processes in (1, 2):
        step = example.make_train_step(model.apply, tx, processes)
        state = (jax.tree.map(jax.numpy.copy, params), tx.init(params))
        losses = []
        for _ in range(3):
            new_params, opt_state, loss = step(state[0], state[1], x, y)
            state = (new_params, opt_state)
            losses.append(float(loss))
        outcomes.append((state[0], losses))
    (one, one_losses), (several, several_losses) = outcomes
    np.testing.assert_allclose(one_losses, several_losses, rtol=1e-5)
    assert one_losses[2] < one_losses[0]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), one, several)


def test_the_torch_cnn_is_the_twin_of_the_flax_cnn(
    example, small_datamodule: FashionMNISTDataModule
) -> None:
    """With the flax parameters copied in (kernels transposed to torch's layout, the first
    dense layer's inputs reordered from channels-last to channels-first), the logits agree."""
    images = small_datamodule.train_set[:8][0]
    flax_cnn = example.FlaxCNN()
    params = flax_cnn.init(jax.random.key(1), jax.numpy.asarray(images.numpy()))["params"]
    torch_cnn = example.TorchCNN()

    def copy(layer: torch.nn.Module, kernel: np.ndarray, bias: np.ndarray) -> None:
        layer.weight.data = torch.from_numpy(np.ascontiguousarray(kernel))
        layer.bias.data = torch.from_numpy(np.asarray(bias).copy())

    p = jax.tree.map(np.asarray, params)
    copy(torch_cnn.conv1, p["Conv_0"]["kernel"].transpose(3, 2, 0, 1), p["Conv_0"]["bias"])
    copy(torch_cnn.conv2, p["Conv_1"]["kernel"].transpose(3, 2, 0, 1), p["Conv_1"]["bias"])
    dense = p["Dense_0"]["kernel"].reshape(7, 7, 64, 128).transpose(3, 2, 0, 1).reshape(128, -1)
    copy(torch_cnn.dense1, dense, p["Dense_0"]["bias"])
    copy(torch_cnn.dense2, p["Dense_1"]["kernel"].T, p["Dense_1"]["bias"])
    expected = np.asarray(flax_cnn.apply({"params": params}, jax.numpy.asarray(images.numpy())))
    with torch.no_grad():
        np.testing.assert_allclose(torch_cnn(images).numpy(), expected, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Command line


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        env=quick_env(COLUMNS="200"),  # wide enough that no choice is wrapped
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--batch-size", "100"], ["--batch-size", "64", "128", "256"]),
        (["--batch-size", "many"], ["--batch-size", "64", "128", "256"]),
        (["--variant", "pure-torch"], ["--variant", "both", "jax-network", "jax-step"]),
    ],
)
def test_cli_rejects_bad_values_with_the_choices(args: list[str], expected: list[str]) -> None:
    result = _run_cli(*args)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for word in expected:
        assert word in output, output
    assert "Traceback" not in output, output
