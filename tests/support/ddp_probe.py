"""Train the flax CNN example's two LightningModules for a few steps, on 1 then 2 CPU processes.

Run as a script (Lightning's DDP launcher re-executes it for rank 1): `python ddp_probe.py OUT`.
Process 0 first trains both variants alone over global batches of `BATCH` (the reference),
then both variants with `strategy="ddp"` on two processes over `BATCH // 2` each: the same
images, rank r taking every other one (a `DistributedSampler` without shuffling, since
Lightning's own replaces a training loader's sampler by a shuffling one). Rank 1 starts from
other initial parameters, which DDP's broadcast must overwrite. Every process writes its
trained parameters and logged metrics to `OUT.<variant>.<devices>.<rank>.npz`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import jax
import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from gallery_lib import FlaxModule, example_definitions
from gallery_lib.testing import quiet_lightning_trainer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plot_flax_cnn_lightning.py"
BATCH, STEPS, VAL_BATCHES = 16, 3, 2


def loader(x: torch.Tensor, y: torch.Tensor, devices: int, rank: int) -> DataLoader:
    data = TensorDataset(x, y)
    sampler = DistributedSampler(data, num_replicas=devices, rank=rank, shuffle=False)
    return DataLoader(data, batch_size=BATCH // devices, sampler=sampler)


def run(example, variant: str, devices: int, out: str) -> None:
    rank = int(os.environ.get("LOCAL_RANK", 0))
    generator = torch.Generator().manual_seed(0)
    n_train, n_val = BATCH * STEPS, BATCH * VAL_BATCHES
    x = torch.randn(n_train + n_val, 1, 28, 28, generator=generator)
    y = torch.randint(0, 10, (len(x),), generator=generator)
    network = FlaxModule(example.FlaxCNN(), x[:2], seed=rank)
    module = {"jax-network": example.Classifier, "jax-step": example.JaxStepClassifier}[variant]
    model = module(network, learning_rate=example.Config().learning_rate)
    trainer = quiet_lightning_trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(
        model,
        loader(x[:n_train], y[:n_train], devices, rank),
        loader(x[n_train:], y[n_train:], devices, rank),
    )
    params = [np.asarray(leaf) for leaf in jax.tree.leaves(network.jax_params)]
    metrics = {k: v.numpy() for k, v in trainer.callback_metrics.items()}
    np.savez(f"{out}.{variant}.{devices}.{rank}.npz", *params, **metrics)


if __name__ == "__main__":
    torch.set_num_threads(1)
    example = example_definitions(EXAMPLE)
    if "LOCAL_RANK" not in os.environ:  # process 0 only: the one-process reference runs
        for variant in ("jax-network", "jax-step"):
            run(example, variant, 1, sys.argv[1])
    for variant in ("jax-network", "jax-step"):
        run(example, variant, 2, sys.argv[1])
