"""The benchmark scripts still run: each with tiny settings, two at a time, in one test.

A benchmark nobody runs rots silently (a renamed example function, a changed metric key);
this runs every script under `benchmarks/` end to end with settings that measure nothing but
take every code path, and checks that it printed its result. `gallery_rebuild.py` builds the
whole site three times even in `--quick` mode, so only its command line is checked here; the
site build itself is `test_docs_build.py`'s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
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
        "bench_scaling.py": (["--runs", "jax", "--steps", "2", "--rounds", "1"], "JaxTrainer"),
        "gallery_rebuild.py": (["--help"], "--quick"),
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


@pytest.mark.slow
def test_every_benchmark_runs_with_tiny_settings(tmp_path: Path) -> None:
    runs = smoke_runs(tmp_path)
    scripts = sorted(p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))
    assert scripts == sorted(runs), "a new benchmark script needs a smoke run here"
    # Two at a time: the machine has two cores, and each script pins itself to one.
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = pool.map(lambda item: run(item[0], item[1][0]), runs.items())
        results = dict(zip(runs, done, strict=True))
    for script, (_, expected) in runs.items():
        result = results[script]
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{script} failed:\n{output[-4000:]}"
        assert expected in result.stdout, f"{script} did not print {expected!r}:\n{output[-4000:]}"
    for name, key in (
        ("ppo", "equal_ratio"),
        ("interop", "wrapper_ratio"),
        ("flax_cnn", "jax_step_ratio"),
    ):
        record = json.loads((tmp_path / f"{name}.json").read_text())
        assert {"date", "machine", "command", "numbers", "tables"} <= set(record)
        assert record["numbers"][key] > 0, name
