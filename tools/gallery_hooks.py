"""mkdocs hooks that close mkdocs-gallery 0.10.4's gaps (listed under `hooks:` in mkdocs.yml).

- names of the documented package in example code link to their API entry (mkdocs-autorefs);
- each API entry ends with the examples that use it;
- a failing example fails every build until it is fixed (`mkdocs serve` reports it and lives);
- an example re-runs when a module of the package it imports changes, a distribution it imports
  changes version, or quick mode toggles; its outputs are kept in a result cache by key;
- examples run in parallel worker processes, at most `jobs` at once;
- a run-time table page (time and peak memory of each example, why it ran, the total);
- a per-example timeout;
- no absl `_LoggingTee` traceback at exit;
- measured figures rendered from benchmark records: `{{ bench:ppo.equal_ratio:.3f }}`;
- each example page opens with a header generated from its script (summary, what it teaches,
  prerequisites, install line, last run, downloads, its result figure), its figures link to a
  full-size version and its printed output reads as plain text;
- the gallery index lists the examples in reading order, with plain-text hover text and run
  times, and the site serves the package's source archive that the install lines name.

The logic lives in the `gallery_ext` package beside this file; this module only wires it to
mkdocs events and to mkdocs-gallery's documented options (`doc_module`, `reset_modules`,
`show_memory` as a callable). Settings, in mkdocs.yml:

    extra:
      gallery:
        timeout: 900                   # seconds per example (env GALLERY_TIMEOUT wins)
        times_page: run-times.md       # written in the first gallery folder
        results: benchmarks/results    # benchmark records, relative to mkdocs.yml
        key_environment: [GALLERY_QUICK]  # variables whose values change what examples compute
        jobs: auto                     # examples run at once (env GALLERY_JOBS wins); 1: serial
        exclusive: [plot_big.py]       # examples that use every core: they run alone
        result_cache: true             # keep outputs by key in $GALLERY_CACHE/gallery
                                       # (env GALLERY_RESULT_CACHE=0 turns it off)
        headers: true                  # example pages open with a header made from the script
        order: [plot_a.py, plot_b.py]  # the gallery index's reading order (every example)
        undeclared_requirements: {gymnax: [six]}  # what a distribution imports undeclared
"""

from __future__ import annotations

import functools
import logging
import os
import posixpath
import sys
import tempfile
from pathlib import Path
from typing import Any

from gallery_ext import (
    GALLERY_LOGGER,
    STATE_FILE,
    DropExampleFailures,
    Environment,
    Example,
    ExampleCard,
    ExampleMonitor,
    FigureError,
    Header,
    IntroError,
    Key,
    Library,
    Outcome,
    ResultCache,
    State,
    Task,
    TimeRow,
    WorkerPool,
    append_used_in,
    cache_root,
    collect_examples,
    dependency_key,
    example_usage,
    gallery_index,
    header_markdown,
    install_line,
    link_code_names,
    machine_description,
    parse_intro,
    release_logging_tee,
    render_example_page,
    render_figures,
    required_distributions,
    source_archive,
    thumbnail_number,
    times_table,
    used_in_gallery,
)
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority, get_plugin_logger
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url
from mkdocs_gallery.sorting import ExplicitOrder
from mkdocs_gallery.utils import get_md5sum

log = get_plugin_logger("gallery")
REUSED = "reused"
RESTORED = "restored from the result cache"


class _Build:
    """What one build knows; rebuilt on every `on_config` (mkdocs serve reloads the config)."""

    def __init__(self, config: MkDocsConfig, gallery_conf: dict[str, Any]) -> None:
        settings = config.extra.get("gallery") or {}
        self.gallery_conf = gallery_conf
        self.docs_dir = Path(config.docs_dir)
        self.libraries = [Library.find(name) for name in gallery_conf["doc_module"]]
        self.examples = collect_examples(gallery_conf, self.docs_dir)
        self.by_page = {example.page: example for example in self.examples}
        self.by_source = {example.source: example for example in self.examples}
        self.usages = {
            example.name: [example_usage(example.source.read_text(), lib) for lib in self.libraries]
            for example in self.examples
        }
        gallery_dir = Path(gallery_conf["gallery_dirs"][0]).resolve()
        self.state = State(gallery_dir / STATE_FILE)
        self.times_page = gallery_dir / settings.get("times_page", "run-times.md")
        timeout = float(os.environ.get("GALLERY_TIMEOUT") or settings.get("timeout", 900))
        self.monitor = ExampleMonitor(timeout)
        config_dir = Path(config.config_file_path).parent
        self.results = config_dir / settings.get("results", "benchmarks/results")
        # Inputs that change what an example computes without touching a file (quick mode).
        self.key_environment: list[str] = list(settings.get("key_environment", []))
        self.order: list[str] = list(settings.get("order", []))
        self.undeclared: dict[str, list[str]] = dict(settings.get("undeclared_requirements", {}))
        self.project_dir = config_dir
        # Example pages open with a header made from their docstring (see gallery_ext._header).
        self.headers = bool(settings.get("headers", False))
        self.environment = Environment(self.libraries)
        self.keys = {example: self.key(example) for example in self.examples}
        self.jobs = _jobs(os.environ.get("GALLERY_JOBS") or settings.get("jobs", "auto"))
        self.exclusive: set[str] = set(settings.get("exclusive") or [])
        unknown = self.exclusive - {example.name for example in self.examples}
        if unknown:
            raise PluginError(
                f"gallery hooks: `extra.gallery.exclusive` in mkdocs.yml names {sorted(unknown)}, "
                "which are not examples of the gallery; list script file names such as "
                f"{self.examples[0].name if self.examples else 'plot_x.py'!r}."
            )
        cache_on = os.environ.get("GALLERY_RESULT_CACHE") or settings.get("result_cache", True)
        self.cache = (
            ResultCache(cache_root(settings.get("cache_dir")))
            if str(cache_on).strip().lower() not in ("0", "false", "no", "off")
            else None
        )
        self.reasons: dict[Example, str] = {}
        """Why each example runs in this build, or `REUSED` / `RESTORED`."""
        self.outcomes: dict[Example, Outcome] = {}
        """Examples run by worker processes in this build."""

    def key(self, example: Example) -> Key:
        """What the outputs of `example` depend on (see `Key`)."""
        environment = self.environment.versions(example.source)
        for name in self.key_environment:
            environment[f"${name}"] = os.environ.get(name, "").strip().lower()
        return Key(
            script=get_md5sum(example.source, mode="t"),
            library="/".join(dependency_key(example.source, lib) for lib in self.libraries),
            environment=environment,
        )

    def measure(self, example: Example) -> tuple[float, float] | None:
        """The time and peak memory of the example's run in this build, if it ran."""
        outcome = self.outcomes.get(example)
        if outcome is not None:
            return outcome.seconds, outcome.peak_mb
        measure = self.monitor.measures.get(example.source)
        return None if measure is None else (measure.seconds, measure.peak_mb)

    def failures(self) -> dict[Example, str]:
        """Examples mkdocs-gallery saw fail in this build, with their tracebacks."""
        failing = self.gallery_conf["failing_examples"]
        return {
            self.by_source[Path(src).resolve()]: str(tb)
            for src, tb in failing.items()
            if Path(src).resolve() in self.by_source
        }


_build: _Build | None = None
_serving = False


_drop_failures = DropExampleFailures()


def _jobs(value: object) -> int:
    """`jobs` of mkdocs.yml or GALLERY_JOBS: a positive number, or `auto` (the usable cores)."""
    if str(value).strip().lower() == "auto":
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1
    try:
        jobs = int(str(value))
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise PluginError(
            f"gallery hooks: jobs={value!r} (`extra.gallery.jobs` in mkdocs.yml or GALLERY_JOBS) "
            "must be a positive number of examples to run at once, or `auto` for one per core."
        )
    return jobs


def on_startup(command: str, dirty: bool) -> None:
    global _serving
    _serving = command == "serve"


@event_priority(-100)  # after mkdocs-gallery has parsed its configuration
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    global _build
    gallery = config.plugins.get("gallery")
    if gallery is None:
        raise PluginError("gallery hooks: the mkdocs-gallery plugin (`gallery`) is not enabled.")
    conf = gallery.config
    if not conf["doc_module"]:
        raise PluginError(
            "gallery hooks: set `doc_module: [your_package]` in the `gallery` plugin options of "
            "mkdocs.yml: it names the package whose API the examples are linked to."
        )
    _build = build = _Build(config, conf)
    # Examples run inside this process: under `mkdocs serve` the package imported by the last
    # build would still be in `sys.modules`. Forget it, so an example re-run sees the edit.
    for library in build.libraries:
        for module in [m for m in sys.modules if m.split(".")[0] == library.name]:
            del sys.modules[module]
    if build.order:
        unlisted = sorted({e.name for e in build.examples} - set(build.order))
        if unlisted:
            raise PluginError(
                f"gallery hooks: add {unlisted} to `extra.gallery.order` in mkdocs.yml (the "
                "gallery index lists the examples in that reading order)."
            )
        conf["within_subsection_order"] = functools.partial(ExplicitOrder, build.order)
    conf["reset_modules"] = (*conf["reset_modules"], build.monitor.reset_module)
    conf["call_memory"] = build.monitor.call_memory
    logging.getLogger(GALLERY_LOGGER).addFilter(_drop_failures)
    # mkdocs-gallery skips a script whose copy's MD5 matches: drop that marker when what the
    # script depends on changed, or when its last run failed, so that it runs again; unless the
    # result cache holds the outputs of a run with the same key.
    for example in build.examples:
        record = build.state.get(example)
        key = build.keys[example]
        reason = record.reason(key)
        if reason is None and not example.md5_file.is_file():
            reason = "outputs missing"
        if reason is None:
            build.reasons[example] = REUSED
            continue
        restored = build.cache.restore(example, key) if build.cache else None
        if restored is not None:
            record.accept(key)
            record.seconds, record.peak_mb = restored.seconds, restored.peak_mb
            record.machine = restored.machine
            build.reasons[example] = RESTORED
            continue
        example.md5_file.unlink(missing_ok=True)
        build.reasons[example] = reason
    if build.jobs > 1:
        _run_in_workers(build, config)
    return config


def _run_in_workers(build: _Build, config: MkDocsConfig) -> None:
    """Run the examples that must run in worker processes, before mkdocs-gallery's own pass.

    Each worker generates an example's files with mkdocs-gallery's own code, `.md5` marker
    included, so that mkdocs-gallery's pass (`on_pre_build`) finds them up to date and only
    assembles the gallery. A failure is handed to mkdocs-gallery's list of failing examples,
    where `on_pre_build` below reports it like one of a serial build.
    """
    stale = [example for example in build.examples if not example.md5_file.is_file()]
    if not stale:
        return
    for example in stale:  # workers must not race to create the folders
        (example.generated.parent / "images" / "thumb").mkdir(parents=True, exist_ok=True)
    tasks = [
        Task(example, build.state.get(example).seconds, example.name in build.exclusive)
        for example in stale
    ]
    workers = min(build.jobs, len(tasks))
    log.info(f"running {len(tasks)} example(s) in {workers} worker process(es) (jobs={build.jobs})")
    level = logging.getLogger("mkdocs").getEffectiveLevel()
    with tempfile.TemporaryDirectory(prefix="gallery-workers-") as logs:
        config_file = Path(config.config_file_path).resolve()
        pool = WorkerPool(config_file, build.jobs, build.monitor.timeout, Path(logs), level)
        for task, outcome in pool.run(tasks):
            example = task.example
            build.outcomes[example] = outcome
            _report(example, outcome)
            if outcome.failure is None:
                continue
            build.gallery_conf["failing_examples"][example.source] = outcome.failure
            if outcome.crashed:
                # No page was written: say why on it, and keep mkdocs-gallery from running it.
                page = example.generated.with_suffix(".md")
                page.write_text(f"# {example.title}\n\n```pytb\n{outcome.failure}\n```\n")
                example.md5_file.write_text(get_md5sum(example.source, mode="t"))


def _report(example: Example, outcome: Outcome) -> None:
    """Log what one example did in its worker, in one piece."""
    status = "failed" if outcome.failure else "ran"
    log.info(f"{example.name} {status} in a worker: {outcome.seconds:.1f} s of code")
    for name, level, message in outcome.log:
        logging.getLogger(name).log(level, "%s", message)
    if outcome.output.strip():
        sys.stderr.write(outcome.output if outcome.output.endswith("\n") else outcome.output + "\n")
        sys.stderr.flush()


@event_priority(-100)  # after mkdocs-gallery has run the examples
def on_pre_build(config: MkDocsConfig) -> None:
    build = _require_build()
    release_logging_tee()
    failures = build.failures()
    for example in build.examples:
        record = build.state.get(example)
        measure = build.measure(example)
        if example in failures:
            example.md5_file.unlink(missing_ok=True)
            record.key, record.failed = None, True
        elif measure is not None:
            record.accept(build.keys[example])
        if measure is not None:
            record.seconds, record.peak_mb = measure
            record.machine = machine_description()
        if example not in failures and measure is not None and build.cache is not None:
            build.cache.store(example, record)
        if example in build.outcomes and example not in failures:
            # mkdocs-gallery found it up to date; count it as executed in its summary.
            build.gallery_conf["passing_examples"].append(example.source)
            stale = build.gallery_conf["stale_examples"]
            stale[:] = [path for path in stale if Path(path).name != example.name]
    build.state.save()
    _write_if_changed(build.times_page, _times_markdown(build, failures))
    if not failures:
        return
    report = "\n\n".join(
        f"Example {example.name} failed ({example.source}):\n{traceback}"
        for example, traceback in failures.items()
    )
    message = (
        f"{len(failures)} gallery example(s) failed; fix them, the build fails until then.\n\n"
        f"{report}"
    )
    if _serving:
        # Keep `mkdocs serve` alive: the page shows the traceback, the next build runs it again.
        build.gallery_conf["failing_examples"].clear()
        _serve_logger().error(message)
        return
    raise PluginError(message)


def on_build_error(error: Exception) -> None:
    """Whatever stopped the build, do not let mkdocs-gallery cache an example that failed."""
    if _build is None:
        return
    for example in _build.failures():
        example.md5_file.unlink(missing_ok=True)
        record = _build.state.get(example)
        record.key, record.failed = None, True
    _build.state.save()


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Drop mkdocs-gallery's execution-times pages (the times page replaces them); add the
    package's source archive that the examples' install lines name."""
    for file in list(files):
        if posixpath.basename(file.src_uri) == "mg_execution_times.md":
            files.remove(file)
    build = _require_build()
    for library in build.libraries if build.headers else []:
        name = _source_archive_name(library.name)
        content = source_archive(library.name, name.removesuffix(".zip"), build.project_dir)
        files.append(File.generated(config, f"downloads/{name}", content=content))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Render measured figures and example headers; end each `::: package.Name` entry with the
    examples using it."""
    build = _require_build()
    try:
        markdown = render_figures(markdown, build.results)
    except FigureError as error:
        raise PluginError(f"{page.file.src_uri}: {error}") from error
    example = build.by_page.get(page.file.src_uri)
    if example is not None:
        return _example_page(build, example, markdown, page)
    index = any(page.file.src_uri == _index_page(build, example) for example in build.examples)
    if index and build.headers:
        return _gallery_index(build, markdown)
    if ":::" not in markdown:
        return markdown

    def gallery_for(identifier: str) -> str:
        cards = []
        for example in build.examples:
            if not any(
                identifier == f"{lib.name}.{name}"
                for lib, usage in zip(build.libraries, build.usages[example.name], strict=True)
                for name in usage.used
            ):
                continue
            example_page = files.get_file_from_path(example.page)
            thumbnail = example.thumbnail()
            thumbnail_file = files.get_file_from_path(thumbnail) if thumbnail else None
            if example_page is None or thumbnail_file is None:
                continue
            cards.append(
                ExampleCard(
                    example.title,
                    get_relative_url(example_page.url, page.url),
                    get_relative_url(thumbnail_file.url, page.url),
                )
            )
        return used_in_gallery(identifier.rsplit(".", 1)[-1], cards)

    return append_used_in(markdown, gallery_for)


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Link the package's names in an example's code to their API entries."""
    build = _require_build()
    example = build.by_page.get(page.file.src_uri)
    if example is None:
        return html
    usages = build.usages[example.name]

    def resolve(dotted: str) -> str | None:
        for usage in usages:
            if (identifier := usage.resolve(dotted)) is not None:
                return identifier
        return None

    return link_code_names(html, resolve)


def _example_page(build: _Build, example: Example, markdown: str, page: Page) -> str:
    source = example.source.read_text()
    images = example.generated.parent / "images"

    def full_size(src: str) -> str:
        high = Path(src).with_name(Path(src).stem + "_2_0x.png").as_posix()
        return high if (images / Path(high).name).is_file() else src

    if not build.headers:
        return render_example_page(markdown, None, full_size)
    try:
        intro = parse_intro(source, example.name)
    except IntroError as error:
        raise PluginError(str(error)) from error
    record = build.state.get(example)
    number = thumbnail_number(source)
    result = f"mkd_glr_{example.source.stem}_{number:03d}.png"
    library = build.libraries[0].name
    archive = _source_archive_name(library)
    depth = len(Path(example.page).parent.parts)
    header = Header(
        intro=intro,
        script=example.name,
        install=install_line(source, archive, _library_distributions(build), build.undeclared),
        library_download="../" * depth + f"downloads/{archive}",
        seconds=record.seconds,
        peak_mb=record.peak_mb,
        machine=record.machine,
        result_image=f"images/{result}" if (images / result).is_file() else None,
        result_full_size=full_size(f"images/{result}"),
    )
    return render_example_page(markdown, header_markdown(header), full_size)


def _gallery_index(build: _Build, markdown: str) -> str:
    cards = {}
    for example in build.examples:
        intro = parse_intro(example.source.read_text(), example.name)
        cards[example.source.stem] = (intro.summary, build.state.get(example).seconds)
    return gallery_index(markdown, cards)


def _library_distributions(build: _Build) -> set[str]:
    """What installing the documented packages installs."""
    installed: set[str] = set()
    for library in build.libraries:
        for dist in _distributions_of(library.name):
            installed |= required_distributions(dist)
    return installed


def _index_page(build: _Build, example: Example) -> str:
    return posixpath.join(posixpath.dirname(example.page), "index.md")


@functools.cache
def _distributions_of(package: str) -> tuple[str, ...]:
    import importlib.metadata

    return tuple(importlib.metadata.packages_distributions().get(package, [package]))


def _version(distribution: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(distribution)


def _source_archive_name(package: str) -> str:
    return f"{package}-{_version(_distributions_of(package)[0])}.zip"


def _times_markdown(build: _Build, failures: dict[Example, str]) -> str:
    here = build.times_page.parent
    rows = []
    for example in build.examples:
        record = build.state.get(example)
        reason = build.reasons.get(example, "")
        rows.append(
            TimeRow(
                title=example.title,
                page=posixpath.relpath(example.generated.with_suffix(".md"), here),
                seconds=record.seconds,
                peak_mb=record.peak_mb,
                ran_now=build.measure(example) is not None,
                failed=example in failures,
                reason="" if reason == REUSED else reason,
            )
        )
    return times_table(rows)


def _serve_logger() -> logging.Logger:
    """A logger outside `mkdocs.*`, so that `mkdocs serve --strict` does not abort on it."""
    logger = logging.getLogger("gallery-serve")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("ERROR    -  %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    return logger


def _write_if_changed(path: Path, text: str) -> None:
    """Write only on change, so that `mkdocs serve` does not see a new file on every build."""
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _require_build() -> _Build:
    if _build is None:
        raise PluginError("gallery hooks: on_config did not run; is the `gallery` plugin enabled?")
    return _build
