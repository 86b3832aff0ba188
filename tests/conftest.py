"""Shared fixtures (a quick build of the whole site, a small data module, the compilation
cache), and the grouping of tests over pytest-xdist's workers (`make test` runs
`pytest -n auto --dist loadgroup`)."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support import build_site, copy_project

if TYPE_CHECKING:
    from gallery_lib.datasets import FashionMNISTDataModule


@pytest.fixture(scope="session", autouse=True)
def compile_cache() -> Path | None:
    """jax's persistent compilation cache for the tests run in this process, in the folder the
    examples (run by the tests and the quick site build) use too: `$GALLERY_CACHE/xla/`, by
    default `~/.cache/gallery_lib/xla/`. CI keeps that folder between runs to start warm;
    `GALLERY_COMPILE_CACHE=0` turns it off. Returns the folder, or None when off."""
    from gallery_lib import enable_compile_cache

    return enable_compile_cache()


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built once in quick mode from a copy of the project; returns its `site/`."""
    _claim_the_site_build(tmp_path_factory)
    project = copy_project(tmp_path_factory.mktemp("project"))
    site = project / "site"
    result = build_site(project, site)
    if result.returncode != 0:
        pytest.fail(
            "mkdocs build --strict failed in quick mode:\n"
            + result.stdout[-5000:]
            + result.stderr[-10000:]
        )
    return site


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def served_site(built_site: Path) -> Iterator[str]:
    """The built site on a local HTTP server; yields its root URL."""
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), "install Debian's chromium (make system-deps)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def small_datamodule() -> FashionMNISTDataModule:
    """A small, seeded Fashion-MNIST data module, set up for fitting."""
    from gallery_lib.datasets import FashionMNISTDataModule

    dm = FashionMNISTDataModule(batch_size=32, train_size=256, val_size=100, test_size=50, seed=3)
    dm.prepare_data()
    dm.setup("fit")
    return dm


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep the tests of the built site on one xdist worker, so that it is built once."""
    for item in items:
        if "built_site" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("site"))


def _claim_the_site_build(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fail if another xdist worker of this session has built the site already.

    The site's tests share one xdist group, so one worker builds it; if the grouping stopped
    working (as with pytest 9.2 and pytest-xdist 3.8), each worker would build it again.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return
    claim = tmp_path_factory.getbasetemp().parent / "built_site.worker"  # the session's folder
    try:
        descriptor = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        pytest.fail(
            f"The quick site was built by xdist worker {claim.read_text()} already, and "
            f"{worker} was about to build it again: xdist's --dist loadgroup did not keep the "
            "site's tests on one worker. Run pytest with --dist loadgroup, on a pytest that "
            "supports it (pyproject.toml pins pytest<9.2, see pytest-xdist#1386)."
        )
    with os.fdopen(descriptor, "w") as file:
        file.write(worker)
