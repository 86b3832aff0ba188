"""The page plumbing of examples: example_config (defaults, quick mode, command line)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest
from annotated_types import Ge, Interval

from gallery_lib import example_config, quick_mode


@dataclasses.dataclass
class Config:
    epochs: int = 3
    """Number of passes over the data."""
    name: str = "cnn"
    """Model name."""


def test_defaults_outside_a_script(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GALLERY_QUICK", raising=False)
    assert example_config(Config, quick={"epochs": 1}) == Config()


def test_quick_mode_replaces_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GALLERY_QUICK", "1")
    assert quick_mode()
    assert example_config(Config, quick={"epochs": 1}) == Config(epochs=1)


def test_command_line_wins_over_quick_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GALLERY_QUICK", "1")
    config = example_config(Config, quick={"epochs": 1}, args=["--name", "mlp"])
    assert config == Config(epochs=1, name="mlp")


def test_unknown_quick_field_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GALLERY_QUICK", "1")
    with pytest.raises(ValueError, match=r"\['epoch'\] are not fields of Config"):
        example_config(Config, quick={"epoch": 1})


def test_not_a_dataclass() -> None:
    with pytest.raises(TypeError, match="expects a dataclass"):
        example_config(dict)


def test_bad_quick_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GALLERY_QUICK", "maybe")
    with pytest.raises(ValueError, match="GALLERY_QUICK='maybe' is not a boolean"):
        quick_mode()


def test_script_help_lists_fields_with_their_docs(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        "import dataclasses\n"
        "from gallery_lib import example_config\n"
        "@dataclasses.dataclass\n"
        "class Config:\n"
        "    epochs: int = 3\n"
        '    """Number of passes over the data."""\n'
        "print(example_config(Config))\n"
    )
    run = [sys.executable, str(script)]
    result = subprocess.run([*run, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "--epochs" in result.stdout
    assert "Number of passes over the data." in result.stdout
    result = subprocess.run([*run, "--epochs", "7"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "Config(epochs=7)"
    result = subprocess.run([*run, "--epochs", "x"], capture_output=True, text=True, check=False)
    assert result.returncode == 2


@dataclasses.dataclass
class Bounded:
    total_steps: Annotated[int, Ge(1)] = 1000
    """Environment steps."""
    gamma: Annotated[float, Interval(gt=0, le=1)] = 0.99
    """Discount factor."""


def test_out_of_range_option_is_one_line_naming_the_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        example_config(Bounded, args=["--total-steps", "-5"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == "Bounded: error: --total-steps must be >= 1 (got -5)\n"


def test_every_out_of_range_option_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        example_config(Bounded, args=["--total-steps", "0", "--gamma", "1.5"])
    err = capsys.readouterr().err
    assert "--total-steps must be >= 1 (got 0)" in err
    assert "--gamma must be > 0 and <= 1 (got 1.5)" in err


def test_values_on_the_bounds_are_accepted() -> None:
    assert example_config(Bounded, args=["--total-steps", "1", "--gamma", "1"]) == Bounded(1, 1.0)


def test_out_of_range_default_is_a_bug_of_the_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GALLERY_QUICK", "1")
    with pytest.raises(ValueError, match=r"--gamma must be > 0 and <= 1 \(got 0.0\)"):
        example_config(Bounded, quick={"gamma": 0.0})
