"""The clients' requests, retries and error mapping, against ``httpx.MockTransport``.

These need no server: the transport answers what each test wants, and records what the
client sent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from _support import free_port
from dockyard import schemas
from dockyard.client import Client, RetryPolicy, _sync
from dockyard.exceptions import (
    ApiError,
    Conflict,
    DockyardError,
    IncompatibleServer,
    InvalidInput,
    NotFound,
    ServerError,
    ServerUnreachable,
    Unauthorized,
)

API = "http://dockyard.test/api"
NO_WAIT = RetryPolicy(backoff=0.0)
Handler = Callable[[httpx.Request], httpx.Response]

POOL = {
    "id": str(uuid.uuid4()),
    "name": "my-pool",
    "type": "process",
    "description": None,
    "base_job_template": {},
    "concurrency_limit": None,
    "paused": False,
    "status": "NOT_READY",
    "last_polled": None,
    "created": "2024-05-01T12:00:00Z",
}


class Recorder:
    """A transport handler answering from a list of responses (the last one repeats)."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def body(self, index: int = -1) -> object:
        return json.loads(self.requests[index].content)


def error(status: int, **body: object) -> httpx.Response:
    return httpx.Response(status, json={"detail": "it went wrong", **body})


@pytest.fixture
def client_for() -> Iterator[Callable[..., Client]]:
    opened: list[Client] = []

    def make(handler: Handler, retry: RetryPolicy = NO_WAIT) -> Client:
        transport = httpx.MockTransport(handler)
        client = Client(api_url=API, api_key="", retry=retry, transport=transport)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, Unauthorized),
        (403, Unauthorized),
        (404, NotFound),
        (409, Conflict),
        (422, InvalidInput),
        (400, ApiError),
        (500, ServerError),
    ],
)
def test_status_maps_to_exception(
    client_for: Callable[..., Client], status: int, kind: type
) -> None:
    client = client_for(Recorder(error(status)))
    with pytest.raises(kind) as raised:
        client.read_work_pool("my-pool")
    assert type(raised.value) is kind
    assert raised.value.status == status
    assert str(raised.value).startswith("it went wrong")


def test_message_is_detail_then_hint(client_for: Callable[..., Client]) -> None:
    hint = "create it with `dockyard work-pool create x --type process`"
    client = client_for(Recorder(error(404, hint=hint)))
    with pytest.raises(NotFound) as raised:
        client.read_work_pool("x")
    assert str(raised.value) == f"it went wrong\n{hint}"


def test_not_found_keeps_suggestions(client_for: Callable[..., Client]) -> None:
    client = client_for(Recorder(error(404, suggestions=["flow/a", "flow/b"])))
    with pytest.raises(NotFound) as raised:
        client.read_deployment_by_name("flow/c")
    assert raised.value.suggestions == ["flow/a", "flow/b"]


def test_conflict_keeps_current_state(client_for: Callable[..., Client]) -> None:
    client = client_for(Recorder(error(409, current_state="SCHEDULED")))
    transition = schemas.StateTransition(state=schemas.StateType.COMPLETED)
    with pytest.raises(Conflict) as raised:
        client.set_flow_run_state(uuid.uuid4(), transition)
    assert raised.value.current_state == "SCHEDULED"


def test_invalid_input_names_the_field(client_for: Callable[..., Client]) -> None:
    client = client_for(Recorder(error(422, field="concurrency_limit")))
    with pytest.raises(InvalidInput) as raised:
        client.read_work_pool("x")
    assert raised.value.field == "concurrency_limit"
    assert "concurrency_limit" in str(raised.value)


def test_framework_validation_answer_names_the_field(client_for: Callable[..., Client]) -> None:
    answer = httpx.Response(
        422, json={"detail": [{"loc": ["body", "priority"], "msg": "must be >= 1"}]}
    )
    client = client_for(Recorder(answer))
    with pytest.raises(InvalidInput) as raised:
        client.read_work_pool("x")
    assert raised.value.field == "priority"
    assert str(raised.value) == "invalid priority: must be >= 1"


def test_error_without_json_body(client_for: Callable[..., Client]) -> None:
    client = client_for(Recorder(httpx.Response(500, text="<html>oops</html>")))
    with pytest.raises(ServerError) as raised:
        client.read_work_pool("x")
    assert "HTTP 500" in str(raised.value)
    assert "oops" in str(raised.value)


def test_a_bare_status_phrase_names_the_request(client_for: Callable[..., Client]) -> None:
    client = client_for(Recorder(httpx.Response(404, json={"detail": "Not Found"})))
    with pytest.raises(NotFound) as raised:
        client.read_work_pool("x")
    assert str(raised.value) == "Not Found (GET /api/work-pools/x)"


def test_unauthorized_says_which_setting(client_for: Callable[..., Client]) -> None:
    client = client_for(Recorder(httpx.Response(401, json={"detail": "missing API key"})))
    with pytest.raises(Unauthorized, match="DOCKYARD_API_KEY"):
        client.list_work_pools()


def test_answer_not_matching_schema(client_for: Callable[..., Client]) -> None:
    client = client_for(Recorder(httpx.Response(200, json={"name": "only a name"})))
    with pytest.raises(IncompatibleServer, match="GET /work-pools/x"):
        client.read_work_pool("x")


def test_check_compatible(client_for: Callable[..., Client]) -> None:
    answer = httpx.Response(200, json={"server_version": "9.0.0", "api_version": "99"})
    client = client_for(Recorder(answer))
    with pytest.raises(IncompatibleServer) as raised:
        client.check_compatible()
    assert "99" in str(raised.value)
    assert f"API version {schemas.API_VERSION}" in str(raised.value)


# ---------------------------------------------------------------- retries


def test_gateway_errors_are_retried(client_for: Callable[..., Client]) -> None:
    recorder = Recorder(error(503), error(502), httpx.Response(200, json=POOL))
    pool = client_for(recorder).read_work_pool("my-pool")
    assert pool.name == "my-pool"
    assert len(recorder.requests) == 3


def test_retries_give_up_after_four_tries(client_for: Callable[..., Client]) -> None:
    recorder = Recorder(error(504))
    with pytest.raises(ServerError):
        client_for(recorder).read_work_pool("my-pool")
    assert len(recorder.requests) == 4


@pytest.mark.parametrize("status", [400, 404, 409, 422, 500])
def test_other_errors_are_not_retried(client_for: Callable[..., Client], status: int) -> None:
    recorder = Recorder(error(status))
    with pytest.raises(ApiError):
        client_for(recorder).read_work_pool("my-pool")
    assert len(recorder.requests) == 1


def test_creation_is_not_retried_after_a_gateway_error(client_for: Callable[..., Client]) -> None:
    recorder = Recorder(error(503), httpx.Response(201, json=POOL))
    with pytest.raises(ServerError):
        client_for(recorder).create_work_pool(schemas.WorkPoolCreate(name="p", type="process"))
    assert len(recorder.requests) == 1


def test_creation_is_retried_when_it_never_left(client_for: Callable[..., Client]) -> None:
    recorder = Recorder(httpx.ConnectError("refused"), httpx.Response(201, json=POOL))
    client = client_for(recorder)
    pool = client.create_work_pool(schemas.WorkPoolCreate(name="my-pool", type="process"))
    assert pool.name == "my-pool"
    assert len(recorder.requests) == 2


def test_creation_is_not_retried_once_maybe_sent(client_for: Callable[..., Client]) -> None:
    recorder = Recorder(httpx.ReadError("reset"), httpx.Response(200, json={"count": 1}))
    log = schemas.LogCreate(flow_run_id=uuid.uuid4(), message="hi")
    with pytest.raises(ServerUnreachable):
        client_for(recorder).create_logs([log])
    assert len(recorder.requests) == 1


def test_reads_are_retried_after_a_broken_connection(client_for: Callable[..., Client]) -> None:
    recorder = Recorder(httpx.RemoteProtocolError("gone"), httpx.Response(200, json=[POOL]))
    assert len(client_for(recorder).list_work_pools()) == 1
    assert len(recorder.requests) == 2


def test_backoff_doubles(
    monkeypatch: pytest.MonkeyPatch, client_for: Callable[..., Client]
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(_sync.time, "sleep", waits.append)
    recorder = Recorder(httpx.ConnectError("refused"))
    with pytest.raises(ServerUnreachable):
        client_for(recorder, retry=RetryPolicy()).list_work_pools()
    assert waits == [0.1, 0.2, 0.4]


def test_unreachable_server_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    with Client(api_url=url, retry=NO_WAIT) as client, pytest.raises(ServerUnreachable) as raised:
        client.health()
    assert raised.value.url == url
    assert url in str(raised.value)
    assert "dockyard server start" in str(raised.value)


def test_invalid_api_url() -> None:
    with pytest.raises(DockyardError, match="http://"):
        Client(api_url="localhost:4200")
