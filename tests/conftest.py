"""Shared fixtures (a quick build of the whole site, a small data module), and the grouping
of tests over pytest-xdist's workers (`make test` runs `pytest -n auto --dist loadgroup`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support import build_site, copy_project

if TYPE_CHECKING:
    from gallery_lib.datasets import FashionMNISTDataModule


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built once in quick mode from a copy of the project; returns its `site/`."""
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


@pytest.fixture(scope="session")
def small_datamodule() -> FashionMNISTDataModule:
    """A small, seeded Fashion-MNIST data module, set up for fitting."""
    from gallery_lib.datasets import FashionMNISTDataModule

    dm = FashionMNISTDataModule(batch_size=32, train_size=256, val_size=100, test_size=50, seed=3)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep the tests of the built site on one xdist worker, so that it is built once."""
    for item in items:
        if "built_site" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("site"))
