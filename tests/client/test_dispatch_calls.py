"""The dispatch calls (claim, heartbeat, lease, preview) as the clients send them.

These need no server: ``httpx.MockTransport`` answers and records the requests. The calls
against a real server are exercised by ``tests/workers``.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from dockyard import schemas
from dockyard.client import AsyncClient, Client, RetryPolicy, _dispatch_calls
from dockyard.exceptions import Conflict, ServerUnreachable

API = "http://dockyard.test/api"


def recording(answer: httpx.Response) -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    return seen, httpx.MockTransport(handle)


def test_claim_waits_longer_than_its_long_poll() -> None:
    request = schemas.ClaimRequest(worker_name="w", work_pool_name="p", limit=3, wait=30.0)
    call = _dispatch_calls.claim(request)
    assert (call.method, call.path) == ("POST", "/workers/claim")
    assert call.timeout is not None and call.timeout > request.wait
    assert call.body["limit"] == 3 and call.body["wait"] == 30.0
    # a claim the server may have applied is never sent twice (its runs would be stranded)
    assert not call.idempotent


def test_claim_is_not_resent_after_a_broken_connection() -> None:
    attempts: list[httpx.Request] = []

    def broken(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ReadError("connection reset", request=request)

    transport = httpx.MockTransport(broken)
    with (
        Client(api_url=API, api_key="", retry=RetryPolicy(backoff=0.0), transport=transport) as c,
        pytest.raises(ServerUnreachable),
    ):
        c.claim(schemas.ClaimRequest(worker_name="w", work_pool_name="p"))
    assert len(attempts) == 1


def test_stale_lease_is_a_conflict() -> None:
    body = {"detail": "no longer leased", "current_state": "CRASHED"}
    seen, transport = recording(httpx.Response(409, json=body))
    run_id = uuid.uuid4()
    token = uuid.uuid4()
    with (
        Client(api_url=API, api_key="", transport=transport) as client,
        pytest.raises(Conflict) as raised,
    ):
        client.renew_lease(run_id, schemas.LeaseRenewal(lease_token=token))
    assert raised.value.current_state == "CRASHED"
    assert seen[0].url.path == f"/api/flow-runs/{run_id}/lease"
    assert json.loads(seen[0].content) == {"lease_token": str(token)}


def test_preview_names_the_deployment() -> None:
    seen, transport = recording(httpx.Response(200, json={"env": {}}))
    with Client(api_url=API, api_key="", transport=transport) as client:
        assert client.preview_job_configuration("my pool", "my-flow/d") == {"env": {}}
        client.preview_job_configuration("my pool")
    assert seen[0].url.raw_path.startswith(b"/api/work-pools/my%20pool/preview?")
    assert seen[0].url.params["deployment"] == "my-flow/d"
    assert "deployment" not in seen[1].url.params


async def test_async_heartbeat() -> None:
    worker_id, cancel = uuid.uuid4(), uuid.uuid4()
    answer = {"worker_id": str(worker_id), "cancel": [str(cancel)], "lost": []}
    seen, transport = recording(httpx.Response(200, json=answer))
    beat = schemas.WorkerHeartbeat(name="w", work_pool_name="p", run_ids=[cancel])
    async with AsyncClient(api_url=API, api_key="", transport=transport) as client:
        got = await client.heartbeat(beat)
    assert got.cancel == [cancel] and got.worker_id == worker_id
    assert seen[0].url.path == "/api/workers/heartbeat"
    assert json.loads(seen[0].content)["run_ids"] == [str(cancel)]
