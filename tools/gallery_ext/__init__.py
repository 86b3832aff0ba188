"""Extensions of mkdocs-gallery 0.10.4 for this site, wired in by `tools/gallery_hooks.py`.

See `docs/gallery-internals.md` for what they do and why they are hooks.
"""

from ._cache import ResultCache, cache_root, example_outputs
from ._environment import Environment, top_level_imports
from ._figures import (
    FigureError,
    hand_written_figures,
    markdown_prose,
    python_prose,
    render_figures,
)
from ._header import (
    Header,
    Intro,
    IntroError,
    gallery_index,
    header_markdown,
    install_line,
    machine_description,
    parse_intro,
    plain_text,
    render_example_page,
    required_distributions,
    source_archive,
    third_party_distributions,
    thumbnail_number,
)
from ._imports import Library, Usage, dependency_key, example_usage
from ._logs import GALLERY_LOGGER, DropExampleFailures, release_logging_tee
from ._monitor import ExampleMonitor, ExampleTimeoutError, Measure
from ._pages import (
    ExampleCard,
    TimeRow,
    append_used_in,
    link_code_names,
    times_table,
    used_in_gallery,
)
from ._parallel import Outcome, Task, WorkerPool, next_task, run_order
from ._state import STATE_FILE, Example, Key, Record, State, collect_examples

__all__ = [
    "GALLERY_LOGGER",
    "STATE_FILE",
    "DropExampleFailures",
    "Environment",
    "Example",
    "ExampleCard",
    "ExampleMonitor",
    "ExampleTimeoutError",
    "FigureError",
    "Header",
    "Intro",
    "IntroError",
    "Key",
    "Library",
    "Measure",
    "Outcome",
    "Record",
    "ResultCache",
    "State",
    "Task",
    "TimeRow",
    "Usage",
    "WorkerPool",
    "append_used_in",
    "cache_root",
    "collect_examples",
    "dependency_key",
    "example_outputs",
    "example_usage",
    "gallery_index",
    "hand_written_figures",
    "header_markdown",
    "install_line",
    "link_code_names",
    "machine_description",
    "markdown_prose",
    "next_task",
    "parse_intro",
    "plain_text",
    "python_prose",
    "release_logging_tee",
    "render_example_page",
    "render_figures",
    "required_distributions",
    "run_order",
    "source_archive",
    "third_party_distributions",
    "thumbnail_number",
    "times_table",
    "top_level_imports",
    "used_in_gallery",
]
