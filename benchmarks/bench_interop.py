"""Training a flax CNN through `FlaxModule` + a torch optimizer vs the same step in pure Jax.

Both sides train the same network (two convolutions, two dense layers) with the same loss
(softmax cross-entropy) and the same optimizer (Adam, lr 1e-3) on Fashion-MNIST-sized random
data (batch 128, 28x28x1):

- wrapper: `out = net(x)`, `F.cross_entropy`, `loss.backward()`, `torch.optim.Adam.step()`;
- pure Jax: one jitted `value_and_grad` + `optax.adam` update.

The two sides take one step each in turn, so that load from other processes hits both alike,
in random order: a fixed order favoured the side that ran second by about 10% here. The
script prints the ratio of the median samples/s (and of the fastest steps, which other load
disturbs least), then the overhead per step in microseconds and where it goes, each part
measured on its own (fastest of many calls, alternating with what it is compared to):

- jax compute: the wrapper's jitted forward (+ VJP residuals) and jitted backward, called
  directly with jax arrays, minus the fused pure-Jax gradient (the cost of splitting the
  step in two XLA calls);
- conversion: the DLPack conversions a step makes (input, cotangent, outputs,
  gradients) and the cached parameter views;
- optimizer: `torch.optim.Adam.step()` + `zero_grad()` minus the jitted optax update;
- torch loss: `F.cross_entropy` and its backward, which pure Jax fuses into its gradient;
- dispatch: the wrapper's fixed cost (torch autograd, the `torch.autograd.Function`, input
  checks, Python), measured on a network with the same eight parameter leaves and next to no
  compute, minus its jax calls, conversions and loss.

Run: `PYTHONPATH=src .venv/bin/python benchmarks/bench_interop.py [--threads 1] [--steps 60]`
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument(
    "--threads",
    type=int,
    default=1,
    help="torch threads; 1 also asks XLA for single-threaded Eigen (its runtime keeps a pool)",
)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--steps", type=int, default=60, help="timed steps of each side (alternating)")
parser.add_argument("--channels", type=int, default=8, help="channels of the first conv")
args = parser.parse_args()

if args.threads == 1:
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    )

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from gallery_lib import FlaxModule  # noqa: E402
from gallery_lib.interop._convert import array_to_torch, tensor_to_jax  # noqa: E402

torch.set_num_threads(args.threads)


class CNN(nn.Module):
    """A small Fashion-MNIST classifier (NHWC input)."""

    channels: int = 8

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(nn.Conv(self.channels, (3, 3))(x))
        x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.relu(nn.Conv(2 * self.channels, (3, 3))(x))
        x = nn.max_pool(x, (2, 2), (2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(8 * self.channels)(x))
        return nn.Dense(10)(x)


class Tiny(nn.Module):
    """Four 2-unit dense layers: the CNN's eight parameter leaves, next to no compute."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for _ in range(4):
            x = nn.Dense(2)(x)
        return x


def timeit(*fns: Callable[[], object], repeat: int) -> list[float]:
    """Fastest time of one call of each of `fns`, called in turn `repeat` times.

    Calling them in turn exposes them to the same load from other processes; the minimum is
    the cost of a call that nothing interrupted (the usual estimator on a busy machine).
    """
    times: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        fn()
    for _ in range(repeat):
        for fn, spent in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [min(spent) for spent in times]


def main() -> None:
    batch = args.batch_size
    rng = np.random.default_rng(0)
    images = rng.standard_normal((4, batch, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, size=(4, batch))
    torch_x = [torch.from_numpy(x) for x in images]
    torch_y = [torch.from_numpy(y) for y in labels]
    jax_x = [jnp.asarray(x) for x in images]
    jax_y = [jnp.asarray(y, dtype=jnp.int32) for y in labels]

    # --- the wrapper with a torch optimizer ---
    net = FlaxModule(CNN(args.channels), torch_x[0], seed=0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def torch_step(i: int) -> float:
        out = net(torch_x[i % 4])
        loss = F.cross_entropy(out, torch_y[i % 4])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    # --- the same in pure Jax ---
    model = CNN(args.channels)
    params = model.init(jax.random.key(0), jax_x[0])["params"]
    tx = optax.adam(1e-3)
    state = (params, tx.init(params))

    def loss_fn(params: object, x: jax.Array, y: jax.Array) -> jax.Array:
        logits = model.apply({"params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def jax_step(state: tuple, x: jax.Array, y: jax.Array) -> tuple:
        params, opt_state = state
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    def run_jax(i: int) -> float:
        nonlocal state
        state, loss = jax_step(state, jax_x[i % 4], jax_y[i % 4])
        return loss.item()

    for i in range(3):  # compile both before timing
        torch_step(i)
        run_jax(i)
    # One step of each side in turn, so that load from other processes hits both alike; the
    # median step time of each side rejects the steps a preemption hit.
    rates: dict[str, list[float]] = {"wrapper": [], "jax": [], "wrapper cpu": [], "jax cpu": []}
    order = np.random.default_rng(1)
    for i in range(args.steps):
        sides = [(torch_step, "wrapper"), (run_jax, "jax")]
        # Which side goes first changes every step (at random), as a step can run faster or
        # slower after the other side's (caches, XLA's thread pool still awake or not).
        for run, name in sides if order.random() < 0.5 else sides[::-1]:
            start, start_cpu = time.perf_counter(), time.process_time()
            run(i)
            rates[name].append(batch / (time.perf_counter() - start))
            rates[name + " cpu"].append(batch / (time.process_time() - start_cpu))
    median = {name: statistics.median(values) for name, values in rates.items()}
    fastest = {name: max(values) for name, values in rates.items()}
    wrapper_rate, jax_rate = median["wrapper"], median["jax"]
    wrapper_us, jax_us = 1e6 * batch / wrapper_rate, 1e6 * batch / jax_rate

    # --- where the overhead goes: each part on its own ---
    repeat = args.steps
    x, y = torch_x[0], torch_y[0]
    jx, jy = jax_x[0], jax_y[0]
    grad_fn = jax.jit(jax.value_and_grad(loss_fn))

    def fused() -> None:
        jax.block_until_ready(grad_fn(state[0], jx, jy))

    jp, js = net.jax_params, net.jax_state
    call = np.uint32(0)
    forward = net._jitted(True, True)
    out, _, vjp = forward(jp, js, (jx,), call)
    cotangent = [jnp.ones_like(out[0]) / batch]

    def split_grad() -> None:
        _, _, vjp = forward(jp, js, (jx,), call)
        jax.block_until_ready(net._backward((False,))(vjp, cotangent))

    fused_grad, split = timeit(fused, split_grad, repeat=repeat)
    grads = net._backward((False,))(vjp, cotangent)[0]
    grad_leaves = jax.tree.leaves(grads)
    out_t = array_to_torch(out[0])

    def conversions() -> None:
        net.jax_params  # noqa: B018  (the cached views, checked against the tensors)
        tensor_to_jax(x)
        array_to_torch(out[0])
        tensor_to_jax(out_t)
        for leaf in grad_leaves:
            array_to_torch(leaf)

    (conversion,) = timeit(conversions, repeat=repeat)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)

    def torch_optimizer() -> None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)

    opt_state = tx.init(state[0])
    update = jax.jit(lambda g, s, p: optax.apply_updates(p, tx.update(g, s, p)[0]))
    torch_opt, optax_opt = timeit(
        torch_optimizer,
        lambda: jax.block_until_ready(update(grads, opt_state, state[0])),
        repeat=repeat,
    )

    def torch_loss() -> None:
        logits = out_t.detach().requires_grad_()
        F.cross_entropy(logits, y).backward()

    (loss_part,) = timeit(torch_loss, repeat=repeat)

    # Dispatch: the wrapper's fixed cost per step, on a network with the same number of
    # parameter leaves and next to no compute, minus its jax calls and conversions.
    tiny = FlaxModule(Tiny(), torch.zeros(2, 2))
    tx_, ty_ = torch.randn(2, 2), torch.tensor([0, 1])

    def tiny_torch() -> None:
        tiny.zero_grad()
        F.cross_entropy(tiny(tx_), ty_).backward()

    tiny_forward = tiny._jitted(True, True)
    tiny_p, tiny_s, tiny_x = tiny.jax_params, tiny.jax_state, tensor_to_jax(tx_)
    tiny_out = tiny_forward(tiny_p, tiny_s, (tiny_x,), call)[0]

    def tiny_jax() -> None:
        _, _, vjp = tiny_forward(tiny_p, tiny_s, (tiny_x,), call)
        jax.block_until_ready(tiny._backward((False,))(vjp, [jnp.ones_like(tiny_out[0])]))

    def tiny_loss() -> None:
        logits = torch.zeros(2, 2, requires_grad=True)
        F.cross_entropy(logits, ty_).backward()

    many = 300
    tiny_wrapped, tiny_direct, tiny_torch_loss = timeit(
        tiny_torch, tiny_jax, tiny_loss, repeat=many
    )
    dispatch = tiny_wrapped - tiny_direct - tiny_torch_loss - conversion

    overhead = wrapper_us - jax_us
    parts = {
        "jax compute split in forward + backward calls": 1e6 * (split - fused_grad),
        "conversion (DLPack views, input/output/grads)": 1e6 * conversion,
        "optimizer (torch Adam - optax adam)": 1e6 * (torch_opt - optax_opt),
        "torch loss + its backward": 1e6 * loss_part,
    }
    parts["dispatch (autograd.Function, checks, Python)"] = 1e6 * dispatch

    print(f"threads={args.threads} batch={batch} channels={args.channels} steps={args.steps}")
    print(f"pure Jax : {jax_rate:9.0f} samples/s  ({jax_us:8.0f} us/step)")
    print(f"wrapper  : {wrapper_rate:9.0f} samples/s  ({wrapper_us:8.0f} us/step)")
    print(f"ratio wrapper / pure Jax: {wrapper_rate / jax_rate:.3f}  (target >= 0.9)")
    fast_ratio = fastest["wrapper"] / fastest["jax"]
    print(f"ratio of the fastest steps: {fast_ratio:.3f}")
    cpu_ratio = median["wrapper cpu"] / median["jax cpu"]
    print(f"ratio of samples per CPU-second of this process: {cpu_ratio:.3f}")
    print(f"overhead per step: {overhead:.0f} us (from the two rates); measured separately:")
    print(f"  fused value_and_grad (pure Jax): {1e6 * fused_grad:8.0f} us")
    print(f"  wrapper's forward + backward   : {1e6 * split:8.0f} us")
    print(f"  torch Adam step + zero_grad    : {1e6 * torch_opt:8.0f} us")
    print(f"  optax adam update (jitted)     : {1e6 * optax_opt:8.0f} us")
    for name, value in parts.items():
        print(f"  {name:50s} {value:8.0f} us")
    total = sum(parts.values())
    print(f"  {'sum of the parts':50s} {total:8.0f} us = {100 * total / jax_us:.1f}% of a step")
    # What the parts, each timed alone, do not explain: effects of running them in sequence
    # (caches, XLA's thread pool waking up for two executables per step instead of one).
    print(f"  {'not explained by the parts':50s} {overhead - total:8.0f} us")


if __name__ == "__main__":
    main()
