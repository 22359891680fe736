"""Every write the clients send says it is JSON, a write without a body (``/pause``) too:
the API refuses a write whose content type is anything else."""

from __future__ import annotations

import httpx
import pytest

from dockyard.client import Client
from dockyard.client._core import Call
from dockyard.client._parse import nothing
from dockyard.sdk.transport import LeanTransport

API = "http://dockyard.test/api"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("body", [None, {"paused": True}])
def test_writes_are_sent_as_json(method: str, body: object) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    with Client(api_url=API, api_key="", transport=httpx.MockTransport(answer)) as client:
        client.send(Call(method, "/work-pools/p/pause", nothing, body=body))
        client.send(Call("GET", "/work-pools", nothing))
    write, read = seen
    assert write.headers["content-type"] == "application/json"
    assert "content-type" not in read.headers


def test_the_engine_transport_sends_writes_as_json() -> None:
    transport = LeanTransport(API, None)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        head = transport._head(method, "/work-pools/p/pause", 0)
        assert b"\r\nContent-Type: application/json\r\n" in head, method
