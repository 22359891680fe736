"""A built wheel installs and runs with nothing else: ``pip install dockyard-*.whl`` into a
fresh virtual environment (no system site packages, no source tree on the path), then
``dockyard server start`` serves the API and the UI from the installed files alone.

The dependencies come from the package index through pip's cache: a few seconds once it
holds them. A package index that cannot be reached skips the test by hand (fails it in CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from _support import RunningServer, free_port, require

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "dockyard"
# what the wheel must carry besides Python modules: read at run time from the package
DATA_DIRS = ("server/ui/templates", "server/ui/static", "server/migrations", "workers/templates")
INSTALL_TIMEOUT = 600.0
# the first start of a fresh environment compiles what it imports
START_TIMEOUT = 120.0
# what pip says when it cannot reach the package index
UNREACHABLE = (
    "NewConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No matching distribution found",
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(INSTALL_TIMEOUT + 120)]


def run(
    command: Sequence[object], *, env: dict[str, str] | None = None, cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def described(done: subprocess.CompletedProcess[str]) -> str:
    args = " ".join(str(a) for a in done.args)
    return f"`{args}` exited with status {done.returncode}\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this source tree, as ``pip wheel`` builds it (hatchling)."""
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, ROOT]
    done = run(command, cwd=out, timeout=300)
    assert done.returncode == 0, described(done)
    (found,) = out.glob("dockyard-*-py3-none-any.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed, its dependencies from the index."""
    base = tmp_path_factory.mktemp("fresh")
    venv = base / "venv"
    made = run([sys.executable, "-m", "venv", venv], cwd=base, timeout=120)
    assert made.returncode == 0, described(made)
    # no byte-compiling of every dependency: the server compiles what it imports
    install = [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-compile", wheel]
    done = run(install, env=clean_env(base / "home"), cwd=base, timeout=INSTALL_TIMEOUT)
    if done.returncode != 0:
        output = done.stdout + done.stderr
        require(
            not any(sign in output for sign in UNREACHABLE),
            f"the package index cannot be reached to install Dockyard's dependencies:\n{output}",
        )
        pytest.fail(described(done), pytrace=False)
    return venv


def clean_env(home: Path) -> dict[str, str]:
    """This environment without the test run's interpreter, source path or settings."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("DOCKYARD_") and name not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env["DOCKYARD_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_the_wheel_holds_the_packages_data_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        path.relative_to(PACKAGE.parent).as_posix()
        for directory in DATA_DIRS
        for path in (PACKAGE / directory).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert {
        "dockyard/server/ui/templates/base.html",
        "dockyard/server/ui/static/dockyard.css",
        "dockyard/server/migrations/script.py.mako",
        "dockyard/workers/templates/docker.json",
    } <= expected
    assert sorted(expected - names) == []
    assert {"dockyard/py.typed", "dockyard_dask/py.typed", "dockyard_ray/py.typed"} <= names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "dockyard = dockyard.cli.main:main" in text
    assert "docker = dockyard.workers.templates:docker.json" in text


@pytest.fixture
def installed_server(venv: Path, tmp_path: Path) -> Iterator[RunningServer]:
    """``VENV/bin/dockyard server start`` on 127.0.0.1, SQLite in a fresh home, run from a
    directory outside the source tree."""
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    log_path = tmp_path / "server.log"
    env = clean_env(home)
    command = [venv / "bin" / "dockyard", "server", "start", "--host", "127.0.0.1"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*map(str, command), "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    server = RunningServer(
        url=url,
        env={**env, "DOCKYARD_API_URL": f"{url}/api"},
        process=process,
        log_path=log_path,
        home=home,
        database_url="",
    )
    try:
        server.wait_healthy(START_TIMEOUT)
        yield server
    finally:
        server.stop()
    problems = server.problems()
    assert not problems, "\n\n".join(problems)


def test_the_installed_wheel_serves_the_api_and_the_ui(
    venv: Path, installed_server: RunningServer, tmp_path: Path
) -> None:
    python = venv / "bin" / "python"
    where = run(
        [python, "-c", "import dockyard; print(dockyard.__file__)"], cwd=tmp_path, timeout=60
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr

    with httpx.Client(base_url=installed_server.url, timeout=10, trust_env=False) as http:
        health = http.get("/api/health")
        assert health.status_code == 200, health.text
        page = http.get("/")
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert "/static/dockyard.css" in page.text
        css = http.get("/static/dockyard.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert css.content == (PACKAGE / "server/ui/static/dockyard.css").read_bytes()
    # the database was made by the installed migrations, in the home the server was given
    assert (installed_server.home / "dockyard.db").is_file()

    dockyard = venv / "bin" / "dockyard"
    usage = run([dockyard, "--help"], env=installed_server.env, cwd=tmp_path, timeout=60)
    assert usage.returncode == 0, described(usage)
    assert "server" in usage.stdout and "worker" in usage.stdout
    # the worker types' templates come from the installed package's entry points
    template = run(
        [dockyard, "work-pool", "get-default-base-job-template", "--type", "docker"],
        env=installed_server.env,
        cwd=tmp_path,
        timeout=60,
    )
    assert template.returncode == 0, described(template)
    assert "image" in json.loads(template.stdout)["variables"]["properties"]
