"""Page plumbing for example scripts: their configuration, quick mode, and reuse of their code."""

from __future__ import annotations

import ast
import dataclasses
import os
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

ConfigT = TypeVar("ConfigT")

QUICK_ENV_VAR = "GALLERY_QUICK"
"""Environment variable that shrinks every example's budget (set to ``1`` by the tests)."""


def quick_mode() -> bool:
    """Whether examples should run with their tiny "quick" budget.

    Quick mode is on when the environment variable `GALLERY_QUICK` is set to a true value
    (``1``, ``true``, ``yes``, ``on``). The test-suite sets it so that building the whole site
    takes seconds per example instead of the docs-build budget.

    Returns:
        `True` in quick mode, `False` otherwise.

    Examples:
        >>> import os
        >>> os.environ["GALLERY_QUICK"] = "1"
        >>> quick_mode()
        True
        >>> del os.environ["GALLERY_QUICK"]
        >>> quick_mode()
        False
    """
    return env_flag(QUICK_ENV_VAR, default=False)


def env_flag(name: str, *, default: bool) -> bool:
    """The boolean value of the environment variable `name`, `default` when unset or empty.

    Raises:
        ValueError: The value is not one of 1/true/yes/on or 0/false/no/off (any case).
    """
    value = os.environ.get(name, "").strip().lower()
    if value == "":
        return default
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name}={value!r} is not a boolean: use 1/true/yes/on or 0/false/no/off.")


def _called_from_a_script(depth: int) -> bool:
    """Whether the frame `depth` levels up runs in a `__main__` module loaded from a file.

    mkdocs-gallery and Jupyter run example code in a `__main__` module that has no `__file__`;
    `python examples/plot_x.py` gives it one; pytest and other importers are not `__main__`.
    Only a script run from the command line should parse `sys.argv`.
    """
    caller = sys._getframe(depth + 1).f_globals
    return caller.get("__name__") == "__main__" and caller.get("__file__") is not None


def example_config(
    config_cls: type[ConfigT],
    *,
    quick: Mapping[str, Any] | None = None,
    args: Sequence[str] | None = None,
) -> ConfigT:
    """Build the configuration of an example script.

    The defaults of `config_cls` are sized for the docs build. In quick mode (see
    [`quick_mode`][gallery_lib.quick_mode]) the fields in `quick` replace them. When the example
    runs as a script (`python examples/plot_x.py --help`), the command line is parsed with
    [tyro](https://brentyi.github.io/tyro/) on top of those defaults, so every field of the
    dataclass is a flag documented by its docstring. In the docs build or a notebook, the command
    line is never read.

    Args:
        config_cls: A dataclass whose fields are the example's settings.
        quick: Field values that replace the defaults in quick mode.
        args: Command-line arguments to parse instead of `sys.argv[1:]`; passing them forces
            parsing even when not running as a script (useful in tests).

    Returns:
        An instance of `config_cls`.

    Raises:
        TypeError: If `config_cls` is not a dataclass.
        ValueError: If `quick` names a field that `config_cls` does not have.

    Examples:
        >>> import dataclasses
        >>> @dataclasses.dataclass
        ... class Config:
        ...     epochs: int = 3
        ...     '''Number of passes over the data.'''
        >>> example_config(Config, quick={"epochs": 1}, args=["--epochs", "5"])
        Config(epochs=5)
    """
    if not (isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls)):
        raise TypeError(f"example_config expects a dataclass type, got {config_cls!r}.")
    default = config_cls()
    if quick and quick_mode():
        names = {f.name for f in dataclasses.fields(config_cls)}
        unknown = sorted(set(quick) - names)
        if unknown:
            raise ValueError(
                f"quick overrides {unknown} are not fields of {config_cls.__name__}; "
                f"its fields are {sorted(names)}."
            )
        default = dataclasses.replace(default, **quick)
    if args is None and not _called_from_a_script(1):
        return default
    import tyro  # imported lazily: only scripts parse a command line

    return tyro.cli(config_cls, default=default, args=args)


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

    Examples:
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
