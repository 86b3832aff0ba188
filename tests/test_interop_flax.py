"""`FlaxModule`: gradients against `jax.grad`, shared memory, batch statistics, clear errors."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from flax import nnx

from gallery_lib import FlaxModule, torch_to_jax


class MLP(nn.Module):
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.tanh(nn.Dense(16, param_dtype=self.dtype, dtype=self.dtype)(x))
        return nn.Dense(3, param_dtype=self.dtype, dtype=self.dtype)(x)


class CNN(nn.Module):
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(nn.Conv(4, (3, 3), param_dtype=self.dtype, dtype=self.dtype)(x))
        x = nn.max_pool(x, (2, 2), (2, 2))
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(5, param_dtype=self.dtype, dtype=self.dtype)(x)


class BatchNormNet(nn.Module):
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = nn.Dense(8, param_dtype=self.dtype, dtype=self.dtype)(x)
        x = nn.BatchNorm(
            use_running_average=not train, momentum=0.5, param_dtype=self.dtype, dtype=self.dtype
        )(x)
        return nn.Dense(2, param_dtype=self.dtype, dtype=self.dtype)(nn.relu(x))


class TwoHeads(nn.Module):
    """Two inputs in, a tuple holding a dict out."""

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        h = nn.Dense(4)(x) + y
        return h, {"score": nn.Dense(1)(h)[:, 0], "count": jnp.sum(h > 0)}


NETWORKS: dict[str, tuple[Callable[[Any], nn.Module], tuple[int, ...]]] = {
    "mlp": (lambda dtype: MLP(dtype), (6, 5)),
    "cnn": (lambda dtype: CNN(dtype), (3, 8, 8, 2)),
    "batchnorm": (lambda dtype: BatchNormNet(dtype), (7, 5)),
}

LOSSES: dict[str, Callable[[Any, Any], Any]] = {
    # `sum` hands the backward a stride-0 gradient (the upstream bug).
    "sum": lambda out, target: out.sum(),
    "mse": lambda out, target: ((out - target) ** 2).mean(),
    "weighted": lambda out, target: (out * target).sum() + (out[:, :1] ** 3).mean(),
}


def _by_name(grads: Any) -> dict[str, Any]:
    """A flax `params` pytree by torch parameter name: `params.Dense_0.kernel`..."""
    leaves = jax.tree_util.tree_flatten_with_path(grads)[0]
    return {"params." + ".".join(key.key for key in path): leaf for path, leaf in leaves}


def _jax_loss(loss: str) -> Callable[[Any, Any], Any]:
    # The same losses, written with jax.numpy.
    return {
        "sum": lambda out, target: out.sum(),
        "mse": lambda out, target: ((out - target) ** 2).mean(),
        "weighted": lambda out, target: (out * target).sum() + (out[:, :1] ** 3).mean(),
    }[loss]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("network", list(NETWORKS))
def test_gradients_match_jax_grad(network: str, dtype: str) -> None:
    with jax.enable_x64(dtype == "float64"):
        make, shape = NETWORKS[network]
        torch_dtype, jax_dtype = getattr(torch, dtype), getattr(jnp, dtype)
        generator = torch.Generator().manual_seed(len(network))
        x = torch.randn(*shape, generator=generator, dtype=torch_dtype)
        net = FlaxModule(make(jax_dtype), x, seed=3)
        assert all(p.dtype == torch_dtype for p in net.parameters())
        train = {"train": True} if network == "batchnorm" else {}
        mutable = ["batch_stats"] if network == "batchnorm" else False
        variables = jax.tree.map(jnp.array, net.jax_variables)  # copies, before any update
        xs = [torch.randn(*shape, generator=generator, dtype=torch_dtype) for _ in LOSSES]
        out_shape = net(xs[0]).shape
        targets = [torch.randn(out_shape, generator=generator, dtype=torch_dtype) for _ in LOSSES]
        torch_grads = []
        for x, target, loss in zip(xs, targets, LOSSES.values(), strict=True):
            x.requires_grad_()
            net.zero_grad()
            loss(net(x), target).backward()
            torch_grads.append(({n: p.grad for n, p in net.named_parameters()}, x.grad))

        @jax.jit
        def reference_grads(params: Any, xs: list[Any], targets: list[Any]) -> list[Any]:
            def loss_fn(params: Any, x: jax.Array, target: jax.Array, loss: str) -> jax.Array:
                out = make(jax_dtype).apply(
                    {**variables, "params": params}, x, mutable=mutable, **train
                )
                return _jax_loss(loss)(out[0] if mutable else out, target)

            return [
                jax.grad(loss_fn, argnums=(0, 1))(params, x, target, loss)
                for x, target, loss in zip(xs, targets, LOSSES, strict=True)
            ]

        expected = reference_grads(
            variables["params"],
            torch_to_jax([x.detach() for x in xs]),
            torch_to_jax(targets),
        )
        tol = 1e-5 if dtype == "float32" else 1e-12
        for loss, (params, x_grad), (grad_params, grad_x) in zip(
            LOSSES, torch_grads, expected, strict=True
        ):
            for name, grad in _by_name(grad_params).items():
                np.testing.assert_allclose(params[name], grad, rtol=tol, atol=tol, err_msg=loss)
            np.testing.assert_allclose(x_grad.numpy(), grad_x, rtol=tol, atol=tol, err_msg=loss)


def test_tuple_and_dict_outputs_and_several_inputs() -> None:
    x, y = torch.randn(5, 3), torch.randn(5, 4, requires_grad=True)
    net = FlaxModule(TwoHeads(), (x, y))
    hidden, heads = net(x, y)
    assert set(heads) == {"score", "count"} and not heads["count"].requires_grad
    (hidden.sum() * 0.5 + heads["score"].square().mean()).backward()

    def reference(params: Any, y: jax.Array) -> jax.Array:
        hidden, heads = TwoHeads().apply({"params": params}, torch_to_jax(x), y)
        return hidden.sum() * 0.5 + jnp.mean(heads["score"] ** 2)

    grad_params, grad_y = jax.grad(reference, argnums=(0, 1))(
        net.jax_params, torch_to_jax(y.detach())
    )
    expected = _by_name(grad_params)
    for name, param in net.named_parameters():
        np.testing.assert_allclose(param.grad.numpy(), expected[name], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y.grad.numpy(), grad_y, rtol=1e-5, atol=1e-6)
    # An output the loss does not use gets a zero cotangent: only `score` here.
    net.zero_grad()
    net(x, y)[1]["score"].sum().backward()
    assert net.params.Dense_0.kernel.grad.abs().sum() > 0


def test_parameters_share_memory_with_jax_params() -> None:
    net = FlaxModule(MLP(), torch.zeros(2, 5))
    pointers = {p.data_ptr() for p in net.parameters()}
    views = jax.tree.leaves(net.jax_params)
    assert {v.unsafe_buffer_pointer() for v in views} == pointers
    assert len(pointers) == len(views)  # every parameter has memory of its own
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    before = {name: np.array(view) for name, view in _by_name(net.jax_params).items()}
    net(torch.randn(4, 5)).square().sum().backward()
    optimizer.step()
    for name, view in _by_name(net.jax_params).items():
        np.testing.assert_array_equal(np.asarray(view), net.get_parameter(name).detach().numpy())
        assert not np.array_equal(np.asarray(view), before[name])


def test_load_jax_params_writes_in_place() -> None:
    net = FlaxModule(MLP(), torch.zeros(2, 5))
    params = list(net.parameters())
    pointers = [p.data_ptr() for p in params]
    new = jax.tree.map(lambda p: jnp.full_like(p, 0.25), net.jax_params)
    net.load_jax_params(new)
    assert list(net.parameters()) == params
    assert [p.data_ptr() for p in net.parameters()] == pointers
    assert all(bool((p == 0.25).all()) for p in params)
    # A pure-Jax update of the views, written back: what a full-Jax training step does.
    grads = jax.grad(lambda p, x: jnp.sum(net.apply_fn({"params": p}, x) ** 2))(
        net.jax_params, jnp.ones((3, 5))
    )
    net.load_jax_params(jax.tree.map(lambda p, g: p - 0.1 * g, net.jax_params, grads))
    assert [p.data_ptr() for p in net.parameters()] == pointers
    assert not bool((params[0] == 0.25).all())


def test_batch_statistics_are_buffers_updated_in_training_only() -> None:
    x = torch.randn(16, 5)
    net = FlaxModule(BatchNormNet(), x)
    buffers = dict(net.named_buffers())
    assert set(buffers) == {"batch_stats.BatchNorm_0.mean", "batch_stats.BatchNorm_0.var"}
    mean = buffers["batch_stats.BatchNorm_0.mean"]
    pointer = mean.data_ptr()
    net.train()
    net(x)
    hidden = nn.Dense(8).apply({"params": net.jax_params["Dense_0"]}, torch_to_jax(x))
    np.testing.assert_allclose(mean.numpy(), 0.5 * np.asarray(hidden.mean(0)), rtol=1e-5)
    assert mean.data_ptr() == pointer
    net.eval()
    before = mean.clone()
    with torch.no_grad():
        out = net(x)
    assert torch.equal(mean, before)
    expected = BatchNormNet().apply(net.jax_variables, torch_to_jax(x), train=False)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)


class DropoutNet(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        return nn.Dropout(0.5, deterministic=not train)(nn.Dense(64)(x))


def test_dropout_gets_fresh_keys_in_training_and_is_seeded() -> None:
    x = torch.ones(4, 3)
    first, second = FlaxModule(DropoutNet(), x, seed=1), FlaxModule(DropoutNet(), x, seed=1)
    a, b = first(x), first(x)
    assert not torch.equal(a, b)
    assert torch.equal(second(x), a) and torch.equal(second(x), b)
    first.eval()
    assert torch.equal(first(x), first(x))


def test_no_grad_forward_matches_and_jit_is_reused() -> None:
    net = FlaxModule(CNN(), torch.zeros(2, 8, 8, 2))
    x = torch.randn(3, 8, 8, 2)
    with torch.no_grad():
        plain = net(x)
    assert not plain.requires_grad
    for _ in range(3):
        net(x).sum().backward()
    assert torch.equal(net(x).detach(), plain)
    jitted = [fn for fn in net._fns.values() if hasattr(fn, "_cache_size")]
    assert jitted and all(fn._cache_size() == 1 for fn in jitted)


def test_deepcopy_is_independent() -> None:
    net = FlaxModule(MLP(), torch.zeros(2, 5))
    x = torch.randn(2, 5)
    net(x).sum().backward()
    twin = copy.deepcopy(net)
    with torch.no_grad():
        twin.params.Dense_0.kernel.add_(1.0)
    assert not torch.equal(twin(x), net(x))
    assert twin.params.Dense_0.kernel.data_ptr() != net.params.Dense_0.kernel.data_ptr()


def test_wrong_input_shape_says_what_was_expected() -> None:
    net = FlaxModule(CNN(), torch.zeros(2, 8, 8, 2))
    with pytest.raises(ValueError, match=r"expected shape/dtype \(batch, 8, 8, 2\) float32"):
        net(torch.zeros(2, 8, 8, 3))
    with pytest.raises(ValueError, match=r"channels last.*permute\(0, 2, 3, 1\)"):
        net(torch.zeros(2, 2, 8, 8))
    with pytest.raises(TypeError, match=r"takes 1 input tensor\(s\)"):
        net(torch.zeros(2, 8, 8, 2), torch.zeros(2))


def test_wrong_input_dtype_says_what_was_expected() -> None:
    net = FlaxModule(MLP(), torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"float32.*got \(2, 5\) float64.*x.to\(torch.float32\)"):
        net(torch.zeros(2, 5, dtype=torch.float64))


def test_input_on_a_device_jax_cannot_see() -> None:
    net = FlaxModule(MLP(), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="'meta' device"):
        net(torch.zeros(2, 5, device="meta"))


def test_parameters_that_do_not_exist_yet() -> None:
    with torch.device("meta"):
        net = FlaxModule(MLP(), torch.zeros(2, 5, device="cpu"))
    assert all(p.device.type == "meta" for p in net.parameters())
    with pytest.raises(RuntimeError, match="do not exist yet"):
        net(torch.zeros(2, 5))
    with pytest.raises(RuntimeError, match="do not exist yet"):
        net.jax_params  # noqa: B018
    # Materialised and loaded, it works.
    source = FlaxModule(MLP(), torch.zeros(2, 5))
    net.to_empty(device="cpu")
    net.load_state_dict(source.state_dict())
    x = torch.randn(2, 5)
    assert torch.equal(net(x), source(x))


def test_bad_parameter_trees_are_refused() -> None:
    net = FlaxModule(MLP(), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="structure differs"):
        net.load_jax_params({"Dense_0": net.jax_params["Dense_0"]})
    wrong = jax.tree.map(lambda p: jnp.zeros((*p.shape, 1)), net.jax_params)
    with pytest.raises(ValueError, match="expected shape"):
        net.load_jax_params(wrong)


def test_optimizer_step_between_forward_and_backward_is_caught() -> None:
    net = FlaxModule(MLP(), torch.zeros(2, 5))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    net(torch.randn(2, 5)).sum().backward()
    loss = net(torch.randn(2, 5)).sum()
    optimizer.step()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_torch_layers_around_the_flax_network() -> None:
    """Gradients flow through the wrapper into torch layers before it."""
    torch.manual_seed(0)
    encoder = torch.nn.Linear(4, 5)
    net = FlaxModule(MLP(), torch.zeros(2, 5))
    F.mse_loss(net(encoder(torch.randn(6, 4))), torch.zeros(6, 3)).backward()
    assert encoder.weight.grad is not None and encoder.weight.grad.abs().sum() > 0


def test_frozen_parameters_get_no_gradient() -> None:
    net = FlaxModule(MLP(), torch.zeros(2, 5)).requires_grad_(False)
    x = torch.randn(3, 5, requires_grad=True)
    net(x).sum().backward()
    assert all(p.grad is None for p in net.parameters())
    assert x.grad is not None and x.grad.abs().sum() > 0


class NNXNet(nnx.Module):
    """An nnx network with batch statistics and dropout, switched by a `train` argument."""

    def __init__(self, din: int, dout: int, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(din, 16, rngs=rngs)
        self.norm = nnx.BatchNorm(16, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)
        self.out = nnx.Linear(16, dout, rngs=rngs)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        h = jax.nn.relu(self.norm(self.hidden(x), use_running_average=not train))
        return self.out(self.drop(h, deterministic=not train))


def test_an_nnx_network_through_flax_bridge() -> None:
    bridged = nnx.bridge.ToLinen(NNXNet, args=(4, 3))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 4, generator=generator)
    net = FlaxModule(bridged, x, seed=1)
    assert net.train_kwarg == "train"  # found on the nnx class's __call__
    assert sorted(name for name, _ in net.named_parameters()) == [
        "params.hidden.bias",
        "params.hidden.kernel",
        "params.norm.bias",
        "params.norm.scale",
        "params.out.bias",
        "params.out.kernel",
    ]
    assert sorted(name for name, _ in net.named_buffers()) == [
        "batch_stats.norm.mean",
        "batch_stats.norm.var",
    ]

    # Training mode: fresh dropout masks, batch statistics updated in place.
    mean = net.batch_stats.norm.mean.clone()
    net.train()
    assert not torch.allclose(net(x), net(x))
    assert not torch.allclose(net.batch_stats.norm.mean, mean)

    # Evaluation mode: deterministic, statistics frozen, gradients equal jax.grad's.
    net.eval()
    mean = net.batch_stats.norm.mean.clone()
    variables = jax.tree.map(jnp.array, net.jax_variables)
    x.requires_grad_()
    target = torch.randn(8, 3, generator=generator)
    out = net(x)
    torch.testing.assert_close(out, net(x))
    ((out - target) ** 2).mean().backward()
    torch.testing.assert_close(net.batch_stats.norm.mean, mean)

    def loss_fn(params: Any, x: jax.Array) -> jax.Array:
        out = bridged.apply({**variables, "params": params}, x, train=False)
        return ((out - torch_to_jax(target)) ** 2).mean()

    grad_params, grad_x = jax.grad(loss_fn, argnums=(0, 1))(
        variables["params"], torch_to_jax(x.detach())
    )
    for name, grad in _by_name(grad_params).items():
        np.testing.assert_allclose(net.get_parameter(name).grad, grad, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad, grad_x, rtol=1e-5, atol=1e-6)
