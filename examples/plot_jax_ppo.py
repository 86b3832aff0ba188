"""
# Reinforcement learning in Jax: PPO on gymnax, trained end to end

Proximal Policy Optimization (PPO) learns a policy by acting in a batch of environments, then
learning from what it saw without moving the policy too far from the one that collected it.
This page writes the whole algorithm in Jax and trains it with `JaxTrainer` on gymnax's
`CartPole-v1`, so the entire run compiles to one XLA program and many seeds train at once.

## What you will learn

- how a PPO agent splits into small Jax functions: rollout, advantages, loss, update
- how to write a learning algorithm as a [`JaxModule`][gallery_lib.JaxModule]
- how [`JaxTrainer`][gallery_lib.JaxTrainer] compiles a whole training run and keeps
  Lightning's callbacks, loggers and checkpoints
- how `fit_many` trains several seeds in one call with `jax.vmap`
- what continuous control adds: observation normalization, bounded actions, per-task settings

## Prerequisites

The first-steps page (`jax.grad`), and the idea of a policy and a return in reinforcement
learning. Environment, policy and update are all Jax code: no Python runs between two steps.
"""

# %%
# ## The hyper-parameters of PPO
#
# Every setting of the example is a field of a dataclass, with its valid range, so that
# `--help` documents it and a nonsense value (`--num-envs 0`) is refused with a message that
# names the option. The algorithm's settings come first. Their defaults are the generic ones:
# rejax's published PPO settings for CartPole-v1 (five environments of 100 steps per update,
# five epochs of five minibatches), which the environments without a preset of their own
# (next cells) also run with.
import dataclasses
from typing import Annotated, Literal

from annotated_types import Ge, Gt, Interval

# mkdocs_gallery_thumbnail_number = 1


@dataclasses.dataclass
class PPOSettings:
    """The hyper-parameters of PPO (the defaults: rejax's settings for CartPole-v1)."""

    num_envs: Annotated[int, Ge(1)] = 5
    """Environments stepped in parallel while collecting a rollout."""
    num_steps: Annotated[int, Ge(1)] = 100
    """Steps taken in each environment per rollout (a batch has num_envs x num_steps)."""
    num_epochs: Annotated[int, Ge(1)] = 5
    """Passes over each rollout during the update."""
    num_minibatches: Annotated[int, Ge(1)] = 5
    """Minibatches per pass; each makes one gradient step."""
    learning_rate: Annotated[float, Gt(0)] = 7.5e-4
    """Adam step size."""
    gamma: Annotated[float, Interval(ge=0, le=1)] = 0.99
    """Discount factor."""
    gae_lambda: Annotated[float, Interval(ge=0, le=1)] = 0.95
    """Trade-off of the advantage estimator between bias (0) and variance (1)."""
    clip_eps: Annotated[float, Gt(0)] = 0.2
    """How far the probability ratio may move from 1 before it stops counting."""
    ent_coef: Annotated[float, Ge(0)] = 0.01
    """Weight of the entropy bonus that keeps the policy exploring."""
    vf_coef: Annotated[float, Ge(0)] = 0.5
    """Weight of the value-function loss."""
    max_grad_norm: Annotated[float, Gt(0)] = 0.5
    """Gradients are rescaled to at most this global norm."""
    hidden_size: Annotated[int, Ge(1)] = 64
    """Width of the two hidden layers of the actor and of the critic."""
    activation: Literal["tanh", "relu", "swish"] = "tanh"
    """Activation of the hidden layers."""
    normalize_observations: bool = False
    """Scale observations by running estimates of their mean and standard deviation."""


# %%
# ## The run
#
# The rest of the settings say what to train on and for how long, how often to evaluate,
# how many seeds to train at once, and how the page's results table is made.


@dataclasses.dataclass
class Config(PPOSettings):
    """Train PPO on a gymnax environment, one seed and then many seeds at once."""

    env_id: str = "CartPole-v1"
    """gymnax environment id; its preset supplies the settings you do not pass."""
    total_steps: Annotated[int, Ge(1)] = 100_000
    """Environment steps of training for each seed."""
    evals: Annotated[int, Ge(1)] = 20
    """Evaluations over training (the trainer's epochs): points of the learning curve."""
    eval_episodes: Annotated[int, Ge(1)] = 16
    """Episodes per evaluation, played with the greedy policy."""
    solved_return: float | None = None
    """Mean evaluation return counted as reaching the goal (presets set it; default: none)."""
    seed: Annotated[int, Ge(0)] = 0
    """Seed of the single-seed run; the multi-seed run uses seeds seed, seed+1, ..."""
    num_seeds: Annotated[int, Ge(1)] = 4
    """Seeds trained at once with jax.vmap."""
    table_seeds: Annotated[int, Ge(0)] = 1
    """Seeds per environment in the results table over all presets (0 skips the table)."""
    table_budget: Annotated[float, Interval(gt=0, le=1)] = 0.2
    """Fraction of each preset's env-step budget that the results table trains for."""
    table_envs: tuple[str, ...] = ()
    """Environments of the results table (default: every preset)."""
    xla_opt_level: Annotated[int, Interval(ge=0, le=3)] = 2
    """LLVM optimization level XLA compiles the training loop with (XLA's default is 3)."""
    compile_cache: bool = True
    """Keep compiled programs on disk (jax's persistent cache) so the next run loads them."""


# %%
# ## A preset per environment
#
# One set of hyper-parameters does not fit every task: with CartPole's, Pendulum-v1 does not
# learn at all. [rejax](https://github.com/keraJLi/rejax) publishes PPO settings for each
# gymnax classic-control task (the files `configs/gymnax/*.yaml` of its repository), and
# these presets take them as they are, except for the budgets and two remarks, measured
# with `benchmarks/bench_ppo.py --envs`:
#
# - **Pendulum-v1**: rejax's file says 150,000 steps, but with an evaluation every 2,000
#   steps and 10,000 steps per update its loop runs 75 updates, 750,000 steps; the preset
#   trains 500,000 (four seeds' mean return passed -200 after about 400,000 here);
# - **MountainCar-v0** and **MountainCarContinuous-v0**: rejax's settings are kept (its file
#   notes that those for MountainCar were "not fitted"). Both tasks need an exploration
#   that PPO's independent action noise does not give: unless the car reaches the flag by
#   chance, nothing rewards it, and within these budgets it does not. MountainCar's return
#   stays at -200; on MountainCarContinuous the policy learns to stand still (return 0),
#   which saves the cost of pushing. The results table shows rejax in the same place;
# - `evals` is chosen so that each evaluation follows whole updates.
#
# `solved_return` is Gymnasium's reward threshold where it has one (Pendulum has none: -200
# is used). A preset only fills the settings you did not pass: any flag wins.


def presets() -> dict[str, dict[str, object]]:
    """Tuned settings per gymnax environment id, as changes to `Config`'s defaults."""
    # fmt: off
    return {
        "CartPole-v1": dict(total_steps=100_000, solved_return=475.0),
        "Acrobot-v1": dict(
            normalize_observations=True, total_steps=100_000, solved_return=-100.0,
        ),
        "MountainCar-v0": dict(
            num_envs=10, num_steps=20, learning_rate=2.5e-4, gae_lambda=0.98, ent_coef=0.0,
            total_steps=100_000, solved_return=-110.0,
        ),
        "MountainCarContinuous-v0": dict(
            activation="relu", num_epochs=10, num_minibatches=10, learning_rate=3e-4,
            max_grad_norm=10.0, gamma=0.9, ent_coef=0.0, total_steps=200_000,
            solved_return=90.0,
        ),
        "Pendulum-v1": dict(
            activation="swish", num_envs=100, num_steps=100, num_epochs=10,
            num_minibatches=10, learning_rate=1e-3, max_grad_norm=10.0, gamma=0.995,
            ent_coef=0.0, normalize_observations=True, total_steps=500_000, evals=25,
            solved_return=-200.0,
        ),
    }
    # fmt: on


# %%
# ## Reading the settings
#
# Defaults first, then (in the docs build's quick mode) the tiny budget, then the preset of
# `--env-id`, then the flags given on the command line, which always win.
import sys

from gallery_lib import enable_compile_cache, example_config, quick_mode


def flags_given(args: list[str]) -> set[str]:
    """Names of the `Config` fields set in `args` (`--num-envs 8`, `--no-compile-cache`)."""
    names = {arg[2:].split("=")[0].replace("-", "_") for arg in args if arg.startswith("--")}
    names |= {name.removeprefix("no_") for name in names}
    return names & {field.name for field in dataclasses.fields(Config)}


def with_preset(config: Config, keep: set[str]) -> Config:
    """`config` with its environment's preset, except for the fields named in `keep`."""
    preset = presets().get(config.env_id)
    if preset is None:
        print(f"{config.env_id} has no preset: generic defaults (rejax's CartPole settings).")
        return config
    return dataclasses.replace(config, **{k: v for k, v in preset.items() if k not in keep})


def load_config(args: list[str] | None, quick: dict[str, object]) -> Config:
    """The settings: defaults, quick mode's budget, `--env-id`'s preset, then `args`."""
    config = example_config(Config, quick=quick, args=args)
    return with_preset(config, flags_given(args or []) | (set(quick) if quick_mode() else set()))


as_script = __name__ == "__main__" and "__file__" in globals()
config = load_config(
    sys.argv[1:] if as_script else None,
    quick={"total_steps": 10_000, "evals": 4, "num_seeds": 2, "eval_episodes": 4}
    | {"table_budget": 0.05, "table_envs": ("Pendulum-v1",)},
)
enable_compile_cache(config.compile_cache)
print(config)

# %%
# ## The environment
#
# gymnax environments are pure functions: `env.reset(key, params)` returns an observation
# and a state, `env.step(key, state, action, params)` the next ones with the reward and two
# flags, `terminated` (the pole fell) and `truncated` (the time limit, 500 steps for
# CartPole). Since they are pure, `jax.vmap` runs a batch of them.
import gymnax
from gymnax.environments import spaces


def make_env(env_id: str) -> tuple[gymnax.environments.environment.Environment, object]:
    """The gymnax environment `env_id` and its default parameters."""
    if env_id not in gymnax.registered_envs:
        raise SystemExit(
            f"Unknown environment id {env_id!r}. Available gymnax environments:\n  "
            + "\n  ".join(gymnax.registered_envs)
        )
    env, env_params = gymnax.make(env_id)
    action_space = env.action_space(env_params)
    if not isinstance(action_space, spaces.Discrete | spaces.Box):
        raise SystemExit(
            f"{env_id} has a {type(action_space).__name__} action space; this PPO handles "
            "Discrete and Box action spaces. Pick another environment."
        )
    return env, env_params


env, env_params = make_env(config.env_id)
print(env.name, env.observation_space(env_params).shape, env.action_space(env_params))

# %%
# ## Observation normalization
#
# A network learns best from inputs of about unit scale. CartPole's observations are, but
# Pendulum's angular velocity spans $[-8, 8]$ and Acrobot's $[-28, 28]$. Running estimates
# of each observation's mean $\mu$ and variance $\sigma^2$ fix that: the network sees
# $(o - \mu) / \sqrt{\sigma^2 + 10^{-8}}$. The estimates are part of the training state
# (so checkpoints and `fit_many`'s seeds each carry their own), are held fixed during a
# rollout, and absorb the rollout's observations after it, merged with the running ones by
# the parallel form of Welford's algorithm.
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


class RunningStats(struct.PyTreeNode):
    """Mean and variance of everything seen so far, per observation feature."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def zeros(cls, size: int) -> "RunningStats":
        return cls(jnp.zeros(size), jnp.ones(size), jnp.zeros(()))


def update_stats(stats: RunningStats, batch: jax.Array) -> RunningStats:
    """`stats` merged with a batch of observations (all leading axes are samples)."""
    batch = batch.reshape(-1, stats.mean.shape[0])
    n, mean, var = batch.shape[0], batch.mean(0), batch.var(0)
    total = stats.count + n
    delta = mean - stats.mean
    sum_sq = stats.var * stats.count + var * n + delta**2 * stats.count * n / total
    return RunningStats(stats.mean + delta * n / total, sum_sq / total, total)


def normalize(stats: RunningStats, obs: jax.Array) -> jax.Array:
    return (obs - stats.mean) / jnp.sqrt(stats.var + 1e-8)


samples = jax.random.normal(jax.random.key(0), (3, 50, 2)) * jnp.array([5.0, 0.1]) + 3
stats = RunningStats.zeros(2)
for part in samples:  # three batches, merged one after the other
    stats = update_stats(stats, part)
flat = np.asarray(samples).reshape(-1, 2)
print("merged mean", np.round(stats.mean, 4), " numpy", np.round(flat.mean(0), 4))
print("merged var ", np.round(stats.var, 4), " numpy", np.round(flat.var(0), 4))

# %%
# ## Bounded continuous actions
#
# Pendulum's torque must lie in $[-2, 2]$, MountainCarContinuous's force in $[-1, 1]$ (a
# `Box` space). The policy below is a Gaussian, whose samples are unbounded. There are two
# usual fixes: *clip* the sample before the environment sees it, or *squash* it with
# $\tanh$ and rescale, which changes the distribution and its log-probability. This example
# clips, as rejax and CleanRL do: the rollout keeps the unclipped sample, so the
# log-probability that PPO's ratio needs is the Gaussian's own, and only the environment
# gets the clipped action. The greedy policy (the Gaussian's mean) is clipped the same way.


def to_env_action(space: spaces.Discrete | spaces.Box, action: jax.Array) -> jax.Array:
    """The policy's `action` (leading batch axes, then flat) as `space` accepts it."""
    if isinstance(space, spaces.Discrete):
        return action
    action = jnp.clip(action, space.low, space.high)
    return action.reshape(*action.shape[:-1], *space.shape)


torque = spaces.Box(-2.0, 2.0, (1,), jnp.float32)
raw = jnp.array([[-7.5], [0.3], [2.5]])
print(
    "sampled:",
    np.round(raw[:, 0], 2),
    "-> Pendulum gets:",
    np.round(to_env_action(torque, raw)[:, 0], 2),
)

# %%
# ## The two action distributions
#
# For discrete actions the actor outputs the logits of a categorical distribution; for
# continuous ones, the mean of a Gaussian whose log standard deviation is a learned
# parameter. Sampling takes noise drawn beforehand (Gumbel noise for the categorical:
# $\arg\max(\text{logits} + g)$ is a sample), so that a rollout can draw all of its noise
# at once. They are flax structs, so a network can return them from inside `jit`.


class Categorical(struct.PyTreeNode):
    logits: jax.Array

    @staticmethod
    def noise(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        return jax.random.gumbel(key, shape)

    def sample(self, noise: jax.Array) -> jax.Array:
        return jnp.argmax(self.logits + noise, axis=-1)

    def mode(self) -> jax.Array:
        return jnp.argmax(self.logits, axis=-1)

    def log_prob(self, action: jax.Array) -> jax.Array:
        log_probs = jax.nn.log_softmax(self.logits)
        return jnp.take_along_axis(log_probs, action[..., None].astype(jnp.int32), -1)[..., 0]

    def entropy(self) -> jax.Array:
        log_probs = jax.nn.log_softmax(self.logits)
        return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)


class Gaussian(struct.PyTreeNode):
    mean: jax.Array
    log_std: jax.Array

    @staticmethod
    def noise(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        return jax.random.normal(key, shape)

    def sample(self, noise: jax.Array) -> jax.Array:
        return self.mean + jnp.exp(self.log_std) * noise

    def mode(self) -> jax.Array:
        return self.mean

    def log_prob(self, action: jax.Array) -> jax.Array:
        z = (action - self.mean) * jnp.exp(-self.log_std)
        return jnp.sum(-0.5 * z**2 - self.log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)

    def entropy(self) -> jax.Array:
        per_dim = 0.5 + 0.5 * jnp.log(2 * jnp.pi) + self.log_std
        return jnp.sum(jnp.broadcast_to(per_dim, self.mean.shape), axis=-1)


uniform, standard = Categorical(jnp.zeros(2)), Gaussian(jnp.zeros(1), jnp.zeros(1))
print(f"entropy of a fair coin {float(uniform.entropy()):.4f} (ln 2 = {np.log(2):.4f})")
print(f"N(0, 1) log-density at 0: {float(standard.log_prob(jnp.zeros(1))):.4f}", end=" ")
print(f"(-ln(2 pi) / 2 = {-0.5 * np.log(2 * np.pi):.4f})")

# %%
# ## The policy and the value function
#
# PPO is an *actor-critic* method: the actor maps an observation to a distribution over
# actions, the critic to an estimate of the return to come (the value). Two small MLPs with
# orthogonal initial weights (small ones for the actor's output, so that the first policy
# is close to uniform), and the activation the settings name.
from flax import linen as nn


class ActorCritic(nn.Module):
    """An actor and a critic, each an MLP with two hidden layers, over flat observations."""

    action_dim: int
    discrete: bool
    hidden_size: int = 64
    activation: str = "tanh"
    """A function of `flax.linen`: tanh, relu or swish."""

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[Categorical | Gaussian, jax.Array]:
        orthogonal, act = nn.initializers.orthogonal, getattr(nn, self.activation)

        def mlp(x: jax.Array, out: int, out_scale: float) -> jax.Array:
            for _ in range(2):
                x = act(nn.Dense(self.hidden_size, kernel_init=orthogonal(np.sqrt(2)))(x))
            return nn.Dense(out, kernel_init=orthogonal(out_scale))(x)

        actor_out = mlp(obs, self.action_dim, 0.01)
        value = mlp(obs, 1, 1.0)[..., 0]
        if self.discrete:
            return Categorical(actor_out), value
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return Gaussian(actor_out, log_std), value


def make_network(space: spaces.Discrete | spaces.Box, settings: PPOSettings) -> ActorCritic:
    """The actor-critic for an action space."""
    discrete = isinstance(space, spaces.Discrete)
    action_dim = space.n if discrete else int(np.prod(space.shape))
    return ActorCritic(action_dim, discrete, settings.hidden_size, settings.activation)


network = make_network(env.action_space(env_params), config)
obs_size = int(np.prod(env.observation_space(env_params).shape))
params = network.init(jax.random.key(0), jnp.zeros((1, obs_size)))
print(f"{sum(p.size for p in jax.tree.leaves(params)):,} parameters;", end=" ")
print("first policy:", network.apply(params, jnp.zeros((1, obs_size)))[0])

# %%
# ## The state of training
#
# Everything that changes during training lives in one typed pytree, `PPOState`: network
# parameters, optimizer state, observation statistics, the environments' states and last
# observations, and the random key. The hyper-parameters that are numbers are *leaves* of
# another pytree, `PPOHParams`, so they can be traced values: `jax.vmap` could train
# several learning rates at once as it trains several seeds. Sizes that shape arrays
# (environments, steps, minibatches) are static fields of the module instead.
import optax


class PPOHParams(struct.PyTreeNode):
    """Numeric hyper-parameters of PPO (pytree leaves: they may be traced or vmapped)."""

    learning_rate: float | jax.Array
    gamma: float | jax.Array
    gae_lambda: float | jax.Array
    clip_eps: float | jax.Array
    ent_coef: float | jax.Array
    vf_coef: float | jax.Array
    max_grad_norm: float | jax.Array

    @classmethod
    def of(cls, settings: PPOSettings) -> "PPOHParams":
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


class PPOState(struct.PyTreeNode):
    params: dict
    opt_state: optax.OptState
    obs_stats: RunningStats
    env_state: object
    obs: jax.Array
    rng: jax.Array
    env_steps: jax.Array


class Rollout(struct.PyTreeNode):
    """A batch of transitions, each field shaped (num_steps, num_envs, ...)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    """The observation the action led to, before any reset (what ended an episode)."""
    terminated: jax.Array
    """The episode ended in a terminal state: its future return is zero."""
    done: jax.Array
    """The episode ended, terminated or truncated by the time limit: the environment reset."""


print(PPOHParams.of(config))

# %%
# ## PPO as a `JaxModule`: its parts
#
# The algorithm is a [`JaxModule`][gallery_lib.JaxModule], so that
# [`JaxTrainer`][gallery_lib.JaxTrainer] can compile the whole training run. First what it
# is made of: the environment, the network, the hyper-parameters, the sizes (static:
# they shape arrays), and the optimizer, Adam after clipping the gradients' global norm.


class PPOParts(struct.PyTreeNode):
    env: gymnax.environments.environment.Environment = struct.field(pytree_node=False)
    env_params: object
    hparams: PPOHParams
    network: ActorCritic = struct.field(pytree_node=False)
    num_envs: int = struct.field(pytree_node=False)
    num_steps: int = struct.field(pytree_node=False)
    num_epochs: int = struct.field(pytree_node=False)
    num_minibatches: int = struct.field(pytree_node=False)
    eval_episodes: int = struct.field(pytree_node=False)
    normalize_observations: bool = struct.field(pytree_node=False)
    # A rollout is time-major and GAE scans it backwards: on several devices, `fit` must not
    # split it along its first (time) axis. Many seeds are split over devices by `fit_many`.
    batch_axis = None

    @classmethod
    def create(cls, env, env_params, settings: PPOSettings, eval_episodes: int):
        batch_size = settings.num_envs * settings.num_steps
        if batch_size % settings.num_minibatches:
            raise ValueError(
                f"num_envs x num_steps = {batch_size} does not split into "
                f"{settings.num_minibatches} equal minibatches; pick a divisor of it."
            )
        network = make_network(env.action_space(env_params), settings)
        sizes = ("num_envs", "num_steps", "num_epochs", "num_minibatches")
        sizes = {name: getattr(settings, name) for name in sizes}
        return cls(
            env, env_params, PPOHParams.of(settings), network, **sizes,
            eval_episodes=eval_episodes, normalize_observations=settings.normalize_observations,
        )  # fmt: skip

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps


# %%
# ## PPO as a `JaxModule`: its four methods
#
# `init_train_state` initialises the networks, the optimizer and the environments;
# `get_batch` collects a rollout; `training_step` computes the training data and updates
# the networks on it; `evaluate` plays whole episodes with the greedy policy. Each is a
# function of the next cells, with a check of its own.


class PPO(PPOParts):
    """Proximal Policy Optimization on a gymnax environment, as a `JaxModule`."""

    def optimizer(self) -> optax.GradientTransformation:
        # Built from the hyper-parameters each time: they may be traced values.
        hp = self.hparams
        clip = optax.clip_by_global_norm(hp.max_grad_norm)
        return optax.flatten(optax.chain(clip, optax.adam(hp.learning_rate, eps=1e-5)))

    def observe(self, stats: RunningStats, obs: jax.Array) -> jax.Array:
        """What the network sees of flat observations: normalized, if the settings say so."""
        return normalize(stats, obs) if self.normalize_observations else obs

    def init_train_state(self, rng: jax.Array) -> PPOState:
        rng, net_key, env_key = jax.random.split(rng, 3)
        env_keys = jax.random.split(env_key, self.num_envs)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(env_keys, self.env_params)
        obs = flat(obs)
        params = self.network.init(net_key, obs)
        opt_state, stats = self.optimizer().init(params), RunningStats.zeros(obs.shape[-1])
        steps = jnp.zeros((), jnp.int32)
        return PPOState(params, opt_state, stats, env_state, obs, rng, steps)

    def get_batch(self, train_state: PPOState, batch_idx: jax.Array) -> tuple[PPOState, Rollout]:
        return collect_rollout(self, train_state)

    def training_step(self, batch_idx: jax.Array, train_state: PPOState, batch: Rollout):
        data = training_data(self.network, self.hparams, train_state.params, batch)
        rng, key = jax.random.split(train_state.rng)
        params, opt_state, metrics = ppo_update(
            self, train_state.params, train_state.opt_state, data, key
        )
        return train_state.replace(params=params, opt_state=opt_state, rng=rng), metrics

    def evaluate(self, train_state: PPOState) -> dict:
        return evaluate_greedy(self, train_state)


def flat(obs: jax.Array) -> jax.Array:
    """A batch of observations as float vectors, whatever the environment's shape."""
    return obs.reshape(obs.shape[0], -1).astype(jnp.float32)


module = PPO.create(env, env_params, config, eval_episodes=config.eval_episodes)
train_state = module.init_train_state(jax.random.key(config.seed))
print(f"{module.num_envs} environments, first observations {train_state.obs.shape}")

# %%
# ## The rollout's randomness, drawn at once
#
# A rollout needs, for each step and environment, the noise that samples the action, the
# key of the environment's step and the state it restarts from if its episode ends there.
# They are drawn before the rollout, in a few large calls (see the last section).


def draw_rollout_randomness(module: PPO, key: jax.Array) -> tuple:
    """Sampling noise, step keys and restart states for each (step, environment)."""
    noise_key, step_key, reset_key = jax.random.split(key, 3)
    shape = (module.num_steps, module.num_envs)
    distribution = Categorical if module.network.discrete else Gaussian
    noise = distribution.noise(noise_key, (*shape, module.network.action_dim))
    reset = jax.vmap(jax.vmap(module.env.reset, in_axes=(0, None)), in_axes=(0, None))
    reset_obs, reset_states = reset(jax.random.split(reset_key, shape), module.env_params)
    return noise, jax.random.split(step_key, shape), reset_obs, reset_states


noise, step_keys, reset_obs, _ = draw_rollout_randomness(module, jax.random.key(0))
print("noise", noise.shape, "step keys", step_keys.shape, "restart observations", reset_obs.shape)


# %%
# ## The rollout
#
# A `lax.scan` over `num_steps`: the policy samples an action for every environment from
# the normalized observation, `jax.vmap(env.step_env)` advances them, and a finished
# episode restarts from a fresh state, drawn above. The observation statistics stay fixed
# during the rollout, so its observations can be normalized after it, with the same result;
# then the statistics absorb them.


def collect_rollout(module: PPO, train_state: PPOState) -> tuple[PPOState, Rollout]:
    env, env_params, stats = module.env, module.env_params, train_state.obs_stats
    step_env = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))
    space = env.action_space(env_params)

    def env_step(carry: tuple, inputs: tuple) -> tuple[tuple, Rollout]:
        env_state, obs = carry
        noise, keys, reset_obs, reset_state = inputs
        pi, _ = module.network.apply(train_state.params, module.observe(stats, obs))
        action = pi.sample(noise)
        next_obs, next_state, reward, terminated, _ = step_env(
            keys, env_state, to_env_action(space, action), env_params
        )
        done = terminated | jax.vmap(env.is_truncated, in_axes=(0, None))(next_state, env_params)

        def restart(fresh: jax.Array, kept: jax.Array) -> jax.Array:
            return jnp.where(done.reshape(-1, *[1] * (kept.ndim - 1)), fresh, kept)

        env_state = jax.tree.map(restart, reset_state, next_state)
        next_obs = flat(next_obs)
        transition = Rollout(obs, action, reward.astype(jnp.float32), next_obs, terminated, done)
        return (env_state, restart(flat(reset_obs), next_obs)), transition

    rng, key = jax.random.split(train_state.rng)
    carry = (train_state.env_state, train_state.obs)
    (env_state, obs), raw = jax.lax.scan(env_step, carry, draw_rollout_randomness(module, key))
    rollout = raw.replace(
        obs=module.observe(stats, raw.obs), next_obs=module.observe(stats, raw.next_obs)
    )
    if module.normalize_observations:
        stats = update_stats(stats, raw.obs)
    steps = train_state.env_steps + module.batch_size
    state = train_state.replace(
        env_state=env_state, obs=obs, rng=rng, obs_stats=stats, env_steps=steps
    )
    return state, rollout


train_state, rollout = collect_rollout(module, train_state)
print("rollout:", jax.tree.map(jnp.shape, rollout))
truncated = int((rollout.done & ~rollout.terminated).sum())
print(f"episodes ended: {int(rollout.done.sum())}, {truncated} of them by the time limit")

# %%
# ## Advantages: generalized advantage estimation
#
# How much better than expected was each action? With the critic's values $V$, the
# one-step surprise of step $t$ is
#
# $$\delta_t = r_t + \gamma\,(1 - \mathrm{terminated}_t)\,V(s_{t+1}) - V(s_t),$$
#
# and GAE sums the surprises that follow, each weighted $\gamma\lambda$ more than the next,
# up to the end of the episode:
#
# $$\hat A_t = \delta_t + \gamma\lambda\,(1 - \mathrm{done}_t)\,\hat A_{t+1}.$$
#
# A backwards `lax.scan` computes it. The critic's target is the return estimate
# $\hat R_t = \hat A_t + V(s_t)$. A time limit is not a failure: a *truncated* episode is
# done (the next step belongs to another episode) but not terminated, so its last step
# still counts the value of the observation it ended on.


def gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    done: jax.Array,
    gamma: float | jax.Array,
    lam: float | jax.Array,
) -> jax.Array:
    """GAE advantages of a rollout; every argument but gamma and lam is time-major."""
    deltas = rewards + gamma * next_values * (1 - terminated) - values

    def backwards(next_advantage: jax.Array, step: tuple) -> tuple[jax.Array, jax.Array]:
        delta, episode_over = step
        advantage = delta + gamma * lam * (1 - episode_over) * next_advantage
        return advantage, advantage

    start = jnp.zeros_like(deltas[0])
    return jax.lax.scan(backwards, start, (deltas, done), reverse=True)[1]


# Four steps, all values zero, gamma 1/2, lambda 1; the episode ends after step 1.
ended = jnp.array([0.0, 1.0, 0.0, 0.0])
toy = gae(jnp.array([1.0, 2, 3, 4]), jnp.zeros(4), jnp.zeros(4), ended, ended, 0.5, 1.0)
print("gae:    ", toy.tolist())
print("by hand:", [1 + 2 / 2, 2.0, 3 + 4 / 2, 4.0])

# %%
# ## The loss
#
# With the probability ratio of the policy being trained to the one that acted,
# $\rho_t(\theta) = \pi_\theta(a_t \mid s_t) / \pi_{\mathrm{old}}(a_t \mid s_t)$, PPO
# maximises the clipped objective
#
# $$L^{\mathrm{clip}}(\theta) = \mathbb{E}_t\left[\min\left(\rho_t(\theta)\,\hat A_t,\;
# \mathrm{clip}\left(\rho_t(\theta), 1-\epsilon, 1+\epsilon\right)\hat A_t\right)\right]:$$
#
# once the ratio leaves $[1-\epsilon, 1+\epsilon]$ in the direction the advantage favours,
# the gradient vanishes, which keeps each update *proximal*. The loss minimised is
# $-L^{\mathrm{clip}} + c_v L^V - c_e \mathbb{E}_t[H(\pi_\theta(\cdot \mid s_t))]$: the
# critic's squared error to $\hat R_t$ (clipped around the old value the same way), and an
# entropy bonus that keeps the policy exploring. Advantages are standardised per minibatch.


def ppo_loss(
    network: ActorCritic, hp: PPOHParams, params: dict, minibatch: dict
) -> tuple[jax.Array, dict]:
    """PPO's loss on a minibatch of transitions, and what it is made of."""
    pi, value = network.apply(params, minibatch["obs"])
    log_ratio = pi.log_prob(minibatch["action"]) - minibatch["log_prob"]
    ratio = jnp.exp(log_ratio)
    adv = minibatch["advantages"]
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    clipped = jnp.clip(ratio, 1 - hp.clip_eps, 1 + hp.clip_eps)
    actor_loss = -jnp.mean(jnp.minimum(ratio * adv, clipped * adv))
    old_value, targets = minibatch["value"], minibatch["targets"]
    value_clipped = old_value + jnp.clip(value - old_value, -hp.clip_eps, hp.clip_eps)
    value_loss = 0.5 * jnp.mean(jnp.maximum((value - targets) ** 2, (value_clipped - targets) ** 2))
    entropy = jnp.mean(pi.entropy())
    total = actor_loss + hp.vf_coef * value_loss - hp.ent_coef * entropy
    return total, {
        "actor_loss": actor_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": jnp.mean((ratio - 1) - log_ratio),
        "clip_fraction": jnp.mean(jnp.abs(ratio - 1) > hp.clip_eps),
    }


# At the parameters that acted, every ratio is 1: nothing is clipped, the KL is 0.
toy_obs = jax.random.normal(jax.random.key(1), (8, obs_size))
toy_pi, toy_value = network.apply(params, toy_obs)
toy_action = toy_pi.mode()
toy_batch = {"obs": toy_obs, "action": toy_action, "log_prob": toy_pi.log_prob(toy_action)}
toy_batch |= {"value": toy_value, "targets": toy_value + 1.0, "advantages": jnp.arange(8.0)}
_, parts = ppo_loss(network, PPOHParams.of(config), params, toy_batch)
print({name: round(float(value), 4) for name, value in parts.items()})

# %%
# ## The training data of an update
#
# An update first turns the rollout into training data: the log-probabilities of the
# actions under the policy that acted, the values, the advantages and the return targets.
# The networks run once, batched, on all observations of the rollout and on the ones that
# followed them ($V(s_t)$ and $V(s_{t+1})$).


def training_data(network: ActorCritic, hp: PPOHParams, params: dict, rollout: Rollout) -> dict:
    """Per transition: what the update needs, each shaped (num_steps, num_envs, ...)."""
    pi, values = network.apply(params, rollout.obs)
    _, next_values = network.apply(params, rollout.next_obs)
    advantages = gae(
        rollout.reward, values, next_values, rollout.terminated, rollout.done,
        hp.gamma, hp.gae_lambda,
    )  # fmt: skip
    return {
        "obs": rollout.obs,
        "action": rollout.action,
        "log_prob": pi.log_prob(rollout.action),
        "value": values,
        "advantages": advantages,
        "targets": advantages + values,
    }


data = training_data(module.network, module.hparams, train_state.params, rollout)
print({k: f"mean {float(v.mean()):.3f}" for k, v in data.items() if k != "obs"})


# %%
# ## Shuffling a rollout
#
# Each pass over the data visits the transitions in a new random order. `shuffled_indices`
# draws that order as `jax.random.permutation` does, by sorting random keys, but faster on
# a CPU (see the last section): it packs each item's key and index into one 32-bit word, so
# a plain sort of numbers replaces a sort of keys that carries the indices along. Equal keys
# keep the order of the previous round, so enough rounds make every order equally likely.
import math


def sort_rounds(n: int) -> int:
    """Rounds of sorting that shuffle `n` items: `jax.random.permutation`'s rule (about
    n**3 equally likely keys in all), for keys of the bits the index leaves free."""
    random_bits = 32 - max(1, (n - 1).bit_length())
    return max(1, math.ceil(3 * math.log(max(n, 2)) / (random_bits * math.log(2))))


def shuffled_indices(key: jax.Array, n: int) -> jax.Array:
    """A random permutation of `range(n)` by `sort_rounds(n)` sorts of one 32-bit word per
    item, its random key above its index; `jax.random.permutation` past 2**24 items."""
    index_bits = max(1, (n - 1).bit_length())
    if index_bits > 24:
        return jax.random.permutation(key, n)
    order = jnp.arange(n, dtype=jnp.uint32)
    for round_key in jax.random.split(key, sort_rounds(n)):
        words = jax.random.bits(round_key, (n,), jnp.uint32) >> index_bits << index_bits
        words = words | jnp.arange(n, dtype=jnp.uint32)
        order = order[jax.lax.sort(words) & ((1 << index_bits) - 1)]
    return order.astype(jnp.int32)


for n in (10, 10_000):
    order = np.asarray(shuffled_indices(jax.random.key(n), n))
    print(f"{n:>6} items, {sort_rounds(n)} round(s): a permutation", end=" ")
    print(f"{sorted(order) == list(range(n))}, first ones {order[:6].tolist()}")

# %%
# ## The update
#
# Then `num_epochs` passes over the data in `num_minibatches` shuffled minibatches, one
# gradient step each: two nested `lax.scan`s. The check: the loss on the whole rollout
# before and after one update, and how far the policy moved.


def ppo_update(module: "PPO", params: dict, opt_state: optax.OptState, data: dict, key: jax.Array):
    """`num_epochs` passes of minibatch gradient steps; the new parameters, optimizer state
    and the mean of each loss term."""
    data = jax.tree.map(lambda x: x.reshape(module.batch_size, *x.shape[2:]), data)
    optimizer = module.optimizer()

    def gradient_step(carry: tuple, minibatch: dict) -> tuple[tuple, dict]:
        params, opt_state = carry
        loss = jax.grad(ppo_loss, argnums=2, has_aux=True)
        grads, metrics = loss(module.network, module.hparams, params, minibatch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), metrics

    def epoch(carry: tuple, key: jax.Array) -> tuple[tuple, dict]:
        order = shuffled_indices(key, module.batch_size)
        split = lambda x: x[order].reshape(module.num_minibatches, -1, *x.shape[1:])  # noqa: E731
        return jax.lax.scan(gradient_step, carry, jax.tree.map(split, data))

    keys = jax.random.split(key, module.num_epochs)
    (params, opt_state), metrics = jax.lax.scan(epoch, (params, opt_state), keys)
    return params, opt_state, jax.tree.map(jnp.mean, metrics)


def full_batch_loss(module: PPO, params: dict, data: dict) -> tuple[jax.Array, dict]:
    flat_data = jax.tree.map(lambda x: x.reshape(module.batch_size, *x.shape[2:]), data)
    return ppo_loss(module.network, module.hparams, params, flat_data)


update = jax.jit(lambda p, o, d, k: ppo_update(module, p, o, d, k))
new_params, _, _ = update(train_state.params, train_state.opt_state, data, jax.random.key(2))
(before, _), (after, moved) = (
    full_batch_loss(module, train_state.params, data),
    full_batch_loss(module, new_params, data),
)
print(f"loss on the rollout: {float(before):.4f} before the update, {float(after):.4f} after")
print(f"KL(old || new) {float(moved['approx_kl']):.4f}, ratios clipped", end=" ")
print(f"{float(moved['clip_fraction']):.1%}")

# %%
# ## Evaluation
#
# `eval_episodes` whole episodes played with the greedy policy (the most likely action; for
# a Gaussian, its mean, clipped to the action space), in a `while_loop` that stops when
# every episode is over. `env.step_env` is the step without the automatic reset: a finished
# episode stays finished, and `alive` stops counting its rewards. Evaluation draws its own
# keys, so that it does not change the course of training.


def evaluate_greedy(module: PPO, train_state: PPOState) -> dict:
    """Mean return of `module.eval_episodes` greedy episodes, and the env steps so far."""
    env, env_params, episodes = module.env, module.env_params, module.eval_episodes
    reset_key, loop_key = jax.random.split(jax.random.fold_in(train_state.rng, 1))
    reset = jax.vmap(env.reset, in_axes=(0, None))
    obs, env_state = reset(jax.random.split(reset_key, episodes), env_params)
    step_env = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))
    space = env.action_space(env_params)

    def still_playing(carry: tuple) -> jax.Array:
        alive, t = carry[2], carry[4]
        return jnp.any(alive) & (t < env_params.max_steps_in_episode)

    def play(carry: tuple) -> tuple:
        env_state, obs, alive, returns, t = carry
        seen = module.observe(train_state.obs_stats, flat(obs))
        pi, _ = module.network.apply(train_state.params, seen)
        keys = jax.random.split(jax.random.fold_in(loop_key, t), episodes)
        action = to_env_action(space, pi.mode())
        obs, env_state, reward, terminated, _ = step_env(keys, env_state, action, env_params)
        returns = returns + alive * reward
        return env_state, obs, alive & ~terminated, returns, t + 1

    alive, returns = jnp.ones(episodes, bool), jnp.zeros(episodes, jnp.float32)
    carry = (env_state, obs, alive, returns, jnp.zeros((), jnp.int32))
    returns = jax.lax.while_loop(still_playing, play, carry)[3]
    return {"eval_return": returns.mean(), "env_steps": train_state.env_steps}


untrained = jax.jit(evaluate_greedy, static_argnums=0)(module, train_state)
print(f"untrained greedy policy: mean return {float(untrained['eval_return']):.1f}", end=" ")
print(f"over {module.eval_episodes} episodes")

# %%
# ## Training one seed with `JaxTrainer`
#
# [`JaxTrainer`][gallery_lib.JaxTrainer] runs `evals` epochs of PPO iterations (a rollout
# and an update each), evaluating after every epoch. Its `fit` traces the four methods once
# and compiles the *whole run*, every rollout, update and evaluation, into one XLA program:
# after compilation no Python runs until training is over. The first `fit` pays the
# compilation; a second `fit` of the same module reuses the compiled program, so the
# difference of the two is the compile time. `compiler_options` asks XLA for LLVM's `-O2`
# instead of `-O3`, which compiles this loop faster and runs it as fast.
import time

from gallery_lib import JaxTrainer, watch_compile_cache


def build(config: Config) -> tuple[PPO, JaxTrainer]:
    """The module and the trainer that `config` describes."""
    env, env_params = make_env(config.env_id)
    module = PPO.create(env, env_params, config, eval_episodes=config.eval_episodes)
    iterations = max(1, config.total_steps // (module.batch_size * config.evals))
    trainer = JaxTrainer(
        max_epochs=config.evals,
        training_steps_per_epoch=iterations,
        enable_progress_bar=False,
        compiler_options={"xla_backend_optimization_level": config.xla_opt_level},
    )
    return module, trainer


def timed_fit(trainer: JaxTrainer, module: PPO, seed: int) -> tuple[float, PPOState, dict]:
    start = time.perf_counter()
    train_state, eval_metrics = jax.block_until_ready(trainer.fit(module, jax.random.key(seed)))
    return time.perf_counter() - start, train_state, eval_metrics


module, trainer = build(config)
env_steps = config.evals * trainer.training_steps_per_epoch * module.batch_size
with watch_compile_cache() as first_fit_cache:
    first_time, train_state, eval_metrics = timed_fit(trainer, module, config.seed)
run_time = timed_fit(trainer, module, config.seed)[0]
compile_time = max(first_time - run_time, 0.0)
curve_steps, curve = np.asarray(eval_metrics["env_steps"]), np.asarray(eval_metrics["eval_return"])
print(f"{env_steps:,} env steps: compile {compile_time:.1f} s, run {run_time:.2f} s")
print(f"{env_steps / run_time:,.0f} env steps/s after compilation")
print("mean evaluation return by epoch:", np.round(curve).astype(int).tolist())

# %%
# ## Many seeds at once
#
# A reinforcement-learning result from one seed is an anecdote. Because the whole run is a
# pure function of its key, `jax.vmap` turns it into a run of many seeds in one program:
# [`JaxTrainer.fit_many`][gallery_lib.JaxTrainer.fit_many] vmaps the module's methods over a
# batch of keys, and every matrix product of the networks serves all seeds at once. On a
# machine with several devices the trainer shards the seeds over them. The figure shows
# the seeds' mean, the band between the best and the worst, and the single seed above.
import matplotlib.pyplot as plt

plt.rcParams["font.size"] = 13  # legible on a phone
start = time.perf_counter()
seed_keys = jax.random.split(jax.random.key(config.seed), config.num_seeds)
curves = np.asarray(trainer.fit_many(module, seed_keys)[1]["eval_return"])
many_time = time.perf_counter() - start
print(f"{config.num_seeds} seeds x {env_steps:,} env steps in {many_time:.1f} s, compile included;")
print(f"final mean return {curves[:, -1].mean():.1f} (min {curves[:, -1].min():.0f})")

fig, ax = plt.subplots(figsize=(6.5, 4.2))
ax.fill_between(curve_steps, curves.min(0), curves.max(0), alpha=0.25, label="seeds: min-max")
ax.plot(curve_steps, curves.mean(0), lw=2.5, label=f"mean of {config.num_seeds} seeds")
ax.plot(curve_steps, curve, lw=1.2, ls=":", color="k", label="the single seed")
if config.solved_return is not None:
    ax.axhline(config.solved_return, color="gray", ls="--", label="goal")
ax.set(xlabel="environment steps", ylabel="mean evaluation return", title=f"PPO on {config.env_id}")
ax.legend(fontsize=12)
fig.tight_layout()
plt.show()

# %%
# ## The trained policy at work
#
# One episode played by the greedy policy of the single-seed run: a `lax.scan` over the
# episode's length, like the evaluation, but keeping every observation.


def play_episode(module: PPO, train_state: PPOState, key: jax.Array) -> tuple[np.ndarray, float]:
    """The observations of one greedy episode (until it ends) and its return."""
    env, env_params = module.env, module.env_params
    space = env.action_space(env_params)
    obs, state = env.reset(key, env_params)

    def step(carry: tuple, key: jax.Array) -> tuple[tuple, tuple]:
        obs, state, alive = carry
        seen = module.observe(train_state.obs_stats, flat(obs[None]))
        action = to_env_action(space, module.network.apply(train_state.params, seen)[0].mode())
        next_obs, state, reward, terminated, _ = env.step_env(key, state, action[0], env_params)
        return (next_obs, state, alive & ~terminated), (obs, reward * alive, alive)

    keys = jax.random.split(key, env_params.max_steps_in_episode)
    _, (observations, rewards, alive) = jax.jit(
        lambda keys: jax.lax.scan(step, (obs, state, jnp.bool_(True)), keys)
    )(keys)
    return np.asarray(observations)[np.asarray(alive)], float(rewards.sum())


observations, episode_return = play_episode(module, train_state, jax.random.key(config.seed + 1000))
print(f"episode return {episode_return:.0f} over {len(observations)} steps")


# %%
# ## Drawing an episode
#
# CartPole is drawn from its observations (the cart at its position, the pole at its angle),
# Pendulum from its angle; other environments as bars of their observation.
from matplotlib.patches import Rectangle


def draw_state(ax: plt.Axes, env_id: str, obs: np.ndarray) -> None:
    if env_id == "CartPole-v1":
        x, theta = obs[0], obs[2]
        ax.add_patch(Rectangle((x - 0.25, -0.1), 0.5, 0.2, color="tab:blue"))
        ax.plot([x, x + np.sin(theta)], [0.1, 0.1 + np.cos(theta)], lw=4, color="tab:orange")
        ax.set(xlim=(-2.4, 2.4), ylim=(-0.3, 1.3))
    elif env_id == "Pendulum-v1":  # observation: cos(angle), sin(angle), angular velocity
        ax.plot([0, -obs[1]], [0, obs[0]], lw=5, color="tab:orange")
        ax.plot(0, 0, "o", color="k")
        ax.set(xlim=(-1.2, 1.2), ylim=(-1.2, 1.2), aspect="equal")
    else:
        ax.bar(range(obs.shape[0]), obs)
    ax.set(xticks=[], yticks=[])


def filmstrip(env_id: str, observations: np.ndarray, title: str, frames: int = 6) -> plt.Figure:
    fig, axes = plt.subplots(1, frames, figsize=(7, 2.3))
    fig.suptitle(title)
    for ax, t in zip(axes, np.linspace(0, len(observations) - 1, frames).astype(int), strict=True):
        draw_state(ax, env_id, observations[t])
        ax.set_title(f"t={t}", fontsize=12)
    fig.tight_layout()
    return fig


filmstrip(config.env_id, observations, f"{config.env_id}: the greedy policy")
plt.show()

# %%
# ## Every classic-control task, with its preset
#
# A small-budget pass over all presets: each trained on `table_seeds` seeds (`fit_many`)
# for a fraction `table_budget` of its env-step budget. The defaults, one seed and a fifth
# of each budget, keep the docs build short (a program per environment to compile): the
# slow learners, Pendulum above all, are far from done, and one seed has no spread. Quick
# mode trains Pendulum alone, for a few updates. Per environment: the final mean evaluation
# return over the seeds with its standard deviation, the env steps after which the seeds'
# mean first reached the goal, the env steps per second of a compiled run of all seeds, and
# the compile time. `--table-budget 1` trains the full budgets; the next section gives
# them beside rejax. First, the configuration of each row and the summary of its curves.
import pandas as pd


def preset_config(env_id: str, base: Config) -> Config:
    """`env_id` with its preset, `base`'s evaluation settings and `table_budget`."""
    config = with_preset(dataclasses.replace(Config(), env_id=env_id), keep=set())
    steps = max(1, round(config.total_steps * base.table_budget))
    evals = max(1, min(config.evals, base.evals, steps // (config.num_envs * config.num_steps)))
    return dataclasses.replace(
        config, total_steps=steps, evals=evals, eval_episodes=base.eval_episodes,
        xla_opt_level=base.xla_opt_level,
    )  # fmt: skip


def learning_summary(steps: np.ndarray, curves: np.ndarray, goal: float | None) -> dict:
    """Final return (mean and std over seeds) and env steps until the mean reached `goal`."""
    reached = np.flatnonzero(curves.mean(0) >= (np.inf if goal is None else goal))
    return {
        "final return": curves[:, -1].mean(),
        "± std": curves[:, -1].std(),
        "goal": goal,
        "env steps to goal": steps[reached[0]] if reached.size else np.nan,
    }


print(preset_config("Pendulum-v1", config))


# %%
# ## Training every preset
#
# `train_seeds` fits all seeds of one configuration at once, twice: the first call compiles,
# the second gives the run time alone.


def train_seeds(config: Config, seeds: int) -> tuple[PPO, PPOState, dict, dict]:
    """`seeds` seeds of `config` (`fit_many`; `fit` for one, a smaller program to compile);
    final states and curves with a leading seed axis, and the costs."""
    module, trainer = build(config)
    keys = jax.random.split(jax.random.key(config.seed), seeds)

    def fit() -> tuple[PPOState, dict]:
        if seeds > 1:
            return trainer.fit_many(module, keys)
        return jax.tree.map(lambda leaf: leaf[None], trainer.fit(module, keys[0]))

    start = time.perf_counter()
    jax.block_until_ready(fit())
    first = time.perf_counter() - start
    start = time.perf_counter()
    states, metrics = jax.block_until_ready(fit())
    run = time.perf_counter() - start
    trained = int(metrics["env_steps"][0, -1])
    costs = {"env steps trained": trained, "env steps/s": seeds * trained / run}
    return module, states, metrics, costs | {"compile (s)": max(first - run, 0.0)}


table_rows, table_curves, table_runs = {}, {}, {}
for env_id in (config.table_envs or presets()) if config.table_seeds else []:
    table_config = preset_config(env_id, config)
    table_module, states, metrics, costs = train_seeds(table_config, config.table_seeds)
    steps, returns = np.asarray(metrics["env_steps"][0]), np.asarray(metrics["eval_return"])
    table_rows[env_id] = learning_summary(steps, returns, table_config.solved_return) | costs
    table_curves[env_id], table_runs[env_id] = (steps, returns), (table_module, states)
results = pd.DataFrame.from_dict(table_rows, orient="index").astype(float).round(1)
print("final mean returns:", {env: round(row["final return"]) for env, row in table_rows.items()})
results  # noqa: B018

# %%
# ## Learning curves of the presets
#
# The mean evaluation return of the table's seeds over training, with the band between the
# best and the worst seed, and the goal as a dashed line.


def curve_panels(curves: dict[str, tuple[np.ndarray, np.ndarray]], goals: dict) -> plt.Figure:
    fig, axes = plt.subplots(3, 2, figsize=(7, 8.5))
    for ax, (env_id, (steps, returns)) in zip(axes.flat, curves.items(), strict=False):
        ax.fill_between(steps, returns.min(0), returns.max(0), alpha=0.25)
        ax.plot(steps, returns.mean(0), lw=2)
        if goals[env_id] is not None:
            ax.axhline(goals[env_id], color="gray", ls="--")
        ax.set_title(env_id, fontsize=12)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    for ax in axes.flat[len(curves) :]:
        ax.axis("off")
    fig.supxlabel("environment steps")
    fig.supylabel("mean evaluation return")
    fig.tight_layout()
    return fig


if table_curves:
    curve_panels(table_curves, {env: row["goal"] for env, row in table_rows.items()})
    plt.show()

# %%
# ## A continuous task at work
#
# One greedy episode of the first Pendulum-v1 seed of the table: the pendulum starts
# hanging at a random angle, and the policy, which can only push with a torque of at most
# 2 (too weak to lift it in one go), swings it up and holds it upright.
if "Pendulum-v1" in table_runs:
    pendulum, pendulum_states = table_runs["Pendulum-v1"]
    first_seed = jax.tree.map(lambda leaf: leaf[0], pendulum_states)
    swing, swing_return = play_episode(pendulum, first_seed, jax.random.key(config.seed + 7))
    print(f"Pendulum-v1 episode return {swing_return:.0f} over {len(swing)} steps")
    filmstrip("Pendulum-v1", swing, "Pendulum-v1: the greedy policy")
    plt.show()

# %%
# ## Against rejax, with the full budgets
#
# `benchmarks/bench_ppo.py --envs` trains each preset on {{ bench:ppo_envs.seeds:.0f }}
# seeds and rejax 0.1.3 with its published settings on the same seeds, and measures every
# final policy with the same evaluation ({{ bench:ppo_envs.final_episodes:.0f }} greedy
# episodes per seed). Its speed runs give both sides the preset's settings, one seed on one
# core, and the same evaluation schedule (the same greedy episodes after the same updates,
# each side with its own evaluation code); a second ratio has no evaluation at all. Speed is
# the example's env steps per second over rejax's. The last column is a *ceiling*: the ratio
# the example would reach if its rollouts and evaluations cost nothing, rejax's run against
# the example's updates alone (recorded {{ bench:ppo_envs.stamp }}; the ranges, the env
# steps to each goal and the compile times are in `benchmarks/README.md`).
#
# | task | final return, example / rejax | env steps, example / rejax | speed | no evaluation | ceiling |
# |---|---|---|---|---|---|
# | CartPole-v1 | {{ bench:ppo_envs.cartpole_example_return:.1f }} ± {{ bench:ppo_envs.cartpole_example_return_std:.1f }} / {{ bench:ppo_envs.cartpole_rejax_return:.1f }} ± {{ bench:ppo_envs.cartpole_rejax_return_std:.1f }} | {{ bench:ppo_envs.cartpole_example_steps:,.0f }} / {{ bench:ppo_envs.cartpole_rejax_steps:,.0f }} | {{ bench:ppo_envs.cartpole_speed_ratio:.2f }}x | {{ bench:ppo_envs.cartpole_train_only_ratio:.2f }}x | {{ bench:ppo_envs.cartpole_ceiling_ratio:.2f }}x |
# | Acrobot-v1 | {{ bench:ppo_envs.acrobot_example_return:.1f }} ± {{ bench:ppo_envs.acrobot_example_return_std:.1f }} / {{ bench:ppo_envs.acrobot_rejax_return:.1f }} ± {{ bench:ppo_envs.acrobot_rejax_return_std:.1f }} | {{ bench:ppo_envs.acrobot_example_steps:,.0f }} / {{ bench:ppo_envs.acrobot_rejax_steps:,.0f }} | {{ bench:ppo_envs.acrobot_speed_ratio:.2f }}x | {{ bench:ppo_envs.acrobot_train_only_ratio:.2f }}x | {{ bench:ppo_envs.acrobot_ceiling_ratio:.2f }}x |
# | MountainCar-v0 | {{ bench:ppo_envs.mountaincar_example_return:.1f }} ± {{ bench:ppo_envs.mountaincar_example_return_std:.1f }} / {{ bench:ppo_envs.mountaincar_rejax_return:.1f }} ± {{ bench:ppo_envs.mountaincar_rejax_return_std:.1f }} | {{ bench:ppo_envs.mountaincar_example_steps:,.0f }} / {{ bench:ppo_envs.mountaincar_rejax_steps:,.0f }} | {{ bench:ppo_envs.mountaincar_speed_ratio:.2f }}x | {{ bench:ppo_envs.mountaincar_train_only_ratio:.2f }}x | {{ bench:ppo_envs.mountaincar_ceiling_ratio:.2f }}x |
# | MountainCarContinuous-v0 | {{ bench:ppo_envs.mountaincar_continuous_example_return:.1f }} ± {{ bench:ppo_envs.mountaincar_continuous_example_return_std:.1f }} / {{ bench:ppo_envs.mountaincar_continuous_rejax_return:.1f }} ± {{ bench:ppo_envs.mountaincar_continuous_rejax_return_std:.1f }} | {{ bench:ppo_envs.mountaincar_continuous_example_steps:,.0f }} / {{ bench:ppo_envs.mountaincar_continuous_rejax_steps:,.0f }} | {{ bench:ppo_envs.mountaincar_continuous_speed_ratio:.2f }}x | {{ bench:ppo_envs.mountaincar_continuous_train_only_ratio:.2f }}x | {{ bench:ppo_envs.mountaincar_continuous_ceiling_ratio:.2f }}x |
# | Pendulum-v1 | {{ bench:ppo_envs.pendulum_example_return:.1f }} ± {{ bench:ppo_envs.pendulum_example_return_std:.1f }} / {{ bench:ppo_envs.pendulum_rejax_return:.1f }} ± {{ bench:ppo_envs.pendulum_rejax_return_std:.1f }} | {{ bench:ppo_envs.pendulum_example_steps:,.0f }} / {{ bench:ppo_envs.pendulum_rejax_steps:,.0f }} | {{ bench:ppo_envs.pendulum_speed_ratio:.2f }}x | {{ bench:ppo_envs.pendulum_train_only_ratio:.2f }}x | {{ bench:ppo_envs.pendulum_ceiling_ratio:.2f }}x |
#
# **Returns.** On every task the example's mean final return is at least rejax's within at
# most rejax's env steps, but on the two MountainCar tasks only because neither side
# learns them: the car never reaches the flag (-200), or stands still (0).
#
# **Speed: not where the project aims to be.** The example is ahead of rejax on every task,
# but only Pendulum-v1 is above the target ratio of 1.3; CartPole-v1, Acrobot-v1 and the
# MountainCar tasks are not. The ceiling says why, and where the time goes: a PPO update does
# the same arithmetic on both sides, compiled by the same XLA, and takes most of a run. On
# the MountainCar tasks, whose minibatches hold 40 and 50 samples, the example's updates
# alone take longer than rejax's whole run divided by 1.3, so no rollout or evaluation,
# however fast, could get the example there. A gradient step of 50 samples is about a
# hundred small XLA kernels on a CPU, each paying a fixed cost; beating rejax by that much
# would take a gradient step built from fewer, larger kernels, not a faster rollout. Where
# minibatches are large (Pendulum-v1's 1,000 samples), the update is arithmetic, and the
# shuffle above is what put the example ahead.

# %%
# ## Where the speed comes from
#
# The PPO above does the same arithmetic as any PPO; four of its choices are there for speed
# on a CPU, where a step of these small networks costs microseconds and fixed overheads
# dominate.
# `benchmarks/bench_ppo.py --tricks` takes each out in turn (one seed of CartPole-v1, one
# core, medians of interleaved runs, recorded {{ bench:ppo_tricks.stamp }}); each figure is
# the example's env steps per second with the trick over without it (the record's load
# average says how far to trust them; `benchmarks/README.md` gives their ranges):
#
# - the rollout's randomness drawn before the loop (`draw_rollout_randomness`) instead of a
#   few small random calls at every step: {{ bench:ppo_tricks.presampled_ratio:.2f }}x;
# - the shuffle (`shuffled_indices`) by plain sorts of one 32-bit word per item instead of
#   `jax.random.permutation`'s sorts of a key and a value together, once per epoch:
#   {{ bench:ppo_tricks.sort_shuffle_ratio:.2f }}x here, and much more on Pendulum-v1, whose
#   10,000-step rollouts it shuffles ten times an update (`jax.random.permutation` sorted
#   them for about a third of the update's time);
# - Adam over one flat vector (`optax.flatten`) instead of one small update per weight
#   matrix at every gradient step: {{ bench:ppo_tricks.flat_adam_ratio:.2f }}x;
# - LLVM's `-O2` (`xla_opt_level`) instead of `-O3`: {{ bench:ppo_tricks.opt2_ratio:.2f }}x,
#   and a compile of {{ bench:ppo_tricks.opt2_compile_s:.1f }} s instead of
#   {{ bench:ppo_tricks.opt3_compile_s:.1f }} s.
#
# With these tricks and rejax's own algorithm (the same clipping, initialisation and
# evaluation, the same compile options) the example's CartPole training runs at
# {{ bench:ppo.equal_ratio:.2f }}x rejax's env steps per second; with each preset's own
# algorithm, the table of the previous section. `bench_ppo.py --parts` times the pieces of
# an update on both sides.

# %%
# ## What it cost
#
# Measured in this run of the page (the docs build shares its machine, so treat them as
# orders of magnitude; `benchmarks/bench_ppo.py` measures ratios on a quiet machine).
# Compiling is paid once per machine, not once per run: every example turns on jax's
# persistent compilation cache ([`enable_compile_cache`][gallery_lib.enable_compile_cache];
# `--no-compile-cache` or `GALLERY_COMPILE_CACHE=0` turns it off), so the next process reads
# the compiled loop back instead of compiling it. When this run compiled the loop (a cold
# cache), the warm time is measured by clearing jax's in-memory caches and fitting again;
# when it read the loop from the cache, the cold time is this run's plus the compile time
# jax recorded in whole seconds when it wrote the entry.
cold_text, warm_text = f"{compile_time:.1f} s", "cache off"
if first_fit_cache.writes:
    jax.clear_caches()
    warm_text = f"{max(timed_fit(trainer, module, config.seed)[0] - run_time, 0.0):.1f} s"
elif first_fit_cache.hits:
    warm_text = cold_text
    cold_text = f"{compile_time + first_fit_cache.saved_s:.1f} s (jax's record)"
goal = np.inf if config.solved_return is None else config.solved_return
solved = np.flatnonzero(curve >= goal)
# Epochs take equal time, so the run reaches an epoch at that fraction of its duration.
to_goal = compile_time + run_time * (solved[0] + 1) / config.evals if solved.size else None
costs = {
    "env steps/s, one seed (after compilation)": f"{env_steps / run_time:,.0f}",
    "compile time, one seed, cold cache": cold_text,
    "compile time, one seed, warm cache": warm_text,
    f"time to mean return {goal:.0f}, compile included": (
        f"{to_goal:.1f} s" if to_goal is not None else "not reached"
    ),
    f"env steps/s, {config.num_seeds} seeds (compile included)": (
        f"{config.num_seeds * env_steps / many_time:,.0f}"
    ),
}
print(f"{env_steps / run_time:,.0f} env steps/s for one seed; compile {cold_text} (cold)")
pd.DataFrame({"value": costs})
