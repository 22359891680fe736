"""The engine imports only what a run needs: no HTTP client library, no pydantic."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from _support import RunningServer
from dockyard.schemas import DeploymentCreate, DeploymentRunCreate

HEAVY = ["httpx", "httpcore", "pydantic", "pydantic_core", "rich", "click", "dockyard.client"]

FLOW = """
from dockyard import flow, task

@task
def add(x: int, y: int) -> int:
    return x + y

@flow(log_prints=True)
def light(n: int = 2) -> int:
    print("adding")
    return sum(add.map(range(n), 1).result())
"""


def test_a_deployed_run_never_imports_the_client_or_pydantic(
    server: RunningServer, tmp_path: Path
) -> None:
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOW))
    with server.client() as client:
        deployment = client.upsert_deployment(
            DeploymentCreate(
                flow_name="light", name="d", entrypoint="flows.py:light", path=str(tmp_path)
            )
        )
        run = client.create_deployment_run(deployment.id, DeploymentRunCreate(parameters={"n": 3}))
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dockyard.engine", str(run.id)],
        env=server.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    heavy = sorted(m for m in imported if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert not heavy, f"the engine imported {', '.join(heavy)}"
    with server.client() as client:
        finished = client.read_flow_run(run.id)
        assert (finished.state, finished.result) == ("COMPLETED", 6)
        assert len(client.list_task_runs(flow_run_id=run.id)) == 3
        assert "adding" in [log.message for log in client.read_logs(flow_run_id=run.id)]
