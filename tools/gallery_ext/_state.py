"""The examples of the gallery and what the hooks remember about them between builds."""

from __future__ import annotations

import ast
import dataclasses
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


@dataclasses.dataclass
class Record:
    """What the last build learned about one example."""

    key: str | None = None
    """Dependency key of its last successful run; None after a failure (it must run again)."""
    seconds: float | None = None
    peak_mb: float | None = None
    machine: str | None = None
    """The machine it last ran on, in words (shown in the page's header)."""


class State:
    """Records of the examples, persisted as JSON in the generated gallery folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            raw = {}
        self.records = {name: Record(**fields) for name, fields in raw.items()}

    def get(self, example: Example) -> Record:
        return self.records.setdefault(example.name, Record())

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {name: dataclasses.asdict(r) for name, r in sorted(self.records.items())}
        self.path.write_text(json.dumps(data, indent=1) + "\n")
