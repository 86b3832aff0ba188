"""The header of an example page, generated from its script, and the page's figures and outputs.

mkdocs-gallery renders a script's docstring as the page's first block, under a "Click here to
download" note, and puts the download buttons, the run time and every figure where the script
left them. A reader wants to know first what the page teaches, what it needs and what it
achieves. So every example's docstring follows one format:

    # Title

    Summary: what the page teaches, in two sentences.

    ## What you will learn

    - three to five bullets

    ## Prerequisites

    What to know or install first, in a short paragraph.

    Anything after these sections is the page's introduction.

and the header is built from it, the script's imports (the install line), the last build's
record (run time, peak memory, machine) and the figure the script marks with
`# mkdocs_gallery_thumbnail_number = N` (its result, also the gallery thumbnail).
"""

from __future__ import annotations

import ast
import html
import importlib.metadata
import io
import os
import re
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

from ._environment import canonical_name, top_level_imports

_SECTIONS = ("What you will learn", "Prerequisites")
_THUMBNAIL = re.compile(r"^#\s*mkdocs_gallery_thumbnail_number\s*=\s*(-?\d+)\s*$", re.MULTILINE)


class IntroError(ValueError):
    """An example's docstring does not follow the header format."""


@dataclass(frozen=True)
class Intro:
    """What the docstring of an example script says about the page."""

    title: str
    summary: str
    learn: tuple[str, ...]
    prerequisites: str
    body: str
    """The rest of the docstring: the page's introduction (Markdown)."""


def parse_intro(source: str, name: str = "<example>") -> Intro:
    """Read the title, summary, bullets and prerequisites from a script's docstring.

    Raises:
        IntroError: A part is missing; the message names it and shows the expected format.

    Examples:
        >>> intro = parse_intro(
        ...     '\"\"\"\\n# Fit a line\\n\\nTwo sentences.\\n\\n## What you will learn\\n\\n'
        ...     '- grads\\n- steps\\n\\n## Prerequisites\\n\\nNone.\\n\\nMore text.\\n\"\"\"\\n'
        ... )
        >>> intro.title, intro.summary, intro.learn, intro.prerequisites, intro.body
        ('Fit a line', 'Two sentences.', ('grads', 'steps'), 'None.', 'More text.')
    """
    docstring = ast.get_docstring(ast.parse(source)) or ""
    blocks = [block.strip() for block in re.split(r"\n\s*\n", docstring.strip()) if block.strip()]
    fix = (
        f"{name}: its docstring must start with '# Title', a summary paragraph, a "
        "'## What you will learn' section of bullets and a '## Prerequisites' paragraph "
        "(see tools/gallery_ext/_header.py)"
    )
    if len(blocks) < 2 or not blocks[0].startswith("# "):
        raise IntroError(f"{fix}; the title line '# ...' is missing.")
    title, summary = blocks[0][2:].strip(), _join_lines(blocks[1])
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    body: list[str] = []
    for block in blocks[2:]:
        heading = block[3:].strip() if block.startswith("## ") else None
        if heading in _SECTIONS and heading not in sections:
            current = sections[heading] = []
        elif current is not None and not sections.get("Prerequisites"):
            current.append(block)
        else:
            current = None
            body.append(block)
    missing = [section for section in _SECTIONS if not sections.get(section)]
    if missing:
        raise IntroError(f"{fix}; missing or empty: {', '.join(missing)}.")
    bullets = "\n".join(sections["What you will learn"])
    learn = tuple(
        _join_lines(item) for item in re.split(r"^- ", bullets, flags=re.MULTILINE) if item.strip()
    )
    if not 3 <= len(learn) <= 5 and not name.startswith("<"):
        raise IntroError(f"{fix}; 'What you will learn' has {len(learn)} bullets, not 3 to 5.")
    prerequisites = "\n\n".join(_join_lines(block) for block in sections["Prerequisites"])
    return Intro(title, summary, learn, prerequisites, "\n\n".join(body))


def thumbnail_number(source: str) -> int:
    """The 1-based number of the figure marked as the script's result (default: the first)."""
    match = _THUMBNAIL.search(source)
    return int(match[1]) if match else 1


def third_party_distributions(source: str, exclude: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The installed distributions a script imports directly, with their versions.

    Standard-library modules and the distributions in `exclude` (the documented package and
    what it installs itself) are left out. A distribution is named once even when the script
    imports several of its modules.
    """
    tops = top_level_imports(source)
    owners = importlib.metadata.packages_distributions()
    skip = {canonical_name(name) for name in exclude}
    found: dict[str, str] = {}
    for top in sorted(tops - set(sys.stdlib_module_names)):
        for dist in owners.get(top, []):
            if canonical_name(dist) not in skip:
                found.setdefault(canonical_name(dist), importlib.metadata.version(dist))
    return sorted(found.items())


def required_distributions(distribution: str) -> set[str]:
    """The names of what installing `distribution` installs directly (no extras)."""
    names = {distribution}
    for line in importlib.metadata.requires(distribution) or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.add(requirement.name)
    return names


def install_line(
    source: str,
    archive: str,
    installed: set[str],
    undeclared: dict[str, list[str]] | None = None,
) -> str:
    """`pip install` the package's source archive and the distributions the script imports
    besides what the package installs, pinned to the versions of this build.

    Args:
        source: The script's code.
        archive: File name of the package's source archive.
        installed: The distributions the package installs itself (left out of the line).
        undeclared: What a distribution imports without declaring it (`{"gymnax": ["six"]}`).

    Returns:
        The command, one distribution per line.
    """
    pins = dict(third_party_distributions(source, exclude=installed))
    for dist in list(pins):
        for name in (undeclared or {}).get(dist, []):
            pins[name] = importlib.metadata.version(name)
    lines = "".join(f" \\\n    {dist}=={version}" for dist, version in sorted(pins.items()))
    return f"pip install ./{archive}{lines}"


def source_archive(package: str, top: str, project_dir: Path) -> bytes:
    """A zip of the package's source tree that `pip install` builds: its pyproject.toml,
    README.md and `src/<package>/`, under the folder `top`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("pyproject.toml", "README.md"):
            archive.write(project_dir / name, f"{top}/{name}")
        for path in sorted((project_dir / "src" / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, f"{top}/{path.relative_to(project_dir).as_posix()}")
    return buffer.getvalue()


_CARD = re.compile(
    r'<div class="mkd-glr-thumbcontainer" tooltip="[^"]*">(?P<body>.*?href="(?P<href>[^"]+)".*?)'
    r"</span>\s*</a>",
    re.DOTALL,
)


def gallery_index(markdown: str, cards: dict[str, tuple[str, float | None]]) -> str:
    """mkdocs-gallery's index with its cards in a grid, each with its summary as plain hover
    text and its last run time.

    Args:
        markdown: The generated index page.
        cards: For each script's stem, its summary (Markdown) and last run time in seconds.

    Returns:
        The page with the cards rewritten.
    """

    def card(match: re.Match[str]) -> str:
        stem = match["href"].rstrip("/").rsplit("/", 1)[-1]
        if stem not in cards:
            return match[0]
        summary, seconds = cards[stem]
        time = (
            f'<span class="gallery-card__time">runs in {_short_duration(seconds)}</span>'
            if seconds is not None
            else ""
        )
        hover = html.escape(plain_text(summary))
        return (
            f'<div class="mkd-glr-thumbcontainer" title="{hover}">{match["body"]}</span>{time}</a>'
        )

    markdown = _CARD.sub(card, markdown)
    first = markdown.find('<div class="mkd-glr-thumbcontainer"')
    if first < 0:
        return markdown
    last = markdown.rfind('<div class="mkd-glr-thumbcontainer"')
    end = markdown.index("\n</div>", last) + len("\n</div>")
    return (
        f'{markdown[:first]}<div class="gallery-cards">\n{markdown[first:end]}\n</div>'
        f"{markdown[end:]}"
    )


def plain_text(markdown: str) -> str:
    """Inline Markdown removed: links keep their text, code its content.

    Examples:
        >>> plain_text("Wraps [`FlaxModule`][gallery_lib.FlaxModule] and [flax](https://x.y).")
        'Wraps FlaxModule and flax.'
    """
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)|\[([^\]]+)\]\[[^\]]*\]", r"\1\2", markdown)
    return re.sub(r"[`*]", "", text)


def machine_description() -> str:
    """The CPU model, core count and memory of this machine, in words."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = re.sub(r"\s+", " ", line.split(":", 1)[1]).strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages * page_size / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        pass
    return f"{model or 'CPU'}, {cores} cores{memory}"


@dataclass(frozen=True)
class Header:
    """Everything an example page's header shows; paths are relative to the page's Markdown."""

    intro: Intro
    script: str
    """File name of the script, e.g. `plot_x.py`; the download and the notebook sit beside it."""
    install: str
    """The `pip install ...` line that runs the downloaded script."""
    library_download: str
    """Path of the documented package's source archive."""
    seconds: float | None
    peak_mb: float | None
    machine: str | None
    result_image: str | None
    """Path of the result figure, if the script drew it."""
    result_full_size: str | None = None
    """Path of its high-resolution version."""


def header_markdown(header: Header) -> str:
    """The Markdown that opens an example page (attr_list and md_in_html are needed)."""
    intro = header.intro
    notebook = Path(header.script).with_suffix(".ipynb").name
    learn = "\n".join(f"- {item}" for item in intro.learn)
    facts = []
    if header.seconds is not None:
        facts.append(f"ran in {_duration(header.seconds)}")
    if header.peak_mb is not None:
        facts.append(f"peaked at {header.peak_mb:,.0f} MB of memory")
    run = (
        f"At the last build this page {' and '.join(facts)} on {header.machine or 'one machine'}."
        if facts
        else "This page has not been executed yet."
    )
    figure = ""
    if header.result_image:
        alt = f"The result of: {intro.title}".replace("]", ")").replace("[", "(")
        full = header.result_full_size or header.result_image
        figure = (
            f"[![{alt}](./{header.result_image}){{: .gallery-header__result-img }}]"
            f'(./{full}){{: .gallery-header__result title="Open full size" }}\n\n'
        )
    body = f"\n\n{intro.body}\n" if intro.body else ""
    return (
        f"# {intro.title}\n\n"
        f"{intro.summary}\n{{: .gallery-header__summary }}\n\n"
        f"{figure}"
        f'<div class="gallery-header" markdown>\n\n'
        f"**What you will learn**\n\n{learn}\n\n"
        f"**Prerequisites.** {intro.prerequisites}\n\n"
        f"**Run it yourself.** Download the script and the `gallery_lib` "
        f"[source archive](./{header.library_download}){{ download }}, then:\n\n"
        f"```bash\n{header.install}\npython {header.script} --help\n```\n\n"
        f"{run}\n\n"
        f"[Download the script](./{header.script}){{ .md-button .md-button--primary download }}\n"
        f"[Download the notebook](./{notebook}){{ .md-button download }}\n"
        f"{{: .gallery-header__downloads }}\n\n"
        f"</div>\n{body}\n"
    )


_FIRST_CELL = re.compile(r"<!-- GENERATED FROM PYTHON SOURCE LINES")
_BOTTOM = re.compile(
    r"\*\*Total running time of the script:\*\*.*?(?=\[Gallery generated by)", re.DOTALL
)
_OUTPUT_FENCE = "```{.shell .mkd-glr-script-out-disp }"
_IMAGE = re.compile(
    r"(?<!\[)!\[(?P<alt>[^\]]*)\]\((?P<src>\./images/[^)\s]+)\)(?P<attrs>\{:[^}]*\})?"
)
_IMG_TAG = re.compile(r'<img (?P<before>[^>]*?)src="(?P<src>\.\./images/[^"]+)"(?P<after>[^>]*)/?>')


def render_example_page(markdown: str, header: str | None, full_size: Callable[[str], str]) -> str:
    """Put `header` in place of mkdocs-gallery's note and docstring, and fix what follows.

    With no `header`, mkdocs-gallery's top of the page and its bottom are kept.

    - printed output is shown as plain text, not highlighted as a shell session;
    - every figure links to its full-size version (`full_size` maps an image's URL to it);
    - the run time and download buttons at the bottom are dropped (the header has them).
    """
    start = _FIRST_CELL.search(markdown)
    if header is None or start is None:
        top, rest = "", markdown
    else:
        top, rest = header, _BOTTOM.sub("", markdown[start.start() :])
    rest = rest.replace(_OUTPUT_FENCE, "```{.text .mkd-glr-script-out-disp }")

    def link(match: re.Match[str]) -> str:
        target = full_size(match["src"])
        return f'[{match[0]}]({target}){{: .gallery-figure-link title="Open full size" }}'

    def link_tag(match: re.Match[str]) -> str:
        target = html.escape(full_size(match["src"]))
        return (
            f'<a class="gallery-figure-link" href="{target}" title="Open full size">{match[0]}</a>'
        )

    return top + _IMG_TAG.sub(link_tag, _IMAGE.sub(link, rest))


def _join_lines(block: str) -> str:
    return re.sub(r"\s*\n\s*", " ", block.strip())


def _short_duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 100 else f"{seconds / 60:.1f} min"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
