"""Every speed ratio and percentage on a page comes from code: a benchmark record or the page.

Pages (docs/*.md, the examples' and the library's comments and docstrings) may show a
measured ratio or percentage only through a `{{ bench:NAME.KEY }}` placeholder, which the docs
build fills from `benchmarks/results/NAME.json`, or by computing it in the example's own
output. `ALLOWED` lists the few figures in prose that are definitions, not measurements, each
with its reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gallery_ext import (
    FigureError,
    hand_written_figures,
    markdown_prose,
    python_prose,
    render_figures,
)
from support import ROOT

RESULTS = ROOT / "benchmarks" / "results"
DOC_PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "examples" / "README.md"]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# The library's docstrings are pages too (the API reference), and its comments explain it.
LIBRARY = sorted((ROOT / "src" / "gallery_lib").rglob("*.py"))
ALLOWED: dict[str, dict[str, str]] = {
    "docs/scaling-out.md": {
        "preallocates 75% of the GPU memory": "Jax's documented default, not a measurement",
    },
    "examples/plot_text_classification.py": {
        "80% training, 10% validation": "the split's definition (`split_indices`)",
        "10% test": "the split's definition (`split_indices`)",
    },
    "examples/plot_jax_torch_first_steps.py": {
        "y = 2x - 1": "the line the example's data is drawn from",
    },
}


def prose_of(path: Path) -> str:
    text = path.read_text()
    return python_prose(text) if path.suffix == ".py" else markdown_prose(text)


@pytest.mark.parametrize(
    "path", DOC_PAGES + EXAMPLES + LIBRARY, ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_no_hand_written_ratio_or_percentage(path: Path) -> None:
    relative = path.relative_to(ROOT).as_posix()
    found = hand_written_figures(prose_of(path), tuple(ALLOWED.get(relative, {})))
    assert not found, (
        f"{relative} writes measured figures by hand: {found}. Render them from a benchmark "
        "record ({{ bench:NAME.KEY:FORMAT }}, see tools/gallery_ext/_figures.py), compute them "
        "in the example's output, or remove them."
    )


@pytest.mark.parametrize("path", DOC_PAGES, ids=lambda p: p.name)
def test_every_placeholder_resolves_from_the_committed_records(path: Path) -> None:
    rendered = render_figures(path.read_text(), RESULTS)
    assert "{{ bench:" not in rendered


def test_every_record_says_when_where_and_how(tmp_path: Path) -> None:
    for record_path in sorted(RESULTS.glob("*.json")):
        record = json.loads(record_path.read_text())
        assert {"date", "machine", "command", "load_average", "numbers"} <= set(record)
        assert record["command"].startswith("PYTHONPATH=src .venv/bin/python benchmarks/")


def _record(tmp_path: Path, numbers: dict) -> Path:
    record = {
        "date": "2026-12-02 03:00 UTC",
        "machine": {"processor": "CPU X", "cores": 2, "versions": {}},
        "command": "PYTHONPATH=src .venv/bin/python benchmarks/bench_demo.py",
        "load_average": {"start": 1.04, "end": 1.26},
        "numbers": numbers,
        "tables": {},
    }
    (tmp_path / "demo.json").write_text(json.dumps(record))
    return tmp_path


def test_placeholders_are_formatted_from_the_record(tmp_path: Path) -> None:
    results = _record(tmp_path, {"ratio": 1.23456, "share": 0.0512, "missing": None})
    text = "{{ bench:demo.ratio:.3f }}x, {{bench:demo.share:.1%}}; {{ bench:demo.stamp }}"
    assert render_figures(text, results) == (
        "1.235x, 5.1%; 2026-12-02 03:00 UTC, CPU X, 2 cores, load average 1.0 at start and "
        "1.3 at end, `PYTHONPATH=src .venv/bin/python benchmarks/bench_demo.py`"
    )
    with pytest.raises(FigureError, match=r"has no number 'other' \(it has: ratio, share\)"):
        render_figures("{{ bench:demo.other }}", results)
    with pytest.raises(FigureError, match="has no number 'missing'"):
        render_figures("{{ bench:demo.missing }}", results)
    with pytest.raises(FigureError, match=r"nothing\.json does not exist: run the benchmark"):
        render_figures("{{ bench:nothing.ratio }}", results)


def test_the_check_finds_figures_in_prose_but_not_in_code() -> None:
    page = (
        "It ran 1.30x faster (20x, 0.88-0.91x, 12 %, 82.1%).\n"
        "```python\nprint(f'{x:.2%}', 3x)\n```\n`4x` {{ bench:demo.ratio:.1% }} "
        "[a](https://e.org/50%)"
    )
    found = hand_written_figures(markdown_prose(page))
    assert len(found) == 5, found
    for figure in ("1.30x", "20x", "0.88-0.91x", "12 %", "82.1%"):
        assert any(figure in context for context in found), figure
    script = '"""A 5x title."""\n\nx = 0.5  # 30% of it\nprint(f"{x:.0%}")\n'
    assert len(hand_written_figures(python_prose(script))) == 2
    with pytest.raises(FigureError, match="is not in the text"):
        hand_written_figures("nothing here", ("a 10% split",))
