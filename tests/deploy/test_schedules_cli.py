"""Schedules from deploy(), serve()'s to_deployment() and the CLI; pause/resume; --late."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path


def _deploy_script(tmp_path: Path, server, body: str) -> None:
    script = tmp_path / "flows.py"
    script.write_text(
        textwrap.dedent(
            """
            from datetime import timedelta
            from dockyard import flow

            @flow
            def nightly(x: int = 1):
                return x

            if __name__ == "__main__":
            """
        )
        + textwrap.indent(textwrap.dedent(body), "    ")
    )
    subprocess.run(
        [sys.executable, str(script)], env=server.env, cwd=tmp_path, check=True, timeout=120
    )


def test_deploy_sets_schedules_and_the_cli_manages_them(server, tmp_path: Path) -> None:
    server.cli("work-pool", "create", "pool", "--type", "process")
    _deploy_script(
        tmp_path,
        server,
        """
        nightly.deploy("d", "pool", cron="0 3 * * *", timezone="Europe/Paris",
                       interval=timedelta(hours=6), catchup="skip", max_lateness_seconds=600)
        """,
    )
    shown = json.loads(server.cli("deployment", "inspect", "nightly/d", "--json").stdout)
    kinds = sorted((s["cron"] or "", s["interval"] or 0) for s in shown["schedules"])
    assert kinds == [("", 21600.0), ("0 3 * * *", 0)]
    assert shown["catchup"] == "skip" and shown["max_lateness_seconds"] == 600

    listed = json.loads(server.cli("deployment", "schedule", "ls", "nightly/d", "--json").stdout)
    assert len(listed) == 2
    added = server.cli(
        "deployment", "schedule", "create", "nightly/d", "--rrule", "FREQ=WEEKLY", "--paused"
    )
    assert "Added schedule" in added.stdout
    schedule_id = added.stdout.strip().rsplit(" ", 1)[-1]
    assert (
        "active" in server.cli("deployment", "schedule", "resume", "nightly/d", schedule_id).stdout
    )
    assert (
        "paused" in server.cli("deployment", "schedule", "pause", "nightly/d", schedule_id).stdout
    )
    server.cli("deployment", "schedule", "delete", "nightly/d", schedule_id)
    table = server.cli("deployment", "schedule", "ls", "nightly/d").stdout
    assert "0 3 * * *" in table and "Europe/Paris" in table and schedule_id not in table

    bad = server.cli("deployment", "schedule", "create", "nightly/d", "--cron", "nope", check=1)
    assert "not a valid cron expression" in bad.stderr and "Traceback" not in bad.stderr

    assert "paused" in server.cli("deployment", "pause", "nightly/d").stdout
    assert json.loads(server.cli("deployment", "inspect", "nightly/d", "--json").stdout)["paused"]
    assert "resumed" in server.cli("deployment", "resume", "nightly/d").stdout

    # deploying again without schedules leaves it with none: the code is the source of truth
    _deploy_script(tmp_path, server, 'nightly.deploy("d", "pool")\n')
    again = json.loads(server.cli("deployment", "inspect", "nightly/d", "--json").stdout)
    assert again["schedules"] == []


def test_late_runs_are_listed(server) -> None:
    from dockyard import schemas

    with server.client() as client:
        client.create_work_pool(schemas.WorkPoolCreate(name="pool", type="process"))
        deployment = client.upsert_deployment(
            schemas.DeploymentCreate(flow_name="f", name="d", work_pool_name="pool")
        )
        past = schemas.DeploymentRunCreate(
            scheduled_start="2020-01-01T00:00:00Z"  # type: ignore[arg-type]
        )
        run = client.create_deployment_run(deployment.id, past)
    late = json.loads(server.cli("flow-run", "ls", "--late", "--json").stdout)
    assert [r["id"] for r in late] == [str(run.id)] and late[0]["late"] is True
    assert "LATE" in server.cli("flow-run", "ls").stdout


def test_an_image_needs_a_pool_with_an_image_variable(server, tmp_path: Path) -> None:
    server.cli("work-pool", "create", "pool", "--type", "process")
    script = tmp_path / "flows.py"
    script.write_text(
        "from dockyard import flow\n\n@flow\ndef f():\n    pass\n\n"
        'f.deploy("d", "pool", image="x:1", build=False, push=False)\n'
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        env=server.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "has no 'image' job variable" in result.stderr
    assert server.cli("deployment", "ls", "--json").stdout.strip() == "[]"


def test_too_frequent_schedules_are_refused_by_deploy_and_the_cli(server, tmp_path: Path) -> None:
    server.cli("work-pool", "create", "pool", "--type", "process")
    script = tmp_path / "flows.py"
    script.write_text(
        "from dockyard import flow\n\n@flow\ndef f():\n    pass\n\n"
        'f.deploy("d", "pool", interval=1)\n'
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        env=server.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "InvalidInput" in result.stderr and "schedules.interval" in result.stderr
    assert "minimum interval of 10 s; use 10 s or more" in result.stderr
    assert server.cli("deployment", "ls", "--json").stdout.strip() == "[]"

    _deploy_script(tmp_path, server, 'nightly.deploy("d", "pool", interval=10)\n')
    for option, value, says in [
        ("--interval", "5", "use 10 s or more"),
        ("--rrule", "FREQ=SECONDLY", "fires every 1 s"),
        ("--cron", "0 0 30 2 *", "no start time in the next 10 years"),
    ]:
        bad = server.cli("deployment", "schedule", "create", "nightly/d", option, value, check=1)
        assert says in bad.stderr and "Traceback" not in bad.stderr
    listed = json.loads(server.cli("deployment", "schedule", "ls", "nightly/d", "--json").stdout)
    assert [(s["interval"], s["error"]) for s in listed] == [(10.0, None)]
