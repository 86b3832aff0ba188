"""Every numeric option of every example declares its range, and a value outside it is refused.

A command-line value outside an option's range must stop the script at once with one line naming
the option and the range, instead of running with a clipped or nonsensical value.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing
from pathlib import Path

import annotated_types
import pytest
from support import EXAMPLES, ROOT

from gallery_lib import example_config, example_definitions

SCRIPTS = EXAMPLES


def _config_class(script: Path) -> type:
    return example_definitions(script, f"cli_{script.stem}").Config


def _numeric_fields(config_cls: type) -> list[tuple[str, typing.Any]]:
    """The (name, type hint) of each int or float field; bools are not numbers here."""
    hints = typing.get_type_hints(config_cls, include_extras=True)
    numeric = []
    for field in dataclasses.fields(config_cls):
        hint = hints[field.name]
        base = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
        if base in (int, float):
            numeric.append((field.name, hint))
    return numeric


def _outside_values(hint: typing.Any) -> list[float]:
    """One value just outside each bound the field declares."""
    values = []
    for metadata in typing.get_args(hint)[1:]:
        grouped = isinstance(metadata, annotated_types.GroupedMetadata)
        for constraint in metadata if grouped else [metadata]:
            if getattr(constraint, "ge", None) is not None:
                values.append(constraint.ge - 1)
            if getattr(constraint, "gt", None) is not None:
                values.append(constraint.gt)
            if getattr(constraint, "le", None) is not None:
                values.append(constraint.le + 1)
            if getattr(constraint, "lt", None) is not None:
                values.append(constraint.lt)
    return values


CASES = [
    pytest.param(script, name, hint, id=f"{script.stem}-{name}")
    for script in SCRIPTS
    for name, hint in _numeric_fields(_config_class(script))
]


def test_every_example_is_covered() -> None:
    covered = {case.values[0] for case in CASES}
    assert covered == set(SCRIPTS), f"examples without numeric options: {set(SCRIPTS) - covered}"


@pytest.mark.parametrize(("script", "name", "hint"), CASES)
def test_option_declares_its_range_and_refuses_values_outside(
    script: Path, name: str, hint: typing.Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config_cls = _config_class(script)
    outside = _outside_values(hint)
    assert outside, (
        f"{script.name}: Config.{name} declares no range; annotate it, for example "
        f"`{name}: Annotated[int, Ge(1)]` (annotated_types)."
    )
    assert example_config(config_cls) == config_cls(), "the defaults are inside their ranges"
    option = "--" + name.replace("_", "-")
    base = typing.get_args(hint)[0]
    for value in outside:
        with pytest.raises(SystemExit) as stopped:
            example_config(config_cls, args=[option, str(base(value))])
        assert stopped.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"{option} must be" in err, err


def test_a_script_refuses_a_bad_value_before_running() -> None:
    script = ROOT / "examples" / "plot_jax_torch_first_steps.py"
    result = subprocess.run(
        [sys.executable, str(script), "--steps", "-5"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().endswith("error: --steps must be >= 1 (got -5)")
