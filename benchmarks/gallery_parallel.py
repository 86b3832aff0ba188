"""How much sooner the docs build ends when examples run in parallel (`jobs` of the gallery hooks).

Part 1 (always): a throwaway project with 8 synthetic examples of known durations, in two
kinds, each built with `jobs` 1, 2 and 4 (`GALLERY_JOBS`), every example running in every
build (a variable in the key changes), the scheduler knowing each one's time from an untimed
first build, as it does from the last build (or the result cache) in real use:

- `sleep`: examples that sleep (they wait for something: any number can run at once);
- `cpu`: examples that spin a pure-Python loop on one core for a fixed amount of work,
  calibrated in this process to last the same seconds as the sleeping ones on an idle core.

The durations are `--seconds` times 0.5, 0.75, 1, 1.25 (twice). Each example notes when it
started and stopped, so the run also checks that no more than `jobs` ran at once. Rounds
build every (kind, jobs) once, in turn; the median over rounds of each build's time, and of
its ratio to the same round's `jobs=1` build, are reported with their range. So is the time
of a build with every example up to date: what a build costs besides running examples, which
no `jobs` value shortens.

Part 2 (`--parts real`, or both: `--parts synthetic real`): the real gallery, copied to two
temporary folders, built in full with
`jobs` 1 and 2 (result cache and compilation cache off in both: every example runs and
compiles), the build times and their ratio, and whether the generated pages are the same
apart from measured times (numbers followed by a unit of time or speed are masked).

    PYTHONPATH=src NO_MKDOCS_2_WARNING=1 .venv/bin/python benchmarks/gallery_parallel.py \
        [--parts synthetic real]

The records go to `benchmarks/results/gallery_parallel.json` (synthetic; `--results` to change)
and `gallery_parallel_real.json` beside it (real).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import ROOT, copy_site_project, timed_build
from _results import RESULTS as RESULTS_DIR
from _results import save_results

FRACTIONS = (0.5, 0.75, 1.0, 1.25, 0.5, 0.75, 1.0, 1.25)
KINDS = ("sleep", "cpu")

MKDOCS_YML = """\
site_name: parallel gallery benchmark
docs_dir: docs
nav:
  - Home: index.md
  - Examples:
      - generated/gallery
plugins:
  - gallery:
      examples_dirs: examples
      gallery_dirs: docs/generated/gallery
      filename_pattern: /plot_
      abort_on_example_error: false
      doc_module: [benchlib]
hooks:
  - {hooks}
extra:
  gallery:
    timeout: 600
    key_environment: [BENCH_BUILD]  # a new value re-runs every example
"""

EXAMPLE = '''\
"""
# {kind} example {index}

Works for {seconds:.2f} s ({kind}).
"""

# %%
# ## Work
#
# And note when it started and stopped.
import os
import time
from pathlib import Path

start = time.time()
if "{kind}" == "sleep":
    time.sleep({seconds})
else:
    x = 1
    for _ in range({iterations}):
        x = (x * 1103515245 + 12345) % 2147483648
with Path(os.environ["TIMELINE"]).open("a") as timeline:
    timeline.write(f"{{start}} {{time.time()}}\\n")
print("done")
'''


def loop_rate() -> float:
    """Iterations per second of the examples' CPU loop in this process (best of 3)."""
    best = 0.0
    for _ in range(3):
        n, start = 2_000_000, time.perf_counter()
        x = 1
        for _ in range(n):
            x = (x * 1103515245 + 12345) % 2147483648
        best = max(best, n / (time.perf_counter() - start))
    return best


def synthetic_project(folder: Path, kind: str, seconds: float, rate: float) -> Path:
    """A minimal site whose gallery holds the 8 examples of `kind`."""
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "index.md").write_text("# Benchmark\n")
    (folder / "examples").mkdir()
    (folder / "examples" / "README.md").write_text("# Gallery\n\nSynthetic examples.\n")
    for index, fraction in enumerate(FRACTIONS):
        duration = seconds * fraction
        text = EXAMPLE.format(
            kind=kind, index=index, seconds=duration, iterations=int(duration * rate)
        )
        (folder / "examples" / f"plot_{kind}_{index}.py").write_text(text)
    library = folder / "src" / "benchlib"
    library.mkdir(parents=True)
    (library / "__init__.py").write_text('"""A package for the hooks to document."""\n')
    (folder / "mkdocs.yml").write_text(MKDOCS_YML.format(hooks=ROOT / "tools" / "gallery_hooks.py"))
    return folder


def build(project: Path, env: dict[str, str]) -> float:
    """Build `project`; the wall time in seconds."""
    return timed_build(project, env)[0]


def most_at_once(timeline: Path) -> int:
    """The most examples that ran at the same time, from their (start, end) lines."""
    spans = [tuple(map(float, line.split())) for line in timeline.read_text().splitlines()]
    timeline.unlink()
    return max(sum(s <= start < e for s, e in spans) for start, _ in spans)


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def synthetic(args: argparse.Namespace, numbers: dict[str, float | int | None]) -> str:
    rate = loop_rate()
    print(f"CPU loop: {rate / 1e6:.1f} M iterations/s in this process")
    times: dict[tuple[str, int], list[float]] = {}
    ratios: dict[tuple[str, int], list[float]] = {}
    noop: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        projects = {
            kind: synthetic_project(Path(tmp) / kind, kind, args.seconds, rate) for kind in KINDS
        }
        timeline = Path(tmp) / "timeline.txt"

        def environment(kind: str, jobs: int, build_id: int) -> dict[str, str]:
            """A build of `kind`; a new `build_id` re-runs every example (times are kept)."""
            return dict(
                os.environ,
                GALLERY_JOBS=str(jobs),
                GALLERY_RESULT_CACHE="0",
                GALLERY_CACHE=str(Path(tmp) / "cache"),
                TIMELINE=str(timeline),
                NO_MKDOCS_2_WARNING="1",
                PYTHONPATH=str(projects[kind] / "src"),
                BENCH_BUILD=str(build_id),
            )

        builds = 0
        for kind in KINDS:  # untimed: records each example's time for the scheduler
            build(projects[kind], environment(kind, max(args.jobs), builds))
            timeline.unlink()
        for round_ in range(args.rounds):
            for kind in KINDS:
                baseline = None
                for jobs in args.jobs:
                    builds += 1
                    env = environment(kind, jobs, builds)
                    seconds = build(projects[kind], env)
                    at_once = most_at_once(timeline)
                    if at_once > jobs:
                        sys.exit(f"{kind}, jobs={jobs}: {at_once} examples ran at once")
                    times.setdefault((kind, jobs), []).append(seconds)
                    if baseline is None:
                        # What a build costs besides running examples: all are up to date.
                        noop.setdefault(kind, []).append(build(projects[kind], env))
                        baseline = seconds
                    ratios.setdefault((kind, jobs), []).append(seconds / baseline)
                    print(
                        f"round {round_ + 1} {kind:5} jobs={jobs}: {seconds:6.1f} s, "
                        f"at most {at_once} at once, load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
    work = args.seconds * sum(FRACTIONS)
    lines = [
        f"| Examples | jobs | Build time (s), median (range) | Ratio to jobs={args.jobs[0]} |",
        "|---|---:|---:|---:|",
    ]
    for kind in KINDS:
        for jobs in args.jobs:
            lines.append(
                f"| 8 {kind} ({work:.0f} s of work) | {jobs} | {summary(times[kind, jobs])} "
                f"| {summary(ratios[kind, jobs])} |"
            )
            numbers[f"{kind}_jobs{jobs}_s"] = statistics.median(times[kind, jobs])
            numbers[f"{kind}_jobs{jobs}_ratio"] = statistics.median(ratios[kind, jobs])
        lines.append(f"| 8 {kind}, all up to date (none runs) | – | {summary(noop[kind])} | |")
        numbers[f"{kind}_unchanged_s"] = statistics.median(noop[kind])
    numbers["synthetic_work_s"] = work
    return "\n".join(lines)


TIME_OR_SPEED = re.compile(
    r"\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?\s*(?:s|ms|µs|min|minutes|seconds|sec|it/s|steps/s|"
    r"samples/s|[\w ]*/s)\b"
)
RATE_LINE = re.compile(r"/s\b|\bwall\b|\bCPU\b")
"""A line that reports a speed or a time: every number on it is measured."""
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def masked_pages(project: Path) -> dict[str, list[str]]:
    """Each generated page's lines, with measured times and speeds replaced by `<measured>`."""
    gallery = project / "docs" / "generated" / "gallery"
    pages = {}
    for page in sorted(gallery.glob("plot_*.md")):
        text = re.sub(r"\*\*Total running time of the script:\*\*[^\n]*", "", page.read_text())
        lines = TIME_OR_SPEED.sub("<measured>", text).splitlines()
        pages[page.name] = [
            NUMBER.sub("<measured>", line) if RATE_LINE.search(line) else line for line in lines
        ]
    return pages


def page_differences(one: dict[str, list[str]], two: dict[str, list[str]]) -> dict[str, list[str]]:
    """Page -> the lines of a unified diff, for the pages that differ."""
    found = {}
    for name in sorted(one.keys() | two.keys()):
        a, b = one.get(name, []), two.get(name, [])
        if a != b:
            found[name] = list(difflib.unified_diff(a, b, "jobs=1", "jobs=2", n=1, lineterm=""))
    return found


def real(args: argparse.Namespace, numbers: dict[str, float | int | None]) -> str:
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        projects = {}
        for jobs in (1, 2):
            projects[jobs] = copy_site_project(Path(tmp) / f"jobs{jobs}")
        for jobs in (1, 2):
            env = dict(
                os.environ,
                GALLERY_JOBS=str(jobs),
                GALLERY_RESULT_CACHE="0",
                GALLERY_COMPILE_CACHE="0",
                GALLERY_QUICK="1" if args.quick else "0",
                NO_MKDOCS_2_WARNING="1",
                OMP_NUM_THREADS="1",
                PYTHONPATH=str(projects[jobs] / "src"),
            )
            load = os.getloadavg()[0]
            times[jobs] = build(projects[jobs], env)
            print(f"real gallery jobs={jobs}: {times[jobs]:.1f} s (load {load:.1f} at start)")
        one, two = masked_pages(projects[1]), masked_pages(projects[2])
    differing = page_differences(one, two)
    for name, diff in differing.items():
        print(f"{name} differs between jobs=1 and jobs=2:\n" + "\n".join(diff[:40]))
    numbers["real_jobs1_s"], numbers["real_jobs2_s"] = times[1], times[2]
    numbers["real_jobs2_ratio"] = times[2] / times[1]
    numbers["real_pages_differing"] = len(differing)
    same = "yes" if not differing else f"no: {', '.join(differing)}"
    return textwrap.dedent(
        f"""\
        | Real gallery ({"quick" if args.quick else "full"} build) | Build time (s) |
        |---|---:|
        | jobs=1 | {times[1]:.1f} |
        | jobs=2 | {times[2]:.1f} |
        | ratio jobs=2 / jobs=1 | {times[2] / times[1]:.3f} |
        | pages the same apart from times | {same} |"""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="mean example duration")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4], help="first: baseline")
    parser.add_argument("--rounds", type=int, default=3, help="builds of each (kind, jobs)")
    parser.add_argument(
        "--parts", nargs="+", choices=("synthetic", "real"), default=["synthetic"], help="to run"
    )
    parser.add_argument("--quick", action="store_true", help="the real gallery in quick mode")
    parser.add_argument(
        "--results", type=Path, default=RESULTS_DIR / "gallery_parallel.json", help="synthetic"
    )
    args = parser.parse_args()
    parts = {"synthetic": (synthetic, args.results)}
    parts["real"] = (real, args.results.with_name(args.results.stem + "_real.json"))
    for part in args.parts:
        run, record = parts[part]
        load_at_start = os.getloadavg()[0]
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        numbers: dict[str, float | int | None] = {}
        tables = {part: run(args, numbers)}
        print("\n" + tables[part] + "\n")
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"record: {save_results(record, numbers, tables, load_at_start)}")


if __name__ == "__main__":
    main()
