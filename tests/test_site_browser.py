"""The built site as a reader meets it: no broken links or anchors, pages load cleanly in Chromium.

Uses the quick-mode build of the real site (the session fixture `built_site`). The browser is
Debian's `chromium` driven by Playwright's Python package (no browser download).
"""

from __future__ import annotations

import functools
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from support import EXAMPLES, ROOT

pytestmark = pytest.mark.slow


class _Links(HTMLParser):
    """Collects the ids of a page and the URLs it points to (href and src)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name") and (name == "id" or tag == "a"):
                self.ids.add(value)
            elif name in ("href", "src") and not (tag == "link" and ("rel", "preconnect") in attrs):
                self.urls.append(value)


@functools.cache
def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(errors="replace"))
    return parser


def _target(site: Path, page: Path, url: str) -> tuple[Path, str] | None:
    """The file and fragment an internal `url` of `page` points to; None for external URLs."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith(("mailto:", "javascript:", "data:")):
        return None
    if not parts.path:
        return page, unquote(parts.fragment)
    if parts.path.startswith("/"):
        target = site / unquote(parts.path).lstrip("/")
    else:
        target = (page.parent / unquote(parts.path)).resolve()
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


def test_no_broken_internal_links_or_anchors(built_site: Path) -> None:
    site = built_site.resolve()
    broken = []
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 5
    for page in pages:
        if page.name == "404.html":  # its links are absolute to wherever the site is served
            continue
        for url in _parse(page).urls:
            target = _target(site, page, url)
            if target is None:
                continue
            path, fragment = target
            if not path.is_file():
                broken.append(f"{page.relative_to(site)}: {url} (no file)")
            elif fragment and path.suffix == ".html" and fragment not in _parse(path).ids:
                broken.append(f"{page.relative_to(site)}: {url} (no anchor #{fragment})")
    assert not broken, "broken internal links:\n" + "\n".join(sorted(set(broken)))


def _pages_to_check() -> list[str]:
    """The gallery index, each example, the run times and every API reference page."""
    api_pages = sorted((ROOT / "docs" / "api").glob("*.md"))
    return [
        "generated/gallery/",
        *(f"generated/gallery/{example.stem}/" for example in EXAMPLES),
        "generated/gallery/run-times/",
        *("api/" if p.stem == "index" else f"api/{p.stem}/" for p in api_pages),
    ]


@pytest.mark.parametrize("path", _pages_to_check())
def test_page_loads_cleanly_and_its_links_answer(
    served_site: str, browser: object, path: str, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1600})  # type: ignore[attr-defined]
    # The machine may be offline: answer requests to other hosts (Material's web fonts) with an
    # empty body, so that only this site's own errors count.
    page.route(
        lambda url: not url.startswith(served_site),
        lambda route: route.fulfill(status=200, body=""),
    )
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        response = page.goto(served_site + path, wait_until="networkidle")
        assert response is not None and response.status == 200, path
        page.screenshot(
            path=str(tmp_path / (path.strip("/").replace("/", "_") + ".png")), full_page=True
        )
        hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
        internal = {href.split("#")[0] for href in hrefs if href.startswith(served_site)}
        assert internal, f"{path} has no internal links"
        bad = {}
        for url in sorted(internal):
            status = page.request.get(url).status
            if status != 200:
                bad[url] = status
        assert not bad, f"{path}: links that do not answer 200: {bad}"
        if path.startswith("generated/gallery/plot_"):
            code_links = page.eval_on_selector_all(
                ".highlight a.autorefs", "links => links.map(a => a.href)"
            )
            assert code_links, f"{path}: no name in the code links to the API reference"
            assert all(urljoin(served_site, "api/") in link for link in code_links)
    finally:
        page.close()
    assert not errors, f"{path}: console errors: {errors}"
