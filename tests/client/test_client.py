"""The clients against a real server: each call's answer, and errors as exceptions."""

from __future__ import annotations

import uuid

import pytest

from _support import RunningServer
from dockyard import schemas
from dockyard.client import AsyncClient, Client
from dockyard.exceptions import Conflict, InvalidInput, NotFound, Unauthorized

StateType = schemas.StateType


def connect(server: RunningServer, api_key: str | None = None) -> Client:
    return Client(api_url=server.api_url, api_key=api_key or server.api_key or "")


def test_health_and_version(server: RunningServer) -> None:
    with connect(server) as client:
        health = client.health()
        assert health["status"] == "ok" and health["database"] == "ok", health
        version = client.check_compatible()
    assert version.api_version == schemas.API_VERSION


def test_work_pool_lifecycle(server: RunningServer) -> None:
    with connect(server) as client:
        pool = client.create_work_pool(schemas.WorkPoolCreate(name="pool-a", type="process"))
        assert pool.status == schemas.PoolStatus.NOT_READY
        assert [q.name for q in client.list_work_queues("pool-a")] == ["default"]
        assert client.pause_work_pool("pool-a").status == schemas.PoolStatus.PAUSED
        assert client.resume_work_pool("pool-a").paused is False
        update = schemas.WorkPoolUpdate(concurrency_limit=2)
        assert client.update_work_pool("pool-a", update).concurrency_limit == 2
        cleared = client.update_work_pool(
            "pool-a", schemas.WorkPoolUpdate(clear_concurrency_limit=True)
        )
        assert cleared.concurrency_limit is None
        assert "pool-a" in [p.name for p in client.list_work_pools()]
        client.delete_work_pool("pool-a")
        with pytest.raises(NotFound, match="pool-a"):
            client.read_work_pool("pool-a")


def test_duplicate_pool_is_a_conflict(server: RunningServer) -> None:
    with connect(server) as client:
        client.create_work_pool(schemas.WorkPoolCreate(name="twice", type="process"))
        with pytest.raises(Conflict):
            client.create_work_pool(schemas.WorkPoolCreate(name="twice", type="process"))


def test_refused_value_names_the_field(server: RunningServer) -> None:
    # model_construct skips client-side validation, so the server is the one refusing
    bad = schemas.WorkPoolCreate.model_construct(name="has space", type="process")
    with connect(server) as client, pytest.raises(InvalidInput) as raised:
        client.create_work_pool(bad)
    assert raised.value.field == "name"
    assert "name" in str(raised.value)


def test_work_queue_lifecycle(server: RunningServer) -> None:
    with connect(server) as client:
        client.create_work_pool(schemas.WorkPoolCreate(name="pool-q", type="process"))
        queue = client.create_work_queue("pool-q", schemas.WorkQueueCreate(name="fast", priority=1))
        assert queue.work_pool_name == "pool-q"
        assert client.list_work_queues("pool-q")[0].name == "fast"
        assert client.pause_work_queue("pool-q", "fast").paused is True
        assert client.resume_work_queue("pool-q", "fast").paused is False
        update = schemas.WorkQueueUpdate(concurrency_limit=4)
        assert client.update_work_queue("pool-q", "fast", update).concurrency_limit == 4
        client.delete_work_queue("pool-q", "fast")
        with pytest.raises(NotFound):
            client.read_work_queue("pool-q", "fast")


def test_deployment_by_name_suggests_the_flows_deployments(server: RunningServer) -> None:
    with connect(server) as client:
        created = client.upsert_deployment(
            schemas.DeploymentCreate(flow_name="get-repo-info", name="my-first-deployment")
        )
        found = client.read_deployment_by_name("get_repo_info/my-first-deployment")
        assert found.id == created.id
        with pytest.raises(NotFound) as raised:
            client.read_deployment_by_name("get_repo_info/my-deployment")
    assert raised.value.suggestions == ["get-repo-info/my-first-deployment"]


def test_refused_transition_keeps_current_state(server: RunningServer) -> None:
    with connect(server) as client:
        deployment = client.upsert_deployment(
            schemas.DeploymentCreate(flow_name="etl", name="nightly")
        )
        run = client.create_deployment_run(deployment.id, schemas.DeploymentRunCreate())
        assert run.state == StateType.SCHEDULED
        refused = schemas.StateTransition(state=StateType.COMPLETED)
        with pytest.raises(Conflict) as raised:
            client.set_flow_run_state(run.id, refused)
        assert raised.value.current_state == "SCHEDULED"
        assert client.cancel_flow_run(run.id).state == StateType.CANCELLED


def test_run_logs_and_states(server: RunningServer) -> None:
    with connect(server) as client:
        run = client.create_flow_run(schemas.FlowRunCreate(flow_name="etl", name="direct"))
        assert run.state == StateType.RUNNING
        lines = [schemas.LogCreate(flow_run_id=run.id, message=f"line {i}") for i in range(5)]
        assert client.create_logs(lines) == 5
        first = client.read_logs(flow_run_id=run.id, limit=2)
        rest = client.read_logs(flow_run_id=run.id, after_id=first[-1].id)
        assert [log.message for log in first + rest] == [f"line {i}" for i in range(5)]
        done = schemas.StateTransition(state=StateType.COMPLETED, lease_token=run.lease_token)
        assert client.set_flow_run_state(run.id, done).state == StateType.COMPLETED
        history = [state.type for state in client.read_flow_run_states(run.id)]
        assert history == [StateType.RUNNING, StateType.COMPLETED]
        listed = client.list_flow_runs(flow_name="etl", state=["completed"])
        assert [r.id for r in listed] == [run.id]


def test_task_runs(server: RunningServer) -> None:
    with connect(server) as client:
        run = client.create_flow_run(schemas.FlowRunCreate(flow_name="etl"))
        record = schemas.TaskRunRecord(
            id=uuid.uuid4(), flow_run_id=run.id, name="extract", state=StateType.COMPLETED
        )
        assert client.create_task_runs([record]) == 1
        assert client.read_task_run(record.id).name == "extract"
        assert [t.id for t in client.list_task_runs(flow_run_id=run.id)] == [record.id]


@pytest.mark.parametrize(
    "server", [{"DOCKYARD_SERVER_API_KEY": "s3cret-key-of-the-client-tests"}], indirect=True
)
def test_api_key(server: RunningServer) -> None:
    with connect(server, api_key="wrong") as client, pytest.raises(Unauthorized):
        client.list_work_pools()
    with connect(server, api_key="s3cret-key-of-the-client-tests") as client:
        assert client.list_work_pools() == []


async def test_async_client(server: RunningServer) -> None:
    async with AsyncClient(api_url=server.api_url, api_key="") as client:
        await client.check_compatible()
        pool = await client.create_work_pool(
            schemas.WorkPoolCreate(name="async-pool", type="process")
        )
        assert (await client.read_work_pool("async-pool")).id == pool.id
        with pytest.raises(NotFound):
            await client.read_work_pool("missing")
