"""Dot segments in a request's path never reach another resource.

The requests are sent as raw bytes: an HTTP client library would resolve ``..`` itself before
sending, and the point is what the server does with a path that a proxy, a script or an old
client passes on as it is.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from _support import RunningServer

# (method, raw path): each would act on pool P or its "default" queue if the server resolved
# dot segments, or decoded "%2E" and then resolved them.
HOSTILE = [
    ("DELETE", "/api/work-pools/P/queues/.."),
    ("DELETE", "/api/work-pools/P/queues/%2E%2E"),
    ("DELETE", "/api/work-pools/P/queues/%2e%2e"),
    ("DELETE", "/api/work-pools/P/queues/.%2E"),
    ("DELETE", "/api/work-pools/P/queues/."),
    ("DELETE", "/api/work-pools/P/queues/%2E"),
    ("DELETE", "/api/work-pools/P/queues/./"),
    ("DELETE", "/api/work-pools/P/queues/../"),
    ("DELETE", "/api/work-pools/P/queues/..%2F"),
    ("DELETE", "/api/work-pools/P/queues/%2E%2E%2F%2E%2E%2Fwork-pools%2FP"),
    ("DELETE", "/api/work-pools/P/queues/x/../../../work-pools/P"),
    ("DELETE", "/api/work-pools/P/queues/default/.."),
    ("DELETE", "/api/work-pools/%2E%2E/queues/x"),
    ("DELETE", "/api/work-pools/../work-pools/P"),
    ("DELETE", "/api/work-pools/P/workers/.."),
    ("POST", "/api/work-pools/P/queues/../pause"),
    ("POST", "/api/work-pools/P/queues/%2E%2E/pause"),
    ("POST", "/api/work-pools/P/queues/./pause"),
    ("POST", "/api/work-pools/P/queues/default/../../pause"),
    ("POST", "/api/work-pools/Q/../P/pause"),
    ("PATCH", "/api/work-pools/P/queues/.."),
    ("PATCH", "/api/work-pools/P/queues/%2E%2E"),
    ("PATCH", "/api/work-pools/P/queues/default/.."),
    # and text no database can compare is no name either
    ("DELETE", "/api/work-pools/P/queues/%00"),
    ("POST", "/api/work-pools/%00/pause"),
]


def send(server: RunningServer, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    """Send ``path`` byte for byte, as no client library would."""
    where = urlsplit(server.url)
    connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=30)
    try:
        headers = {**server.headers, "Content-Type": "application/json"}
        payload = None if body is None else json.dumps(body)
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_dot_segments_never_reach_the_pool(server: RunningServer) -> None:
    with server.http() as http:
        http.post("/work-pools", json={"name": "P", "type": "process"}).raise_for_status()
        http.post("/work-pools", json={"name": "Q", "type": "process"}).raise_for_status()
        before = {name: http.get(f"/work-pools/{name}").json() for name in ("P", "Q")}
        queues = http.get("/work-pools/P/queues").json()

    answers = {}
    for method, path in HOSTILE:
        status, body = send(server, method, path, {"paused": True} if method == "PATCH" else None)
        answers[f"{method} {path}"] = status
        assert status in (404, 422), (method, path, status, body)

    with server.http() as http:
        after = {name: http.get(f"/work-pools/{name}").json() for name in ("P", "Q")}
        assert after == before, answers
        assert http.get("/work-pools/P/queues").json() == queues
    # the same raw requests do reach the routes they name
    assert send(server, "POST", "/api/work-pools/P/pause")[0] == 200
    assert send(server, "DELETE", "/api/work-pools/Q")[0] == 204
