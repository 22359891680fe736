"""A property of the client: a name the server accepts round-trips through every call that
takes it and reaches nothing else; a name it refuses reaches nothing at all.

One server for the whole property (per database); each example cleans up what it made.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings

from _support import RunningServer
from _support.names import BOUNDED, NAMES, snapshot
from dockyard import _names, schemas
from dockyard.client import Client
from dockyard.client import _calls as c
from dockyard.client import _dispatch_calls as dc
from dockyard.client import _pool_calls as pc
from dockyard.client._core import Call
from dockyard.client._parse import seg
from dockyard.exceptions import DockyardError, NotFound

S = schemas
API = "http://dockyard.test/api"
BYSTANDER_QUEUE = "bystander-queue"


def test_seg_encodes_dots_and_refuses_what_names_nothing() -> None:
    assert seg("..") == "%2E%2E"
    assert seg(".") == "%2E"
    assert seg("a b?x=1#f") == "a%20b%3Fx%3D1%23f"
    assert seg(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    with pytest.raises(DockyardError, match="empty"):
        seg("")
    with pytest.raises(DockyardError, match="never contain '/'"):
        seg("a/b")


# every call that puts a name in its path, with that name
NAMED_CALLS: list[Callable[[str], Call[Any]]] = [
    lambda n: pc.read_worker_type(n),
    lambda n: pc.read_work_pool(n),
    lambda n: pc.update_work_pool(n, S.WorkPoolUpdate(paused=True)),
    lambda n: pc.delete_work_pool(n),
    lambda n: pc.pause_work_pool(n),
    lambda n: pc.resume_work_pool(n),
    lambda n: pc.create_work_queue(n, S.WorkQueueCreate(name="q")),
    lambda n: pc.list_work_queues(n),
    lambda n: pc.read_work_queue("P", n),
    lambda n: pc.update_work_queue("P", n, S.WorkQueueUpdate(paused=True)),
    lambda n: pc.delete_work_queue("P", n),
    lambda n: pc.pause_work_queue("P", n),
    lambda n: pc.resume_work_queue("P", n),
    lambda n: pc.read_work_queue(n, "q"),
    lambda n: pc.list_workers(n),
    lambda n: pc.delete_worker("P", n),
    lambda n: pc.delete_worker(n, "w"),
    lambda n: c.read_flow_by_name(n),
    lambda n: c.read_deployment_by_name(f"f/{n}"),
    lambda n: c.read_deployment_by_name(f"{n}/d"),
    lambda n: dc.preview_job_configuration(n),
]


@pytest.mark.parametrize("name", ["..", ".", "%2e%2e", "?x=1", "#frag"])
@pytest.mark.parametrize("make", NAMED_CALLS)
def test_a_name_is_one_segment_of_the_path_sent(
    make: Callable[[str], Call[Any]], name: str
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"detail": "not found"})

    call = make(name)
    transport = httpx.MockTransport(answer)
    with Client(api_url=API, transport=transport) as client, pytest.raises(NotFound):
        client.send(call)
    [request] = seen
    raw = request.url.raw_path.decode()
    assert raw == f"/api{call.path}" and not request.url.query  # nothing resolved or split off
    segments = raw.split("/")
    assert "." not in segments and ".." not in segments
    assert seg(name) in segments


def setup_bystanders(client: Client) -> None:
    """Pool P (queues default and bystander-queue) with a deployment, and pool W for workers."""
    client.create_work_pool(S.WorkPoolCreate(name="P", type="process"))
    client.create_work_queue("P", S.WorkQueueCreate(name=BYSTANDER_QUEUE))
    client.create_work_pool(S.WorkPoolCreate(name="W", type="process"))
    client.upsert_deployment(S.DeploymentCreate(flow_name="f", name="d", work_pool_name="P"))


def queue_round_trip(client: Client, name: str) -> None:
    assert client.read_work_queue("P", name).name == name
    assert client.pause_work_queue("P", name).paused is True
    assert client.resume_work_queue("P", name).paused is False
    assert client.update_work_queue("P", name, S.WorkQueueUpdate(priority=7)).priority == 7
    assert name in [q.name for q in client.list_work_queues("P")]
    client.delete_work_queue("P", name)
    with pytest.raises(NotFound):
        client.read_work_queue("P", name)


def deployment_round_trip(client: Client, name: str) -> None:
    created = client.upsert_deployment(
        S.DeploymentCreate(flow_name=name, name=name, work_pool_name="P", work_queue_name="default")
    )
    assert (created.flow_name, created.name) == (name, name)
    assert client.read_deployment_by_name(f"{name}/{name}").id == created.id
    run = client.create_deployment_run(created.id, S.DeploymentRunCreate(name=name))
    assert client.read_flow_run(run.id).name == name
    flow = client.read_flow_by_name(name)
    assert flow.name == name
    assert [f.id for f in client.list_flows(name=name)] == [flow.id]
    client.delete_flow(flow.id)  # its deployment and runs go with it
    with pytest.raises(NotFound):
        client.read_deployment_by_name(f"{name}/{name}")


def worker_round_trip(client: Client, name: str) -> None:
    client.heartbeat(S.WorkerHeartbeat(name=name, work_pool_name="W"))
    assert [w.name for w in client.list_workers("W")] == [name]
    client.delete_worker("W", name)
    assert client.list_workers("W") == []


def pool_round_trip(client: Client, name: str) -> None:
    client.create_work_pool(S.WorkPoolCreate(name=name, type="process"))
    assert client.read_work_pool(name).name == name
    assert client.pause_work_pool(name).paused is True
    assert client.resume_work_pool(name).paused is False
    update = S.WorkPoolUpdate(description="round trip")
    assert client.update_work_pool(name, update).description == "round trip"
    assert [q.name for q in client.list_work_queues(name)] == ["default"]
    client.delete_work_pool(name)
    with pytest.raises(NotFound):
        client.read_work_pool(name)


def lookups_reach_nothing(client: Client, name: str) -> None:
    """Every call that looks ``name`` up fails: no such object, or no such name at all."""
    for call in (
        lambda: client.read_work_queue("P", name),
        lambda: client.pause_work_queue("P", name),
        lambda: client.update_work_queue("P", name, S.WorkQueueUpdate(concurrency_limit=0)),
        lambda: client.delete_work_queue("P", name),
        lambda: client.read_work_pool(name),
        lambda: client.pause_work_pool(name),
        lambda: client.delete_work_pool(name),
        lambda: client.read_deployment_by_name(f"f/{name}"),
        lambda: client.read_deployment_by_name(f"{name}/d"),
        lambda: client.delete_worker("W", name),
    ):
        with pytest.raises(DockyardError):
            call()


@pytest.mark.slow
def test_any_name_round_trips_or_reaches_nothing(server: RunningServer) -> None:
    with server.http() as http, server.client() as client:
        setup_bystanders(client)
        before = snapshot(server)

        @settings(BOUNDED, max_examples=30)
        @given(name=NAMES)
        def check(name: str) -> None:
            # the server decides, from the JSON the client would send
            answer = http.post("/work-pools/P/queues", json={"name": name})
            assert answer.status_code in (201, 409, 422), answer.text
            accepted = answer.status_code != 422
            assert accepted == (_names.name_problem(name) is None), answer.text
            if answer.status_code == 422:
                assert answer.json()["field"] == "name"
                lookups_reach_nothing(client, name)
            elif name not in ("default", BYSTANDER_QUEUE, "f"):
                queue_round_trip(client, name)
                deployment_round_trip(client, name)
                worker_round_trip(client, name)
                if _names.pool_name_problem(name) is None and name not in ("P", "W"):
                    pool_round_trip(client, name)
            assert snapshot(server) == before

        check()
