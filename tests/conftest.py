"""Fixtures that start real parts: PostgreSQL, the Dockyard server, the ``dockyard`` command.

A part missing on this machine skips its tests when run by hand and fails them with
``CI=true`` (see ``_support.require``). Every test runs with its own empty ``DOCKYARD_HOME``
and none of the user's ``DOCKYARD_*`` settings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _support import (
    PostgresCluster,
    RunningServer,
    ServerFactory,
    run_cli,
    start_postgres_cluster,
)

_SESSION_HOME: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Keep the whole run (and every process it starts) away from the user's settings."""
    global _SESSION_HOME
    for name in [n for n in os.environ if n.startswith("DOCKYARD_")]:
        del os.environ[name]
    _SESSION_HOME = tempfile.mkdtemp(prefix="dockyard-test-home-")
    os.environ["DOCKYARD_HOME"] = _SESSION_HOME
    # servers under test listen on loopback: never send that traffic through a proxy
    for name in ("NO_PROXY", "no_proxy"):
        os.environ[name] = ",".join(filter(None, [os.environ.get(name), "127.0.0.1,localhost"]))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SESSION_HOME:
        shutil.rmtree(_SESSION_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def dockyard_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """An empty ``DOCKYARD_HOME`` for this test alone (profile files do not leak between tests)."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("DOCKYARD_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL cluster for the session; each test takes a fresh database."""
    cluster = start_postgres_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database: SQLite in this test's tmp dir, or a new PostgreSQL one."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'dockyard.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.new_database()


@pytest.fixture
def server_factory(tmp_path: Path, db_url: str) -> Iterator[ServerFactory]:
    """Start servers with extra args or env: ``server_factory("--insecure", DOCKYARD_X="1")``.

    They use ``db_url`` unless given ``database_url=``; all are stopped when the test ends, and
    the test fails if one wrote a traceback or did not stop on Ctrl-C.
    """
    factory = ServerFactory(tmp_path / "servers", db_url)
    yield factory
    problems = factory.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def server(request: pytest.FixtureRequest, server_factory: ServerFactory) -> RunningServer:
    """A healthy server on SQLite and on PostgreSQL (the test runs once on each).

    Extra environment through indirect parametrization::

        @pytest.mark.parametrize("server", [{"DOCKYARD_SERVER_API_KEY": "k"}], indirect=True)
    """
    env: dict[str, str] = getattr(request, "param", None) or {}
    return server_factory(**env)


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_cli``: ``cli("work-pool", "ls", env=server.env)`` (or use ``server.cli(...)``)."""
    return run_cli
