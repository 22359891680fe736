"""What the server refuses before a route runs, and how it answers what no route expected:
bodies over the size limit (413), batches over their count (422), methods a path does not
take (405), and an unexpected error (a JSON 500 on a connection that stays open)."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from _support import free_port

LIMIT = 1 << 20  # the smallest limit the server takes


def _body(size: int) -> bytes:
    """A valid pool of ``size`` bytes of JSON (white space fills it: what the limit counts
    is bytes, whatever the fields hold)."""
    pool = b'{"name": "big", "type": "process"}'
    return pool + b" " * (size - len(pool))


def test_bodies_over_the_limit_are_refused_before_they_are_stored(server_factory) -> None:
    server = server_factory(DOCKYARD_SERVER_MAX_BODY_BYTES=str(LIMIT))
    with server.http() as http:
        json_type = {"Content-Type": "application/json"}
        declared = http.post("/work-pools", content=_body(LIMIT + 1), headers=json_type)
        assert declared.status_code == 413, declared.text
        assert f"{LIMIT} bytes" in declared.json()["detail"]
        assert "DOCKYARD_SERVER_MAX_BODY_BYTES" in declared.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked
            body = _body(3 * LIMIT)
            for start in range(0, len(body), 64 * 1024):
                yield body[start : start + 64 * 1024]

        chunked = http.post("/work-pools", content=chunks(), headers=json_type)
        assert chunked.status_code == 413, chunked.text
        assert http.get("/work-pools").json() == []

        # the same connection goes on, and a body at the limit is taken
        taken = http.post("/work-pools", content=_body(LIMIT), headers=json_type)
        assert taken.is_success, taken.text
        assert [p["name"] for p in http.get("/work-pools").json()] == ["big"]


def test_a_limit_below_what_our_clients_send_is_refused_at_start(cli) -> None:
    env = {**os.environ, "DOCKYARD_SERVER_MAX_BODY_BYTES": "1000"}
    refused = cli("server", "start", "--port", str(free_port()), env=env, check=1)
    assert "DOCKYARD_SERVER_MAX_BODY_BYTES" in refused.stderr
    assert str(LIMIT) in refused.stderr and "Traceback" not in refused.stderr


def test_batches_of_records_are_capped_by_count(server) -> None:
    with server.http() as http:
        run = http.post("/flow-runs", json={"flow_name": "f"}).json()
        line = {"flow_run_id": run["id"], "message": "hello"}
        full = http.post("/logs", json=[line] * 1000)
        assert full.status_code == 200 and full.json() == {"count": 1000}
        over = http.post("/logs", json=[line] * 1001)
        assert over.status_code == 422
        assert "1000" in over.json()["detail"] and over.json()["field"] == "body"
        task_run = {"flow_run_id": run["id"], "name": "t", "state": "COMPLETED"}
        tasks = [{**task_run, "id": f"00000000-0000-4000-8000-{i:012d}"} for i in range(1001)]
        assert http.post("/task-runs", json=tasks).status_code == 422
        assert http.post("/task-runs", json=tasks[:1000]).json() == {"count": 1000}
        assert len(http.get("/logs", params={"flow_run_id": run["id"]}).json()) == 1000


def test_methods_a_path_does_not_take_answer_405(server) -> None:
    with server.http() as http:
        for method in ("TRACE", "PUT", "DELETE", "OPTIONS", "BREW"):
            answer = http.request(method, "/work-pools")
            assert answer.status_code == 405, (method, answer.text)
            assert answer.headers["allow"] == "GET, POST"
            assert method in answer.json()["detail"]
        assert http.request("TRACE", "/work-pools/some-pool").headers["allow"] == (
            "DELETE, GET, PATCH"
        )
        unknown = http.get("/no-such-route")
        assert unknown.status_code == 404 and "/api/openapi.json" in unknown.json()["detail"]


# ---------------------------------------------------------------- an unexpected error


@pytest.fixture
def failing_server(tmp_path: Path) -> Iterator[str]:
    """The server's app, in this process (to give it a route that fails), under uvicorn."""
    import uvicorn
    from starlette.routing import Route

    from dockyard.server.app import create_app
    from dockyard.settings import Settings

    async def fails(_request: object) -> None:
        raise RuntimeError("secret internals")

    app = create_app(Settings(home=tmp_path))
    app.router.routes.insert(0, Route("/api/fails", fails))
    port = free_port()
    config = uvicorn.Config(app, port=port, log_level="warning", ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                pytest.fail("the server did not start", pytrace=False)
            threading.Event().wait(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def _exchange(stream: socket.socket, reader, path: str) -> tuple[int, dict[str, str], bytes]:
    stream.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    status = int(reader.readline().split()[1])
    headers = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, reader.read(int(headers.get("content-length", "0")))


def test_an_unexpected_error_answers_json_and_keeps_the_connection(
    failing_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = failing_server.split(":")
    with (
        caplog.at_level(logging.ERROR, logger="dockyard.server"),
        socket.create_connection((host, int(port)), timeout=30) as stream,
        stream.makefile("rb") as reader,
    ):
        status, headers, body = _exchange(stream, reader, "/api/fails")
        assert status == 500
        assert headers["content-type"] == "application/json"
        assert headers.get("connection", "") != "close"
        detail = json.loads(body)["detail"]
        assert "bug" in detail and "log" in detail
        assert "secret internals" not in body.decode() and "RuntimeError" not in body.decode()
        # the next request goes over the same connection
        status, _, body = _exchange(stream, reader, "/api/health")
        assert status == 200 and json.loads(body)["status"] == "ok"
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "secret internals" in str(logged[0].exc_info[1])
