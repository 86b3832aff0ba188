"""Unit tests of tools/gallery_ext: the parts of the gallery hooks that need no mkdocs build."""

from __future__ import annotations

import mmap
import textwrap
import threading
import time
from pathlib import Path

import pytest
from gallery_ext import (
    ExampleMonitor,
    ExampleTimeoutError,
    Library,
    TimeRow,
    dependency_key,
    example_usage,
    times_table,
)
from gallery_ext._monitor import resident_mb


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Library:
    """A package `deplib`: `top` -> `_high` -> `_low`, and an unrelated `_other`."""
    files = {
        "__init__.py": """
            from ._high import top as top
            from ._other import other as other
            from . import sub as sub
            """,
        "_high.py": "from ._low import helper\n\ndef top():\n    return helper()\n",
        "_low.py": "def helper():\n    return 1\n",
        "_other.py": "def other():\n    return 2\n",
        "sub/__init__.py": "from .._low import helper as helper\n",
    }
    for name, text in files.items():
        path = tmp_path / "deplib" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    return Library.find("deplib")


def test_library_maps_public_names_to_their_modules(library: Library) -> None:
    assert library.public == {"top": "deplib._high", "other": "deplib._other", "sub": "deplib.sub"}


def test_usage_follows_imports_aliases_and_attributes(library: Library) -> None:
    usage = example_usage(
        "import deplib as d\nfrom deplib import top as t\nd.other()\nx = d.sub.helper\n", library
    )
    assert usage.used == {"top", "other", "sub"}
    assert usage.resolve("t") == "deplib.top"
    assert usage.resolve("d.other") == "deplib.other"
    assert usage.resolve("np.mean") is None


def test_dependency_key_changes_with_the_modules_an_example_reaches(
    library: Library, tmp_path: Path
) -> None:
    example = tmp_path / "plot_example.py"
    example.write_text("from deplib import top\n\nprint(top())\n")
    before = dependency_key(example, library)
    (library.root / "_other.py").write_text("def other():\n    return 3\n")
    assert dependency_key(example, library) == before, "a module the example does not reach"
    (library.root / "_low.py").write_text("def helper():\n    return 4\n")
    assert dependency_key(example, library) != before, "a module reached through _high"
    assert dependency_key(example, library, "GALLERY_QUICK=1") != dependency_key(example, library)


def test_examples_that_do_not_import_the_library_depend_on_nothing(
    library: Library, tmp_path: Path
) -> None:
    example = tmp_path / "plot_plain.py"
    example.write_text("import numpy as np\n")
    before = dependency_key(example, library)
    (library.root / "_high.py").write_text("def top():\n    return 5\n")
    assert dependency_key(example, library) == before


def _run(monitor: ExampleMonitor, seconds: float) -> None:
    monitor.call_memory(lambda: time.sleep(seconds))


def _hold_fresh_block(mib: int, seconds: float) -> bytes:
    """Map `mib` MiB of fresh anonymous memory, touch every page, hold it, release it.

    `mmap` rather than a Python object: malloc may reuse memory this process already holds
    (the tests elsewhere raise its trim threshold), which would not raise the resident size.
    """
    size = mib * 2**20
    block = mmap.mmap(-1, size)
    for offset in range(0, size, mmap.PAGESIZE):
        block[offset] = 1
    time.sleep(seconds)
    first = block[:1]
    block.close()
    return first


def test_monitor_adds_up_the_blocks_of_an_example() -> None:
    monitor = ExampleMonitor(timeout=60)
    example = Path("examples/plot_a.py")
    monitor.reset_module({}, example)
    baseline = resident_mb()
    memory, result = monitor.call_memory(lambda: _hold_fresh_block(50, 0.1))
    assert result == b"\1"
    _run(monitor, 0.05)
    measure = monitor.measures[example]
    assert measure.seconds >= 0.15
    assert measure.peak_mb == memory
    assert measure.peak_mb - baseline >= 45, (
        f"the 50 MiB block held for 0.1 s was not seen: peak {measure.peak_mb:.0f} MiB, "
        f"{baseline:.0f} MiB before it"
    )
    monitor.reset_module({}, Path("examples/plot_b.py"))
    assert monitor.measures[example] is measure, "the next example gets its own record"


def test_monitor_interrupts_an_example_past_its_budget() -> None:
    monitor = ExampleMonitor(timeout=0.5)
    monitor.reset_module({}, Path("examples/plot_slow.py"))
    _run(monitor, 0.3)
    start = time.perf_counter()
    with pytest.raises(ExampleTimeoutError, match=r"plot_slow\.py ran longer than its timeout"):
        _run(monitor, 30)
    assert time.perf_counter() - start < 10, "the sleeping block was interrupted"


def test_monitor_off_the_main_thread_fails_after_the_block() -> None:
    monitor = ExampleMonitor(timeout=0.1)
    monitor.reset_module({}, Path("examples/plot_thread.py"))
    errors: list[BaseException] = []

    def target() -> None:
        try:
            _run(monitor, 0.3)
        except ExampleTimeoutError as error:
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    assert len(errors) == 1


def test_times_table_lists_slowest_first_with_the_total() -> None:
    rows = [
        TimeRow("Fast", "fast.md", 1.5, 300.0, ran_now=True),
        TimeRow("Slow", "slow.md", 75.0, 900.0, ran_now=False),
        TimeRow("New", "new.md", None, None, ran_now=False),
    ]
    table = times_table(rows)
    assert "**Total: 1 min 16 s** for 3 examples." in table
    lines = [line for line in table.splitlines() if line.startswith("| [")]
    assert lines == [
        "| [Slow](slow.md) | 1 min 15 s | 900 MiB | reused |",
        "| [Fast](fast.md) | 1.5 s | 300 MiB | ran |",
        "| [New](new.md) | not run yet | – | reused |",
    ]
