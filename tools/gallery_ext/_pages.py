"""What the hooks write into pages: links in example code, "used in" galleries, a times table."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# A name in highlighted Python (Pygments classes n: name, nn: imported module), followed by
# `.attribute`s. Names being defined (nc, nf) are left alone.
_NAME_CHAIN = re.compile(
    r'<span class="(?:n|nn)">(?P<head>[A-Za-z_]\w*)</span>'
    r'(?P<tail>(?:<span class="o">\.</span><span class="n">[A-Za-z_]\w*</span>)*)'
)
_TAIL_PART = re.compile(r'<span class="o">\.</span><span class="n">([A-Za-z_]\w*)</span>')
# mkdocs-gallery's code cells render as `<div class="highlight">` (outputs carry more classes).
_PYTHON_BLOCK = re.compile(
    r'<div class="(?:language-python )?highlight">.*?</code></pre></div>', flags=re.DOTALL
)


def link_code_names(page_html: str, resolve: Callable[[str], str | None]) -> str:
    """Wrap names in the Python code blocks of `page_html` in mkdocs-autorefs references.

    `resolve` maps a dotted name as written in the code (`gl.JaxTrainer`) to an identifier
    (`gallery_lib.JaxTrainer`), or None. Each name of a chain is wrapped on its own, so
    `gl.JaxTrainer.fit` links `gl` to the package, `JaxTrainer` to the class and `fit` to the
    method. The references are `optional`: one whose target has no API entry stays plain text.

    >>> code = '<span class="n">T</span><span class="o">.</span><span class="n">fit</span>'
    >>> page = f'<div class="language-python highlight"><pre><code>{code}</code></pre></div>'
    >>> print(link_code_names(page, {"T": "lib.T", "T.fit": "lib.T.fit"}.get))
    ... # doctest: +NORMALIZE_WHITESPACE
    <div class="language-python highlight"><pre><code><autoref identifier="lib.T"
    optional><span class="n">T</span></autoref><span class="o">.</span><autoref
    identifier="lib.T.fit" optional><span class="n">fit</span></autoref></code></pre></div>
    """

    def link_chain(match: re.Match[str]) -> str:
        names = [match["head"], *_TAIL_PART.findall(match["tail"])]
        spans = [match[0][: match.start("tail") - match.start()]]
        spans += [part.group(0) for part in _TAIL_PART.finditer(match["tail"])]
        out = []
        for i, span in enumerate(spans):
            identifier = resolve(".".join(names[: i + 1]))
            if identifier is None:
                out.append(span)
                continue
            dot, name_span = ("", span) if i == 0 else span.split("</span>", 1)
            dot = dot + "</span>" if dot else ""
            out.append(
                f'{dot}<autoref identifier="{html.escape(identifier)}" optional>'
                f"{name_span}</autoref>"
            )
        return "".join(out)

    def link_block(block: re.Match[str]) -> str:
        return _NAME_CHAIN.sub(link_chain, block[0])

    return _PYTHON_BLOCK.sub(link_block, page_html)


@dataclass(frozen=True)
class ExampleCard:
    """An example as shown in a "used in" gallery."""

    title: str
    url: str
    """URL of the example's page, relative to the page that shows the card."""
    thumbnail: str
    """URL of its thumbnail image, relative to the page that shows the card."""


def used_in_gallery(name: str, cards: Iterable[ExampleCard]) -> str:
    """HTML for the "Examples using `name`" gallery at the end of an API entry.

    Plain HTML, so that it needs no Markdown extension (md_in_html) and no theme feature.
    """
    items = "".join(
        f'<a class="gallery-used-in__card" href="{html.escape(card.url)}">'
        f'<img alt="" src="{html.escape(card.thumbnail)}">'
        f"<span>{html.escape(card.title)}</span></a>"
        for card in cards
    )
    if not items:
        return ""
    return (
        f'\n\n<div class="gallery-used-in"><p><strong>Examples using <code>{html.escape(name)}'
        f'</code></strong></p><div class="gallery-used-in__grid">{items}</div></div>\n\n'
    )


_AUTODOC = re.compile(r"^(?P<indent>[ \t]*):::[ \t]+(?P<identifier>[\w.]+)[ \t]*$", re.MULTILINE)


def append_used_in(markdown: str, gallery_for: Callable[[str], str]) -> str:
    """Insert `gallery_for(identifier)` after each `::: identifier` block of `markdown`.

    >>> md = "::: lib.A\\n    options:\\n      x: 1\\n\\nText\\n::: lib.B\\n"
    >>> print(append_used_in(md, lambda ident: f"[{ident} gallery]"), end="")
    ::: lib.A
        options:
          x: 1
    [lib.A gallery]
    <BLANKLINE>
    Text
    ::: lib.B
    [lib.B gallery]
    """
    lines = markdown.splitlines(keepends=True)
    out: list[str] = []
    pending: tuple[str, int] | None = None
    for line in lines:
        if pending is not None:
            identifier, indent = pending
            stripped = line.strip()
            if stripped and len(line) - len(line.lstrip()) > indent:
                out.append(line)
                continue
            out.append(gallery_for(identifier) + "\n")
            pending = None
        out.append(line)
        match = _AUTODOC.match(line.rstrip("\n"))
        if match:
            pending = (match["identifier"], len(match["indent"]))
    if pending is not None:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.append(gallery_for(pending[0]) + "\n")
    return "".join(out)


@dataclass(frozen=True)
class TimeRow:
    """One example in the run-time table."""

    title: str
    page: str
    seconds: float | None
    peak_mb: float | None
    ran_now: bool
    failed: bool = False
    reason: str = ""
    """Why it ran (`script changed`, ...), or where its outputs came from when reused."""


def times_table(rows: list[TimeRow]) -> str:
    """The Markdown page listing each example's run time and peak memory, slowest first."""
    known = [r for r in rows if r.seconds is not None]
    total = sum(r.seconds or 0.0 for r in known)
    lines = [
        "# Run times of the examples",
        "",
        "How long each example took to execute during the docs build, and the highest resident",
        "memory of the process that ran it (shared with the examples that ran before it in the",
        "same process: memory held by them and by already imported libraries counts too).",
        "Examples that were not re-run in the last build (nothing they depend on changed: script,",
        "library modules, installed versions) show the time of their last run; the last column",
        "says why an example ran.",
        "",
        f"**Total: {_duration(total)}** for {len(rows)} example{'s' * (len(rows) != 1)}.",
        "",
        "| Example | Run time | Peak memory | Last build |",
        "|---|---:|---:|---|",
    ]
    for row in sorted(rows, key=lambda r: (-(r.seconds or 0.0), r.title)):
        seconds = _duration(row.seconds) if row.seconds is not None else "not run yet"
        memory = f"{row.peak_mb:,.0f} MiB" if row.peak_mb else "–"
        status = "failed" if row.failed else ("ran" if row.ran_now else "reused")
        status += f" ({row.reason})" if row.reason else ""
        lines.append(f"| [{_md_escape(row.title)}]({row.page}) | {seconds} | {memory} | {status} |")
    return "\n".join(lines) + "\n"


def _duration(seconds: float | None) -> str:
    """
    >>> _duration(0.0312), _duration(3.14159), _duration(125.0)
    ('0.03 s', '3.1 s', '2 min 5 s')
    """
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _md_escape(text: str) -> str:
    return re.sub(r"([\[\]\\|*_`])", r"\\\1", text)
