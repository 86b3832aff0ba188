"""The shape of the code: no import cycles, and no reaching into another package's privates.

Every module under `src/` and `tools/` is parsed (not imported). A package's private modules
and names (a leading underscore) are its own: code outside the package uses what the
package re-exports. Imports between the project's modules must form no cycle, counting the
ones made only for type checking (they close the circle a reader has to follow all the same).
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from support import ROOT

SOURCE_ROOTS = (ROOT / "src", ROOT / "tools")


@dataclasses.dataclass(frozen=True)
class Import:
    importer: str
    target: str
    """The dotted name imported: a module, or a module followed by a name in it."""
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(roots: tuple[Path, ...] = SOURCE_ROOTS) -> dict[str, Path]:
    """Dotted name -> file of every Python module under `roots`."""
    return {
        module_name(path, root): path
        for root in roots
        for path in sorted(root.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def imports_of(name: str, path: Path) -> list[Import]:
    """The imports of one module, relative ones made absolute, `from m import a` as `m.a`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [Import(name, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found += [Import(name, f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The project module that `target` names or lies in (None outside the project)."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def private_reach(imp: Import) -> str | None:
    """The package whose private part `imp` reaches from outside, if it does."""
    parts = imp.target.split(".")
    for index, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            owner = ".".join(parts[:index])
            inside = imp.importer == owner or imp.importer.startswith(owner + ".")
            return None if inside else owner
    return None


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for imp in imports_of(name, path):
            target = resolve(imp.target, modules)
            if target is not None and target != name:
                graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path `[a, b, ..., a]`, or None (depth-first search)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for successor in sorted(graph[node]):
            if state.get(successor) == "open":
                return [*stack[stack.index(successor) :], successor]
            if successor not in state and (cycle := visit(successor)) is not None:
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_no_import_cycle_in_src_or_tools() -> None:
    modules = project_modules()
    assert "gallery_lib.trainer._trainer" in modules and "gallery_hooks" in modules
    cycle = find_cycle(import_graph(modules))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_reaches_another_packages_private_names() -> None:
    modules = project_modules()
    reaches = [
        f"{modules[imp.importer].relative_to(ROOT)}:{imp.line} imports {imp.target} "
        f"(private to {owner})"
        for name, path in modules.items()
        for imp in imports_of(name, path)
        if (owner := private_reach(imp)) is not None
    ]
    assert not reaches, "\n".join(reaches)


@pytest.mark.parametrize(
    ("importer", "target", "owner"),
    [
        (
            "gallery_lib._distributed",
            "gallery_lib.interop._convert.tensor_to_jax",
            "gallery_lib.interop",
        ),
        ("gallery_hooks", "gallery_ext._state.STATE_FILE", "gallery_ext"),
        ("gallery_lib.trainer._trainer", "gallery_lib.trainer._loop.TrainingLoop", None),
        ("gallery_lib", "gallery_lib._pages.quick_mode", None),
        ("gallery_lib.trainer._loop", "gallery_lib._pages.quick_mode", None),
        ("gallery_lib.datasets._x", "gallery_lib.trainer._loop.LoopStatus", "gallery_lib.trainer"),
        ("gallery_lib.trainer._loop", "jax.numpy", None),
    ],
)
def test_private_reach_rule(importer: str, target: str, owner: str | None) -> None:
    assert private_reach(Import(importer, target, 1)) == owner


def test_the_checks_find_a_planted_cycle_and_reach(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from ._a import A\n")
    (package / "_a.py").write_text("from typing import TYPE_CHECKING\nA = 1\n")
    (package / "_b.py").write_text("from ._a import A\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "_c.py").write_text("from .._b import A\n")
    modules = project_modules((tmp_path,))
    assert find_cycle(import_graph(modules)) is None
    (package / "_a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub._c import A\n"
    )
    assert find_cycle(import_graph(modules)) == ["pkg._a", "pkg.sub._c", "pkg._b", "pkg._a"]
    reaches = [
        imp
        for name, path in modules.items()
        for imp in imports_of(name, path)
        if private_reach(imp)
    ]
    assert [(imp.importer, imp.target) for imp in reaches] == [("pkg._a", "pkg.sub._c.A")]
