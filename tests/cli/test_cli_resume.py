"""``dockyard flow-run resume`` (and PAUSED in ``ls`` and ``inspect``) against a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from _support import RunningServer, assert_clean_error

SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}},
    "required": ["approved"],
}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the server's rules are tested on both databases elsewhere."""
    return f"sqlite+aiosqlite:///{tmp_path / 'dockyard.db'}"


def test_resume_a_paused_run_from_the_command_line(server: RunningServer) -> None:
    with server.http() as http:
        made = http.post("/flow-runs", json={"flow_name": "approve"}).json()
        body = {"key": "pause-1", "lease_token": made["lease_token"], "input_schema": SCHEMA}
        assert http.post(f"/flow-runs/{made['id']}/pause", json=body).is_success
    run_id = made["id"]

    listed = server.cli("flow-run", "ls", "--state", "paused").stdout
    assert run_id in listed and "PAUSED" in listed
    inspected = server.cli("flow-run", "inspect", run_id).stdout
    assert "PAUSED" in inspected and "paused: waiting up to 3600 s" in inspected

    assert_clean_error(
        server.cli("flow-run", "resume", run_id, check=False), "run_input.approved", "required"
    )
    assert_clean_error(
        server.cli("flow-run", "resume", run_id, "--input", "[1]", check=False),
        "--input must be a JSON object",
    )
    assert_clean_error(
        server.cli("flow-run", "resume", run_id, "--input", "{nope", check=False),
        "--input is not valid JSON",
    )
    resumed = server.cli("flow-run", "resume", run_id, "--input", '{"approved": true}')
    assert f"({run_id}) resumed: it is RUNNING" in resumed.stdout
    assert_clean_error(
        server.cli("flow-run", "resume", run_id, check=False), "is RUNNING, not PAUSED"
    )
