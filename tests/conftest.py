"""Shared fixtures: a quick build of the whole site, made once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import build_site, copy_project


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
