"""
# First steps: one model, two autodiff engines

Jax and PyTorch compute the same derivatives in two styles: PyTorch records the operations run
on tensors and walks that record backwards, Jax transforms a *function* into its gradient
function. This page fits a straight line with both, step by step, and checks that they agree.

## What you will learn

- how `jax.grad` turns a loss function into its gradient function
- how the same step reads with torch autograd (`loss.backward()`)
- why a Jax computation can stand in for a torch one (the premise of this gallery)
- how every example keeps its settings in a dataclass that is also its command line

## Prerequisites

Python and a first contact with gradient descent; no Jax or Lightning knowledge is needed.
"""

# %%
# ## Settings
#
# Every example keeps its settings in a dataclass. The defaults suit the docs build; run the
# script with `--help` to list them as command-line flags.
import dataclasses
from typing import Annotated

from annotated_types import Ge, Gt

from gallery_lib import enable_compile_cache, example_config


@dataclasses.dataclass
class Config:
    """Fit y = a x + b by gradient descent in Jax and in PyTorch."""

    num_points: Annotated[int, Ge(2)] = 64
    """Number of noisy points to fit."""
    steps: Annotated[int, Ge(1)] = 200
    """Gradient-descent steps for each framework."""
    learning_rate: Annotated[float, Gt(0)] = 0.1
    """Step size of plain gradient descent."""
    seed: Annotated[int, Ge(0)] = 0
    """Seed of the data."""
    threads: Annotated[int, Ge(1)] = 1
    """Torch CPU threads."""
    compile_cache: bool = True
    """Keep compiled programs on disk (jax's persistent cache) so the next run loads them."""


# mkdocs_gallery_thumbnail_number = 1
config = example_config(Config, quick={"steps": 50})
enable_compile_cache(config.compile_cache)
print(config)

# %%
# ## The data
#
# Points on the line $y = 2x - 1$ with Gaussian noise, made with NumPy so that both frameworks
# see the same numbers.
import numpy as np

rng = np.random.default_rng(config.seed)
x = np.linspace(-1.0, 1.0, config.num_points, dtype=np.float32)
y = (2.0 * x - 1.0 + 0.2 * rng.standard_normal(config.num_points)).astype(np.float32)
print(f"{config.num_points} points; x[:3] = {x[:3].round(3)}, y[:3] = {y[:3].round(3)}")

# %%
# ## Jax: the gradient is a function
#
# The model is a line $\hat y = a x + b$ and the loss its mean squared error,
#
# $$L(a, b) = \frac{1}{n} \sum_{i=1}^{n} (a x_i + b - y_i)^2 .$$
#
# `jax.grad` turns the Python function `jax_loss` into a new function that returns
# $(\partial L / \partial a, \partial L / \partial b)$ for the same arguments. Here the
# derivative is easy by hand, $\partial L / \partial a = \frac{2}{n} \sum_i (a x_i + b - y_i)
# x_i$, so we can check Jax's answer before training.
import jax
import jax.numpy as jnp


def jax_loss(params: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    slope, intercept = params
    return jnp.mean((slope * x + intercept - y) ** 2)


start = jnp.array([0.5, 0.0])
residual = start[0] * x + start[1] - y
by_hand = [2 * np.mean(residual * x), 2 * np.mean(residual)]
print("jax.grad:", np.asarray(jax.grad(jax_loss)(start, x, y)).round(5))
print("by hand: ", np.asarray(by_hand).round(5))

# %%
# ## Training with Jax
#
# One step of gradient descent, $\theta \leftarrow \theta - \eta \nabla L(\theta)$, compiled
# by `jax.jit` into a single XLA program that the loop calls `steps` times.


@jax.jit
def jax_step(params: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    loss, grad = jax.value_and_grad(jax_loss)(params, x, y)
    return params - config.learning_rate * grad, loss


params = jnp.zeros(2)
jax_losses = []
for _ in range(config.steps):
    params, loss = jax_step(params, x, y)
    jax_losses.append(float(loss))
print(f"Jax:   slope={params[0]:.4f} intercept={params[1]:.4f} loss={jax_losses[-1]:.5f}")

# %%
# ## PyTorch: the gradient is recorded on the tensors
#
# The same model with `requires_grad` parameters: torch records each operation on them, and
# `loss.backward()` walks that record backwards to fill `.grad`.
import torch

torch.set_num_threads(config.threads)
torch_params = torch.zeros(2, requires_grad=True)
tx, ty = torch.from_numpy(x), torch.from_numpy(y)
torch_losses = []
for _ in range(config.steps):
    loss = ((torch_params[0] * tx + torch_params[1] - ty) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        torch_params -= config.learning_rate * torch_params.grad
        torch_params.grad = None
    torch_losses.append(loss.item())
slope, intercept = torch_params.detach().tolist()
print(f"Torch: slope={slope:.4f} intercept={intercept:.4f} loss={torch_losses[-1]:.5f}")

# %%
# ## They agree
#
# Both runs follow the same trajectory up to float32 rounding: the two loss curves lie on top
# of each other.
import matplotlib.pyplot as plt

max_gap = float(np.max(np.abs(np.array(jax_losses) - np.array(torch_losses))))
print(f"largest difference between the two loss curves: {max_gap:.2e}")
assert max_gap < 1e-4

fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.semilogy(jax_losses, lw=4, label="Jax")
ax.semilogy(torch_losses, "--", lw=2, label="PyTorch")
ax.set_xlabel("gradient step", fontsize=13)
ax.set_ylabel("mean squared error", fontsize=13)
ax.set_title("Jax and PyTorch: the same training loss", fontsize=14)
ax.tick_params(labelsize=12)
ax.legend(fontsize=12)
plt.show()

# %%
# ## The fitted line
#
# Both fits land on the same line, close to the $y = 2x - 1$ the data was drawn from.
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.scatter(x, y, s=12, color="gray", label="data")
grid = np.array([-1.0, 1.0])
ax.plot(grid, float(params[0]) * grid + float(params[1]), lw=4, label="Jax fit")
ax.plot(grid, slope * grid + intercept, "--", lw=2, label="PyTorch fit")
ax.set_xlabel("x", fontsize=13)
ax.set_ylabel("y", fontsize=13)
ax.tick_params(labelsize=12)
ax.legend(fontsize=12)
plt.show()
