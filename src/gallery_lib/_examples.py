"""Reuse what a gallery script defines (its networks, modules, callbacks) without running it."""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def example_definitions(path: str | Path, module_name: str | None = None) -> types.ModuleType:
    """Import the imports, functions and classes of an example script, and nothing else.

    A gallery script is executed top to bottom: importing it would train its models and draw
    its figures. Tests and benchmarks often need only what it *defines* (a network, a
    `LightningModule`, a callback), exactly as the page shows them; this builds a module from
    the script's top-level `import` statements, `def`s and `class`es, skipping every other
    statement. Definitions must therefore not read the script's other globals when they are
    defined (reading them when called is fine, if the caller sets them on the module).

    Args:
        path: The example script.
        module_name: Name of the new module (default: the file's stem).

    Returns:
        A module whose attributes are the script's imports, functions and classes; it is
        registered in `sys.modules` under `module_name`, as an imported module would be.

    Example:
        >>> import tempfile, textwrap
        >>> script = tempfile.NamedTemporaryFile("w", suffix=".py", delete=False)
        >>> _ = script.write(
        ...     textwrap.dedent('''
        ...     import math
        ...     def area(r):
        ...         return math.pi * r**2
        ...     print("training for an hour...")
        ...     ''')
        ... )
        >>> script.close()
        >>> round(example_definitions(script.name).area(1.0), 4)
        3.1416
    """
    path = Path(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    tree.body = [node for node in tree.body if isinstance(node, _DEFINITIONS)]
    module = types.ModuleType(module_name or path.stem)
    module.__file__ = str(path)
    # Registered like an imported module: dataclasses and pickle look classes up there.
    sys.modules[module.__name__] = module
    exec(compile(tree, str(path), "exec"), module.__dict__)
    return module
