"""Unit tests of tools/gallery_ext: the parts of the gallery hooks that need no mkdocs build."""

from __future__ import annotations

import mmap
import platform
import textwrap
import threading
import time
from pathlib import Path

import pytest
from gallery_ext import (
    Environment,
    Example,
    ExampleMonitor,
    ExampleTimeoutError,
    Key,
    Library,
    Record,
    ResultCache,
    Task,
    TimeRow,
    dependency_key,
    example_outputs,
    example_usage,
    next_task,
    run_order,
    times_table,
)
from gallery_ext._monitor import resident_mb
from support import fake_distribution


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


def _task(name: str, seconds: float | None, exclusive: bool = False) -> Task:
    return Task(Example(Path(name), Path(name), name), seconds, exclusive)


def _simulate(tasks: list[Task], jobs: int) -> list[tuple[float, float, Task]]:
    """Run `tasks` on a simulated clock with `next_task`; (start, end, task) of each."""
    pending, running, done, now = run_order(tasks), [], [], 0.0
    while pending or running:
        while (task := next_task(pending, [t for _, t in running], jobs)) is not None:
            pending.remove(task)
            running.append((now, task))
        running.sort(key=lambda item: item[0] + (item[1].seconds or 1.0))
        start, task = running.pop(0)
        now = start + (task.seconds or 1.0)
        done.append((start, now, task))
    return done


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_the_scheduler_keeps_to_jobs_runs_exclusive_tasks_alone_longest_first(jobs: int) -> None:
    tasks = [_task(f"plot_{i}.py", float(s)) for i, s in enumerate([3, 1, 4, 1, 5, 9, 2, 6])]
    tasks += [_task("plot_big.py", 7.0, exclusive=True), _task("plot_new.py", None)]
    timeline = _simulate(tasks, jobs)
    assert sorted(t.example.name for _, _, t in timeline) == sorted(t.example.name for t in tasks)
    for start, _, task in timeline:
        beside = [t for s, e, t in timeline if s <= start < e and t is not task]
        assert len(beside) < jobs, f"{task.example.name} started beside {len(beside)} tasks"
        if task.exclusive:
            assert beside == [], "an exclusive task runs alone"
        assert not any(t.exclusive for t in beside), "nothing starts beside an exclusive task"
    first = min(timeline, key=lambda item: item[0])
    assert first[2].example.name == "plot_big.py", "exclusive tasks first"
    others = [(start, task.seconds or float("inf")) for start, _, task in timeline if start > 0]
    for start, seconds in others:
        later = [s for begin, s in others if begin > start]
        assert all(s <= seconds for s in later), "longest first (unmeasured counts as longest)"
    total = sum(t.seconds or 1.0 for t in tasks)
    makespan = max(end for _, end, _ in timeline)
    assert makespan == pytest.approx(7.0 + (total - 7.0) / jobs, abs=9.0 / jobs + 1e-9)


def test_environment_holds_what_an_example_imports_and_what_that_requires(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    fake_distribution(site, "fakepkg", "1.0", ("fakedep>=1", 'fakeextra; extra == "all"'))
    fake_distribution(site, "fakedep", "2.5")
    fake_distribution(site, "fakeextra", "0.1")
    fake_distribution(site, "fakelib", "3.0")
    monkeypatch.syspath_prepend(str(site))
    # A module of the library the example reaches imports fakelib; one it does not, numpy.
    (library.root / "_low.py").write_text("import fakelib\n\ndef helper():\n    return 1\n")
    (library.root / "_other.py").write_text("import numpy\n\ndef other():\n    return 2\n")
    example = tmp_path / "plot_fake.py"
    example.write_text("import os\nimport fakepkg\nfrom deplib import top\n")
    versions = Environment([library]).versions(example)
    assert versions == {
        "python": platform.python_version(),
        "fakedep": "2.5",  # required by fakepkg
        "fakelib": "3.0",  # imported by deplib._low, through deplib._high
        "fakepkg": "1.0",
    }, "no os (standard library), no fakeextra (an extra), no numpy (a module not reached)"
    plain = tmp_path / "plot_plain.py"
    plain.write_text("import json\n")
    assert Environment([library]).versions(plain) == {"python": platform.python_version()}
    fake_distribution(site, "fakedep", "2.6")
    assert Environment([library]).versions(example)["fakedep"] == "2.6"


def _outputs(folder: Path, stem: str, figures: int) -> dict[str, bytes]:
    files = {
        f"{stem}.md": b"page",
        f"{stem}.py": b"script",
        f"{stem}.py.md5": b"md5",
        f"{stem}.ipynb": b"notebook",
        f"images/thumb/mkd_glr_{stem}_thumb.png": b"thumb",
    }
    for i in range(1, figures + 1):
        files[f"images/mkd_glr_{stem}_{i:03}.png"] = b"figure %d" % i
        files[f"images/mkd_glr_{stem}_{i:03}_2_0x.png"] = b"large figure %d" % i
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return files


def test_result_cache_restores_the_outputs_of_a_key_and_nothing_else(tmp_path: Path) -> None:
    gallery = tmp_path / "docs" / "generated" / "gallery"
    example = Example(tmp_path / "plot_a.py", gallery / "plot_a", "generated/gallery/plot_a.md")
    neighbour = _outputs(gallery, "plot_a_b", 1)  # a longer name with the same prefix
    stored = _outputs(gallery, "plot_a", 2)
    assert sorted(p.relative_to(gallery).as_posix() for p in example_outputs(example)) == sorted(
        stored
    )
    cache = ResultCache(tmp_path / "cache", keep=2)
    key = Key("s", "l", {"python": "3.11.9"})
    record = Record(seconds=1.5, peak_mb=300.0)
    record.accept(key)
    assert cache.store(example, record) == cache.entry(example, key)

    _outputs(gallery, "plot_a", 3)  # a later run made a third figure, then the key came back
    restored = cache.restore(example, key)
    assert restored is not None and (restored.seconds, restored.key) == (1.5, key.digest)
    now = {p.relative_to(gallery).as_posix(): p.read_bytes() for p in example_outputs(example)}
    assert now == stored, "the stored files, and no figure of another run"
    assert all((gallery / name).read_bytes() == data for name, data in neighbour.items())
    assert cache.restore(example, Key("s", "l", {"python": "3.12.0"})) is None

    for version in ("3.12.0", "3.13.0"):
        other = Record()
        other.accept(Key("s", "l", {"python": version}))
        cache.store(example, other)
    assert cache.restore(example, key) is None, "the oldest of three entries went (keep=2)"
