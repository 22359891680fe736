"""``dockyard artifact`` against a real server, run as a subprocess."""

from __future__ import annotations

import json

import pytest

from _support import RunningServer, assert_clean_error


@pytest.fixture
def db_url(tmp_path: object) -> str:
    # the CLI reads through the API, whose own tests cover both databases
    return f"sqlite+aiosqlite:///{tmp_path}/dockyard.db"


def test_list_inspect_and_delete_artifacts(server: RunningServer) -> None:
    assert "No artifacts yet" in server.cli("artifact", "ls").stdout
    with server.http() as http:

        def post(**body: object) -> str:
            answer = http.post("/artifacts", json=body)
            assert answer.status_code == 201, answer.text
            return str(answer.json()["id"])

        run = http.post("/flow-runs", json={"flow_name": "nightly"}).json()
        v1 = post(type="markdown", key="report", data="# v1", description="first\nrun")
        v2 = post(type="markdown", key="report", data="# v2 \x1b[31mred", flow_run_id=run["id"])
        bar = post(type="progress", key="load", data=42.5)
        keyless = post(type="table", data=[[1, 2]])
        post(type="link", key="docs", data={"link": "https://x.example", "link_text": "Docs"})

    table = server.cli("artifact", "ls").stdout
    assert [line.split()[0] for line in table.splitlines()[1:]] == ["docs", "load", "report"]
    assert v2 in table and v1 not in table and keyless not in table
    listed = json.loads(server.cli("artifact", "ls", "--json").stdout)
    assert [a["key"] for a in listed] == ["docs", "load", "report"]
    every = json.loads(server.cli("artifact", "ls", "--all-versions", "--json").stdout)
    assert len(every) == 5 and every[-1]["id"] == v1
    some = server.cli(
        "artifact", "ls", "--all-versions", "--prefix", "re", "--limit", "1", "--json"
    )
    assert [a["id"] for a in json.loads(some.stdout)] == [v2]  # the newer of the two

    shown = server.cli("artifact", "inspect", "report").stdout
    assert "# v2" in shown and run["id"] in shown and "History (2 versions)" in shown
    assert v1 in shown and v2 in shown and "\x1b" not in shown  # escapes are not replayed
    versions = json.loads(server.cli("artifact", "inspect", "report", "--json").stdout)
    assert [a["id"] for a in versions] == [v2, v1]
    assert "Docs <https://x.example>" in server.cli("artifact", "inspect", "docs").stdout

    assert_clean_error(
        server.cli("artifact", "inspect", "nope", check=False), "no artifact has the key 'nope'"
    )
    assert "Deleted artifact" in server.cli("artifact", "delete", bar).stdout
    assert_clean_error(server.cli("artifact", "delete", bar, check=False), "not found")
    deleted = server.cli("artifact", "delete", "report").stdout
    assert "Deleted every version of artifact 'report'" in deleted
    left = json.loads(server.cli("artifact", "ls", "--all-versions", "--json").stdout)
    assert sorted(a["type"] for a in left) == ["link", "table"]
