"""``dockyard automation`` and ``dockyard events`` against a real server, run as subprocesses:
automations from a YAML spec, and a run's events printed live as they happen."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from _support import RunningServer, wait_until
from _support.cli import CLI_COMMAND

SPEC = """
name: etl-failing
description: three failures of etl in ten minutes
trigger:
  expect: [dockyard.flow-run.Failed]
  match_related: {dockyard.resource.role: deployment, dockyard.resource.name: etl}
  threshold: 3
  within: 600
actions:
  - type: call-webhook
    url: http://127.0.0.1:9/hook
"""


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_automation_lifecycle_from_a_yaml_spec(server: RunningServer, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    made = server.cli("automation", "create", "--file", str(spec))
    assert "Created automation 'etl-failing'" in made.stdout
    again = server.cli("automation", "create", "--file", str(spec), check=1)
    assert "already exists" in again.stderr and "Traceback" not in again.stderr

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "trigger": {"threshold": 2}, "actions": []}))
    refused = server.cli("automation", "create", "--file", str(bad), check=1)
    assert "within" in refused.stderr and "actions" in refused.stderr
    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("name: [unclosed")
    assert (
        "not valid YAML" in server.cli("automation", "create", "-f", str(not_yaml), check=1).stderr
    )

    table = server.cli("automation", "ls").stdout
    assert "etl-failing" in table and "dockyard.flow-run.Failed (3 within 600 s)" in table
    assert "call-webhook" in table
    [listed] = json.loads(server.cli("automation", "ls", "--json").stdout)
    assert listed["trigger"]["threshold"] == 3 and listed["enabled"] is True
    assert "It has not fired yet" in server.cli("automation", "inspect", "etl-failing").stdout

    assert "paused" in server.cli("automation", "pause", "etl-failing").stdout
    shown = json.loads(server.cli("automation", "inspect", listed["id"], "--json").stdout)
    assert shown["enabled"] is False
    assert "enabled" in server.cli("automation", "resume", "etl-failing").stdout
    assert "Deleted automation" in server.cli("automation", "delete", "etl-failing").stdout
    gone = server.cli("automation", "inspect", "etl-failing", check=1)
    assert "not found" in gone.stderr
    assert "No automations yet" in server.cli("automation", "ls").stdout


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_events_stream_prints_a_runs_events_live(server: RunningServer) -> None:
    lines: list[str] = []
    with subprocess.Popen(
        [*CLI_COMMAND, "events", "stream", "--event", "dockyard.flow-run.", "--json"],
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as stream:
        assert stream.stderr is not None and stream.stdout is not None
        out = stream.stdout
        reader = threading.Thread(target=lambda: lines.extend(iter(out.readline, "")))
        try:
            assert "Streaming events" in stream.stderr.readline()  # it has its cursor: go
            reader.start()
            with server.http() as http:
                body = {"flow_name": "streamed", "state": "RUNNING"}
                run = http.post("/flow-runs", json=body).json()
                http.post(
                    f"/flow-runs/{run['id']}/state",
                    json={"state": "COMPLETED", "lease_token": run["lease_token"]},
                )
            wait_until(lambda: len(lines) >= 2, 30, "two events printed")
        finally:
            stream.terminate()
            stream.wait(10)
            if reader.is_alive() or reader.ident is not None:
                reader.join(10)
    events = [json.loads(line) for line in lines]
    assert [e["event"] for e in events] == [
        "dockyard.flow-run.Running",
        "dockyard.flow-run.Completed",
    ]
    assert {e["resource"]["dockyard.resource.id"] for e in events} == {
        f"dockyard.flow-run.{run['id']}"
    }
    table = server.cli("events", "ls", "--event", "dockyard.flow-run.").stdout
    assert "dockyard.flow-run.Completed" in table and run["name"] in table
