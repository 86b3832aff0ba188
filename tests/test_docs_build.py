"""The site builds with --strict in quick mode and each example renders a page with figures."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from support import EXAMPLES

pytestmark = pytest.mark.slow


def test_there_are_examples() -> None:
    assert EXAMPLES, "examples/ holds no plot_*.py script"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_each_example_has_a_page_with_figures(built_site: Path, example: Path) -> None:
    page = built_site / "generated" / "gallery" / example.stem / "index.html"
    assert page.is_file(), f"no gallery page for {example.name}"
    html = page.read_text()
    figures = re.findall(rf'<img[^>]+src="([^"]*mkd_glr_{example.stem}_\d+\.png)"', html)
    assert figures, f"the page of {example.name} shows no figure"
    for src in figures:
        assert (page.parent / src).resolve().is_file(), f"{src} is missing from the site"
    assert "Traceback" not in html, f"{example.name} printed a traceback"
    assert f"{example.stem}.py" in html and f"{example.stem}.ipynb" in html, "download links"


@pytest.mark.parametrize(
    "page", ["index.html", "jax-and-lightning/index.html", "examples/index.html", "api/index.html"]
)
def test_hand_written_pages_exist(built_site: Path, page: str) -> None:
    assert (built_site / page).is_file()


@pytest.mark.parametrize("package", ["gallery_lib", "gallery_lib.datasets", "gallery_lib.testing"])
def test_api_reference_documents_every_public_name(built_site: Path, package: str) -> None:
    names = importlib.import_module(package).__all__
    html = "".join(p.read_text() for p in (built_site / "api").rglob("*.html"))
    for name in names:
        assert f'id="{package}.{name}"' in html, f"{package}.{name} has no API entry"
