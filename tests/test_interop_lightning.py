"""`FlaxModule` inside Lightning: a short fit, a checkpoint round-trip, the model summary."""

from __future__ import annotations

from pathlib import Path

import flax.linen as nn
import jax
import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.model_summary import ModelSummary

from gallery_lib import FlaxModule
from gallery_lib.testing import quiet_lightning_trainer


class Classifier(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = nn.Conv(4, (3, 3))(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.relu(x).reshape(x.shape[0], -1)
        return nn.Dense(3)(x)


class LitClassifier(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = FlaxModule(Classifier(), torch.zeros(2, 6, 6, 1), seed=0)
        self.example_input_array = torch.zeros(4, 6, 6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=0.05)


def _loader() -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 6, 6, 1, generator=generator)
    y = torch.randint(0, 3, (32,), generator=generator)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)


def test_fit_checkpoint_and_summary(tmp_path: Path) -> None:
    model = LitClassifier()
    initial = {name: value.clone() for name, value in model.state_dict().items()}
    trainer = quiet_lightning_trainer(
        max_steps=2,
        accelerator="cpu",
        default_root_dir=tmp_path,
    )
    trainer.fit(model, _loader())
    state = model.state_dict()
    assert set(state) == {
        "net.params.Conv_0.kernel",
        "net.params.Conv_0.bias",
        "net.params.BatchNorm_0.scale",
        "net.params.BatchNorm_0.bias",
        "net.params.Dense_0.kernel",
        "net.params.Dense_0.bias",
        "net.batch_stats.BatchNorm_0.mean",
        "net.batch_stats.BatchNorm_0.var",
    }
    # The optimizer trained the parameters and the forward passes updated the statistics.
    assert not torch.equal(state["net.params.Dense_0.kernel"], initial["net.params.Dense_0.kernel"])
    assert not torch.equal(
        state["net.batch_stats.BatchNorm_0.mean"], initial["net.batch_stats.BatchNorm_0.mean"]
    )

    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    restored = LitClassifier.load_from_checkpoint(path)
    for name, value in restored.state_dict().items():
        assert torch.equal(value, state[name]), name
    # The restored values are what the jax views see, and the network computes the same.
    x = torch.randn(5, 6, 6, 1)
    model.eval()
    restored.eval()
    with torch.no_grad():
        assert torch.equal(restored(x), model(x))

    summary = ModelSummary(model, max_depth=1)
    n_params = sum(leaf.size for leaf in jax.tree.leaves(model.net.jax_params))
    assert summary.total_parameters == n_params
    assert summary.trainable_parameters == n_params
    assert "FlaxModule" in str(summary)
    assert "[4, 3]" in str(summary)  # out sizes, from example_input_array
