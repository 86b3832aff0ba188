"""The installed distributions an example depends on, for its cache key.

An example's output can change when a library it imports changes version (a new torch or jax
can change every number). `Environment.versions` finds what the example imports (its own
`import` lines and those of the documented package's modules it reaches, read from source),
maps each top-level module to the distribution that installs it
(`importlib.metadata.packages_distributions`), adds what those distributions require,
transitively (jax requires jaxlib, which no example imports by name), and returns their versions
with the Python version. Upgrading torch then changes the key of the examples that use torch,
directly or through Lightning, and of no other.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import platform
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from ._imports import Library, example_usage

PYTHON = "python"
"""The entry of an environment that holds the Python version."""


def top_level_imports(source: str) -> set[str]:
    """The top-level names of the absolute imports in Python `source`.

    >>> sorted(top_level_imports("import numpy as np\\nfrom jax import numpy\\nfrom . import x"))
    ['jax', 'numpy']
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def canonical_name(name: str) -> str:
    """A distribution name as PEP 503 compares them: `PyYAML` and `pyyaml` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


class Environment:
    """What is installed in this interpreter, read once per build.

    Args:
        libraries: The documented packages (`doc_module`): their code is keyed by content, so
            their own distributions are left out, but what their modules import counts.
    """

    def __init__(self, libraries: Iterable[Library]) -> None:
        self.libraries = list(libraries)
        self._library_names = {lib.name for lib in self.libraries}
        self._distributions = metadata.packages_distributions()
        self._closures: dict[str, dict[str, str]] = {}

    def versions(self, example: Path) -> dict[str, str]:
        """Distribution -> version for everything `example` imports, and the Python version.

        Standard-library modules, the documented packages and modules that no installed
        distribution provides (a helper beside the example) are left out.
        """
        source = example.read_text()
        modules = top_level_imports(source)
        for library in self.libraries:
            usage = example_usage(source, library)
            for path in library.closure(usage.modules):
                modules |= top_level_imports(path.read_text())
        found: dict[str, str] = {}
        for module in sorted(modules - self._library_names - set(sys.stdlib_module_names)):
            for distribution in self._distributions.get(module, []):
                found.update(self._closure(distribution))
        for library in self.libraries:
            for distribution in self._distributions.get(library.name, []):
                found.pop(canonical_name(distribution), None)
        return {PYTHON: platform.python_version(), **dict(sorted(found.items()))}

    def _closure(self, distribution: str) -> dict[str, str]:
        """`distribution` and the installed distributions it requires, transitively."""
        root = canonical_name(distribution)
        if root in self._closures:
            return self._closures[root]
        found: dict[str, str] = {}
        todo = [root]
        while todo:
            name = todo.pop()
            if name in found:
                continue
            try:
                dist = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                continue  # an optional dependency that is not installed
            found[name] = dist.version
            for line in dist.requires or []:
                try:
                    requirement = Requirement(line)
                except InvalidRequirement:
                    continue
                # Requirements of extras (`; extra == "cuda"`) are not installed by the plain
                # distribution; a marker that holds here (`; python_version < "4"`) counts.
                if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                    todo.append(canonical_name(requirement.name))
        self._closures[root] = found
        return found
