"""`save_results`: the JSON record a benchmark leaves under `benchmarks/results/`.

The docs build renders figures from these files (`{{ bench:NAME.KEY }}` placeholders, see
`tools/gallery_ext/_figures.py`), so every figure on a page says when, where and with which
command it was measured. A record holds:

- `date` (UTC), `machine` (processor, cores, Python and jax versions), `command` (as typed,
  relative to the repository root), `load_average` (at start and end);
- `numbers`: a flat mapping of names to numbers, the only values pages may show;
- `tables`: the markdown tables the benchmark printed, verbatim.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    processor = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            names = [line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line]
        processor = names[0] if names else processor
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    for package in ("jax", "jaxlib", "flax", "torch", "lightning", "rejax"):
        module = sys.modules.get(package)
        if module is not None and hasattr(module, "__version__"):
            versions[package] = module.__version__
    return {"processor": processor, "cores": os.cpu_count(), "versions": versions}


def command_line() -> str:
    """This process's command, as a reader would type it from the repository root."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(ROOT)
    return " ".join(["PYTHONPATH=src .venv/bin/python", str(script), *sys.argv[1:]])


def save_results(
    path: Path,
    numbers: dict[str, float | int | None],
    tables: dict[str, str],
    load_at_start: float,
) -> Path:
    """Write the record of one benchmark run to `path` (a `.json` file) and return it.

    Args:
        path: Where to write; its folder is created.
        numbers: Flat mapping of names to the numbers a page may show (None: not measured).
        tables: The markdown tables the run printed, by name.
        load_at_start: The 1-minute load average when the run started.

    Returns:
        The path written.
    """
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "command": command_line(),
        "load_average": {"start": round(load_at_start, 2), "end": round(os.getloadavg()[0], 2)},
        "numbers": numbers,
        "tables": tables,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
