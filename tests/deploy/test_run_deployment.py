"""``dockyard.deployments.run_deployment`` from Python, and the waiting it shares with
``--watch``."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_support import FLOWS, Workers, write

from _support import RunningServer
from dockyard import schemas
from dockyard.deployments import run_deployment
from dockyard.exceptions import DockyardError, NotFound
from dockyard.sdk.deploy.waiting import is_final, wait_for_run


@pytest.fixture
def deployed(server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``get-repo-info/d`` on pool ``pool`` (no worker yet); the SDK points at ``server``."""
    monkeypatch.setenv("DOCKYARD_API_URL", server.api_url)
    write(tmp_path / "flows.py", FLOWS)
    with server.client() as client:
        client.create_work_pool(schemas.WorkPoolCreate(name="pool", type="process"))
        client.upsert_deployment(
            schemas.DeploymentCreate(
                flow_name="get-repo-info",
                name="d",
                entrypoint="flows.py:get_repo_info",
                path=str(tmp_path),
                work_pool_name="pool",
                parameters={"stars": 1},
            )
        )
    return "get-repo-info/d"


def test_timeout_zero_returns_the_new_run_at_once(deployed: str) -> None:
    run = run_deployment(deployed, parameters={"repo_name": "a/b"}, timeout=0)
    assert run.state == "SCHEDULED"
    assert run.parameters == {"stars": 1, "repo_name": "a/b"}
    assert run.deployment_name == "d"


def test_a_timeout_returns_the_run_as_it_is_then(deployed: str) -> None:
    run = run_deployment(deployed, timeout=0.3)
    assert run.state == "SCHEDULED" and not is_final(run)


def test_no_timeout_waits_until_the_run_is_final(
    deployed: str, workers: Workers, server: RunningServer
) -> None:
    workers.start("pool")
    run = run_deployment(
        "get_repo_info/d", parameters={"repo_name": "x/y"}, job_variables={"env": {"A": "1"}}
    )
    assert (run.state, run.result) == ("COMPLETED", "x/y")
    assert run.job_variables == {"env": {"A": "1"}}
    again = run_deployment(run.deployment_id or "", timeout=None)
    assert again.state == "COMPLETED" and again.id != run.id


def test_unknown_deployments_are_answered_with_suggestions(deployed: str) -> None:
    with pytest.raises(NotFound, match="did you mean: get-repo-info/d") as info:
        run_deployment("get_repo_info/nope", timeout=0)
    assert info.value.suggestions == ["get-repo-info/d"]
    with pytest.raises(DockyardError, match="FLOW/NAME"):
        run_deployment("no-slash", timeout=0)


def test_waiting_passes_states_and_logs_in_time_order(
    deployed: str, workers: Workers, server: RunningServer
) -> None:
    workers.start("pool")
    run = run_deployment(deployed, timeout=0)
    seen: list[str] = []

    def follow(events: list[schemas.State | schemas.Log]) -> None:
        for event in events:
            seen.append(str(event.type) if isinstance(event, schemas.State) else event.message)

    with server.client() as client:
        final = wait_for_run(client, run.id, follow=follow)
    assert final.state == "COMPLETED"
    assert seen[:3] == ["SCHEDULED", "PENDING", "RUNNING"]
    assert seen[-1] == "COMPLETED"
    assert "PrefectHQ/prefect has 1 stars" in seen
    assert seen.index("PrefectHQ/prefect has 1 stars") > seen.index("RUNNING")
