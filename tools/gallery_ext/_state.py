"""The examples of the gallery and what the hooks remember about them between builds."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

STATE_FILE = ".gallery_ext.json"
"""Kept in each generated gallery folder; the leading dot keeps mkdocs from publishing it."""


@dataclasses.dataclass(frozen=True)
class Example:
    """One executed example script and the files mkdocs-gallery generates for it."""

    source: Path
    """The script, e.g. `examples/plot_x.py`."""
    generated: Path
    """Its generated folder counterpart without suffix, e.g. `docs/generated/gallery/plot_x`."""
    page: str
    """Its Markdown page relative to `docs_dir`, e.g. `generated/gallery/plot_x.md`."""

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def md5_file(self) -> Path:
        """mkdocs-gallery's cache marker: while it matches the script, the script is not run."""
        return self.generated.with_name(self.source.name + ".md5")

    @property
    def title(self) -> str:
        """The first Markdown heading of the script's docstring, else its file name."""
        docstring = ast.get_docstring(ast.parse(self.source.read_text())) or ""
        for line in docstring.splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()
        return self.source.stem

    def thumbnail(self) -> str | None:
        """The page-relative path (to `docs_dir`) of its thumbnail, if it has been made."""
        thumbs = sorted(
            self.generated.parent.joinpath("images", "thumb").glob(
                f"mkd_glr_{self.source.stem}_thumb.*"
            )
        )
        if not thumbs:
            return None
        return str(Path(self.page).parent / "images" / "thumb" / thumbs[0].name)


def collect_examples(gallery_conf: dict[str, Any], docs_dir: Path) -> list[Example]:
    """The scripts mkdocs-gallery executes (`filename_pattern`), in every configured gallery."""
    pattern = gallery_conf["filename_pattern"]
    ignore = gallery_conf["ignore_pattern"]
    examples = []
    for src_dir, gen_dir in zip(
        gallery_conf["examples_dirs"], gallery_conf["gallery_dirs"], strict=True
    ):
        src_dir, gen_dir = Path(src_dir).resolve(), Path(gen_dir).resolve()
        for source in sorted(src_dir.rglob("*.py")):
            if not re.search(pattern, str(source)) or re.search(ignore, str(source)):
                continue
            generated = gen_dir / source.relative_to(src_dir).with_suffix("")
            page = generated.with_suffix(".md").relative_to(docs_dir.resolve()).as_posix()
            examples.append(Example(source, generated, page))
    return examples


@dataclasses.dataclass(frozen=True)
class Key:
    """Everything an example's output depends on, in parts that say why it must run again."""

    script: str
    """MD5 of the script's text (the digest mkdocs-gallery writes to its `.md5` file)."""
    library: str
    """Hash of the documented package's modules the script reaches (`dependency_key`)."""
    environment: dict[str, str]
    """Installed distribution -> version for what it imports, `python` -> the Python version,
    `$NAME` -> the value of each variable listed in `extra.gallery.key_environment`."""

    @property
    def digest(self) -> str:
        """One hash of all the parts: the name of the example's entry in the result cache."""
        text = json.dumps([self.script, self.library, sorted(self.environment.items())])
        return hashlib.sha256(text.encode()).hexdigest()


@dataclasses.dataclass
class Record:
    """What the last build learned about one example."""

    key: str | None = None
    """`Key.digest` of its last successful run; None after a failure (it must run again)."""
    seconds: float | None = None
    peak_mb: float | None = None
    machine: str | None = None
    """The machine it last ran on, in words (shown in the page's header)."""
    script: str | None = None
    """The parts of the key of the last successful run (see `Key`)."""
    library: str | None = None
    environment: dict[str, str] | None = None
    failed: bool = False
    """Its last run failed."""

    def accept(self, key: Key) -> None:
        """Remember `key` as the key of a successful run."""
        self.key, self.failed = key.digest, False
        self.script, self.library, self.environment = key.script, key.library, key.environment

    def reason(self, key: Key) -> str | None:
        """Why an example with this record must run for `key`; None when it need not.

        >>> key = Key("s1", "l1", {"python": "3.11.9", "torch": "2.13.0"})
        >>> record = Record()
        >>> record.reason(key)
        'new'
        >>> record.accept(key)
        >>> record.reason(key) is None
        True
        >>> record.reason(Key("s1", "l1", {"python": "3.11.9", "torch": "2.14.1"}))
        'environment changed: torch 2.13.0 → 2.14.1'
        >>> record.reason(Key("s2", "l2", {"python": "3.11.9", "numpy": "2.3.0"}))
        'script changed, library changed, environment changed: numpy new, torch removed'
        """
        if self.failed:
            return "failed last time"
        if self.key is None or self.script is None or self.environment is None:
            return "new"
        if self.key == key.digest:
            return None
        changes = []
        if self.script != key.script:
            changes.append("script changed")
        if self.library != key.library:
            changes.append("library changed")
        if self.environment != key.environment:
            changes.append("environment changed: " + _changes(self.environment, key.environment))
        return ", ".join(changes)


def _changes(old: dict[str, str], new: dict[str, str]) -> str:
    parts = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if before is None:
            parts.append(f"{name} new")
        elif after is None:
            parts.append(f"{name} removed")
        else:
            parts.append(f"{name} {before} → {after}")
    return ", ".join(parts)


class State:
    """Records of the examples, persisted as JSON in the generated gallery folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            raw = {}
        known = {field.name for field in dataclasses.fields(Record)}
        self.records = {
            name: Record(**{k: v for k, v in fields.items() if k in known})
            for name, fields in raw.items()
        }

    def get(self, example: Example) -> Record:
        return self.records.setdefault(example.name, Record())

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {name: dataclasses.asdict(r) for name, r in sorted(self.records.items())}
        self.path.write_text(json.dumps(data, indent=1) + "\n")
