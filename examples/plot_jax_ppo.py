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

## Prerequisites

The first-steps page (`jax.grad`), and the idea of a policy and a return in reinforcement
learning. Environment, policy and update are all Jax code: no Python runs between two steps.
"""

# %%
# ## Settings
#
# The defaults are the usual CartPole settings of PPO (five environments of 100 steps per
# update, five epochs of five minibatches): they solve CartPole in a few tens of thousands of
# environment steps. Run the script with `--help` to change them; `--env-id` takes any gymnax
# environment whose actions are discrete or continuous (a `Box`).
import dataclasses

from gallery_lib import enable_compile_cache, example_config


@dataclasses.dataclass
class Config:
    """Train PPO on a gymnax environment, one seed and then many seeds at once."""

    env_id: str = "CartPole-v1"
    """gymnax environment id (an unknown id lists the available ones)."""
    total_steps: int = 100_000
    """Environment steps of training for each seed."""
    num_envs: int = 5
    """Environments stepped in parallel while collecting a rollout."""
    num_steps: int = 100
    """Steps taken in each environment per rollout (so a batch has num_envs x num_steps)."""
    num_epochs: int = 5
    """Passes over each rollout during the update."""
    num_minibatches: int = 5
    """Minibatches per pass; each makes one gradient step."""
    learning_rate: float = 7.5e-4
    """Adam step size."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """Trade-off of the advantage estimator between bias (0) and variance (1)."""
    clip_eps: float = 0.2
    """How far the new policy's probability ratio may move from 1 before it stops counting."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus that keeps the policy exploring."""
    vf_coef: float = 0.5
    """Weight of the value-function loss."""
    max_grad_norm: float = 0.5
    """Gradients are rescaled to at most this global norm."""
    hidden_size: int = 64
    """Width of the two hidden layers of the actor and of the critic."""
    evals: int = 20
    """Evaluations over training (the trainer's epochs); the learning curve has this many points."""
    eval_episodes: int = 16
    """Episodes per evaluation, played with the greedy policy."""
    seed: int = 0
    """Seed of the single-seed run; the multi-seed run uses seeds seed, seed+1, ..."""
    num_seeds: int = 8
    """Seeds trained at once with jax.vmap."""
    solved_return: float = 475.0
    """Mean evaluation return counted as solved (CartPole-v1's threshold)."""
    xla_opt_level: int = 2
    """LLVM optimization level XLA compiles the training loop with (0-3; XLA's default is 3)."""
    compile_cache: bool = True
    """Keep compiled programs on disk (jax's persistent cache) so the next run loads them."""


config = example_config(
    Config, quick={"total_steps": 10_000, "evals": 4, "num_seeds": 2, "eval_episodes": 4}
)
enable_compile_cache(config.compile_cache)
print(config)

# %%
# ## The environment
#
# gymnax environments are pure functions: `env.reset(key, params)` returns an observation
# and a state, `env.step(key, state, action, params)` the next ones with the reward and two
# flags, `terminated` (the pole fell) and `truncated` (the time limit, 500 steps for
# CartPole). A finished episode is reset inside `step`; the observation that ended it is
# kept in `info["final_observation"]`. Since they are pure, `jax.vmap` runs a batch of them.
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
# ## The policy and the value function
#
# PPO is an *actor-critic* method: the actor maps an observation to a distribution over
# actions, the critic to an estimate of the return to come (the value). Two small MLPs. For
# discrete actions the actor outputs logits of a categorical distribution; for continuous
# actions, the mean of a Gaussian whose log standard deviation is a learned parameter.
# The distributions are flax structs, so a network can return them from inside `jit`.
import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import struct


class Categorical(struct.PyTreeNode):
    """A categorical distribution given by its logits (last axis)."""

    logits: jax.Array

    @staticmethod
    def noise(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """Gumbel noise: `argmax(logits + noise)` is a sample of the distribution."""
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
    """A diagonal Gaussian over actions (last axis)."""

    mean: jax.Array
    log_std: jax.Array

    @staticmethod
    def noise(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """Standard normal noise: `mean + std * noise` is a sample of the distribution."""
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


class ActorCritic(nn.Module):
    """An actor and a critic, each an MLP with two hidden layers, over flat observations."""

    action_dim: int
    discrete: bool
    hidden_size: int = 64

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[Categorical | Gaussian, jax.Array]:
        orthogonal = nn.initializers.orthogonal

        def mlp(x: jax.Array, out: int, out_scale: float) -> jax.Array:
            for _ in range(2):
                x = nn.tanh(nn.Dense(self.hidden_size, kernel_init=orthogonal(np.sqrt(2)))(x))
            return nn.Dense(out, kernel_init=orthogonal(out_scale))(x)

        actor_out = mlp(obs, self.action_dim, 0.01)
        value = mlp(obs, 1, 1.0)[..., 0]
        if self.discrete:
            return Categorical(actor_out), value
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return Gaussian(actor_out, log_std), value


# %%
# ## The state of training and the hyper-parameters
#
# Everything that changes during training lives in one typed pytree, `PPOState`: network
# parameters, optimizer state, the environments' states and last observations, and the
# random key. The hyper-parameters that are numbers (learning rate, discount, clipping, ...)
# are *leaves* of another pytree, `PPOHParams`, so they can be traced values: `jax.vmap` can
# train several learning rates at once just as it trains several seeds. Sizes that shape the
# arrays (numbers of environments, steps, minibatches) cannot be traced; they are static
# fields of the module.
import optax


class PPOHParams(struct.PyTreeNode):
    """Numeric hyper-parameters of PPO (pytree leaves: they may be traced or vmapped)."""

    learning_rate: float | jax.Array = 7.5e-4
    gamma: float | jax.Array = 0.99
    gae_lambda: float | jax.Array = 0.95
    clip_eps: float | jax.Array = 0.2
    ent_coef: float | jax.Array = 0.01
    vf_coef: float | jax.Array = 0.5
    max_grad_norm: float | jax.Array = 0.5


class PPOState(struct.PyTreeNode):
    """Everything that changes during training."""

    params: dict
    opt_state: optax.OptState
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
    """The observation the action led to, before any reset (gymnax's `final_observation`)."""
    terminated: jax.Array
    """The episode ended in a terminal state: its future return is zero."""
    done: jax.Array
    """The episode ended, terminated or truncated by the time limit: the environment reset."""


def flat_obs(obs: jax.Array, batch_dims: int) -> jax.Array:
    """Observations as float vectors, whatever the environment's observation shape."""
    return obs.reshape(*obs.shape[:batch_dims], -1).astype(jnp.float32)


def shuffled_indices(key: jax.Array, n: int) -> jax.Array:
    """A random permutation of `range(n)`, fast on CPU.

    `jax.random.permutation` sorts (random key, index) pairs with a general comparator, which
    is slow on a CPU for a few hundred items, and it runs five times per update here. Sorting
    single 32-bit words, random high bits above the index in the low bits, is cheaper and
    gives the same kind of permutation (ties between equal random parts, which keep index
    order, are rare: with 500 items and 23 random bits, about one shuffle in 67 has one, by
    the birthday bound 500**2 / 2**24). Large `n` leaves too few random bits, so it falls
    back to `jax.random.permutation`.
    """
    index_bits = max(1, (n - 1).bit_length())
    if index_bits > 12:
        return jax.random.permutation(key, n)
    words = jax.random.bits(key, (n,), jnp.uint32) >> index_bits << index_bits
    words = words | jnp.arange(n, dtype=jnp.uint32)
    return (jax.lax.sort(words) & ((1 << index_bits) - 1)).astype(jnp.int32)


# %%
# ## PPO as a `JaxModule`
#
# The four methods of the [`JaxModule`][gallery_lib.JaxModule] protocol hold the whole
# algorithm:
#
# - `init_train_state` initialises the networks, the optimizer and the environments;
# - `get_batch` is the *rollout*: a `lax.scan` over `num_steps` in which the policy samples
#   actions for all environments and `jax.vmap(env.step)` advances them;
# - `training_step` computes advantages with *generalized advantage estimation* (GAE, a
#   backwards `lax.scan`), then does `num_epochs` passes of `num_minibatches` gradient steps
#   on the clipped PPO loss, over shuffled minibatches;
# - `evaluate` plays `eval_episodes` full episodes with the greedy policy (a `while_loop`
#   that stops when every episode is over) and returns their mean return.
#
# The losses, for a minibatch of transitions with advantages $A$ and return targets $R$:
#
# - actor: with $r = \pi_\theta(a|s) / \pi_{old}(a|s)$, maximise
#   $\min(r A, \mathrm{clip}(r, 1-\epsilon, 1+\epsilon) A)$: once the ratio leaves
#   $[1-\epsilon, 1+\epsilon]$ in the direction the advantage favours, the gradient vanishes,
#   which keeps each update *proximal*;
# - critic: the squared error to $R$, with the same clipping around the old value;
# - an entropy bonus, so the policy does not become deterministic too early.
#
# A time limit is not a failure: when an episode is truncated, the value of its final
# observation is added to the last reward (bootstrapping), which GAE would otherwise treat
# as zero.


class PPO(struct.PyTreeNode):
    """Proximal Policy Optimization on a gymnax environment, as a `JaxModule`."""

    env: gymnax.environments.environment.Environment = struct.field(pytree_node=False)
    env_params: object
    hparams: PPOHParams = PPOHParams()
    network: ActorCritic = struct.field(pytree_node=False, default=None)
    num_envs: int = struct.field(pytree_node=False, default=5)
    num_steps: int = struct.field(pytree_node=False, default=100)
    num_epochs: int = struct.field(pytree_node=False, default=5)
    num_minibatches: int = struct.field(pytree_node=False, default=5)
    eval_episodes: int = struct.field(pytree_node=False, default=16)
    # A rollout is time-major and GAE scans it backwards: on several devices, `fit` must not
    # split it along its first (time) axis. Many seeds are split over devices by `fit_many`.
    batch_axis = None

    @classmethod
    def create(cls, env, env_params, hidden_size: int = 64, **kwargs) -> "PPO":
        action_space = env.action_space(env_params)
        discrete = isinstance(action_space, spaces.Discrete)
        action_dim = action_space.n if discrete else int(np.prod(action_space.shape))
        network = ActorCritic(action_dim, discrete, hidden_size)
        module = cls(env=env, env_params=env_params, network=network, **kwargs)
        if module.batch_size % module.num_minibatches:
            raise ValueError(
                f"num_envs x num_steps = {module.batch_size} does not split into "
                f"{module.num_minibatches} equal minibatches; pick a divisor of it."
            )
        return module

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    def optimizer(self) -> optax.GradientTransformation:
        # Built from the hyper-parameters each time: they may be traced values. Flattening
        # the parameters into one vector makes Adam one fused operation instead of one per
        # weight matrix, which matters when the networks are this small.
        hp = self.hparams
        return optax.flatten(
            optax.chain(
                optax.clip_by_global_norm(hp.max_grad_norm),
                optax.adam(hp.learning_rate, eps=1e-5),
            )
        )

    def to_env_action(self, action: jax.Array) -> jax.Array:
        space = self.env.action_space(self.env_params)
        if isinstance(space, spaces.Discrete):
            return action
        return jnp.clip(action, space.low, space.high).reshape(*action.shape[:-1], *space.shape)

    def init_train_state(self, rng: jax.Array) -> PPOState:
        rng, net_key, env_key = jax.random.split(rng, 3)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(env_key, self.num_envs), self.env_params
        )
        obs = flat_obs(obs, 1)
        params = self.network.init(net_key, obs)
        return PPOState(
            params=params,
            opt_state=self.optimizer().init(params),
            env_state=env_state,
            obs=obs,
            rng=rng,
            env_steps=jnp.zeros((), jnp.int32),
        )

    def get_batch(
        self, train_state: PPOState, batch_idx: int | jax.Array
    ) -> tuple[PPOState, Rollout]:
        env, env_params, network = self.env, self.env_params, self.network
        # The randomness of the whole rollout is drawn before it, in a few large calls: the
        # actions' sampling noise, the keys of the environment steps, and the state each
        # environment would restart from at each step if its episode ended there. On a CPU,
        # one random call on 500 items costs about as much as one on 5, so this is much
        # cheaper than drawing inside the loop, at every step.
        rng, noise_key, step_key, reset_key = jax.random.split(train_state.rng, 4)
        distribution = Categorical if network.discrete else Gaussian
        noise = distribution.noise(noise_key, (self.num_steps, self.num_envs, network.action_dim))
        step_keys = jax.random.split(step_key, (self.num_steps, self.num_envs))
        reset_obs, reset_states = jax.vmap(
            jax.vmap(env.reset, in_axes=(0, None)), in_axes=(0, None)
        )(jax.random.split(reset_key, (self.num_steps, self.num_envs)), env_params)
        step_env = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))
        is_truncated = jax.vmap(env.is_truncated, in_axes=(0, None))

        def env_step(carry, inputs):
            env_state, obs = carry
            noise, keys, reset_obs, reset_state = inputs
            # Only the actor is needed to act: XLA drops the unused critic computation.
            pi, _ = network.apply(train_state.params, obs)
            action = pi.sample(noise)
            next_obs, next_state, reward, terminated, _ = step_env(
                keys, env_state, self.to_env_action(action), env_params
            )
            done = terminated | is_truncated(next_state, env_params)
            transition = Rollout(
                obs=obs,
                action=action,
                reward=reward.astype(jnp.float32),
                next_obs=flat_obs(next_obs, 1),
                terminated=terminated,
                done=done,
            )
            # A finished episode restarts (what gymnax's `env.step` does, with its own keys).
            env_state = jax.tree.map(
                lambda reset, kept: jnp.where(
                    done.reshape(-1, *[1] * (kept.ndim - 1)), reset, kept
                ),
                reset_state,
                next_state,
            )
            obs = jnp.where(done[:, None], flat_obs(reset_obs, 1), flat_obs(next_obs, 1))
            return (env_state, obs), transition

        (env_state, obs), rollout = jax.lax.scan(
            env_step,
            (train_state.env_state, train_state.obs),
            (noise, step_keys, reset_obs, reset_states),
        )
        train_state = train_state.replace(
            env_state=env_state,
            obs=obs,
            rng=rng,
            env_steps=train_state.env_steps + self.batch_size,
        )
        return train_state, rollout

    def advantages(self, params: dict, rollout: Rollout) -> dict:
        """The data of the update: per transition, its log-probability under the policy that
        acted, its value, its GAE advantage and its return target (each num_steps x num_envs).
        """
        hp = self.hparams
        # The networks run once, batched, on all observations of the rollout (the policy is
        # the one that acted, so these are its log-probabilities), and the critic on the
        # observations that followed them: V(s_t) and V(s_t+1). As `next_obs` holds the
        # observation that ended an episode, a truncated episode is bootstrapped from its
        # true last state.
        pi, values = self.network.apply(params, rollout.obs)
        _, next_values = self.network.apply(params, rollout.next_obs)
        deltas = rollout.reward + hp.gamma * next_values * (1 - rollout.terminated) - values

        def backwards(next_advantage, step):
            delta, done = step
            advantage = delta + hp.gamma * hp.gae_lambda * (1 - done) * next_advantage
            return advantage, advantage

        _, advantages = jax.lax.scan(
            backwards, jnp.zeros_like(deltas[0]), (deltas, rollout.done), reverse=True
        )
        return {
            "obs": rollout.obs,
            "action": rollout.action,
            "log_prob": pi.log_prob(rollout.action),
            "value": values,
            "advantages": advantages,
            "targets": advantages + values,
        }

    def loss(self, params: dict, minibatch: dict) -> tuple[jax.Array, dict]:
        hp = self.hparams
        pi, value = self.network.apply(params, minibatch["obs"])
        log_ratio = pi.log_prob(minibatch["action"]) - minibatch["log_prob"]
        ratio = jnp.exp(log_ratio)
        advantages = minibatch["advantages"]
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        actor_loss = -jnp.mean(
            jnp.minimum(
                ratio * advantages, jnp.clip(ratio, 1 - hp.clip_eps, 1 + hp.clip_eps) * advantages
            )
        )
        old_value = minibatch["value"]
        value_clipped = old_value + jnp.clip(value - old_value, -hp.clip_eps, hp.clip_eps)
        value_loss = 0.5 * jnp.mean(
            jnp.maximum(
                (value - minibatch["targets"]) ** 2, (value_clipped - minibatch["targets"]) ** 2
            )
        )
        entropy = jnp.mean(pi.entropy())
        total = actor_loss + hp.vf_coef * value_loss - hp.ent_coef * entropy
        return total, {
            "actor_loss": actor_loss,
            "value_loss": value_loss,
            "entropy": entropy,
            "approx_kl": jnp.mean((ratio - 1) - log_ratio),
            "clip_fraction": jnp.mean(jnp.abs(ratio - 1) > hp.clip_eps),
        }

    def training_step(
        self, batch_idx: int | jax.Array, train_state: PPOState, batch: Rollout
    ) -> tuple[PPOState, dict]:
        data = self.advantages(train_state.params, batch)
        # Flatten (num_steps, num_envs) into one axis of samples.
        data = jax.tree.map(lambda x: x.reshape(self.batch_size, *x.shape[2:]), data)
        optimizer = self.optimizer()

        def gradient_step(carry, minibatch):
            params, opt_state = carry
            grads, metrics = jax.grad(self.loss, has_aux=True)(params, minibatch)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), metrics

        def epoch(carry, key):
            order = shuffled_indices(key, self.batch_size)
            minibatches = jax.tree.map(
                lambda x: x[order].reshape(self.num_minibatches, -1, *x.shape[1:]), data
            )
            return jax.lax.scan(gradient_step, carry, minibatches)

        rng, *epoch_keys = jax.random.split(train_state.rng, self.num_epochs + 1)
        (params, opt_state), metrics = jax.lax.scan(
            epoch, (train_state.params, train_state.opt_state), jnp.stack(epoch_keys)
        )
        train_state = train_state.replace(params=params, opt_state=opt_state, rng=rng)
        return train_state, jax.tree.map(jnp.mean, metrics)

    def evaluate(self, train_state: PPOState) -> dict:
        # Evaluation draws its own keys, so that it does not change the course of training.
        reset_key, loop_key = jax.random.split(jax.random.fold_in(train_state.rng, 1))
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(reset_key, self.eval_episodes), self.env_params
        )
        # `step_env` is the step without the automatic reset: a finished episode stays
        # finished, and `alive` stops counting its rewards.
        step_env = jax.vmap(self.env.step_env, in_axes=(0, 0, 0, None))

        def still_playing(carry):
            _, _, alive, _, t = carry
            return jnp.any(alive) & (t < self.env_params.max_steps_in_episode)

        def play(carry):
            env_state, obs, alive, returns, t = carry
            pi, _ = self.network.apply(train_state.params, flat_obs(obs, 1))
            keys = jax.random.split(jax.random.fold_in(loop_key, t), self.eval_episodes)
            obs, env_state, reward, terminated, _ = step_env(
                keys, env_state, self.to_env_action(pi.mode()), self.env_params
            )
            returns = returns + alive * reward
            alive = alive & ~terminated
            return env_state, obs, alive, returns, t + 1

        alive = jnp.ones(self.eval_episodes, bool)
        returns = jnp.zeros(self.eval_episodes, jnp.float32)
        carry = (env_state, obs, alive, returns, jnp.zeros((), jnp.int32))
        returns = jax.lax.while_loop(still_playing, play, carry)[3]
        return {"eval_return": returns.mean(), "env_steps": train_state.env_steps}


# %%
# ## Training one seed with `JaxTrainer`
#
# [`JaxTrainer`][gallery_lib.JaxTrainer] runs `evals` epochs of `training_steps_per_epoch`
# PPO iterations (a rollout and an update each), evaluating after every epoch. Its `fit`
# traces the four methods once and compiles the *whole run*, every rollout, update and
# evaluation, into one XLA program: after compilation no Python runs until training is over,
# which is why a small network on a cheap environment trains at hundreds of thousands of
# environment steps per second. The first `fit` pays the compilation; a second `fit` of the
# same module reuses the compiled program, so the difference of the two is the compile time.
#
# For a run this short, compiling is most of the wall-clock time, and most of the compiling
# is XLA's back end (LLVM) optimising the generated CPU code. `compiler_options` hands XLA
# options for the loop: LLVM's `-O2` instead of the default `-O3`
# (`xla_backend_optimization_level`) compiled this loop faster on the machine that built these
# docs, and the compiled loop ran just as fast (`benchmarks/bench_ppo.py --compile-breakdown`
# times each level on yours).
import time

from gallery_lib import JaxTrainer, watch_compile_cache

module = PPO.create(
    env,
    env_params,
    hidden_size=config.hidden_size,
    hparams=PPOHParams(
        learning_rate=config.learning_rate,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        clip_eps=config.clip_eps,
        ent_coef=config.ent_coef,
        vf_coef=config.vf_coef,
        max_grad_norm=config.max_grad_norm,
    ),
    num_envs=config.num_envs,
    num_steps=config.num_steps,
    num_epochs=config.num_epochs,
    num_minibatches=config.num_minibatches,
    eval_episodes=config.eval_episodes,
)
iterations_per_eval = max(1, config.total_steps // (module.batch_size * config.evals))
trainer = JaxTrainer(
    max_epochs=config.evals,
    training_steps_per_epoch=iterations_per_eval,
    enable_progress_bar=False,
    compiler_options={"xla_backend_optimization_level": config.xla_opt_level},
)
env_steps = config.evals * iterations_per_eval * module.batch_size


def timed_fit(seed: int) -> tuple[float, PPOState, dict]:
    start = time.perf_counter()
    train_state, eval_metrics = trainer.fit(module, jax.random.key(seed))
    jax.block_until_ready(eval_metrics)
    return time.perf_counter() - start, train_state, eval_metrics


with watch_compile_cache() as first_fit_cache:
    first_time, train_state, eval_metrics = timed_fit(config.seed)
run_time, _, _ = timed_fit(config.seed)
compile_time = max(first_time - run_time, 0.0)
curve_steps = np.asarray(eval_metrics["env_steps"])
curve = np.asarray(eval_metrics["eval_return"])
solved = np.flatnonzero(curve >= config.solved_return)
# Epochs take equal time, so the run reaches an epoch at that fraction of its duration.
time_to_solve = (
    compile_time + run_time * (solved[0] + 1) / config.evals if solved.size else float("nan")
)
print(f"{env_steps:,} env steps: compile {compile_time:.1f} s, run {run_time:.2f} s")
print(f"{env_steps / run_time:,.0f} env steps/s after compilation")
print("mean evaluation return by epoch:", np.round(curve).astype(int).tolist())

# %%
# ## Many seeds at once
#
# A reinforcement-learning result from one seed is an anecdote. Because the whole run is a
# pure function of its key, `jax.vmap` turns it into a run of many seeds in one program:
# [`JaxTrainer.fit_many`][gallery_lib.JaxTrainer.fit_many] vmaps the module's methods over a
# batch of keys, and every matrix product of the networks now serves all seeds at once.
# On a machine with several devices (or CPU "devices", see the benchmark), the trainer
# shards the seeds over them.
start = time.perf_counter()
seed_keys = jax.random.split(jax.random.key(config.seed), config.num_seeds)
_, many_metrics = trainer.fit_many(module, seed_keys)
jax.block_until_ready(many_metrics)
many_time = time.perf_counter() - start
curves = np.asarray(many_metrics["eval_return"])  # (num_seeds, evals)
print(
    f"{config.num_seeds} seeds x {env_steps:,} env steps in {many_time:.1f} s, compile "
    f"included; final mean return {curves[:, -1].mean():.1f} (min {curves[:, -1].min():.0f})"
)

# %%
# ## The trained policy at work
#
# One episode played by the greedy policy of the single-seed run, recorded as the sequence
# of observations (for CartPole: cart position, cart velocity, pole angle, pole angular
# velocity). A `lax.scan` over the episode's length, like the evaluation, but keeping every
# observation.


@jax.jit
def play_episode(params: dict, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    obs, state = env.reset(key, env_params)

    def step(carry, key):
        obs, state, alive = carry
        pi, _ = module.network.apply(params, flat_obs(obs[None], 1))
        action = module.to_env_action(pi.mode())[0]
        next_obs, state, reward, terminated, _ = env.step_env(key, state, action, env_params)
        return (next_obs, state, alive & ~terminated), (obs, reward * alive)

    keys = jax.random.split(key, env_params.max_steps_in_episode)
    _, (observations, rewards) = jax.lax.scan(step, (obs, state, jnp.bool_(True)), keys)
    return observations, rewards


observations, rewards = play_episode(train_state.params, jax.random.key(config.seed + 1000))
episode_length = int(np.count_nonzero(np.asarray(rewards)))
observations = np.asarray(observations)[: max(episode_length, 1)]
print(f"episode return {float(rewards.sum()):.0f} over {episode_length} steps")

# %%
# ## Figures
#
# Left to right: the episode above as a filmstrip (CartPole is drawn from its observations:
# the cart at its position, the pole at its angle), the learning curve of the single seed,
# and the seeds trained together, as their mean and the band between the best and the worst.
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

frames = 8
fig_film, axes = plt.subplots(1, frames, figsize=(12, 2.2), sharey=True)
for ax, t in zip(axes, np.linspace(0, len(observations) - 1, frames).astype(int), strict=True):
    if config.env_id == "CartPole-v1":
        x, theta = observations[t, 0], observations[t, 2]
        ax.add_patch(Rectangle((x - 0.25, -0.1), 0.5, 0.2, color="tab:blue"))
        ax.plot([x, x + np.sin(theta)], [0.1, 0.1 + np.cos(theta)], lw=4, color="tab:orange")
        ax.axhline(-0.1, color="gray", lw=1)
        ax.set(xlim=(-2.4, 2.4), ylim=(-0.3, 1.3), xticks=[], yticks=[])
    else:
        ax.bar(range(observations.shape[1]), observations[t])
        ax.set_xticks([])
    ax.set_title(f"t={t}", fontsize=9)
fig_film.suptitle(f"{config.env_id}: one episode of the trained greedy policy")
fig_film.tight_layout()

fig, (ax_one, ax_many) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
ax_one.plot(curve_steps, curve, marker="o")
ax_one.axhline(config.solved_return, color="gray", ls="--", label="solved")
ax_one.set(xlabel="environment steps", ylabel="mean evaluation return", title="One seed")
ax_one.legend()
mean, std = curves.mean(0), curves.std(0)
ax_many.fill_between(curve_steps, curves.min(0), curves.max(0), alpha=0.2, label="min-max")
ax_many.fill_between(curve_steps, mean - std, mean + std, alpha=0.3, label="mean ± std")
ax_many.plot(curve_steps, mean, lw=2, label="mean")
ax_many.axhline(config.solved_return, color="gray", ls="--")
ax_many.set(xlabel="environment steps", title=f"{config.num_seeds} seeds trained with jax.vmap")
ax_many.legend()
fig.tight_layout()

# %%
# ## What it cost
#
# Measured in this run of the page (the docs build shares its machine, so treat them as
# orders of magnitude; `benchmarks/bench_ppo.py` measures ratios on a quiet machine).
#
# Compiling is paid once per machine, not once per run: every example turns on jax's
# persistent compilation cache ([`enable_compile_cache`][gallery_lib.enable_compile_cache];
# `--no-compile-cache` or `GALLERY_COMPILE_CACHE=0` turns it off), so the next process reads
# the compiled loop back instead of compiling it, and only traces and lowers it. When this run
# compiled the loop (a cold cache), the warm time is measured here by clearing jax's in-memory
# caches and fitting again; when it read the loop from the cache (warm), the cold time is
# this run's plus the compile time jax recorded in whole seconds when it wrote the entry.
cold_text, warm_text = f"{compile_time:.1f} s", "cache off"
if first_fit_cache.writes:
    jax.clear_caches()
    warm_text = f"{max(timed_fit(config.seed)[0] - run_time, 0.0):.1f} s"
elif first_fit_cache.hits:
    warm_text = cold_text
    cold_text = f"{compile_time + first_fit_cache.saved_s:.1f} s (jax's record)"
solved_text = f"{time_to_solve:.1f} s" if solved.size else "not reached"
rows = [
    ("env steps/s, one seed (after compilation)", f"{env_steps / run_time:,.0f}"),
    ("compile time, one seed, cold cache", cold_text),
    ("compile time, one seed, warm cache", warm_text),
    (f"time to mean return {config.solved_return:.0f}, compile included", solved_text),
    (
        f"env steps/s, {config.num_seeds} seeds (compile included)",
        f"{config.num_seeds * env_steps / many_time:,.0f}",
    ),
]
width = max(len(name) for name, _ in rows)
for name, value in rows:
    print(f"{name:<{width}}  {value:>12}")
plt.show()
