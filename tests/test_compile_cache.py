"""`enable_compile_cache`: where the cache lives, its bound, several processes, off, versions."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import jaxlib
import pytest
from support import TESTS, quick_env
from support.compile_cache_probe import digest, program, program_input

from gallery_lib import enable_compile_cache, watch_compile_cache

PROBE = TESTS / "support" / "compile_cache_probe.py"


@pytest.fixture(autouse=True)
def session_cache_restored(compile_cache: Path | None) -> Iterator[None]:
    """Each test points jax's cache elsewhere; the session's cache is restored afterwards (set
    up before `monkeypatch`, this runs after it has restored the environment)."""
    yield
    jax.clear_caches()
    if compile_cache is None:
        enable_compile_cache(False)
    else:
        enable_compile_cache(cache=compile_cache.parents[1])


@pytest.fixture(autouse=True)
def cache_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests turn the cache on and off themselves, whatever the environment says."""
    monkeypatch.delenv("GALLERY_COMPILE_CACHE", raising=False)


def entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*-cache"))


def test_the_folder_is_created_where_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GALLERY_CACHE", str(tmp_path / "root"))
    folder = enable_compile_cache()
    expected = tmp_path / "root" / "xla" / f"{jax.__version__}-{jaxlib.__version__}"
    assert folder == expected.resolve()
    assert folder.is_dir()
    assert jax.config.jax_compilation_cache_dir == str(folder)
    assert jax.config.jax_compilation_cache_max_size == 1 << 30


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    bound = 12_000  # a few small programs (about 2.5 KB each)
    folder = enable_compile_cache(cache=tmp_path, max_size_bytes=bound, min_compile_time_s=0.0)
    assert folder is not None
    x = jnp.arange(4.0)
    with watch_compile_cache() as events:
        for i in range(12):
            jax.jit(lambda v, i=i: v * (i + 2.5) - i)(x).block_until_ready()
    assert events.writes >= 12
    sizes = [entry.stat().st_size for entry in entries(folder)]
    assert 0 < sum(sizes) <= bound
    assert len(sizes) < 12, "least recently used programs should have been deleted"


def test_two_processes_compile_the_same_program_at_once(tmp_path: Path) -> None:
    env = quick_env(GALLERY_COMPILE_CACHE="1")
    runs = [
        subprocess.Popen(
            [sys.executable, str(PROBE), str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (_, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr[-3000:]
    first, second = (json.loads(stdout.splitlines()[-1]) for stdout, _ in outputs)
    assert first["digest"] == second["digest"]
    assert first["folder"] == second["folder"]
    assert entries(Path(first["folder"]))
    # A third reader, this process: it reads the program back and computes the same bytes.
    enable_compile_cache(cache=tmp_path, min_compile_time_s=0.0)
    jax.clear_caches()
    with watch_compile_cache() as events:
        result = program(program_input())
    assert events.hits >= 1
    assert digest(result) == first["digest"]


def test_turned_off_it_leaves_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    monkeypatch.setenv("GALLERY_CACHE", str(root))
    assert enable_compile_cache(False) is None
    monkeypatch.setenv("GALLERY_COMPILE_CACHE", "0")
    assert enable_compile_cache() is None
    assert jax.config.jax_compilation_cache_dir is None
    jax.clear_caches()
    with watch_compile_cache() as events:
        program(program_input()).block_until_ready()
    assert (events.hits, events.writes) == (0, 0)
    assert not root.exists()


def test_a_new_jax_version_does_not_reuse_old_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = enable_compile_cache(cache=tmp_path, min_compile_time_s=0.0)
    jax.clear_caches()
    program(program_input()).block_until_ready()
    assert old is not None and entries(old)
    old_entries = entries(old)
    monkeypatch.setattr(jax, "__version__", "99.0.0")
    new = enable_compile_cache(cache=tmp_path, min_compile_time_s=0.0)
    assert new is not None and new != old and new.name == f"99.0.0-{jaxlib.__version__}"
    jax.clear_caches()
    with watch_compile_cache() as events:
        program(program_input()).block_until_ready()
    assert events.hits == 0 and events.writes >= 1
    assert entries(new) and entries(old) == old_entries


def test_errors_say_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GALLERY_COMPILE_CACHE", "maybe")
    with pytest.raises(ValueError, match="GALLERY_COMPILE_CACHE='maybe' is not a boolean"):
        enable_compile_cache()
    monkeypatch.delenv("GALLERY_COMPILE_CACHE")
    with pytest.raises(ValueError, match="GALLERY_COMPILE_CACHE=0"):
        enable_compile_cache(max_size_bytes=0)
