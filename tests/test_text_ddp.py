"""The text-classification example under Lightning's DDP: 2 CPU processes (gloo) train like 1.

Multi-process runs are subprocesses with a timeout, each started in a session of its own so
that the processes Lightning launches can be found (and, on failure, stopped) by group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from support import ROOT, TESTS, quick_env
from support.text_ddp_probe import EPOCHS, STEPS

from gallery_lib import example_definitions

EXAMPLE = ROOT / "examples" / "plot_text_classification.py"

# Multi-process runs, one after the other (on one xdist worker): they use both cores.
pytestmark = pytest.mark.xdist_group("processes")


def live_processes_in_group(group: int) -> list[int]:
    """The processes of process group `group` that are not zombies (read from Linux's /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:  # ended meanwhile
            continue
        if stat:
            state, _parent, process_group = stat.rsplit(")", 1)[1].split()[:3]
            if int(process_group) == group and state != "Z":
                found.append(int(entry.name))
    return found


def run_in_own_session(command: list[str], env: dict[str, str], timeout: float):
    """Run `command` in a new session; when it ends, none of its processes (Lightning's rank 1)
    may be left. On a timeout or a leftover, all of them are killed. The output goes through
    files, not pipes, which a leftover process would keep open."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            command, env=env, stdout=stdout, stderr=stderr, text=True, start_new_session=True
        )
        try:
            process.wait(timeout=timeout)
            deadline = time.monotonic() + 10
            while live_processes_in_group(process.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            leftover = live_processes_in_group(process.pid)
        finally:
            if live_processes_in_group(process.pid):
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        assert not leftover, f"processes {leftover} of the run were still alive after it ended"
        stdout.seek(0)
        stderr.seek(0)
        return process.returncode, stdout.read(), stderr.read()


def single_process_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    """`env` without what would make Lightning believe it runs inside a cluster job."""
    launched = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    env = {k: v for k, v in env.items() if not k.startswith("SLURM_") and k not in launched}
    return env | extra


def test_two_ddp_processes_train_the_text_classifier_like_one(tmp_path: Path) -> None:
    """Both bodies: 2 processes x 8 snippets per step == 1 process x 16, to float tolerance."""
    out = tmp_path / "run"
    for devices in (1, 2):
        returncode, _, stderr = run_in_own_session(
            [sys.executable, str(TESTS / "support" / "text_ddp_probe.py"), str(out), str(devices)],
            single_process_env(
                dict(os.environ),
                OMP_NUM_THREADS="1",
                PYTHONWARNINGS="ignore::DeprecationWarning",
                PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(TESTS)]),
            ),
            timeout=240,
        )
        assert returncode == 0, stderr[-4000:]
    for model in ("scratch", "minilm"):
        one, rank0, rank1 = (np.load(f"{out}.{model}.{run}.npz") for run in ("1.0", "2.0", "2.1"))
        # Every process trained the same BPE vocabulary from the same snippets.
        assert str(one["vocab"]) == str(rank0["vocab"]) == str(rank1["vocab"])
        assert int(one["steps"]) == int(rank0["steps"]) == int(rank1["steps"]) == EPOCHS * STEPS
        params = [name for name in one.files if name.startswith("param:")]
        assert len(params) == (5 if model == "minilm" else 3)
        for name in params:
            initial = name.replace("param:", "init:")
            assert not np.array_equal(rank0[initial], rank1[initial]), name
            assert not np.allclose(one[name], one[initial]), f"{name} did not train"
            # DDP broadcast process 0's parameters, then both applied the same averaged updates.
            np.testing.assert_array_equal(rank0[name], rank1[name], err_msg=f"{model} {name}")
            np.testing.assert_allclose(
                rank0[name], one[name], rtol=1e-4, atol=1e-6, err_msg=f"{model} {name}"
            )
        # sync_dist=True: the logged epoch metrics are the means over both processes.
        for metric in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"):
            for rank in (rank0, rank1):
                np.testing.assert_allclose(rank[metric], one[metric], rtol=1e-5, err_msg=metric)


def test_the_example_runs_as_a_two_process_ddp_script() -> None:
    """The command line of the Scaling out page, in quick mode: Lightning starts process 1,
    both train, process 0 alone prints the results, and no process is left behind."""
    returncode, stdout, stderr = run_in_own_session(
        [
            sys.executable,
            str(EXAMPLE),
            *("--accelerator", "cpu", "--devices", "2"),
            "--strategy",
            "ddp",
        ],
        single_process_env(quick_env(MPLBACKEND="Agg")),
        timeout=300,
    )
    assert returncode == 0, stderr[-4000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in stderr  # Lightning started process 1
    assert stdout.count("Config(") == 2  # both processes ran the script up to the training
    assert stdout.count("minilm test accuracy:") == 1
    assert stdout.count("test snippets misclassified") == 1


@pytest.fixture(scope="module")
def example() -> Any:
    """The example's definitions, without running its cells."""
    return example_definitions(EXAMPLE)


@pytest.mark.parametrize(
    ("setting", "error", "message"),
    [
        ({"strategy": "dpp"}, ValueError, r"invalid strategy name: `strategy='dpp'`"),
        ({"accelerator": "gpus"}, ValueError, r"invalid accelerator name: `accelerator='gpus'`"),
        ({"devices": "two"}, TypeError, r"`devices` selected with `CPUAccelerator` should be"),
        ({"devices": "0"}, MisconfigurationException, r"`Trainer\(devices='0'\)` value is not"),
    ],
)
def test_bad_scaling_settings_fail_with_lightnings_message(
    example: Any, setting: dict[str, str], error: type[Exception], message: str, tmp_path: Path
) -> None:
    """The settings reach Lightning's `Trainer`, whose errors say what was wrong."""
    ids = torch.ones(8, 4, dtype=torch.long)
    inputs = {name: (ids,) for name in ("train", "val", "test")}
    labels = {name: np.zeros(8, np.int64) for name in inputs}
    settings = {"accelerator": "cpu", **setting}
    config = example.Config(model="scratch", epochs=1, vocab_size=10, **settings)
    with pytest.raises(error, match=message):
        example.train_classifier(inputs, labels, config, tmp_path)
