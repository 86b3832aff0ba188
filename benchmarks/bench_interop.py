"""Training a flax CNN through `FlaxModule` + a torch optimizer vs the same step in pure Jax.

Both sides train the CNN of `examples/plot_flax_cnn_lightning.py` (Conv32 5x5 s2, Conv64 3x3
s2, Dense128, Dense10; NCHW input) with the same loss (softmax cross-entropy) and the same
optimizer (Adam at the example's learning rate) on Fashion-MNIST-sized random data (the
example's batch size, 1x28x28), without Lightning (`bench_flax_cnn.py` measures the same inside
Lightning, the same way):

- wrapper: `out = net(x)`, `F.cross_entropy`, `loss.backward()`, `torch.optim.Adam.step()`
  (`fused=True`, torch's one-kernel CPU Adam, as the example uses);
- pure Jax: the baseline of `_common.py`, one jitted `value_and_grad` + `optax.adam` step with
  parameters and optimizer state donated, fed NumPy batches;
- split: pure Jax again, cut where the wrapper must cut it (the wrapper's jitted forward with
  its VJP, the loss gradient, the jitted backward, the optax update: four calls, Jax-owned
  parameters): what the wrapper could reach if torch's side cost nothing.

By default the process first calls `gallery_lib.keep_freed_memory()`, as the flax CNN example
does (`--malloc default` leaves glibc's malloc as it is).

Each round times `--steps` steps of each side, in random order, on the cores picked by
`--cpus` (the whole process is pinned; 1 by default, so that XLA's thread pool cannot use a
second core that torch does not use); the ratio of the two rates is taken within each round
and the median over rounds reported, as well as the ratio of samples per CPU-second. Then the
overhead per step in microseconds and where it goes, each part measured on its own (fastest
of many calls, alternating with what it is compared to):

- jax compute: the wrapper's jitted forward (+ VJP residuals) and jitted backward, called
  directly with jax arrays, minus the fused pure-Jax gradient (the cost of splitting the
  step in two XLA calls); both allocate their outputs at every call (no donation), so with
  `--malloc default` their times include the page faults the wrapper suffers from (see the
  docs);
- conversion: the DLPack conversions a step makes (input, cotangent, outputs,
  gradients) and the cached parameter views;
- optimizer: `torch.optim.Adam.step()` + `zero_grad()` minus the jitted optax update;
- torch loss: `F.cross_entropy` and its backward, which pure Jax fuses into its gradient;
- dispatch: the wrapper's fixed cost (torch autograd, the `torch.autograd.Function`, input
  checks, Python), measured on a network with the same eight parameter leaves and next to no
  compute, minus its jax calls, conversions and loss.

Run: `PYTHONPATH=src .venv/bin/python benchmarks/bench_interop.py [--cpus 1] [--rounds 15]`
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from _common import (
    EXAMPLE,
    add_malloc_flag,
    apply_malloc,
    pin_cpus,
    pure_jax_step,
    random_order_rounds,
)
from _results import RESULTS, save_results

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--cpus", type=int, default=1, help="cores to pin the process to (0: all)")
parser.add_argument("--threads", type=int, default=1, help="torch threads")
parser.add_argument("--batch-size", type=int, help="default: the example's Config.batch_size")
parser.add_argument("--rounds", type=int, default=15, help="rounds of both sides")
parser.add_argument("--steps", type=int, default=20, help="timed steps per side and round")
add_malloc_flag(parser)
parser.add_argument(
    "--results",
    help="where to write the JSON record (default benchmarks/results/interop.json, "
    "interop_malloc_default.json with --malloc default)",
)
args = parser.parse_args()
LOAD = os.getloadavg()[0]
CORES = pin_cpus(args.cpus)
MALLOC = apply_malloc(args.malloc)

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from gallery_lib import FlaxModule, example_definitions, jax_to_torch, torch_to_jax  # noqa: E402

torch.set_num_threads(args.threads)


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
    example = example_definitions(EXAMPLE)
    defaults = example.Config()  # the example's settings: batch size, learning rate
    batch = args.batch_size or defaults.batch_size
    rng = np.random.default_rng(0)
    images = rng.standard_normal((4, batch, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, size=(4, batch)).astype(np.int32)
    # Torch-allocated (aligned) batches, as a DataLoader gives them; NumPy ones for pure Jax.
    torch_x = [torch.from_numpy(x).clone() for x in images]
    torch_y = [torch.from_numpy(y).long() for y in labels]
    jax_x = [jnp.asarray(x) for x in images]
    jax_y = [jnp.asarray(y) for y in labels]

    # --- the wrapper with a torch optimizer ---
    net = FlaxModule(example.FlaxCNN(), torch_x[0], seed=0)
    optimizer = torch.optim.Adam(net.parameters(), lr=defaults.learning_rate, fused=True)

    def torch_step(i: int) -> None:
        out = net(torch_x[i % 4])
        loss = F.cross_entropy(out, torch_y[i % 4])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    # --- the same in pure Jax ---
    model = example.FlaxCNN()
    init_params = model.init(jax.random.key(0), jax_x[0])["params"]
    tx = optax.adam(defaults.learning_rate)
    jax_step = pure_jax_step(model, tx)
    params = jax.tree.map(jnp.copy, init_params)
    state = [params, tx.init(params)]

    def run_jax(i: int) -> None:
        state[0], state[1], _ = jax_step(state[0], state[1], images[i % 4], labels[i % 4])

    # --- pure Jax again, split into the calls the wrapper makes: the ceiling of the design ---
    # The wrapper's own jitted forward (+ VJP) and backward, on Jax-owned parameters, with the
    # loss gradient and the optax update (donated) as two more jitted calls in between.
    split_forward, split_backward = net._jitted(True, True), net._backward((False,))

    @jax.jit
    def loss_grad(logits: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jax.value_and_grad(
            lambda o: optax.softmax_cross_entropy_with_integer_labels(o, y).mean()
        )(logits)

    @functools.partial(jax.jit, donate_argnums=(1, 2))
    def split_update(grads: object, opt_state: object, params: object) -> tuple[object, object]:
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    split_params = jax.tree.map(jnp.copy, init_params)
    split_state = [split_params, tx.init(split_params)]

    def run_split(i: int) -> None:
        (logits,), _, vjp = split_forward(split_state[0], {}, (jax_x[i % 4],), np.uint32(i))
        _, cotangent = loss_grad(logits, jax_y[i % 4])
        grads, _ = split_backward(vjp, [cotangent])
        split_state[0], split_state[1] = split_update(grads, split_state[1], split_state[0])

    def timed(run: Callable[[int], None]) -> tuple[float, float]:
        start, start_cpu = time.perf_counter(), time.process_time()
        for i in range(args.steps):
            run(i)
        jax.block_until_ready((state, split_state))
        return (
            args.steps * batch / (time.perf_counter() - start),
            args.steps * batch / (time.process_time() - start_cpu),
        )

    sides = {"wrapper": torch_step, "jax": run_jax, "split": run_split}
    for i in range(5):  # compile all before timing
        for run in sides.values():
            run(i)
    rates = random_order_rounds(
        {name: functools.partial(timed, run) for name, run in sides.items()}, args.rounds
    )
    ratios = [w[0] / j[0] for w, j in zip(rates["wrapper"], rates["jax"], strict=True)]
    cpu_ratios = [w[1] / j[1] for w, j in zip(rates["wrapper"], rates["jax"], strict=True)]
    split_ratios = [w[0] / j[0] for w, j in zip(rates["split"], rates["jax"], strict=True)]
    wrapper_rate = statistics.median(r[0] for r in rates["wrapper"])
    jax_rate = statistics.median(r[0] for r in rates["jax"])
    wrapper_us, jax_us = 1e6 * batch / wrapper_rate, 1e6 * batch / jax_rate

    # --- where the overhead goes: each part on its own ---
    repeat = 60
    x, y = torch_x[0], torch_y[0]
    jx, jy = jax_x[0], jax_y[0]

    def loss_fn(params: object, x: jax.Array, y: jax.Array) -> jax.Array:
        logits = model.apply({"params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

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
    out_t = jax_to_torch(out[0])

    def conversions() -> None:
        net.jax_params  # noqa: B018  (the cached views, checked against the tensors)
        torch_to_jax(x)
        jax_to_torch(out[0])
        torch_to_jax(out_t)
        for leaf in grad_leaves:
            jax_to_torch(leaf)

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
    tiny_p, tiny_s, tiny_x = tiny.jax_params, tiny.jax_state, torch_to_jax(tx_)
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

    print(
        f"{CORES}, {MALLOC}, torch threads {args.threads}, batch {batch}, "
        f"{args.rounds} rounds x "
        f"{args.steps} steps, jax {jax.__version__}, torch {torch.__version__}"
    )
    print(f"pure Jax : {jax_rate:9.0f} samples/s  ({jax_us:8.0f} us/step, median of rounds)")
    print(f"wrapper  : {wrapper_rate:9.0f} samples/s  ({wrapper_us:8.0f} us/step)")
    ratio, cpu_ratio = statistics.median(ratios), statistics.median(cpu_ratios)
    print(f"ratio wrapper / pure Jax (median of rounds): {ratio:.3f}  (target >= 0.9)")
    print(f"  per round: min {min(ratios):.3f}, max {max(ratios):.3f}")
    print(f"ratio of samples per CPU-second of this process: {cpu_ratio:.3f}")
    print(
        "ratio pure Jax split as the wrapper splits it / pure Jax: "
        f"{statistics.median(split_ratios):.3f}  (the wrapper's ceiling)"
    )
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
    numbers = {
        "rounds": args.rounds,
        "steps": args.steps,
        "wrapper_ratio": ratio,
        "wrapper_ratio_min": min(ratios),
        "wrapper_ratio_max": max(ratios),
        "wrapper_cpu_ratio": cpu_ratio,
        "split_ratio": statistics.median(split_ratios),
        "split_ratio_min": min(split_ratios),
        "split_ratio_max": max(split_ratios),
        "pure_jax_step_us": jax_us,
        "parts_share": total / jax_us,
    }
    default = "interop" if args.malloc == "keep" else "interop_malloc_default"
    path = Path(args.results) if args.results else RESULTS / f"{default}.json"
    save_results(path, numbers, {}, LOAD)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
