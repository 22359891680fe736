"""``flow.deploy(..., triggers=[DeploymentEventTrigger(...)])``: the deployment runs when the
trigger's events come (here: another deployment's run completing); deploying again replaces
its triggers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from deploy_support import run_python, write

from _support import RunningServer, wait_until
from dockyard import flow
from dockyard.events import DeploymentEventTrigger

SCRIPT = """\
import json, sys

from dockyard import flow
from dockyard.events import DeploymentEventTrigger


@flow
def upstream() -> None:
    pass


@flow
def downstream(table: str = "all") -> None:
    print(table)


if __name__ == "__main__":
    with_trigger = json.loads(sys.argv[1])
    upstream.deploy("upstream-deployment", work_pool_name="pool")
    triggers = [
        DeploymentEventTrigger(
            expect={"dockyard.flow-run.Completed"},
            match_related={
                "dockyard.resource.role": "deployment",
                "dockyard.resource.name": "upstream-deployment",
            },
            parameters={"table": "orders"},
        )
    ]
    chosen = triggers if with_trigger else []
    downstream.deploy("after-upstream", work_pool_name="pool", triggers=chosen)
"""


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_deployment_trigger_runs_it_after_another_completes(
    server: RunningServer, tmp_path: Path
) -> None:
    script = write(tmp_path / "project" / "pipeline.py", SCRIPT)
    with server.http() as http:
        assert http.post("/work-pools", json={"name": "pool", "type": "process"}).status_code == 201
        run_python(script, server.env, json.dumps(True), cwd=tmp_path)
        deployments = {d["name"]: d["id"] for d in http.get("/deployments").json()}
        [automation] = http.get("/automations").json()
        assert automation["deployment_id"] == deployments["after-upstream"]
        assert automation["name"] == "downstream-after-upstream-trigger-1"
        assert automation["actions"][0]["deployment_id"] == deployments["after-upstream"]

        upstream_run = http.post(f"/deployments/{deployments['upstream-deployment']}/runs", json={})
        claim = {"worker_name": "w", "work_pool_name": "pool", "limit": 1}
        [claimed] = http.post("/workers/claim", json=claim).json()
        assert claimed["flow_run"]["id"] == upstream_run.json()["id"]
        for state in ("RUNNING", "COMPLETED"):
            body = {"state": state, "lease_token": claimed["lease_token"]}
            assert (
                http.post(f"/flow-runs/{claimed['flow_run']['id']}/state", json=body).status_code
                == 200
            )

        def downstream_runs() -> list[dict[str, object]]:
            params = {"deployment_id": deployments["after-upstream"]}
            return list(http.get("/flow-runs", params=params).json())

        [started] = wait_until(downstream_runs, 30, "the downstream run")
        assert started["parameters"] == {"table": "orders"}

        run_python(script, server.env, json.dumps(False), cwd=tmp_path)  # deployed again
        assert http.get("/automations").json() == []


def test_to_deployment_carries_the_triggers() -> None:
    @flow
    def local() -> None:
        pass

    trigger = DeploymentEventTrigger(expect={"acme.go"}, name="go", parameters={})
    described = local.to_deployment("d", triggers=[trigger])
    assert described.triggers == (trigger,)
    [automation] = described.trigger_automations(uuid.UUID(int=1))
    assert automation.name == "go" and automation.trigger.expect == ["acme.go"]
