"""`FlaxModule`: a flax linen network as a torch module whose forward and backward run in Jax."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import torch

from ._convert import array_to_torch, tensor_to_jax

_TRAIN_KWARGS = ("train", "training")


@dataclass(frozen=True)
class _InputSpec:
    shape: tuple[int, ...]
    dtype: torch.dtype

    def describe(self) -> str:
        dims = ", ".join(["batch", *map(str, self.shape[1:])]) if self.shape else ""
        return f"({dims}) {str(self.dtype).removeprefix('torch.')}"


def _path_names(path: tuple[Any, ...]) -> list[str]:
    names = []
    for key in path:
        name = str(getattr(key, "key", getattr(key, "idx", getattr(key, "name", key))))
        if "." in name or not name:
            raise ValueError(
                f"The flax variable path {jax.tree_util.keystr(path)} has a part {name!r} that "
                "cannot name a torch parameter (empty or containing '.'); rename that submodule."
            )
        names.append(name)
    return names


def _register(
    root: torch.nn.Module, names: list[str], value: torch.Tensor, param: bool
) -> tuple[torch.nn.Module, str]:
    owner = root
    for name in names[:-1]:
        child = owner._modules.get(name)
        if child is None:
            if hasattr(owner, name):
                raise ValueError(
                    f"The flax name {name!r} clashes with an attribute of torch.nn.Module; "
                    "rename that flax submodule."
                )
            child = torch.nn.Module()
            owner.add_module(name, child)
        owner = child
    if param:
        owner.register_parameter(names[-1], torch.nn.Parameter(value))
    else:
        owner.register_buffer(names[-1], value)
    return owner, names[-1]


def _torch_copy(array: jax.Array) -> torch.Tensor:
    """A torch-owned tensor holding a copy of `array` (torch owns the parameter memory)."""
    source = array_to_torch(jax.block_until_ready(array))
    out = torch.empty(source.shape, dtype=source.dtype)
    if out.device.type != "meta":
        out.copy_(source)
    return out


def _cotangent(grad: torch.Tensor, shape: tuple[int, ...], dtype: np.dtype) -> jax.Array:
    if not jnp.issubdtype(dtype, jnp.inexact):
        return np.zeros(shape, dtype=jax.dtypes.float0)
    return tensor_to_jax(grad)


class _JaxFunction(torch.autograd.Function):
    """Runs the jitted forward in `forward`, and the jitted VJP of it in `backward`."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, wrapper: FlaxModule, grad_mask: tuple[bool, ...], *tensors: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        n_inputs = len(grad_mask)
        inputs, params = tensors[:n_inputs], tensors[n_inputs:]
        flat_out, vjp = wrapper._run(inputs, with_vjp=True)
        ctx.vjp = vjp
        ctx.wrapper = wrapper
        ctx.grad_mask = grad_mask
        ctx.params = params
        ctx.versions = [param._version for param in params]
        ctx.out_specs = [(tuple(out.shape), out.dtype) for out in flat_out]
        outputs = tuple(array_to_torch(out) for out in flat_out)
        ctx.mark_non_differentiable(*(t for t in outputs if not t.is_floating_point()))
        return outputs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        wrapper: FlaxModule = ctx.wrapper
        if [param._version for param in ctx.params] != ctx.versions:
            raise RuntimeError(
                "A parameter of the FlaxModule was modified in place (e.g. by `optimizer.step()`) "
                "between its forward and its backward; the gradient would be wrong. Call "
                "`loss.backward()` before stepping the optimizer."
            )
        cotangents = [
            _cotangent(grad, shape, dtype)
            for grad, (shape, dtype) in zip(grads, ctx.out_specs, strict=True)
        ]
        backward = wrapper._backward(ctx.grad_mask)
        param_grads, input_grads = jax.block_until_ready(backward(ctx.vjp, cotangents))
        ctx.vjp = None
        grads_in: list[torch.Tensor | None] = [None] * len(ctx.grad_mask)
        for index, grad in zip(
            (i for i, needed in enumerate(ctx.grad_mask) if needed), input_grads, strict=True
        ):
            grads_in[index] = array_to_torch(grad)
        needed = ctx.needs_input_grad[2 + len(ctx.grad_mask) :]
        grads_params = [
            array_to_torch(grad) if need else None
            for grad, need in zip(jax.tree.leaves(param_grads), needed, strict=True)
        ]
        return None, None, *grads_in, *grads_params


class FlaxModule(torch.nn.Module):
    """A flax linen network as a `torch.nn.Module`: torch holds the weights, Jax does the math.

    The flax variables are initialised from `example_input` and copied once into torch-owned
    memory: each leaf of the `params` collection becomes a `torch.nn.Parameter` (named after its
    flax path, e.g. `params.Dense_0.kernel`), each leaf of the other collections (such as
    BatchNorm's `batch_stats`) a buffer. Jax reads them through zero-copy DLPack views, cached
    while the tensors keep their memory, so torch optimizers, `state_dict`, Lightning
    checkpoints and model summaries work as for any torch module.

    `forward` runs the network jitted; under autograd it also keeps the Jax VJP of the call, and
    `backward` runs that VJP jitted, for any loss written in torch on any of the outputs
    (tensors, tuples, dicts). If the flax `__call__` takes a `train` (or `training`) argument,
    it receives `self.training`; in training mode the non-`params` collections are updated in
    place and the random streams named in `rng_streams` get a fresh key at every call.

    A flax **nnx** network is wrapped through flax's own bridge to linen:
    `FlaxModule(nnx.bridge.ToLinen(MyModel, args=(...)), example_input)`. Its parameters and
    batch statistics become torch tensors the same way, and a `train` (or `training`) argument
    of `MyModel.__call__` is found as for linen: use it to switch nnx's `BatchNorm`
    (`use_running_average=not train`) and `Dropout` (`deterministic=not train`).

    `copy.deepcopy` works, but flax modules do not pickle (their default initialisers are local
    functions): in a `LightningModule` that takes a `FlaxModule` argument, call
    `self.save_hyperparameters(ignore=[...])` with its name, or checkpoints fail to save.

    Args:
        module: The flax linen module. Flax convolutions expect channels last (NHWC).
        example_input: An input (a tensor, or a tuple of tensors for several arguments) used to
            initialise the variables; later inputs must match it except for the batch size.
        seed: Seed of the `jax.random.key` used for initialisation and the random streams.
        rng_streams: Names of the random streams the module draws from in training (dropout).
        train_kwarg: Name of the `__call__` argument that switches training behaviour; found
            automatically when it is `train` or `training` (of the nnx class's `__call__`
            for an `nnx.bridge.ToLinen`); `""` passes none.

    Examples:
        >>> import flax.linen as nn, torch
        >>> net = FlaxModule(nn.Dense(3), torch.zeros(8, 4))
        >>> [name for name, _ in net.named_parameters()]
        ['params.bias', 'params.kernel']
        >>> loss = net(torch.randn(8, 4)).sum()
        >>> loss.backward()
        >>> net.params.kernel.grad.shape
        torch.Size([4, 3])
    """

    def __init__(
        self,
        module: nn.Module,
        example_input: torch.Tensor | tuple[torch.Tensor, ...],
        seed: int = 0,
        *,
        rng_streams: Sequence[str] = ("dropout",),
        train_kwarg: str | None = None,
    ) -> None:
        super().__init__()
        inputs = example_input if isinstance(example_input, tuple) else (example_input,)
        if not inputs or not all(isinstance(x, torch.Tensor) for x in inputs):
            raise TypeError(
                "FlaxModule needs `example_input` as a torch.Tensor or a tuple of tensors (one "
                f"per argument of the flax module), got {type(example_input).__name__}."
            )
        self.module = module
        self.train_kwarg = self._find_train_kwarg(module, train_kwarg)
        self.rng_streams = tuple(rng_streams)
        self._input_specs = tuple(_InputSpec(tuple(x.shape), x.dtype) for x in inputs)
        self._float_mask = tuple(x.is_floating_point() or x.is_complex() for x in inputs)
        self._key = jax.random.key(seed)
        self._calls = 0
        self._fns: dict[Any, Callable[..., Any]] = {}
        self._views: dict[str, tuple[tuple[Any, ...], jax.Array]] = {}

        init_key, self._stream_key = jax.random.split(self._key)
        rngs = {"params": init_key}
        rngs.update({name: init_key for name in self.rng_streams})
        kwargs = {self.train_kwarg: False} if self.train_kwarg else {}
        # One compiled call instead of many eager ones (and no memory kept from the trace).
        init = jax.jit(functools.partial(module.init, **kwargs))
        variables = init(rngs, *(tensor_to_jax(x) for x in inputs))
        if "params" not in variables:
            raise ValueError(
                f"{type(module).__name__}.init created no 'params' collection (it created "
                f"{list(variables)}); FlaxModule wraps networks with parameters."
            )
        self._params_treedef = jax.tree.structure(variables["params"])
        state = {name: value for name, value in variables.items() if name != "params"}
        self._state_treedef = jax.tree.structure(state)
        self._collections = tuple(state)
        self._treedefs: dict[Any, Any] = {}
        # Where each flax leaf lives: (owner module, attribute), for fast lookups every step.
        self._param_slots: list[tuple[str, torch.nn.Module, str]] = []
        self._buffer_slots: list[tuple[str, torch.nn.Module, str]] = []
        for path, leaf in jax.tree_util.tree_flatten_with_path({"params": variables["params"]})[0]:
            names = _path_names(path)
            owner, attr = _register(self, names, _torch_copy(leaf), param=True)
            self._param_slots.append((".".join(names), owner, attr))
        for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
            names = _path_names(path)
            owner, attr = _register(self, names, _torch_copy(leaf), param=False)
            self._buffer_slots.append((".".join(names), owner, attr))

    @staticmethod
    def _find_train_kwarg(module: nn.Module, train_kwarg: str | None) -> str:
        if train_kwarg is not None:
            return train_kwarg
        # `nnx.bridge.ToLinen` forwards its keyword arguments to the wrapped nnx class's call.
        called = getattr(module, "nnx_class", None)
        target = called if isinstance(called, type) else type(module)
        arguments = inspect.signature(target.__call__).parameters
        return next((name for name in _TRAIN_KWARGS if name in arguments), "")

    @property
    def apply_fn(self) -> Callable[..., Any]:
        """The flax `module.apply`, for code that runs the network on `jax_params` itself."""
        return self.module.apply

    @property
    def jax_params(self) -> Any:
        """The `params` pytree as jax arrays that view the torch parameters' memory (no copy).

        The views follow in-place updates of the parameters (an optimizer step, a
        `load_state_dict`); treat them as read-only and write with `load_jax_params`.
        """
        return jax.tree.unflatten(self._params_treedef, self._leaf_views(self._param_slots, True))

    @property
    def jax_state(self) -> dict[str, Any]:
        """The collections other than `params` (e.g. `batch_stats`), as jax views of the buffers."""
        return jax.tree.unflatten(self._state_treedef, self._leaf_views(self._buffer_slots, False))

    @property
    def jax_variables(self) -> dict[str, Any]:
        """All flax variables, `{"params": ..., **jax_state}`, ready for `apply_fn`."""
        return {"params": self.jax_params, **self.jax_state}

    def load_jax_params(self, params: Any) -> None:
        """Write new parameter values into the existing torch parameters, in place.

        Optimizers, checkpoints and `jax_params` keep pointing at the same tensors.

        Args:
            params: A pytree with the structure, shapes and dtypes of `jax_params`.

        Examples:
            >>> import flax.linen as nn, jax, torch
            >>> net = FlaxModule(nn.Dense(2), torch.zeros(1, 3))
            >>> net.load_jax_params(jax.tree.map(lambda p: p * 0 + 1, net.jax_params))
            >>> net.params.kernel.sum().item()
            6.0
        """
        leaves, treedef = jax.tree.flatten(params)
        if treedef != self._params_treedef:
            raise ValueError(
                "load_jax_params got a pytree whose structure differs from the parameters'.\n"
                f"Expected: {self._params_treedef}\nGot:      {treedef}"
            )
        self._load_leaves(self._tensors(self._param_slots, True), leaves, self._param_slots)

    def load_jax_state(self, state: dict[str, Any]) -> None:
        """Write new values of the non-`params` collections (`batch_stats`...) into the buffers."""
        leaves, treedef = jax.tree.flatten(state)
        if treedef != self._state_treedef:
            raise ValueError(
                "load_jax_state got a pytree whose structure differs from the buffers'.\n"
                f"Expected: {self._state_treedef}\nGot:      {treedef}"
            )
        self._load_leaves(self._tensors(self._buffer_slots, False), leaves, self._buffer_slots)

    @staticmethod
    def _load_leaves(
        targets: list[torch.Tensor], leaves: list[Any], slots: list[tuple[str, Any, str]]
    ) -> None:
        for target, leaf, (name, _, _) in zip(targets, leaves, slots, strict=True):
            if tuple(leaf.shape) != tuple(target.shape):
                raise ValueError(
                    f"{name}: expected shape {tuple(target.shape)}, got {tuple(leaf.shape)}."
                )
        leaves = jax.block_until_ready(leaves)
        with torch.no_grad():
            for target, leaf in zip(targets, leaves, strict=True):
                source = array_to_torch(jnp.asarray(leaf))
                if source.data_ptr() != target.data_ptr():
                    target.copy_(source)

    @staticmethod
    def _tensors(slots: list[tuple[str, Any, str]], param: bool) -> list[torch.Tensor]:
        if param:
            return [owner._parameters[attr] for _, owner, attr in slots]
        return [owner._buffers[attr] for _, owner, attr in slots]

    def _leaf_views(self, slots: list[tuple[str, Any, str]], param: bool) -> list[jax.Array]:
        """Jax views of the slots' tensors, rebuilt only when a tensor's memory changed."""
        views = []
        for (name, _, _), tensor in zip(slots, self._tensors(slots, param), strict=True):
            if tensor.device.type == "meta":
                raise RuntimeError(
                    f"FlaxModule's tensor {name!r} is on the 'meta' device: the parameters do "
                    "not exist yet (the module was built under `torch.device('meta')` or "
                    "Lightning's `init_module(empty_init=True)`). Materialise them first, e.g. "
                    "`module.to_empty(device='cpu')` then `load_state_dict(...)`."
                )
            key = (tensor.data_ptr(), tensor.shape, tensor.stride(), tensor.dtype, tensor.device)
            cached = self._views.get(name)
            if cached is None or cached[0] != key:
                cached = (key, tensor_to_jax(tensor))
                self._views[name] = cached
            views.append(cached[1])
        return views

    def _check_inputs(self, inputs: tuple[torch.Tensor, ...]) -> None:
        specs = self._input_specs
        if len(inputs) != len(specs):
            expected = ", ".join(spec.describe() for spec in specs)
            raise TypeError(
                f"{self._name()} takes {len(specs)} input tensor(s) [{expected}], got "
                f"{len(inputs)}."
            )
        for index, (x, spec) in enumerate(zip(inputs, specs, strict=True)):
            if not isinstance(x, torch.Tensor):
                raise TypeError(
                    f"{self._name()} input {index}: expected a torch.Tensor {spec.describe()}, "
                    f"got {type(x).__name__}."
                )
            shape_ok = x.ndim == len(spec.shape) and tuple(x.shape[1:]) == spec.shape[1:]
            if not shape_ok or x.dtype != spec.dtype:
                got = f"{tuple(x.shape)} {str(x.dtype).removeprefix('torch.')}"
                hint = ""
                if x.ndim == 4 and sorted(x.shape[1:]) == sorted(spec.shape[1:]):
                    hint = (
                        " Flax convolutions take channels last (NHWC): convert an NCHW batch "
                        "with `x.permute(0, 2, 3, 1)`."
                    )
                elif shape_ok:
                    hint = f" Convert it with `x.to({spec.dtype})`."
                raise ValueError(
                    f"{self._name()} input {index}: expected shape/dtype {spec.describe()} (as "
                    f"the example_input, any batch size), got {got}.{hint}"
                )

    def _name(self) -> str:
        return f"FlaxModule({type(self.module).__name__})"

    def _apply(self, fn: Callable[..., Any], recurse: bool = True) -> FlaxModule:  # type: ignore[override]
        # `.to()`, `.double()`, `.to_empty()`... may give the tensors new memory: drop the views.
        self._views = {}
        return super()._apply(fn, recurse)

    def _jitted(self, train: bool, with_vjp: bool) -> Callable[..., Any]:
        key = (train, with_vjp)
        fn = self._fns.get(key)
        if fn is not None:
            return fn
        module, stream_key = self.module, self._stream_key
        kwargs = {self.train_kwarg: train} if self.train_kwarg else {}
        mutable = list(self._collections) if train and self._collections else False
        holder = self._treedefs
        streams = self.rng_streams if train else ()

        def apply(params: Any, state: Any, inputs: tuple[Any, ...], call: jax.Array) -> Any:
            call_key = jax.random.fold_in(stream_key, call)
            rngs = {name: jax.random.fold_in(call_key, i) for i, name in enumerate(streams)}
            variables = {"params": params, **state}
            if mutable:
                out, new_state = module.apply(
                    variables, *inputs, rngs=rngs, mutable=mutable, **kwargs
                )
            else:
                out, new_state = module.apply(variables, *inputs, rngs=rngs, **kwargs), {}
            leaves, holder[key] = jax.tree.flatten(out)
            return leaves, dict(new_state)

        if not with_vjp:

            def forward(params: Any, state: Any, inputs: tuple[Any, ...], call: jax.Array) -> Any:
                flat_out, new_state = apply(params, state, inputs, call)
                return flat_out, new_state, None

        else:
            # Every floating-point input is a primal of the VJP, whether torch wants its
            # gradient or not: XLA compiled a slower backward of a CNN when the input was a
            # constant of the VJP instead; unwanted gradients are pruned in `_backward`.
            mask = self._float_mask

            def forward(params: Any, state: Any, inputs: tuple[Any, ...], call: jax.Array) -> Any:
                def differentiable(params: Any, diff_inputs: list[Any]) -> Any:
                    it = iter(diff_inputs)
                    full = tuple(next(it) if m else x for x, m in zip(inputs, mask, strict=True))
                    return apply(params, state, full, call)

                diff = [x for x, m in zip(inputs, mask, strict=True) if m]
                flat_out, vjp, new_state = jax.vjp(differentiable, params, diff, has_aux=True)
                return flat_out, new_state, vjp

        fn = jax.jit(forward)
        self._fns[key] = fn
        return fn

    def _run(self, inputs: tuple[torch.Tensor, ...], with_vjp: bool) -> tuple[list[jax.Array], Any]:
        """Run the jitted forward; update the state collections in training mode."""
        params = self.jax_params
        state = self.jax_state
        jax_inputs = tuple(tensor_to_jax(x) for x in inputs)
        fn = self._jitted(self.training, with_vjp)
        flat_out, new_state, vjp = fn(params, state, jax_inputs, np.uint32(self._calls))
        if self.training:
            self._calls += 1
        flat_out = jax.block_until_ready(flat_out)
        if new_state:
            self.load_jax_state({**state, **new_state})
        return flat_out, vjp

    def _backward(self, grad_mask: tuple[bool, ...]) -> Callable[..., Any]:
        """The jitted VJP, returning the parameters' gradients and those of `grad_mask` inputs."""
        key = ("backward", grad_mask)
        fn = self._fns.get(key)
        if fn is None:
            # Positions, among the VJP's input primals (the floating-point inputs), of the
            # inputs whose gradient torch wants; XLA drops the computation of the others.
            primals = [i for i, is_float in enumerate(self._float_mask) if is_float]
            wanted = [j for j, i in enumerate(primals) if grad_mask[i]]

            def backward(vjp: Any, cotangents: list[Any]) -> Any:
                param_grads, input_grads = vjp(cotangents)
                return param_grads, [input_grads[j] for j in wanted]

            fn = self._fns[key] = jax.jit(backward)
        return fn

    def forward(self, *inputs: torch.Tensor) -> Any:
        """Run the flax network on `inputs` (torch tensors); return torch tensors.

        The output has the structure the flax module returns (a tensor, a tuple, a dict...).
        """
        self._check_inputs(inputs)
        params = self._tensors(self._param_slots, True)
        needs_grad = torch.is_grad_enabled() and (
            any(p.requires_grad for p in params) or any(x.requires_grad for x in inputs)
        )
        if needs_grad:
            grad_mask = tuple(bool(x.requires_grad) for x in inputs)
            flat = _JaxFunction.apply(self, grad_mask, *inputs, *params)
        else:
            flat_out, _ = self._run(inputs, with_vjp=False)
            flat = tuple(array_to_torch(out) for out in flat_out)
        return jax.tree.unflatten(self._treedefs[(self.training, needs_grad)], list(flat))

    def __getstate__(self) -> dict[str, Any]:
        # Copies (`copy.deepcopy`) rebuild their own jitted functions and views.
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__
        return {**state, "_fns": {}, "_treedefs": {}, "_views": {}}

    def extra_repr(self) -> str:
        specs = ", ".join(spec.describe() for spec in self._input_specs)
        return f"module={type(self.module).__name__}, inputs=[{specs}]"
