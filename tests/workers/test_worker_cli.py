"""``dockyard worker start`` errors and ``dockyard work-pool preview``, as users run them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from worker_support import make_deployment, make_pool

from _support import RunningServer

# What these tests check happens in the command, not the database: SQLite is enough.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
HEAVY = ["httpx", "pydantic", "rich", "dockyard.client", "dockyard.workers", "dockyard.server"]


def assert_clean_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@SQLITE_ONLY
def test_unknown_pool_says_how_to_create_it(server: RunningServer) -> None:
    result = server.cli("worker", "start", "--pool", "nope", check=False)
    assert_clean_error(result, "work pool 'nope' not found", "dockyard work-pool create nope")
    assert "--type process" in result.stderr


@SQLITE_ONLY
def test_type_creates_a_missing_pool(server: RunningServer) -> None:
    result = server.cli("worker", "start", "--pool", "fresh", "--type", "process", "--run-once")
    assert "Created work pool 'fresh' of type process" in result.stdout
    assert "waiting for runs" in result.stdout
    with server.client() as client:
        assert client.read_work_pool("fresh").type == "process"


@SQLITE_ONLY
def test_a_type_without_a_worker_is_refused(server: RunningServer) -> None:
    result = server.cli("worker", "start", "--pool", "k", "--type", "k8s", check=False)
    assert_clean_error(result, "no worker here runs work pools of type 'k8s'", "process")
    with server.client() as client:
        assert [p.name for p in client.list_work_pools()] == []


@SQLITE_ONLY
def test_unknown_queue_is_refused(server: RunningServer) -> None:
    with server.client() as client:
        make_pool(client)
    result = server.cli("worker", "start", "--pool", "pool", "--work-queue", "fast", check=False)
    assert_clean_error(result, "work queue 'fast' not found")


@SQLITE_ONLY
def test_preview_prints_the_rendered_job_configuration(server: RunningServer) -> None:
    with server.client() as client:
        make_pool(client)
        make_deployment(
            client,
            job_variables={"env": {"A": "1", "TOKEN": "{{ $MY_TOKEN }}"}, "stream_output": False},
        )
    pool_only = json.loads(server.cli("work-pool", "preview", "pool").stdout)
    assert pool_only == {"env": {}, "stream_output": True}
    with_deployment = json.loads(
        server.cli("work-pool", "preview", "pool", "--deployment", "my_flow/d").stdout
    )
    assert with_deployment["env"] == {"A": "1", "TOKEN": "{{ $MY_TOKEN }}"}
    assert with_deployment["stream_output"] is False
    missing = server.cli("work-pool", "preview", "pool", "--deployment", "my-flow/x", check=False)
    assert_clean_error(missing, "my-flow/x")


@pytest.mark.parametrize("args", [("worker", "--help"), ("worker", "start", "--help")])
def test_worker_help_imports_nothing_heavy(args: tuple[str, ...]) -> None:
    command = [sys.executable, "-X", "importtime", "-m", "dockyard.cli.main", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    modules = [
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]
    heavy = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert not heavy, f"`dockyard {' '.join(args)}` imports {heavy}"
