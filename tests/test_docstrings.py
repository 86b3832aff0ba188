"""The library's docstrings parse into the sections mkdocstrings renders well.

Parsed by griffe (what mkdocstrings-python reads) with the options of mkdocs.yml, so a
docstring that would render badly on the API pages fails here, without building the site:
an example outside an `Examples:` section (an unknown title such as `Example:` renders as one
grey paragraph), or a `Returns:` section split into several rows.
"""

from __future__ import annotations

import griffe
import pytest
import yaml
from support import ROOT


class _Loader(yaml.SafeLoader):
    """Reads mkdocs.yml; its `!!python/name:` tags become plain strings."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: suffix)


def _python_handler_options() -> dict:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_Loader)
    (plugin,) = (p["mkdocstrings"] for p in config["plugins"] if "mkdocstrings" in p)
    return plugin["handlers"]["python"]["options"]


def _documented_objects() -> list[griffe.Object]:
    """Every public function, class, method and attribute of gallery_lib that has a docstring."""
    options = _python_handler_options()
    parser = griffe.Parser(options["docstring_style"])
    package = griffe.load(
        "gallery_lib",
        search_paths=[str(ROOT / "src")],
        docstring_parser=parser,
        docstring_options=options.get("docstring_options", {}),
    )
    found: list[griffe.Object] = []

    def visit(obj: griffe.Object) -> None:
        if obj.docstring is not None:
            found.append(obj)
        for member in obj.members.values():
            if member.is_alias or member.name.startswith("__"):
                continue
            visit(member)

    visit(package)
    return found


OBJECTS = _documented_objects()


def _example_lines_outside_examples(section: griffe.DocstringSection) -> list[str]:
    """Lines starting with `>>>` in a text or admonition section (Markdown prose), outside
    fenced code blocks: they would render inside a paragraph."""
    if section.kind is griffe.DocstringSectionKind.text:
        text = section.value
    elif section.kind is griffe.DocstringSectionKind.admonition:
        text = section.value.contents
    else:
        return []
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.lstrip().startswith(">>>"):
            lines.append(line.strip())
    return lines


def test_the_library_has_docstring_examples() -> None:
    with_examples = [
        obj.path
        for obj in OBJECTS
        if any(s.kind is griffe.DocstringSectionKind.examples for s in obj.docstring.parsed)
    ]
    assert len(with_examples) >= 20, with_examples


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda obj: obj.path)
def test_examples_render_as_code(obj: griffe.Object) -> None:
    for section in obj.docstring.parsed:
        stray = _example_lines_outside_examples(section)
        assert not stray, (
            f"{obj.path}: `>>>` lines in the {section.kind.value} section "
            f"(title {section.title!r}) render as prose: put them under `Examples:`: {stray}"
        )
        assert section.kind is not griffe.DocstringSectionKind.admonition or (
            section.title or ""
        ).lower().rstrip(":") not in ("example", "usage"), (
            f"{obj.path}: a {section.title!r} box; write `Examples:` (griffe's Google parser "
            "knows only that title and renders the others as a grey paragraph)"
        )


@pytest.mark.parametrize(
    "obj",
    [obj for obj in OBJECTS if obj.is_function and obj.returns is not None],
    ids=lambda obj: obj.path,
)
def test_returns_is_one_row_with_the_signature_type(obj: griffe.Function) -> None:
    for section in obj.docstring.parsed:
        if section.kind is not griffe.DocstringSectionKind.returns:
            continue
        assert len(section.value) == 1, (
            f"{obj.path}: its Returns section renders as {len(section.value)} rows: "
            + " | ".join(item.description for item in section.value)
        )
        assert str(section.value[0].annotation) == str(obj.returns), obj.path
