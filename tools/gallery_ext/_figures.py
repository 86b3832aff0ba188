"""`render_figures`: measured figures on pages come from benchmark records, never from a hand.

A page shows a measured number through a placeholder, `{{ bench:ppo.equal_ratio:.3f }}`,
which the docs build replaces with the value `numbers["equal_ratio"]` of the record
`benchmarks/results/ppo.json` that `benchmarks/bench_ppo.py` writes, formatted with the
optional format spec. `{{ bench:ppo.stamp }}` gives when, where and how it was measured.

`hand_written_figures` finds the speed ratios (`1.3x`, `20x`) and percentages (`82.1%`) left
in a page's prose; the test-suite requires that there are none beyond a short list of
definitions that are not measurements (a 10% split, say).
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*bench:(\w+)\.(\w+)(?::([^}\s]*))?\s*\}\}")
FIGURE = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:\s?-\s?\d[\d,]*(?:\.\d+)?)?(?:x\b|×|\s?%)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_URL = re.compile(r"\]\([^)]*\)|https?://\S+")


class FigureError(ValueError):
    """A placeholder names a record or a number that does not exist."""


def _stamp(record: dict[str, Any]) -> str:
    machine = record["machine"]
    load = record["load_average"]
    return (
        f"{record['date']}, {machine['processor']}, {machine['cores']} cores, load average "
        f"{load['start']:.1f} at start and {load['end']:.1f} at end, `{record['command']}`"
    )


def load_record(results: Path, name: str) -> dict[str, Any]:
    """The record `results/name.json`, or a `FigureError` that says how to make it."""
    path = results / f"{name}.json"
    if not path.is_file():
        raise FigureError(
            f"{path} does not exist: run the benchmark that writes it (`benchmarks/README.md` "
            f"lists each record's command), or remove the `bench:{name}` placeholders."
        )
    return json.loads(path.read_text())


def render_figures(markdown: str, results: Path) -> str:
    """Replace each `{{ bench:NAME.KEY[:FORMAT] }}` of `markdown` from the records in `results`.

    Args:
        markdown: A page's text.
        results: The folder of benchmark records (`benchmarks/results`).

    Returns:
        The page with every placeholder replaced. Keys `date`, `command` and `stamp` give the
        record's date, its command, and a sentence with date, machine, load and command.

    Raises:
        FigureError: A record or a number is missing, or a number is None (not measured).

    >>> render_figures("no placeholder, 3 words", Path("."))
    'no placeholder, 3 words'
    """
    records: dict[str, dict[str, Any]] = {}

    def substitute(match: re.Match[str]) -> str:
        name, key, spec = match[1], match[2], match[3] or ""
        if name not in records:
            records[name] = load_record(results, name)
        record = records[name]
        if key == "stamp":
            return _stamp(record)
        if key in ("date", "command"):
            return str(record[key])
        numbers = record["numbers"]
        if numbers.get(key) is None:
            known = ", ".join(sorted(k for k, v in numbers.items() if v is not None))
            raise FigureError(
                f"{match[0]}: {results / (name + '.json')} has no number {key!r} "
                f"(it has: {known}). Fix the placeholder, or re-run the benchmark."
            )
        return format(numbers[key], spec)

    return PLACEHOLDER.sub(substitute, markdown)


def markdown_prose(markdown: str) -> str:
    """The text of a markdown page without code blocks, code spans, link targets, placeholders."""
    for pattern in (_FENCE, _CODE_SPAN, _URL, PLACEHOLDER):
        markdown = pattern.sub(" ", markdown)
    return markdown


def python_prose(source: str) -> str:
    """The comments and docstrings of a Python script: what its gallery page shows as text."""
    parts = [
        token.string
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node)
            if docstring:
                parts.append(docstring)
    return markdown_prose("\n".join(parts))


def hand_written_figures(prose: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """Speed ratios and percentages written in `prose`, each with a little context.

    Args:
        prose: Text without code (see `markdown_prose`, `python_prose`).
        allowed: Phrases that may contain figures because they are definitions, not
            measurements (each must occur in `prose`; their figures are not reported).

    Returns:
        One `...context...` string per figure found outside the allowed phrases.

    >>> hand_written_figures("about 20x slower, and 30% faster; a 10% split", ("a 10% split",))
    ['about 20x slower,', ', and 30% faster;']
    """
    for phrase in allowed:
        if phrase not in prose:
            raise FigureError(f"the allowed phrase {phrase!r} is not in the text: remove it")
        prose = prose.replace(phrase, " ")
    found = FIGURE.finditer(prose)
    return [prose[max(0, m.start() - 6) : m.end() + 8].replace("\n", " ") for m in found]
