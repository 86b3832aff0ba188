"""The result cache: an example's generated files, kept by key outside the checkout.

mkdocs-gallery writes an example's outputs beside each other in the generated gallery folder
(`docs/generated/gallery/`): its page, figures, thumbnail, notebook, download copy and `.md5`
marker. After a successful run the hooks copy them to `<root>/<example>/<key digest>/` with
the run's record (time, memory, key); a later build whose key is the same (script, library
modules, installed versions, key variables: `Key`) copies them back instead of running the
example. The root defaults to `$GALLERY_CACHE/gallery/` (`~/.cache/gallery_lib/gallery/`), beside
jax's compilation cache (`$GALLERY_CACHE/xla/`): a CI system that saves and restores
`$GALLERY_CACHE` starts every build warm, on any fresh clone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from ._state import Example, Key, Record

RECORD = "record.json"


def cache_root(setting: str | None = None) -> Path:
    """The folder of the result cache.

    Args:
        setting: `extra.gallery.cache_dir` of mkdocs.yml, if set.

    Returns:
        `setting`, else `$GALLERY_CACHE/gallery`, else `~/.cache/gallery_lib/gallery` (the
        root `gallery_lib.cache_dir()` uses for downloads and compiled programs).
    """
    if setting:
        return Path(setting).expanduser().resolve()
    root = os.environ.get("GALLERY_CACHE") or Path.home() / ".cache" / "gallery_lib"
    return Path(root).expanduser().resolve() / "gallery"


def example_outputs(example: Example) -> list[Path]:
    """The files mkdocs-gallery generated for `example` (those that exist).

    Its page, notebook, download copy and `.md5` marker, the pickle of the names it uses,
    its figures (`images/mkd_glr_<stem>_001.png`, ..., with their high-resolution copies) and
    its thumbnail.
    """
    folder, stem = example.generated.parent, example.source.stem
    files = [
        folder / f"{stem}{suffix}"
        for suffix in (".md", ".py", ".py.md5", ".ipynb", "_codeobj.pickle")
    ]
    # `_001.png`, its high-resolution copy `_001_2_0x.png` (`image_srcset`), `_thumb.png`.
    figure = re.compile(rf"mkd_glr_{re.escape(stem)}_(\d{{3}}|thumb)(_[\w.]+)?\.\w+")
    for images in (folder / "images", folder / "images" / "thumb"):
        if images.is_dir():
            files += [path for path in sorted(images.iterdir()) if figure.fullmatch(path.name)]
    return [path for path in files if path.is_file()]


class ResultCache:
    """Generated outputs of successful runs, by example and key.

    Args:
        root: The cache folder (see `cache_root`).
        keep: How many entries (keys) to keep per example; the least recently used go first.
    """

    def __init__(self, root: Path, keep: int = 3) -> None:
        self.root = root
        self.keep = keep

    def _folder(self, example: Example) -> Path:
        return self.root / Path(example.page).with_suffix("").as_posix().replace("/", "--")

    def entry(self, example: Example, key: Key) -> Path:
        return self._folder(example) / key.digest

    def restore(self, example: Example, key: Key) -> Record | None:
        """Put the outputs stored for `key` in place of the example's; their record, or None.

        The example's current outputs are removed first, so that no figure of another run
        stays behind.
        """
        entry = self.entry(example, key)
        try:
            record = Record(**json.loads((entry / RECORD).read_text()))
        except (OSError, ValueError, TypeError):
            return None
        if record.key != key.digest:
            return None
        for path in example_outputs(example):
            path.unlink()
        folder = example.generated.parent
        try:
            for stored in sorted((entry / "files").rglob("*")):
                if stored.is_file():
                    target = folder / stored.relative_to(entry / "files")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(stored, target)
            os.utime(entry)  # most recently used
        except OSError:  # another build evicted it meanwhile: run the example instead
            for path in example_outputs(example):
                path.unlink()
            return None
        return record

    def store(self, example: Example, record: Record) -> Path | None:
        """Keep the example's current outputs under `record.key`; the entry, or None.

        The entry is written under a temporary name and renamed, so that a build stopped
        half-way, or two builds at once, never leave a partial entry. An entry already stored
        for the key is kept (a build may be restoring from it).
        """
        if record.key is None:
            return None
        folder = self._folder(example)
        entry = folder / record.key
        if entry.is_dir():  # the same key gives the same outputs: keep the one stored
            os.utime(entry)
            return entry
        folder.mkdir(parents=True, exist_ok=True)
        generated = example.generated.parent
        with tempfile.TemporaryDirectory(dir=folder, prefix=".partial-") as partial:
            files = Path(partial) / "files"
            for path in example_outputs(example):
                target = files / path.relative_to(generated)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
            (Path(partial) / RECORD).write_text(json.dumps(record.__dict__, indent=1) + "\n")
            with contextlib.suppress(OSError):  # another build stored the same entry first
                os.rename(partial, entry)
            Path(partial).mkdir(exist_ok=True)  # for TemporaryDirectory's clean-up
        self._evict(folder)
        return entry if entry.is_dir() else None

    def _evict(self, folder: Path) -> None:
        entries = [path for path in folder.iterdir() if path.is_dir() and path.name[0] != "."]
        entries.sort(key=lambda path: path.stat().st_mtime, reverse=True)
        for old in entries[self.keep :]:
            shutil.rmtree(old, ignore_errors=True)
