"""Page plumbing for example scripts: their configuration, quick mode, and reuse of their code."""

import ast
import dataclasses
import operator
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import annotated_types

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

    A numeric field declares its valid range with
    [annotated-types](https://github.com/annotated-types/annotated-types) constraints, for example
    `epochs: Annotated[int, Ge(1)] = 3`. A command-line value outside the range stops the script
    with one line naming the option and the range (exit status 2, as `argparse` does); a default
    or quick value outside it is a bug of the example and raises `ValueError`.

    Args:
        config_cls: A dataclass whose fields are the example's settings.
        quick: Field values that replace the defaults in quick mode.
        args: Command-line arguments to parse instead of `sys.argv[1:]`; passing them forces
            parsing even when not running as a script (useful in tests).

    Returns:
        An instance of `config_cls`.

    Raises:
        TypeError: If `config_cls` is not a dataclass.
        ValueError: If `quick` names a field that `config_cls` does not have, or a default or
            quick value is outside its field's range.
        SystemExit: If a command-line value is outside its field's range (status 2).

    Examples:
        >>> import dataclasses
        >>> from typing import Annotated
        >>> from annotated_types import Ge
        >>> @dataclasses.dataclass
        ... class Config:
        ...     epochs: Annotated[int, Ge(1)] = 3
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
    problems = range_errors(default)
    if problems:
        name = config_cls.__name__
        raise ValueError(f"{name} has values outside their range: {'; '.join(problems)}.")
    if args is None and not _called_from_a_script(1):
        return default
    import tyro  # imported lazily: only scripts parse a command line

    config = tyro.cli(config_cls, default=default, args=args)
    problems = range_errors(config)
    if problems:
        prog = Path(sys.argv[0]).name if args is None else config_cls.__name__
        print(f"{prog}: error: {'; '.join(problems)}", file=sys.stderr)
        raise SystemExit(2)
    return config


_BOUNDS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "gt": (">", operator.gt),
    "ge": (">=", operator.ge),
    "lt": ("<", operator.lt),
    "le": ("<=", operator.le),
}


def _resolved_type(cls: type, field: dataclasses.Field) -> Any:
    """The type of a dataclass field, evaluated when the class was defined under PEP 563."""
    if not isinstance(field.type, str):
        return field.type
    try:
        return typing.get_type_hints(cls, include_extras=True)[field.name]
    except NameError as error:
        raise TypeError(
            f"The type of {cls.__name__}.{field.name} ({field.type!r}) cannot be evaluated: "
            f"{error}. Import what it names at the top of the module that defines the class."
        ) from error


def range_errors(config: Any) -> list[str]:
    """What is wrong with the values of a configuration dataclass, field by field.

    A field's range is read from the `annotated-types` constraints of its `Annotated` type
    (`Gt`, `Ge`, `Lt`, `Le`, `Interval`). Each message names the command-line option, the allowed
    range and the value given.

    Args:
        config: An instance of a dataclass.

    Returns:
        One message per field whose value is outside its range; empty when every value is valid.

    Examples:
        >>> import dataclasses
        >>> from typing import Annotated
        >>> from annotated_types import Ge, Interval
        >>> @dataclasses.dataclass
        ... class Config:
        ...     total_steps: Annotated[int, Ge(1)] = 1000
        ...     gamma: Annotated[float, Interval(gt=0, le=1)] = 0.99
        >>> range_errors(Config(total_steps=-5, gamma=0.99))
        ['--total-steps must be >= 1 (got -5)']
        >>> range_errors(Config(gamma=1.5))
        ['--gamma must be > 0 and <= 1 (got 1.5)']
    """
    problems = []
    for field in dataclasses.fields(config):
        hint = _resolved_type(type(config), field)
        if typing.get_origin(hint) is not typing.Annotated:
            continue
        constraints = []
        for metadata in typing.get_args(hint)[1:]:
            if isinstance(metadata, annotated_types.GroupedMetadata):  # Interval(gt=0, le=1)
                constraints.extend(metadata)
            elif isinstance(metadata, annotated_types.BaseMetadata):
                constraints.append(metadata)
        bounds = [
            (symbol, check, getattr(constraint, name))
            for constraint in constraints
            for name, (symbol, check) in _BOUNDS.items()
            if getattr(constraint, name, None) is not None
        ]
        value = getattr(config, field.name)
        if bounds and not all(check(value, bound) for _, check, bound in bounds):
            allowed = " and ".join(f"{symbol} {bound}" for symbol, _, bound in bounds)
            option = "--" + field.name.replace("_", "-")
            problems.append(f"{option} must be {allowed} (got {value})")
    return problems


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
