"""Unit tests of tools/site_assets.py: which files of node_modules/ the site serves."""

from __future__ import annotations

from pathlib import Path

import pytest
from mkdocs.exceptions import PluginError
from site_assets import VENDORED, vendored_files
from support import ROOT


def _fake_node_modules(root: Path, *, skip: str | None = None) -> Path:
    files = [
        "katex/dist/katex.min.js",
        "katex/dist/katex.min.css",
        "katex/dist/katex.js",
        "katex/dist/fonts/KaTeX_Main-Regular.woff2",
        "katex/dist/fonts/KaTeX_Math-Italic.woff2",
        "mermaid/dist/mermaid.min.js",
        "mermaid/dist/mermaid.esm.mjs",
    ]
    for name in files:
        if name != skip:
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(name)
    return root


def test_the_files_the_pages_load_and_only_those(tmp_path: Path) -> None:
    node_modules = _fake_node_modules(tmp_path)
    files = vendored_files(node_modules)
    assert files == {
        "assets/vendor/katex/katex.min.js": node_modules / "katex/dist/katex.min.js",
        "assets/vendor/katex/katex.min.css": node_modules / "katex/dist/katex.min.css",
        "assets/vendor/katex/fonts/KaTeX_Main-Regular.woff2": (
            node_modules / "katex/dist/fonts/KaTeX_Main-Regular.woff2"
        ),
        "assets/vendor/katex/fonts/KaTeX_Math-Italic.woff2": (
            node_modules / "katex/dist/fonts/KaTeX_Math-Italic.woff2"
        ),
        "assets/vendor/mermaid/mermaid.min.js": node_modules / "mermaid/dist/mermaid.min.js",
    }


def test_a_missing_package_says_how_to_install_it(tmp_path: Path) -> None:
    node_modules = _fake_node_modules(tmp_path, skip="mermaid/dist/mermaid.min.js")
    with pytest.raises(PluginError, match=r"mermaid\.min\.js is missing.*make env"):
        vendored_files(node_modules)


def test_the_installed_packages_have_every_file() -> None:
    """`make env` installed what the hook serves (KaTeX's fonts included)."""
    files = vendored_files(ROOT / "node_modules")
    assert {"katex", "mermaid"} == set(VENDORED)
    assert sum("/fonts/" in name for name in files) >= 20
    assert all(path.stat().st_size > 0 for path in files.values())


def test_the_pages_load_what_the_hook_serves() -> None:
    """mkdocs.yml's extra_javascript/extra_css and javascripts/mermaid.js name vendored paths."""
    served = set(vendored_files(ROOT / "node_modules"))
    config = (ROOT / "mkdocs.yml").read_text()
    loader = (ROOT / "docs" / "javascripts" / "mermaid.js").read_text()
    named = {
        "assets/vendor/katex/katex.min.js": config,
        "assets/vendor/katex/katex.min.css": config,
        "assets/vendor/mermaid/mermaid.min.js": loader,
    }
    for path, text in named.items():
        assert path in served and path in text, path
