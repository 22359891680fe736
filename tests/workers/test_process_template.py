"""The process type's default base job template offers only what the process worker honours."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
from worker_support import Workers, make_deployment, make_pool, trigger, wait_for_state

from _support import RunningServer

# What is checked happens in the worker and its runs, not the database: SQLite is enough.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
# Each variable the worker honours, shown to take effect by the test below.
HONOURED = {"command", "env", "working_dir", "stream_output"}
# A run's process that writes down where it ran and what it was given, then prints a line.
PROBE = (
    "import json, os, sys; "
    "json.dump({'cwd': os.getcwd(), 'env': os.environ.get('PROBE_VAR')}, open(sys.argv[1], 'w')); "
    "print('probe says hi')"
)


@SQLITE_ONLY
def test_the_template_offers_exactly_what_the_worker_honours(
    server: RunningServer, workers: Workers, tmp_path: Path
) -> None:
    shown = server.cli("work-pool", "get-default-base-job-template", "--type", "process")
    template = json.loads(shown.stdout)
    assert set(template["variables"]["properties"]) == HONOURED
    assert set(template["job_configuration"]) == HONOURED

    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    quiet_file, loud_file = tmp_path / "quiet.json", tmp_path / "loud.json"
    with server.client() as client:
        make_pool(client)
        quiet = make_deployment(
            client,
            name="quiet",
            job_variables={
                "command": shlex.join([sys.executable, "-c", PROBE, str(quiet_file)]),
                "working_dir": str(workdir),
                "env": {"PROBE_VAR": "given"},
                "stream_output": False,
            },
        )
        loud = make_deployment(
            client,
            name="loud",
            job_variables={"command": shlex.join([sys.executable, "-c", PROBE, str(loud_file)])},
        )
        quiet_run, loud_run = trigger(client, quiet), trigger(client, loud)
        worker = workers.start("--pool", "pool", "--run-once", wait=False)
        assert worker.wait() == 0, worker.output()
        for run in (quiet_run, loud_run):
            wait_for_state(client, run.id, {"CRASHED"})  # the probe reports no final state

    assert json.loads(quiet_file.read_text()) == {"cwd": str(workdir), "env": "given"}
    assert json.loads(loud_file.read_text())["env"] is None
    output = worker.output()
    assert f"{loud_run.name} | probe says hi" in output
    assert f"{quiet_run.name} | probe says hi" not in output


@SQLITE_ONLY
@pytest.mark.parametrize("variable", [{"labels": {"team": "a"}}, {"name": "my-process"}])
def test_variables_the_worker_would_ignore_are_refused(
    server: RunningServer, variable: dict[str, object]
) -> None:
    with server.http() as http:
        http.post("/work-pools", json={"name": "pool", "type": "process"})
        body = {"flow_name": "f", "name": "d", "work_pool_name": "pool"}
        answer = http.post("/deployments", json=body | {"job_variables": variable})
        assert answer.status_code == 422, answer.text
        assert "unknown job variable" in answer.json()["detail"]
