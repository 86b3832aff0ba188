"""How long the docs build takes when nothing changed, against a build that runs every example.

Copies the project to a temporary folder and times, in one run:
1. a clean build (every example runs),
2. a rebuild of the unchanged tree (the gallery hooks must re-run nothing),
3. a rebuild after editing the `gallery_lib` module that defines `example_config` (the examples
   that use it, directly or through other modules, run again);
4. a rebuild after editing the PPO example's prose (that example runs again).

The compilation cache starts empty (`GALLERY_CACHE` is a folder of the copy), so build 1
compiles every program and the examples re-run by builds 3 and 4 read them back: the time of
each example in build 1 and in build 4 is printed (the hooks' record of the last run).

Usage: `PYTHONPATH=src NO_MKDOCS_2_WARNING=1 .venv/bin/python benchmarks/gallery_rebuild.py
[--quick]` (`--quick` sets GALLERY_QUICK=1: tiny example budgets).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

from _common import copy_site_project, timed_build


def build(project: Path, env: dict[str, str]) -> tuple[float, str]:
    """Build `project`: wall seconds, and how many examples it executed."""
    seconds, log = timed_build(project, env)
    executed = re.search(r"successfully executed (\d+ out of \d+)", log)
    return seconds, executed[1] if executed else "?"


def example_seconds(project: Path) -> dict[str, float]:
    """Each example's time in its last run, from the gallery hooks' record."""
    import json

    record = project / "docs" / "generated" / "gallery" / ".gallery_ext.json"
    runs = json.loads(record.read_text())
    return {name: run["seconds"] for name, run in runs.items() if run.get("seconds") is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="set GALLERY_QUICK=1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = copy_site_project(Path(tmp))
        env = dict(os.environ, NO_MKDOCS_2_WARNING="1", OMP_NUM_THREADS="1")
        env["PYTHONPATH"] = str(project / "src")
        env["GALLERY_QUICK"] = "1" if args.quick else "0"
        env["GALLERY_CACHE"] = str(project / "cache")  # the compilation cache starts empty

        clean, clean_ran = build(project, env)
        clean_examples = example_seconds(project)
        unchanged, unchanged_ran = build(project, env)
        module = project / "src" / "gallery_lib" / "_pages.py"
        module.write_text(module.read_text() + "\n# benchmark edit\n")
        edited, edited_ran = build(project, env)
        example = project / "examples" / "plot_jax_ppo.py"
        example.write_text(example.read_text() + "\n# %%\n# A paragraph added by the benchmark.\n")
        prose, prose_ran = build(project, env)
        prose_examples = example_seconds(project)

    print(f"clean build            {clean:6.1f} s  examples executed: {clean_ran}")
    print(f"unchanged rebuild      {unchanged:6.1f} s  examples executed: {unchanged_ran}")
    print(f"after editing _pages.py {edited:5.1f} s  examples executed: {edited_ran}")
    print(f"after editing PPO prose {prose:5.1f} s  examples executed: {prose_ran}")
    print(f"unchanged / clean = {unchanged / clean:.2f}; edited / clean = {edited / clean:.2f}")
    print("\nper example: clean build (cold compilation cache) -> its last re-run (warm)")
    for name, seconds in sorted(clean_examples.items()):
        again = prose_examples.get(name, seconds)
        print(f"  {name:32} {seconds:6.1f} s -> {again:6.1f} s  ({seconds - again:+.1f} s saved)")


if __name__ == "__main__":
    main()
