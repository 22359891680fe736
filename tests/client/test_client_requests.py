"""What the clients send: URLs, headers, bodies and query strings, sync and async alike."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import uuid
from types import ModuleType

import httpx
import pytest

import dockyard.client
from dockyard import schemas
from dockyard.client import AsyncClient, Client, RetryPolicy, _async, _pool_calls, _sync
from dockyard.exceptions import NotFound, ServerError

API = "http://dockyard.test/api"
POOL = {
    "id": str(uuid.uuid4()),
    "name": "my pool",
    "type": "process",
    "description": None,
    "base_job_template": {},
    "concurrency_limit": 3,
    "paused": False,
    "status": "NOT_READY",
    "last_polled": None,
    "created": "2024-05-01T12:00:00Z",
}


class Seen:
    """Records requests and answers each with a fixed response."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def client(seen: Seen, api_key: str = "") -> Client:
    return Client(api_url=API, api_key=api_key, transport=httpx.MockTransport(seen))


def test_bearer_key_is_sent() -> None:
    seen = Seen(httpx.Response(200, json={"status": "ok"}))
    with client(seen, api_key="s3cret") as c:
        assert c.health() == {"status": "ok"}
    assert seen.last.headers["Authorization"] == "Bearer s3cret"
    assert seen.last.url == httpx.URL(f"{API}/health")


def test_no_key_no_header() -> None:
    seen = Seen(httpx.Response(200, json={"status": "ok"}))
    with client(seen) as c:
        c.health()
    assert "Authorization" not in seen.last.headers


def test_settings_give_url_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_API_URL", "http://elsewhere:9/api/")
    monkeypatch.setenv("DOCKYARD_API_KEY", "from-env")
    seen = Seen(httpx.Response(200, json={"status": "ok"}))
    with Client(transport=httpx.MockTransport(seen)) as c:
        assert c.api_url == "http://elsewhere:9/api"
        c.health()
    assert str(seen.last.url) == "http://elsewhere:9/api/health"
    assert seen.last.headers["Authorization"] == "Bearer from-env"


def test_update_sends_only_what_was_set() -> None:
    seen = Seen(httpx.Response(200, json=POOL))
    with client(seen) as c:
        pool = c.update_work_pool("my pool", schemas.WorkPoolUpdate(concurrency_limit=3))
    assert pool.concurrency_limit == 3
    assert seen.last.method == "PATCH"
    assert seen.last.url.raw_path == b"/api/work-pools/my%20pool"
    assert json.loads(seen.last.content) == {"concurrency_limit": 3}


def test_create_sends_every_field() -> None:
    seen = Seen(httpx.Response(201, json=POOL))
    with client(seen) as c:
        c.create_work_pool(schemas.WorkPoolCreate(name="p", type="process"))
    body = json.loads(seen.last.content)
    assert body["name"] == "p"
    assert body["paused"] is False
    assert "concurrency_limit" in body


def test_list_filters_become_query_parameters() -> None:
    seen = Seen(httpx.Response(200, json=[]))
    with client(seen) as c:
        assert c.list_flow_runs(flow_name="etl", state=["failed", "CRASHED"], limit=5) == []
    params = seen.last.url.params
    assert params.get_list("state") == ["FAILED", "CRASHED"]
    assert params["flow_name"] == "etl"
    assert params["limit"] == "5"
    assert "deployment_name" not in params


def test_deployment_by_name_splits_on_the_first_slash() -> None:
    seen = Seen(httpx.Response(404, json={"detail": "no", "suggestions": ["a/b"]}))
    with client(seen) as c, pytest.raises(NotFound):
        c.read_deployment_by_name("get_repo_info/my deployment")
    assert seen.last.url.raw_path == b"/api/deployments/name/get_repo_info/my%20deployment"
    with client(seen) as c, pytest.raises(ValueError, match="FLOW/NAME"):
        c.read_deployment_by_name("no-slash")


def test_ids_may_be_uuids_or_strings() -> None:
    run_id = uuid.uuid4()
    seen = Seen(httpx.Response(200, json=[]))
    with client(seen) as c:
        c.read_flow_run_states(run_id)
        c.read_flow_run_states(str(run_id))
    assert seen.requests[0].url == seen.requests[1].url
    assert seen.last.url.path == f"/api/flow-runs/{run_id}/states"


def test_delete_answers_none() -> None:
    seen = Seen(httpx.Response(204))
    with client(seen) as c:
        assert c.delete_work_queue("p", "q") is None
    assert seen.last.method == "DELETE"
    assert seen.last.url.path == "/api/work-pools/p/queues/q"


def test_counts() -> None:
    seen = Seen(httpx.Response(200, json={"count": 2}))
    logs = [schemas.LogCreate(flow_run_id=uuid.uuid4(), message=m) for m in "ab"]
    with client(seen) as c:
        assert c.create_logs(logs) == 2
    assert [entry["message"] for entry in json.loads(seen.last.content)] == ["a", "b"]


async def test_async_client_same_calls() -> None:
    seen = Seen(httpx.Response(200, json=[POOL]))
    transport = httpx.MockTransport(seen)
    async with AsyncClient(api_url=API, api_key="k", transport=transport) as c:
        pools = await c.list_work_pools(limit=10)
    assert pools[0].name == "my pool"
    assert seen.last.headers["Authorization"] == "Bearer k"
    assert seen.last.url.params["limit"] == "10"


async def test_async_client_retries_then_maps_errors() -> None:
    seen = Seen(httpx.Response(503, json={"detail": "down"}))
    transport = httpx.MockTransport(seen)
    retry = RetryPolicy(backoff=0.0)
    async with AsyncClient(api_url=API, api_key="", transport=transport, retry=retry) as c:
        with pytest.raises(ServerError, match="down"):
            await c.read_work_pool("x")
    assert len(seen.requests) == 4


def _endpoints(cls: type) -> set[str]:
    kinds = (_sync._Endpoint, _async._Endpoint)
    return {name for name, value in vars(cls).items() if isinstance(value, kinds)}


def _call_modules() -> list[ModuleType]:
    """Every module of call builders: ``dockyard.client._calls`` and ``_*_calls``."""
    return [
        importlib.import_module(f"dockyard.client.{info.name}")
        for info in pkgutil.iter_modules(dockyard.client.__path__)
        if info.name == "_calls" or info.name.endswith("_calls")
    ]


def test_both_clients_have_every_call() -> None:
    builders = {
        name
        for module in _call_modules()
        for name, value in vars(module).items()
        if inspect.isfunction(value)
        and value.__module__ == module.__name__
        and not name.startswith("_")
    }
    assert _endpoints(Client) == builders
    assert _endpoints(AsyncClient) == builders


def test_methods_keep_their_docs() -> None:
    assert Client.read_work_pool.__doc__ == _pool_calls.read_work_pool.__doc__
    with Client(api_url=API, api_key="") as c:
        assert c.list_flow_runs.__name__ == "list_flow_runs"
        assert "newest first" in (c.list_flow_runs.__doc__ or "")


def test_all_is_honest() -> None:
    assert sorted(dockyard.client.__all__) == sorted(set(dockyard.client.__all__))
    for name in dockyard.client.__all__:
        assert hasattr(dockyard.client, name)
