"""The project's paths, the environment of quick-mode subprocesses, quick builds of the site."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))


def quick_env(**extra: str) -> dict[str, str]:
    """The environment of a quick-mode subprocess: tiny budgets, one thread, no banners."""
    env = dict(os.environ)
    env.update(
        GALLERY_QUICK="1",
        # The tests execute the examples: results restored from the cache would not test them.
        GALLERY_RESULT_CACHE="0",
        NO_MKDOCS_2_WARNING="1",
        OMP_NUM_THREADS="1",
        PYTHONWARNINGS="ignore::DeprecationWarning",
        # This checkout's library, even when the environment's editable install is another's.
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
    )
    env.update(extra)
    return env


def build_site(project: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """Run `mkdocs build --strict` in quick mode for the project copied at `project`."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=project,
        env=quick_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def copy_project(dest: Path) -> Path:
    """Copy what the site is built from into `dest`, leaving the checkout's caches alone."""
    dest.mkdir(parents=True, exist_ok=True)
    # pyproject.toml and README.md go into the source archive the example pages offer.
    for name in ("mkdocs.yml", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "docs", dest / "docs", ignore=shutil.ignore_patterns("generated"))
    shutil.copytree(ROOT / "examples", dest / "examples")
    shutil.copytree(ROOT / "tools", dest / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "benchmarks" / "results", dest / "benchmarks" / "results")
    (dest / "src").symlink_to(ROOT / "src")
    # The site's KaTeX and Mermaid (tools/site_assets.py), installed by `make env`.
    (dest / "node_modules").symlink_to(ROOT / "node_modules")
    return dest
