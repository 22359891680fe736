"""The lean transport every flow run talks to the server through, against a fake server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fake_http import Answer, FakeServer, Request

from _support import free_port
from dockyard import schemas
from dockyard.exceptions import (
    ApiError,
    Conflict,
    IncompatibleServer,
    InvalidInput,
    NotFound,
    ServerError,
    ServerUnreachable,
)
from dockyard.sdk import api, transport
from dockyard.sdk.engine import main
from dockyard.sdk.transport import LeanTransport


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setattr(transport, "BACKOFF", 0.0)
    server = FakeServer()
    yield server
    api.close_connections()
    server.close()


@pytest.fixture
def lean(fake: FakeServer) -> Iterator[LeanTransport]:
    """A transport to the fake server, closed after the test."""
    made = LeanTransport(fake.url, "k3y")
    yield made
    made.close()


def test_connections_are_kept_alive_and_shared(fake: FakeServer, lean: LeanTransport) -> None:
    for n in range(3):
        assert lean.post("/things", {"n": n}) == {"ok": True}
    assert fake.connections == 1
    assert [r.body for r in fake.requests] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert fake.requests[0].path == "/api/things"
    assert fake.requests[0].headers["authorization"] == "Bearer k3y"


def test_a_connection_the_server_closed_is_replaced_without_sending_twice(
    fake: FakeServer, lean: LeanTransport
) -> None:
    fake.answer = lambda request: Answer(200, {"n": len(fake.requests)}, close_after=True)
    answers = [lean.post("/logs", [], idempotent=False) for _ in range(3)]
    assert answers == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert len(fake.requests) == 3 and fake.connections == 3


def test_idle_connections_are_not_reused_after_a_while(
    fake: FakeServer, lean: LeanTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "IDLE_SECONDS", 0.0)
    lean.get("/a")
    lean.get("/b")
    assert fake.connections == 2


def test_query_parameters_and_chunked_answers(fake: FakeServer, lean: LeanTransport) -> None:
    fake.answer = lambda request: Answer(200, {"path": request.path}, chunked=True)
    answer = lean.get("/logs", {"flow_run_id": "x", "after_id": None, "state": ["A", "B"]})
    assert answer == {"path": "/api/logs?flow_run_id=x&state=A&state=B"}


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (
            422,
            {"detail": "work pool 'x' not found", "field": "work_pool_name", "hint": "create it"},
            InvalidInput,
            "invalid work_pool_name: work pool 'x' not found\ncreate it",
        ),
        (
            422,
            {"detail": [{"loc": ["body", "state"], "msg": "Input should be 'A'"}]},
            InvalidInput,
            "invalid state: Input should be 'A'",
        ),
        (404, {"detail": "gone", "suggestions": ["f/d"]}, NotFound, "gone"),
        (409, {"detail": "no", "current_state": "RUNNING"}, Conflict, "no"),
        (500, None, ServerError, "HTTP 500 answering GET /x\nthis is a bug in the server"),
        (400, {"detail": "Bad Request"}, ApiError, "Bad Request (GET /x)"),
    ],
)
def test_error_answers_raise_the_clients_exceptions(
    fake: FakeServer,
    lean: LeanTransport,
    status: int,
    body: object,
    error: type[Exception],
    message: str,
) -> None:
    fake.answer = lambda request: Answer(status, body)
    with pytest.raises(error) as info:
        lean.get("/x")
    assert str(info.value).startswith(message)
    if isinstance(info.value, NotFound):
        assert info.value.suggestions == ["f/d"]
    if isinstance(info.value, Conflict):
        assert info.value.current_state == "RUNNING"


def test_gateway_errors_are_retried_only_for_idempotent_calls(
    fake: FakeServer, lean: LeanTransport
) -> None:
    answers = iter([Answer(503), Answer(200, {"ok": 1})] * 2)
    fake.answer = lambda request: next(answers)
    assert lean.get("/x") == {"ok": 1}
    with pytest.raises(ServerError):
        lean.post("/logs", [], idempotent=False)
    assert len(fake.requests) == 3


def test_no_server_is_unreachable_after_the_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "BACKOFF", 0.0)
    lean = LeanTransport(f"http://127.0.0.1:{free_port()}/api", None, attempts=2)
    with pytest.raises(ServerUnreachable, match="Connection refused"):
        lean.get("/health")


def test_garbage_is_not_an_answer(fake: FakeServer, lean: LeanTransport) -> None:
    fake.answer = lambda request: Answer(raw=b"hello\r\n\r\n", close_after=True)
    with pytest.raises(ServerUnreachable, match="not an HTTP answer"):
        lean.request("GET", "/x", attempts=1)


def version_answer(api_version: str) -> Answer:
    return Answer(200, {"server_version": "9.9.9", "api_version": api_version})


def test_the_api_version_is_the_schemas_one() -> None:
    assert api.API_VERSION == schemas.API_VERSION


def test_an_incompatible_server_is_refused_with_both_versions(fake: FakeServer) -> None:
    fake.answer = lambda request: version_answer("999")
    with pytest.raises(IncompatibleServer) as info:
        api.ServerApi(fake.url, None).check_version()
    text = str(info.value)
    assert "speaks API version 999 (dockyard 9.9.9)" in text
    assert f"this process speaks API version {api.API_VERSION}" in text


def test_the_engine_refuses_an_incompatible_server_before_touching_the_run(
    fake: FakeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def answer(request: Request) -> Answer:
        return version_answer("999" if request.path == "/api/version" else api.API_VERSION)

    fake.answer = answer
    monkeypatch.setenv("DOCKYARD_API_URL", fake.url)
    assert main([str(uuid.uuid4())]) == 1
    assert "speaks API version 999" in capsys.readouterr().err
    assert [r.path for r in fake.requests] == ["/api/version"]
