"""Fixtures of the worker tests: worker processes that are stopped, with their runs."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_support import Workers, started_workers

from _support import RunningServer


@pytest.fixture(autouse=True)
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary files of workers in this process (their runs' output) go to ``tmp_path``."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture
def workers(server: RunningServer, tmp_path: Path) -> Iterator[Workers]:
    """``dockyard worker start`` processes against ``server`` (see ``started_workers``)."""
    yield from started_workers(server, tmp_path / "workers")
