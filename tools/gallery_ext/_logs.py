"""Logging details shared by the build process and the worker processes that run examples."""

from __future__ import annotations

import logging
import sys

GALLERY_LOGGER = "mkdocs.plugins.mkdocs-gallery"
FAILED_MARK = "failed to execute correctly"


class DropExampleFailures(logging.Filter):
    """mkdocs-gallery logs each failure as a warning; the hooks report it once, as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return FAILED_MARK not in record.getMessage()


def release_logging_tee() -> None:
    """Point absl's log handler back at the real stderr.

    absl creates its handler on first import with `sys.stderr` as stream; when an example
    imports jax, that is mkdocs-gallery's capturing `_LoggingTee`, which has no `close()`, so
    absl's exit handler printed a traceback after every build.
    """
    absl_logging = sys.modules.get("absl.logging")
    if absl_logging is None:
        return
    handler = absl_logging.get_absl_handler().python_handler
    if not callable(getattr(handler.stream, "close", None)):
        handler.setStream(sys.stderr)
