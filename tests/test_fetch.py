"""fetch_sdist and cache_dir: argument checks, the digest check and the offline cache hit."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import gallery_lib
from gallery_lib import cache_dir, fetch_sdist, sha256_of

DIGEST = "0" * 64


def test_cache_dir_from_argument_env_and_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cache_dir(tmp_path / "a") == (tmp_path / "a").resolve()
    assert (tmp_path / "a").is_dir()
    monkeypatch.setenv("GALLERY_CACHE", str(tmp_path / "b"))
    assert cache_dir() == (tmp_path / "b").resolve()
    assert cache_dir("") == (tmp_path / "b").resolve()
    monkeypatch.delenv("GALLERY_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == (tmp_path / "home" / ".cache" / "gallery_lib").resolve()


def test_sha256_of_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    (tmp_path / "f").write_bytes(data)
    assert sha256_of(tmp_path / "f") == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("version", ["", ">=1.0", "1.*", "1.0, 2.0"])
def test_version_must_be_exact(tmp_path: Path, version: str) -> None:
    with pytest.raises(ValueError, match="needs an exact version"):
        fetch_sdist("pkg", version, DIGEST, cache=tmp_path)


@pytest.mark.parametrize("digest", ["abc", "g" * 64, ""])
def test_digest_must_be_sha256_hex(tmp_path: Path, digest: str) -> None:
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        fetch_sdist("pkg", "1.0", digest, cache=tmp_path)


def test_cached_archive_with_the_right_digest_is_reused_without_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "sdists" / "My_Pkg-1.0.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"pretend archive")

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip must not run when the cache holds the archive")

    monkeypatch.setattr(gallery_lib._fetch.subprocess, "run", no_pip)
    assert fetch_sdist("my-pkg", "1.0", sha256_of(archive), cache=tmp_path) == archive


def test_pip_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "sdists" / "pkg-1.0.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"tampered")  # wrong digest: fetch_sdist must go to pip again

    class Failed:
        returncode, stderr = 1, "ERROR: No matching distribution found for pkg==1.0"

    monkeypatch.setattr(gallery_lib._fetch.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(RuntimeError, match="No matching distribution found"):
        fetch_sdist("pkg", "1.0", DIGEST, cache=tmp_path)


def test_digest_mismatch_after_download_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Downloaded:
        returncode, stderr = 0, ""

    def fake_pip(command: list[str], **kwargs: object) -> Downloaded:
        dest = Path(command[command.index("--dest") + 1])
        (dest / "pkg-1.0.tar.gz").write_bytes(b"not what was pinned")
        return Downloaded()

    monkeypatch.setattr(gallery_lib._fetch.subprocess, "run", fake_pip)
    with pytest.raises(RuntimeError, match="expected 0000"):
        fetch_sdist("pkg", "1.0", DIGEST, cache=tmp_path)
    assert not list((tmp_path / "sdists").glob("*.tar.gz"))
