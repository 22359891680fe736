"""Names through the ``dockyard`` command, run as a subprocess: a name reaches the object it
names, or nothing.

Every path segment is percent-encoded by the client, dots included: a queue named ``..``
would otherwise collapse into its pool's URL, and ``work-queue delete .. --pool P`` would
delete pool P.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from _support import RunningServer
from _support.names import snapshot
from dockyard import schemas

# names that mean something in a URL: dot segments, separators, escapes, spaces, non-ASCII
HOSTILE = ["..", ".", "../P", "a/b", "%2e%2e", "?x=1", "#frag", "a b", "ünï"]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: how a name travels from argv to a URL does not depend on the database
    (the client's property test and the server's path tests run on both)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'dockyard.db'}"


def assert_clean_failure(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, (result.args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("Error: "), result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def test_queue_commands_with_hostile_names_never_touch_the_pool(server: RunningServer) -> None:
    server.cli("work-pool", "create", "P", "--type", "process")
    server.cli("work-queue", "create", "fast", "--pool", "P", "--priority", "1")
    before = snapshot(server)

    for name in HOSTILE:
        commands = [["work-queue", "delete", name, "--pool", "P"]]
        if name.startswith("."):  # the names that would collapse into the pool's own URL
            commands += [
                ["work-queue", "pause", name, "--pool", "P"],
                ["work-queue", "update", name, "--pool", "P", "--concurrency-limit", "0"],
            ]
        for command in commands:
            assert_clean_failure(server.cli(*command, check=False), repr(name))
    # a dot segment in the pool's place reaches no pool either
    for command in (["work-pool", "delete", ".."], ["work-pool", "pause", "."]):
        assert_clean_failure(server.cli(*command, check=False), "not found")
    result = server.cli("work-queue", "delete", "fast", "--pool", "..", check=False)
    assert_clean_failure(result, "not found")

    assert snapshot(server) == before


def test_refused_names_say_what_a_name_is(server: RunningServer) -> None:
    server.cli("work-pool", "create", "P", "--type", "process")
    for name in ("..", ".", "a/b", " lead", "trail ", "esc\x1b[2J"):
        result = server.cli("work-queue", "create", name, "--pool", "P", check=False)
        assert_clean_failure(result, "invalid name", "a name is 1 to 200 characters")
        assert "\x1b" not in result.stderr  # the name is shown escaped, never raw
    result = server.cli("work-pool", "create", "..", "--type", "process", check=False)
    assert_clean_failure(result, "invalid name", "letters, digits")
    result = server.cli("worker", "start", "--pool", "..", "--type", "process", check=False)
    assert_clean_failure(result, "invalid name", "letters, digits")
    # and the server refuses them too, naming the field and the rule
    with server.http() as http:
        refused = http.post("/work-pools/P/queues", json={"name": ".."})
        assert refused.status_code == 422
        assert refused.json()["field"] == "name"
        assert "is not '.' or '..'" in refused.json()["detail"]
    assert [q["name"] for q in snapshot(server)["queues"]["P"]] == ["default"]


def test_names_that_look_like_url_parts_round_trip(server: RunningServer) -> None:
    server.cli("work-pool", "create", "P", "--type", "process")
    tricky = ["%2e%2e", "?x=1", "ünï"]
    for name in tricky:
        server.cli("work-queue", "create", name, "--pool", "P")
    server.cli("work-queue", "pause", "%2e%2e", "--pool", "P")
    listed = json.loads(server.cli("work-queue", "ls", "--pool", "P", "--json").stdout)
    paused = {q["name"]: q["paused"] for q in listed}
    assert paused == {"%2e%2e": True, "?x=1": False, "ünï": False, "default": False}


def test_deployment_names_with_dots_reach_only_their_deployment(server: RunningServer) -> None:
    with server.client() as client:
        for name in ("d", "..."):
            client.upsert_deployment(schemas.DeploymentCreate(flow_name="f", name=name))
    before = snapshot(server)
    for target in ("f/..", "f/.", "../d"):
        assert_clean_failure(server.cli("deployment", "delete", target, check=False), "not found")
    assert_clean_failure(server.cli("deployment", "run", "f/..", check=False), "not found")
    assert snapshot(server) == before

    server.cli("deployment", "delete", "f/...")
    with server.client() as client:
        assert [d.name for d in client.list_deployments()] == ["d"]
