"""``dockyard gcl`` against a real server, run as a subprocess."""

from __future__ import annotations

import json

import pytest

from _support import RunningServer, assert_clean_error

# the command's work is the same on either database (the server's tests cover both)
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_gcl_lifecycle(server: RunningServer) -> None:
    assert "No concurrency limits yet" in server.cli("gcl", "ls").stdout
    made = server.cli("gcl", "create", "db", "--limit", "3")
    assert "Created concurrency limit 'db' with 3 slots." in made.stdout
    server.cli("gcl", "create", "github api", "--limit", "10", "--slot-decay-per-second", "2")
    off = server.cli("gcl", "create", "later", "--limit", "1", "--disable")
    assert "(inactive)" in off.stdout

    listed = json.loads(server.cli("gcl", "ls", "--json").stdout)
    assert [(x["name"], x["limit"], x["active"]) for x in listed] == [
        ("db", 3, True),
        ("github api", 10, True),
        ("later", 1, False),
    ]
    table = server.cli("gcl", "ls").stdout
    assert "0/3" in table and "2/s" in table and "github api" in table

    with server.http() as http:
        body = {"names": ["db"], "occupy": 2, "holder": "nightly etl"}
        lease = http.post("/concurrency-limits/acquire", json=body).json()["lease_id"]
    shown = server.cli("gcl", "inspect", "db").stdout
    assert "In use" in shown and "nightly etl" in shown and lease in shown
    detail = json.loads(server.cli("gcl", "inspect", "db", "--json").stdout)
    assert detail["active_slots"] == 2 and detail["leases"][0]["id"] == lease

    changed = server.cli("gcl", "update", "db", "--limit", "5", "--disable")
    assert "5 slots, inactive" in changed.stdout
    server.cli("gcl", "update", "db", "--enable", "--slot-decay-per-second", "0.5")
    again = json.loads(server.cli("gcl", "inspect", "db", "--json").stdout)
    assert (again["limit"], again["active"], again["slot_decay_per_second"]) == (5, True, 0.5)

    assert "Deleted concurrency limit 'db'" in server.cli("gcl", "delete", "db").stdout
    names = [x["name"] for x in json.loads(server.cli("gcl", "ls", "--json").stdout)]
    assert names == ["github api", "later"]


def test_gcl_refusals_are_one_clean_line(server: RunningServer) -> None:
    server.cli("gcl", "create", "db", "--limit", "1")
    assert_clean_error(
        server.cli("gcl", "create", "db", "--limit", "2", check=False),
        "already exists",
        "gcl update db",
    )
    assert_clean_error(
        server.cli("gcl", "create", "a/b", "--limit", "2", check=False), "invalid name"
    )
    assert_clean_error(
        server.cli("gcl", "create", "x", "--limit", "-1", check=False), "invalid limit"
    )
    assert_clean_error(server.cli("gcl", "update", "db", check=False), "nothing to change")
    assert_clean_error(
        server.cli("gcl", "inspect", "nope", check=False), "'nope' not found", "gcl create nope"
    )
    assert_clean_error(
        server.cli("gcl", "update", "db", "--slot-decay-per-second", "-1", check=False),
        "slot_decay_per_second",
    )
