"""Fixtures of the deploy tests: projects on disk, deploy scripts, workers, git repositories.

Everything is real: scripts run in a subprocess as a user runs them (``python flows.py``),
workers are ``dockyard worker start`` processes, and git repositories are local bare ones.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_support import Workers

from _support import RunningServer, require


@pytest.fixture
def workers(server: RunningServer, tmp_path: Path) -> Iterator[Workers]:
    """Start ``dockyard worker start`` processes against ``server``; stopped after the test."""
    started = Workers(server, tmp_path / "workers")
    yield started
    started.close()


@pytest.fixture
def git() -> str:
    """The ``git`` command (the test skips without it, or fails with ``CI=true``)."""
    found = shutil.which("git")
    require(found, "git is not installed")
    assert found is not None
    return found
