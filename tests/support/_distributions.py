"""Installed distributions made by hand, for tests of what the gallery keys on."""

from __future__ import annotations

import shutil
from pathlib import Path


def fake_distribution(site: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    """Install the package `name` at `version` into the folder `site`, replacing any other.

    The package's `__init__.py` holds `VERSION`; its `.dist-info` folder has the metadata
    `importlib.metadata` reads (name, version, `Requires-Dist` lines, `top_level.txt`,
    `RECORD`). Put `site` on `sys.path` (or `PYTHONPATH`) to make it visible.
    """
    for old in site.glob(f"{name}-*.dist-info"):
        shutil.rmtree(old)
    package = site / name
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(f'VERSION = "{version}"\n')
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    (info / "top_level.txt").write_text(f"{name}\n")
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n{info.name}/METADATA,,\n")
