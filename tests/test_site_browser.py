"""The built site as a reader meets it: no broken links or anchors, pages load cleanly in Chromium.

Uses the quick-mode build of the real site (the session fixture `built_site`). The browser is
Debian's `chromium` driven by Playwright's Python package (no browser download).
"""

from __future__ import annotations

import contextlib
import functools
import re
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


def _url_path(page: Path) -> str:
    """The URL path, relative to the site's root, of the Markdown page `page` under docs/."""
    relative = page.relative_to(ROOT / "docs").with_suffix("")
    parts = relative.parts[:-1] if relative.name == "index" else relative.parts
    return "".join(f"{part}/" for part in parts)


def _pages_to_check() -> list[str]:
    """The gallery index, each example, the run times and every API reference page."""
    return [
        "generated/gallery/",
        *(f"generated/gallery/{example.stem}/" for example in EXAMPLES),
        "generated/gallery/run-times/",
        *(_url_path(page) for page in sorted((ROOT / "docs" / "api").glob("*.md"))),
    ]


GUIDE_PAGES = [_url_path(page) for page in sorted((ROOT / "docs").glob("*.md"))]
WIDTHS = [1280, 390]  # a laptop and a phone (CSS pixels)


@pytest.mark.parametrize("path", _pages_to_check())
def test_page_loads_cleanly_and_its_links_answer(
    served_site: str, browser: object, path: str, tmp_path: Path
) -> None:
    page, outside = _open_offline(browser, served_site, width=1280)
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
        page.context.close()
    assert not outside, f"{path}: requests that leave the site: {outside}"
    assert not errors, f"{path}: console errors: {errors}"


def _open_offline(browser: object, served_site: str, *, width: int) -> tuple[object, list[str]]:
    """A new page of `width` CSS pixels whose requests to any other host are refused and
    listed: the site must work offline (fonts, math, diagrams and scripts served by itself)."""
    context = browser.new_context(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
    outside: list[str] = []

    def refuse(route: object) -> None:
        outside.append(route.request.url)  # type: ignore[attr-defined]
        route.abort()  # type: ignore[attr-defined]

    context.route(lambda url: not url.startswith(served_site), refuse)
    return context.new_page(), outside


# What a reader sees, as one string: the article's visible text outside code, and each kind
# of element the checks below look at. Rendered math (KaTeX) and code are left out of `prose`.
_READ_PAGE = """() => {
    const article = document.querySelector("article");
    const skip = "pre, code, script, style, .katex, .arithmatex, .mermaid";
    const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
    const prose = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!node.parentElement.closest(skip)) prose.push(node.textContent);
    }
    const math = [...article.querySelectorAll(".arithmatex")];
    return {
        prose: prose.join(""),
        text: article.innerText,
        // A docstring example that is not a code block: its `>>>` lines stay in a paragraph,
        // or Markdown reads them as three nested quotes.
        prose_examples: [...article.querySelectorAll("p, .doc-contents blockquote")]
            .filter(e => e.tagName === "BLOCKQUOTE" || e.textContent.includes(">>>"))
            .map(e => e.textContent.trim().slice(0, 120)),
        math: math.length,
        math_typeset: math.filter(e => e.querySelector(".katex:not(.katex-error)")).length,
        math_errors: [...article.querySelectorAll(".katex-error")].map(e => e.textContent),
        // Cells of the API tables (parameters, returns, raises) that reach past the screen's
        // edge, hidden behind the table's own sideways scroll.
        cells_cut: [...article.querySelectorAll(".doc-contents tr.doc-section-item > td")]
            .filter(td => td.getBoundingClientRect().right > document.documentElement.clientWidth)
            .map(td => td.textContent.trim().slice(0, 60)),
        page_width: document.documentElement.scrollWidth,
        viewport_width: document.documentElement.clientWidth,
    };
}"""

# Inline or display TeX left as text: `$x$`, `$\alpha$`, `$$ ... $$`.
RAW_TEX = re.compile(r"\$\$|\$[^\s$](?:[^$\n]*[^\s$])?\$")
# The separator row of a Markdown pipe table (`|---|:--:|`), printed or left unconverted.
PIPE_TABLE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)+\|?\s*$", re.MULTILINE)


# The page's scripts typeset its math once Material's page-load stream fires, which on a busy
# machine can come after the network went idle: wait for it (or time out and let the checks
# report what is missing).
_MATH_DONE = """() => [...document.querySelectorAll("article .arithmatex")]
    .every(e => e.querySelector(".katex"))"""


def _read(page: object) -> dict:
    from playwright.sync_api import TimeoutError as PageTimeout

    with contextlib.suppress(PageTimeout):
        page.wait_for_function(_MATH_DONE, timeout=15_000)  # type: ignore[attr-defined]
    return page.evaluate(_READ_PAGE)  # type: ignore[attr-defined]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("path", _pages_to_check() + GUIDE_PAGES)
def test_page_reads_well_offline(served_site: str, browser: object, path: str, width: int) -> None:
    """At a laptop's and a phone's width: no raw TeX or Markdown table left in the text, all
    math typeset, no docstring example inside a paragraph, every column of the API tables on
    screen, nothing wider than the screen, and no request to another host."""
    page, outside = _open_offline(browser, served_site, width=width)
    try:
        response = page.goto(served_site + path, wait_until="networkidle")  # type: ignore[attr-defined]
        assert response is not None and response.status == 200, path
        seen = _read(page)
    finally:
        page.context.close()  # type: ignore[attr-defined]
    assert not outside, f"{path}: requests that leave the site: {outside}"
    assert not RAW_TEX.findall(seen["prose"]), f"{path}: raw TeX: {RAW_TEX.findall(seen['prose'])}"
    assert not PIPE_TABLE.findall(seen["text"]), f"{path}: a Markdown pipe table in the text"
    assert seen["math_typeset"] == seen["math"], (
        f"{path}: {seen['math'] - seen['math_typeset']} of {seen['math']} formulas not typeset"
    )
    assert not seen["math_errors"], f"{path}: KaTeX errors: {seen['math_errors']}"
    if path.startswith("api/"):
        assert not seen["prose_examples"], (
            f"{path}: docstring examples rendered as prose: {seen['prose_examples']}"
        )
    assert not seen["cells_cut"], f"{path} at {width} px: table cells cut off: {seen['cells_cut']}"
    assert seen["page_width"] <= seen["viewport_width"], (
        f"{path} at {width} px scrolls sideways: {seen['page_width']} px wide"
    )


# Resolves to whether a drawn diagram appeared within 20 s (a missing one is reported after the
# requests that may explain it).
_WAIT_FOR_DIAGRAM = """() => new Promise(resolve => {
    const start = Date.now();
    const poll = () => {
        if (document.querySelector("article div.mermaid")) resolve(true);
        else if (Date.now() - start > 20000) resolve(false);
        else setTimeout(poll, 100);
    };
    poll();
})"""


@pytest.mark.parametrize("width", WIDTHS)
def test_guide_math_and_diagram_render_from_the_site(
    served_site: str, browser: object, width: int
) -> None:
    """The classification loss on "Using Jax with PyTorch Lightning" is typeset by KaTeX in
    display mode, and the diagram of the three ways is drawn by the site's own Mermaid."""
    page, outside = _open_offline(browser, served_site, width=width)
    loaded: list[str] = []
    page.on("requestfinished", lambda request: loaded.append(request.url))  # type: ignore[attr-defined]
    try:
        page.goto(served_site + "jax-and-lightning/", wait_until="networkidle")  # type: ignore[attr-defined]
        # Material replaces each ```mermaid block (a `pre`) by a `div` holding the drawing.
        drawn = page.evaluate(_WAIT_FOR_DIAGRAM)  # type: ignore[attr-defined]
        loss = page.evaluate(  # type: ignore[attr-defined]
            """() => [...document.querySelectorAll("article div.arithmatex")].map(e => ({
                tex: e.querySelector('annotation[encoding="application/x-tex"]')?.textContent,
                display: !!e.querySelector(".katex-display"),
                height: e.getBoundingClientRect().height,
            }))"""
        )
        diagram = page.evaluate(  # type: ignore[attr-defined]
            """() => [...document.querySelectorAll("article div.mermaid")].map(e => {
                const box = e.getBoundingClientRect();
                return {width: box.width, height: box.height};
            })"""
        )
        fonts = page.evaluate(  # type: ignore[attr-defined]
            "() => [...document.fonts].filter(f => f.status === 'loaded').map(f => f.family)"
        )
    finally:
        page.context.close()  # type: ignore[attr-defined]
    assert not outside, f"requests that leave the site: {outside}"
    assert any("\\ell(\\theta)" in (m["tex"] or "") and m["display"] for m in loss), loss
    assert all(m["height"] > 30 for m in loss), loss
    assert "KaTeX_Main" in fonts, f"KaTeX's fonts did not load from the site: {fonts}"
    assert drawn, "the diagram was not drawn within 20 s"
    assert any(url.endswith("/assets/vendor/mermaid/mermaid.min.js") for url in loaded), loaded
    assert len(diagram) == 1 and diagram[0]["height"] > 300, diagram
    assert diagram[0]["width"] <= width, diagram
