"""A property of the ``dockyard`` command: a name the server accepts round-trips through every
command that takes it and reaches nothing else; a name it refuses is refused with a message
that says what a name is, and never a traceback.

The commands run in this process, through ``dockyard.cli.main.main`` (the entry point of
the ``dockyard`` script) with their own argv, stdout and stderr: a few dozen names then
cost seconds instead of minutes of interpreter starts. ``test_cli_names.py`` runs the
hostile names through the real subprocess. Names are passed after ``--``, as a user passes
a name that starts with '-'.
"""

from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings

from _support import RunningServer
from _support.names import BOUNDED, NAMES, snapshot
from dockyard import _names, schemas
from dockyard.cli.main import main


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: how a name travels from argv to a URL does not depend on the database
    (the client's property test and the server's path tests run on both)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'dockyard.db'}"


@dataclass
class Ran:
    args: tuple[str, ...]
    status: int
    stdout: str
    stderr: str


def dockyard(*args: str) -> Ran:
    """Run ``dockyard *args`` in this process; an unexpected exception propagates (and fails
    the test), as the real command would print it as a traceback."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["dockyard", *args]
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main()
        status = 0
    except SystemExit as exit:
        status = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
    finally:
        sys.argv = argv
    return Ran(args, status, out.getvalue(), err.getvalue())


def ok(*args: str) -> Ran:
    ran = dockyard(*args)
    assert ran.status == 0, ran
    return ran


def refused(*args: str, says: str) -> Ran:
    ran = dockyard(*args)
    assert ran.status == 1, ran
    assert ran.stderr.startswith("Error: ") and says in ran.stderr, ran
    return ran


def queue_round_trip(name: str) -> None:
    ok("work-queue", "create", "--pool", "P", "--", name)
    shown = json.loads(ok("work-queue", "inspect", "--pool", "P", "--json", "--", name).stdout)
    assert shown["name"] == name
    ok("work-queue", "pause", "--pool", "P", "--", name)
    ok("work-queue", "update", "--pool", "P", "--priority", "7", "--", name)
    listed = json.loads(ok("work-queue", "ls", "--pool", "P", "--json").stdout)
    assert {"name": name, "paused": True, "priority": 7}.items() <= next(
        q for q in listed if q["name"] == name
    ).items()
    ok("work-queue", "resume", "--pool", "P", "--", name)
    ok("work-queue", "delete", "--pool", "P", "--", name)
    refused("work-queue", "inspect", "--pool", "P", "--", name, says="not found")


def pool_round_trip(name: str) -> None:
    ok("work-pool", "create", "--type", "process", "--", name)
    assert json.loads(ok("work-pool", "inspect", "--json", "--", name).stdout)["name"] == name
    ok("work-pool", "pause", "--", name)
    ok("work-pool", "resume", "--", name)
    ok("work-pool", "update", "--description", "round trip", "--", name)
    shown = json.loads(ok("work-pool", "inspect", "--json", "--", name).stdout)
    assert (shown["paused"], shown["description"]) == (False, "round trip")
    ok("work-pool", "delete", "--", name)


def deployment_round_trip(server: RunningServer, name: str) -> None:
    # deployments are made by code (deploy, serve), not by a command
    with server.client() as client:
        made = client.upsert_deployment(schemas.DeploymentCreate(flow_name=name, name=name))
    full = f"{name}/{name}"
    assert json.loads(ok("deployment", "inspect", "--json", "--", full).stdout)["id"] == str(
        made.id
    )
    ok("deployment", "pause", "--", full)
    ok("deployment", "resume", "--", full)
    ok("deployment", "run", "--", full)
    with server.client() as client:
        [run] = client.list_flow_runs(deployment_id=made.id)
        assert (run.flow_name, run.deployment_name) == (name, name)
    ok("deployment", "delete", "--", full)
    with server.client() as client:
        client.delete_flow(client.read_flow_by_name(name).id)


def refused_everywhere(name: str) -> None:
    rule = "a name is 1 to 200 characters"
    refused("work-queue", "create", "--pool", "P", "--", name, says=rule)
    refused("work-pool", "create", "--type", "process", "--", name, says="invalid name")
    # looking a refused name up finds nothing, and touches nothing
    for args in (
        ("work-queue", "delete", "--pool", "P", "--", name),
        ("work-queue", "pause", "--pool", "P", "--", name),
        ("work-queue", "update", "--pool", "P", "--concurrency-limit", "0", "--", name),
        ("work-pool", "delete", "--", name),
        ("work-pool", "pause", "--", name),
        ("deployment", "delete", "--", f"f/{name}"),
    ):
        ran = refused(*args, says="")
        assert "Traceback" not in ran.stderr


@pytest.mark.slow
def test_any_name_round_trips_through_the_cli_or_is_refused(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKYARD_API_URL", server.api_url)
    ok("work-pool", "create", "--type", "process", "P")
    ok("work-queue", "create", "--pool", "P", "bystander-queue")
    with server.client() as client:
        client.upsert_deployment(schemas.DeploymentCreate(flow_name="f", name="d"))
    before = snapshot(server)
    taken = {"P", "f", "default", "bystander-queue"}

    @settings(BOUNDED, max_examples=15)
    @given(name=NAMES)
    def check(name: str) -> None:
        if _names.name_problem(name) is not None:
            refused_everywhere(name)
        elif name not in taken:
            queue_round_trip(name)
            deployment_round_trip(server, name)
            if _names.pool_name_problem(name) is None:
                pool_round_trip(name)
        assert snapshot(server) == before

    check()
