"""Fixtures of the Docker tests: a real daemon, images built once per session, a registry.

Docker missing (or its test base image, or Debian's ``docker-registry``) skips these tests
when run by hand and fails them with ``CI=true`` (``.ci/run`` installs and starts them all).
Containers run with host networking, so every test's traffic stays on 127.0.0.1. Images:

- ``base_image``: ``dockyard-test/python:3.11``, made by ``scripts/build-base-image.sh``;
- ``deps_image``: the base with Dockyard's dependencies installed (from the package index),
  tagged by a hash of the dependency list: Docker keeps it between sessions;
- ``flow_image``: ``build_image`` of a small project on ``deps_image``, once per session.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# the worker tests' helpers (and the contract suite) are shared with the process type
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "workers"))

from docker_support import (
    BASE_IMAGE,
    Registry,
    build_deps_image,
    build_flow_image,
    docker_or_none,
    remove_new_containers,
    run_containers,
    start_registry,
)
from worker_support import Workers, started_workers

from _support import RunningServer, require
from dockyard import settings

DOCKER_HINT = (
    "Docker is not running: apt-get install docker.io, start `dockerd`, and wait for "
    "`docker info` (.ci/run does all three)"
)


# Session images (deps_image above all: Dockyard's dependencies from the package index) are
# built in the setup of the first test that needs them: minutes on a fresh machine.
IMAGE_FIXTURES = {"deps_image", "build_settings", "flow_image"}
IMAGE_BUILD_TIMEOUT = 900


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give the tests that use the session's images time to build them, and keep every
    Docker test on one pytest worker: they share the daemon, and a test's clean-up of the
    containers it made must not meet another test's running ones."""
    here = Path(__file__).parent
    # without pytest-xdist (``-p no:xdist``) there is one worker, and no group marker to set
    grouping = items and items[0].config.pluginmanager.hasplugin("xdist")
    for item in items:
        if IMAGE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.timeout(IMAGE_BUILD_TIMEOUT))
        if grouping and here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.xdist_group("docker"))


NOT_GROUPED = (
    "pytest-xdist's --dist loadgroup does not group tests with this pytest, and the Docker "
    "tests must not meet on two workers; install the versions pyproject.toml asks for "
    "(pip install -e '.[dev]')"
)
grouped = True


def pytest_collection_finish(session: pytest.Session) -> None:
    """Notice when ``--dist loadgroup`` does not group (pytest-xdist marks each grouped
    test's id with ``@group``): every Docker test then fails, saying why."""
    global grouped
    if session.config.getoption("loadgroup", default=False):
        here = Path(__file__).parent
        ids = [i.nodeid for i in session.items if here in Path(str(i.fspath)).parents]
        grouped = all(nodeid.endswith("@docker") for nodeid in ids)


@pytest.fixture(autouse=True)
def on_one_worker() -> None:
    if not grouped:
        pytest.fail(NOT_GROUPED, pytrace=False)


@pytest.fixture(autouse=True)
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary files of workers in this process (their runs' output) go to ``tmp_path``."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture(autouse=True)
def no_container_left() -> Iterator[None]:
    """Remove the run containers a test leaves behind (tests that care assert it first)."""
    client = docker_or_none()
    if client is None:
        yield
        return
    before = run_containers(client)
    yield
    remove_new_containers(client, before)
    client.close()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: these tests are about containers, not about the database."""
    return f"sqlite+aiosqlite:///{tmp_path / 'dockyard.db'}"


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """A ``docker.DockerClient`` on the running daemon."""
    client = docker_or_none()
    require(client is not None, DOCKER_HINT)
    return client


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> str:
    """``dockyard-test/python:3.11``: Debian's Python 3.11 with pip, no Dockyard."""
    import docker

    try:
        docker_client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        require(False, f"image {BASE_IMAGE} not found: run scripts/build-base-image.sh (as root)")
    return BASE_IMAGE


@pytest.fixture(scope="session")
def build_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``DOCKYARD_HOME`` for the session's builds: Dockyard's wheel is built once."""
    return tmp_path_factory.mktemp("docker-build-home")


@pytest.fixture(scope="session")
def deps_image(docker_client: Any, base_image: str, build_home: Path) -> str:
    """The base image with Dockyard's dependencies (not Dockyard) installed."""
    return build_deps_image(docker_client, base_image, build_home)


@pytest.fixture(scope="session")
def build_settings(deps_image: str, build_home: Path) -> settings.Settings:
    """Settings that build on ``deps_image`` and cache the wheel in ``build_home``."""
    return settings.load(home=build_home, base_image=deps_image)


@pytest.fixture(scope="session")
def flow_image(build_settings: settings.Settings, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An image holding Dockyard and ``flows.py:greet`` (see ``docker_support.FLOWS``)."""
    return build_flow_image(tmp_path_factory.mktemp("flow-project"), build_settings)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Debian's ``docker-registry`` on a free port of 127.0.0.1, with its own storage."""
    started = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def workers(server: RunningServer, tmp_path: Path) -> Iterator[Workers]:
    """``dockyard worker start`` processes against ``server`` (see ``started_workers``)."""
    yield from started_workers(server, tmp_path / "workers")
