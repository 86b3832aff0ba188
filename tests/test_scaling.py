"""Scaling out: Lightning DDP over 2 CPU processes, and JaxTrainer over 2 Jax processes.

Each multi-process run is a subprocess with a timeout (multi-device CPU runs have been seen to
deadlock, see STACK_NOTES); every process writes what it computed to a file checked here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from support import ROOT, TESTS

from gallery_lib import JaxTrainer, all_reduce_mean, initialize_distributed
from gallery_lib.testing import LinearRegressionProbe

# Multi-process runs, one after the other (on one xdist worker): they use both cores.
pytestmark = pytest.mark.xdist_group("processes")


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.pop("XLA_FLAGS", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(TESTS)])
    env.update(extra)
    return env


def test_ddp_two_processes_train_like_one_process_on_the_same_global_batch(tmp_path) -> None:
    """Both variants of the flax CNN example: 2 DDP processes x 8 images == 1 x 16 images."""
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, str(TESTS / "support" / "ddp_probe.py"), str(out)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for variant in ("jax-network", "jax-step"):
        one = np.load(f"{out}.{variant}.1.0.npz")
        rank0 = np.load(f"{out}.{variant}.2.0.npz")
        rank1 = np.load(f"{out}.{variant}.2.1.npz")
        params = [name for name in one.files if name.startswith("arr_")]
        assert len(params) == 8  # two convolutions and two dense layers: kernels and biases
        for name in params:
            # Rank 1 started from other parameters: DDP's broadcast reached the Jax views,
            # and both processes applied the same averaged updates.
            np.testing.assert_array_equal(rank0[name], rank1[name], err_msg=f"{variant} {name}")
            np.testing.assert_allclose(
                rank0[name], one[name], rtol=1e-4, atol=2e-5, err_msg=f"{variant} {name}"
            )
        # sync_dist=True: the logged validation metrics are the means over both processes.
        for metric in ("val_loss", "val_acc"):
            np.testing.assert_allclose(rank0[metric], one[metric], rtol=1e-5)
            np.testing.assert_allclose(rank1[metric], one[metric], rtol=1e-5)


JAX_PROCESS_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from gallery_lib import CheckpointCallback, JaxTrainer, all_reduce_mean, initialize_distributed

    if sys.argv[3] == "slurm":  # process 0: from the SLURM variables the test sets
        assert initialize_distributed() is True
    else:  # process 1: the same run, from explicit arguments
        assert initialize_distributed(sys.argv[3], num_processes=2, process_id=1) is True
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch.distributed as dist
    from jax.experimental import multihost_utils
    from lightning.pytorch.loggers import CSVLogger
    from gallery_lib.testing import LinearRegressionProbe

    out = Path(sys.argv[1])
    rank = jax.process_index()
    assert (jax.process_count(), jax.device_count(), jax.local_device_count()) == (2, 2, 1)

    # Averaging over torch.distributed processes, two dtypes (one collective each).
    dist.init_process_group("gloo", init_method=sys.argv[2], world_size=2, rank=rank)
    tree = {"a": jnp.full((3,), rank, jnp.float32), "b": jnp.full((2, 2), 2 * rank, jnp.bfloat16)}
    mean = all_reduce_mean(tree)
    assert mean["a"].dtype == jnp.float32 and mean["b"].dtype == jnp.bfloat16
    assert mean["a"].tolist() == [0.5] * 3 and mean["b"].tolist() == [[1.0, 1.0]] * 2
    assert tree["a"].tolist() == [rank] * 3  # the inputs are not written to
    dist.destroy_process_group()

    # Checkpoints of a multi-process run are refused at once (orbax would wait forever for
    # the processes that do not run the hooks).
    try:
        JaxTrainer(1, 1, callbacks=[CheckpointCallback(out / f"ckpt{rank}")]).fit(
            LinearRegressionProbe(), jax.random.key(0)
        )
    except NotImplementedError as error:
        assert "processes" in str(error)
    else:
        raise AssertionError("CheckpointCallback accepted a multi-process run")

    trainer = JaxTrainer(3, 10, logger=CSVLogger(out / f"logs{rank}"))
    key = jax.random.key(0)
    state, eval_metrics = trainer.fit(LinearRegressionProbe(batch_size=64), key)
    # Many seeds: the seed axis is sharded over the processes (each trains its own seeds).
    states, _ = trainer.fit_many(LinearRegressionProbe(batch_size=64), jax.random.split(key, 4))
    assert not states.weights.is_fully_addressable
    weights = multihost_utils.process_allgather(states.weights, tiled=True)
    np.savez(out / f"{rank}.npz", state.weights, state.bias, eval_metrics["param_error"], weights)
    """
)


def free_port_in_slurm_range() -> int:
    """A free TCP port in [61440, 65535], the range Jax picks SLURM coordinator ports from."""
    for port in range(61440 + os.getpid() % 2000, 65536):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 61440-65535")


def test_jax_trainer_on_two_slurm_processes_gives_the_one_process_result(tmp_path) -> None:
    """Two processes of one CPU device each, joined by `initialize_distributed` (process 0 from
    SLURM's variables, as `srun --ntasks=2` sets them; process 1 from explicit arguments),
    train like one process alone."""
    jax_port = free_port_in_slurm_range()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        torch_init = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    processes = []
    for rank in range(2):
        slurm = dict(
            SLURM_JOB_ID=str(jax_port - 61440 + 4096),  # jax's port: job id % 4096 + 61440
            SLURM_STEP_NODELIST="127.0.0.1",
            SLURM_NTASKS="2",
            SLURM_PROCID="0",
            SLURM_LOCALID="0",
        )
        env = subprocess_env(**(slurm if rank == 0 else {}))
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    JAX_PROCESS_SCRIPT,
                    str(tmp_path),
                    torch_init,
                    "slurm" if rank == 0 else f"127.0.0.1:{jax_port}",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    try:
        outputs = [p.communicate(timeout=180)[0] for p in processes]
    finally:
        for p in processes:
            p.kill()
    for p, output in zip(processes, outputs, strict=True):
        assert p.returncode == 0, output[-4000:]

    trainer = JaxTrainer(3, 10, enable_progress_bar=False)
    state, eval_metrics = trainer.fit(LinearRegressionProbe(batch_size=64), jax.random.key(0))
    states, _ = trainer.fit_many(
        LinearRegressionProbe(batch_size=64), jax.random.split(jax.random.key(0), 4)
    )
    expected = [state.weights, state.bias, eval_metrics["param_error"], states.weights]
    for rank in range(2):
        with np.load(tmp_path / f"{rank}.npz") as data:
            for i, value in enumerate(expected):
                np.testing.assert_allclose(data[f"arr_{i}"], value, rtol=1e-5, atol=1e-6)
    # The progress bar is shown, and Lightning's loggers write, by process 0 only.
    assert "LinearRegressionProbe: epochs" in outputs[0]
    assert "LinearRegressionProbe: epochs" not in outputs[1]
    assert list((tmp_path / "logs0").rglob("metrics.csv"))
    assert not [p for p in (tmp_path / "logs1").rglob("*") if p.is_file()]


def test_initialize_distributed_is_a_no_op_for_one_process(monkeypatch) -> None:
    for name in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(name)
    assert initialize_distributed() is False
    # An allocation without `srun` (no task id) or an srun step of one task: one process.
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert initialize_distributed() is False
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert initialize_distributed() is False
    assert not jax.distributed.is_initialized()


def test_initialize_distributed_rejects_a_partial_explicit_setup() -> None:
    with pytest.raises(ValueError, match="coordinator_address"):
        initialize_distributed(num_processes=2, process_id=0)


def test_all_reduce_mean_with_one_process_returns_the_tree_and_checks_dtypes() -> None:
    grads = {"w": jnp.ones((2, 3)), "b": (jnp.zeros(3), jnp.float32(1.0))}
    assert all_reduce_mean(grads) is grads
    # Also traceable: with one process it is the identity inside `jax.jit`.
    doubled = jax.jit(lambda g: jax.tree.map(lambda x: 2 * x, all_reduce_mean(g)))(grads)
    np.testing.assert_array_equal(doubled["w"], 2 * np.ones((2, 3)))
    with pytest.raises(TypeError, match="floating-point"):
        all_reduce_mean({"step": jnp.int32(3)})
