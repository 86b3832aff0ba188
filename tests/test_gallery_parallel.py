"""Parallel builds, installed versions in the cache key, and the result cache of the gallery hooks.

Tiny throwaway projects, as in `test_gallery_hooks.py` (whose helpers these tests use). Their
builds start worker processes, so the tests share the "processes" xdist group.
"""

from __future__ import annotations

import pickle
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support import fake_distribution
from test_gallery_hooks import (
    EXAMPLES,
    FAILING,
    build,
    log_of,
    make_project,
    read_page,
    runs,
    tiny_env,
    write_example,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("processes")]

TIMED = '''\
"""
# Sleeps {seconds} s

Notes when it started and stopped.
"""

# %%
# ## Sleep
#
# And note the times.
import os
import time
from pathlib import Path

start = time.time()
time.sleep({seconds})
with Path(os.environ["RUN_LOG"]).open("a") as run_log:
    run_log.write(f"{name} {{start}} {{time.time()}}\\n")
'''


def write_timed(root: Path, name: str, seconds: float) -> None:
    (root / "examples" / f"{name}.py").write_text(TIMED.format(name=name, seconds=seconds))


def set_gallery(root: Path, **settings: str) -> None:
    """Add settings under `extra.gallery` of the project's mkdocs.yml."""
    config = root / "mkdocs.yml"
    lines = "".join(f"    {name}: {value}\n" for name, value in settings.items())
    config.write_text(config.read_text() + lines)


def intervals(root: Path) -> dict[str, tuple[float, float]]:
    """Each timed example's (start, end), from the run log; the log is emptied."""
    log = root / "runs.log"
    found = {}
    for line in log.read_text().splitlines():
        name, start, end = line.split()
        found[name] = (float(start), float(end))
    log.unlink()
    return found


def test_a_parallel_build_runs_at_most_jobs_examples_at_once_and_exclusive_ones_alone(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path, {})
    for i, seconds in enumerate([1.5, 1.2, 1.0, 0.8, 0.6]):
        write_timed(root, f"plot_sleep_{i}", seconds)
    write_timed(root, "plot_whole_machine", 1.0)
    set_gallery(root, exclusive="[plot_whole_machine.py]")
    result = build(root, GALLERY_JOBS="2")
    assert result.returncode == 0, log_of(result)
    assert "6 example(s) in 2 worker process(es)" in log_of(result)
    ran = intervals(root)
    assert len(ran) == 6
    most = 0
    for name, (start, _) in ran.items():
        beside = [other for other, (s, e) in ran.items() if other != name and s <= start < e]
        most = max(most, len(beside) + 1)
        assert len(beside) + 1 <= 2, f"{name} started while {beside} ran (jobs=2)"
    assert most == 2, "two examples did run at once"
    start, end = ran["plot_whole_machine"]
    overlapping = [
        n for n, (s, e) in ran.items() if n != "plot_whole_machine" and s < end and e > start
    ]
    assert overlapping == [], "the exclusive example ran alone"
    times = read_page(root, "generated/gallery/run-times")
    assert times.count(">ran (new)<") == 6, times


def test_a_new_version_of_a_distribution_reruns_exactly_the_examples_that_import_it(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    fake_distribution(site, "fakepkg", "1.0")
    root = make_project(tmp_path / "project", EXAMPLES)
    # tinylib.beta imports it: plot_uses_beta depends on it through the library.
    beta = root / "src" / "tinylib" / "_beta.py"
    beta.write_text("import fakepkg\n\n" + beta.read_text())
    write_example(
        root,
        "plot_uses_fake",
        title="Uses fakepkg",
        imports="import fakepkg",
        call="fakepkg.VERSION",
    )
    pythonpath = f"{root / 'src'}:{site}"
    result = build(root, PYTHONPATH=pythonpath)
    assert result.returncode == 0, log_of(result)
    assert sorted(runs(root)) == ["plot_uses_alpha", "plot_uses_beta", "plot_uses_fake"]

    result = build(root, PYTHONPATH=pythonpath)
    assert result.returncode == 0, log_of(result)
    assert runs(root) == [], "same versions: nothing runs"

    fake_distribution(site, "fakepkg", "1.1")
    result = build(root, PYTHONPATH=pythonpath)
    assert result.returncode == 0, log_of(result)
    assert sorted(runs(root)) == ["plot_uses_beta", "plot_uses_fake"]
    page = (root / "site" / "generated" / "gallery" / "plot_uses_fake" / "index.html").read_text()
    assert "1.1" in page, "the page shows what the new version printed"
    times = read_page(root, "generated/gallery/run-times")
    assert times.count("ran (environment changed: fakepkg 1.0 → 1.1)") == 2, times
    assert times.count(">reused<") == 1


def _generated(root: Path) -> dict[str, object]:
    """The generated gallery's files, as far as they do not change from one build to the next.

    Masked: mkdocs-gallery's run time on each page; the order of the names in its pickles
    (from a set: it changes with the hash seed of each process); the dates in its zip files.
    Left out: the hooks' state and times page, mkdocs-gallery's times page (not published).
    """
    gallery = root / "docs" / "generated" / "gallery"
    files: dict[str, object] = {}
    for path in sorted(gallery.rglob("*")):
        name = path.name
        if not path.is_file() or name in (".gallery_ext.json", "run-times.md"):
            continue
        if name == "mg_execution_times.md":
            continue
        data: object = path.read_bytes()
        if path.suffix == ".md":
            data = re.sub(rb"\*\*Total running time of the script:\*\*[^\n]*", b"<time>", data)
        elif path.suffix == ".pickle":
            data = dict(pickle.loads(path.read_bytes()))
        elif path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                data = {member: archive.read(member) for member in archive.namelist()}
        files[path.relative_to(gallery).as_posix()] = data
    return files


FIGURE = dict(
    title="Draws",
    imports="import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt",
    call="plt.plot([0, 1, 4, 9]) and 'drawn'",
)


def test_a_restored_result_cache_makes_a_fresh_clone_run_nothing(tmp_path: Path) -> None:
    examples = {**EXAMPLES, "plot_draws": FIGURE}
    first = make_project(tmp_path / "first", examples)
    result = build(first, GALLERY_CACHE=str(tmp_path / "ci-cache"))
    assert result.returncode == 0, log_of(result)
    assert len(runs(first)) == 3

    # CI: a fresh clone, and the cache folder saved by the last run restored elsewhere.
    clone = make_project(tmp_path / "clone", examples)
    shutil.copytree(tmp_path / "ci-cache", tmp_path / "restored")
    result = build(clone, GALLERY_CACHE=str(tmp_path / "restored"))
    assert result.returncode == 0, log_of(result)
    assert runs(clone) == [], "every example came from the cache"
    assert _generated(clone) == _generated(first)
    assert (clone / "site/generated/gallery/images/mkd_glr_plot_draws_001.png").is_file()
    times = read_page(clone, "generated/gallery/run-times")
    assert times.count("reused (restored from the result cache)") == 3, times

    # An edited example misses the cache; the others are still reused.
    write_example(clone, "plot_draws", **{**FIGURE, "call": "plt.plot([1, 2]) and 'again'"})
    result = build(clone, GALLERY_CACHE=str(tmp_path / "restored"))
    assert result.returncode == 0, log_of(result)
    assert runs(clone) == ["plot_draws"]


def test_serial_and_parallel_builds_write_the_same_outputs(tmp_path: Path) -> None:
    examples = {**EXAMPLES, "plot_draws": FIGURE}
    serial = make_project(tmp_path / "serial", examples)
    parallel = make_project(tmp_path / "parallel", examples)
    one = build(serial, GALLERY_JOBS="1")
    two = build(parallel, GALLERY_JOBS="2")
    assert one.returncode == 0 and two.returncode == 0, log_of(one) + log_of(two)
    assert "worker process" not in log_of(one), "jobs=1 runs the examples in the build process"
    assert "3 example(s) in 2 worker process(es)" in log_of(two)
    for result in (one, two):
        assert "successfully executed 3 out of 3" in log_of(result), log_of(result)
    outputs = _generated(parallel)
    assert outputs.keys() == _generated(serial).keys()
    assert "images/mkd_glr_plot_draws_001.png" in outputs
    for name, data in _generated(serial).items():
        assert outputs[name] == data, f"{name} differs"


FAILS_TOO = dict(title="Fails too", imports="import tinylib", call="tinylib.missing()")


def test_a_parallel_build_lists_every_failure_and_fails(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"plot_fails": FAILING, "plot_fails_too": FAILS_TOO, **EXAMPLES})
    result = build(root, GALLERY_JOBS="2")
    log = log_of(result)
    assert result.returncode != 0
    assert "2 gallery example(s) failed" in log, log
    assert "Example plot_fails.py failed" in log and "ZeroDivisionError" in log
    assert "Example plot_fails_too.py failed" in log and "AttributeError" in log
    assert sorted(runs(root)) == [
        "plot_fails",
        "plot_fails_too",
        "plot_uses_alpha",
        "plot_uses_beta",
    ]
    assert log.count("failed to execute correctly") == 0, "each failure is reported once"

    result = build(root, GALLERY_JOBS="2")
    assert result.returncode != 0
    assert sorted(runs(root)) == ["plot_fails", "plot_fails_too"], "failures run again, not cached"
    cache = root / "cache" / "gallery"
    assert sorted(p.name for p in cache.iterdir()) == [
        "generated--gallery--plot_uses_alpha",
        "generated--gallery--plot_uses_beta",
    ], "a failed run is never stored in the result cache"


CHATTY = '''\
"""
# Chatty {name}

Prints while another example prints.
"""

# %%
# ## Print
#
# Slowly.
import time

for line in range(8):
    print("{name} line", line, flush=True)
    time.sleep(0.1)
'''


def test_logs_of_examples_that_ran_at_once_do_not_interleave(tmp_path: Path) -> None:
    root = make_project(tmp_path, {})
    for name in ("plot_chatty_a", "plot_chatty_b"):
        (root / "examples" / f"{name}.py").write_text(CHATTY.format(name=name))
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--verbose"],
        cwd=root,
        env=tiny_env(root, GALLERY_JOBS="2"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, log_of(result)
    lines = [
        line for line in log_of(result).splitlines() if "plot_chatty_" in line and " line " in line
    ]
    assert len(lines) == 16, "every printed line is in the log"
    owners = [re.search(r"plot_chatty_(\w)", line)[1] for line in lines]
    assert owners in (["a"] * 8 + ["b"] * 8, ["b"] * 8 + ["a"] * 8), owners


def test_jobs_must_be_a_positive_number_or_auto(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"plot_uses_alpha": EXAMPLES["plot_uses_alpha"]})
    result = build(root, GALLERY_JOBS="zero")
    assert result.returncode != 0
    assert "jobs='zero'" in log_of(result) and "GALLERY_JOBS" in log_of(result)
    assert not (root / "runs.log").exists()
