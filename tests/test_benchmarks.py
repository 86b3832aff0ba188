"""The benchmark scripts still run: each with tiny settings (`make test-benchmarks`; CI).

A benchmark nobody runs rots silently (a renamed example function, a changed metric key);
this runs every script under `benchmarks/` end to end with settings that measure nothing but
take every code path, and checks that it printed its result. `gallery_rebuild.py` builds the
whole site four times even in `--quick` mode, so only its command line is checked here; the
site build itself is `test_docs_build.py`'s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, quick_env

BENCHMARKS = ROOT / "benchmarks"


def smoke_runs(results: Path) -> dict[str, tuple[list[str], str]]:
    """Script name -> (tiny arguments, a line its output must contain); records in `results`."""
    return {
        "bench_ppo.py": (
            ["--quick", "--repeats", "1", "--results", str(results / "ppo.json")],
            "one seed, equal terms: the example is",
        ),
        "bench_trainer.py": (["--epochs", "2", "--steps", "10", "--repeats", "1"], "JaxTrainer"),
        "bench_interop.py": (
            ["--rounds", "1", "--steps", "2", "--results", str(results / "interop.json")],
            "sum of the parts",
        ),
        "bench_flax_cnn.py": (
            ["--rounds", "1", "--steps", "2", "--results", str(results / "flax_cnn.json")],
            "Lightning's loop",
        ),
        "bench_jax_image.py": (
            [
                *("--quick", "--rounds", "1", "--steps", "3", "--scan-steps", "2"),
                *("--results", str(results / "jax_image.json")),
            ],
            "JaxTrainer per step (CPU time): scan",
        ),
        "bench_scaling.py": (["--runs", "jax", "--steps", "2", "--rounds", "1"], "JaxTrainer"),
        "bench_compile_cache.py": (
            ["--workloads", "cnn", "--rounds", "1", "--results", str(results / "cache.json")],
            "target cnn: warm / cold",
        ),
        "bench_text_features.py": (
            ["--snippets", "70", "--rounds", "1", "--results", str(results / "text.json")],
            "sorted speed-up",
        ),
        "gallery_rebuild.py": (["--help"], "--quick"),
        "gallery_parallel.py": (  # the synthetic gallery only, with tiny examples
            [
                "--seconds",
                "0.4",
                "--jobs",
                "1",
                "2",
                "--rounds",
                "1",
                "--results",
                str(results / "gallery_parallel.json"),
            ],
            "| 8 cpu",
        ),
    }


def run(script: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=ROOT,
        env=quick_env(MPLBACKEND="Agg"),
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def test_every_benchmark_script_has_a_smoke_run(tmp_path: Path) -> None:
    scripts = sorted(p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))
    assert scripts == sorted(smoke_runs(tmp_path)), "a new benchmark script needs a smoke run here"


# bench_ppo.py's other modes: (tiny arguments, what the output must contain, a number its
# record must hold, or None for a mode that writes no record).
PPO_MODES = {
    "envs": (
        ["--envs", "Pendulum-v1", "--quick", "--repeats", "1", "--seeds", "2"],
        "lowest median speed ratio",
        "pendulum_ceiling_ratio",
    ),
    "tricks": (["--tricks", "--quick", "--repeats", "1"], "LLVM -O2", "opt2_ratio"),
    "parts": (
        ["--parts", "MountainCar-v0", "--quick", "--repeats", "1"],
        "| MountainCar-v0 |",
        None,
    ),
}

# Script -> (its record's name in the smoke run, a number the record must hold).
RECORDS = {
    "bench_ppo.py": ("ppo", "equal_ratio"),
    "bench_interop.py": ("interop", "wrapper_ratio"),
    "bench_flax_cnn.py": ("flax_cnn", "jax_step_ratio"),
    "bench_jax_image.py": ("jax_image", "trainer_vs_hand_loop"),
    "bench_compile_cache.py": ("cache", "cnn_warm_over_cold"),
    "bench_text_features.py": ("text", "sorted_speedup"),
    "gallery_parallel.py": ("gallery_parallel", "sleep_jobs2_ratio"),
}


# One test per script. They are not part of `make test` (each pays for its imports and real
# compilations: minutes in all on two cores); `make test-benchmarks` runs them, one after the
# other (each benchmark pins itself to a core), and so does CI.
@pytest.mark.benchmarks
@pytest.mark.parametrize("script", sorted(smoke_runs(Path("."))))
def test_the_benchmark_runs_with_tiny_settings(script: str, tmp_path: Path) -> None:
    args, expected = smoke_runs(tmp_path)[script]
    result = run(script, args)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{script} failed:\n{output[-4000:]}"
    assert expected in result.stdout, f"{script} did not print {expected!r}:\n{output[-4000:]}"
    if script in RECORDS:
        name, key = RECORDS[script]
        record = json.loads((tmp_path / f"{name}.json").read_text())
        assert {"date", "machine", "command", "numbers", "tables"} <= set(record)
        assert record["numbers"][key] > 0, name


@pytest.mark.benchmarks
@pytest.mark.parametrize("mode", sorted(PPO_MODES))
def test_bench_ppo_modes_run_with_tiny_settings(mode: str, tmp_path: Path) -> None:
    args, expected, key = PPO_MODES[mode]
    record = tmp_path / f"ppo_{mode}.json"
    result = run("bench_ppo.py", [*args, "--results", str(record)])
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"bench_ppo.py --{mode} failed:\n{output[-4000:]}"
    assert expected in result.stdout, f"--{mode} did not print {expected!r}:\n{output[-4000:]}"
    if key is None:
        assert not record.exists()
    else:
        assert json.loads(record.read_text())["numbers"][key] > 0
