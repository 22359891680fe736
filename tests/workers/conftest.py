"""Fixtures of the worker tests: worker processes that are stopped, with their runs."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_support import Workers

from _support import RunningServer


@pytest.fixture(autouse=True)
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary files of workers in this process (their runs' output) go to ``tmp_path``."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture
def workers(server: RunningServer, tmp_path: Path) -> Iterator[Workers]:
    """Start ``dockyard worker start`` processes against ``server``: ``workers.start(...)``.

    When the test ends every worker gets Ctrl-C (then SIGKILL), every run process left
    behind is killed, and a traceback printed by a worker fails the test.
    """
    base = tmp_path / "workers"
    base.mkdir()
    started = Workers(server, base)
    yield started
    problems = started.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
