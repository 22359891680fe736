"""What the schemathesis run (``test_api_schema.py``) found, each kept fixed on its own:

- every 422 has one body, ``ValidationErrorBody`` (a refusal by a route too, not only a
  body that does not fit its model), and the schema says so instead of FastAPI's own;
- the schema documents every status a route answers, with its body (``server/openapi.py``);
- a request's integers, numbers, flags and times are of the JSON type the schema says: no
  ``false`` for 0, no ``1`` for true, no number of seconds for a time.

The values are refused before any database is read, so these run on SQLite only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from _support import RunningServer

KEY = "truth-test-key-0123456789abcdef"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'dockyard.db'}"


def _operations(schema: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }


def _ref(answer: dict[str, Any]) -> str:
    return str(answer["content"]["application/json"]["schema"]["$ref"]).rsplit("/", 1)[-1]


def test_every_422_has_our_body_and_the_schema_says_so(server: RunningServer) -> None:
    with server.http() as http:
        schema = http.get("/openapi.json").json()
        refused_by_model = http.post("/work-pools", json={"name": "p"})
        refused_by_route = http.post("/work-pools", json={"name": "p", "type": "no-such"})
    for answer in (refused_by_model, refused_by_route):
        assert answer.status_code == 422, answer.text
        body = answer.json()
        assert isinstance(body["detail"], str) and body["field"]
        assert body["errors"] and {"field", "message"} <= set(body["errors"][0])
    assert refused_by_route.json()["errors"] == [
        {"field": "type", "message": refused_by_route.json()["detail"]}
    ]
    components = schema["components"]["schemas"]
    assert "HTTPValidationError" not in components
    assert components["ValidationErrorBody"]["required"] == ["detail", "field", "errors"]
    for (method, path), operation in _operations(schema).items():
        if "422" in operation["responses"]:
            assert _ref(operation["responses"]["422"]) == "ValidationErrorBody", (method, path)


def test_the_schema_documents_every_status_a_route_answers(server: RunningServer) -> None:
    with server.http() as http:
        operations = _operations(http.get("/openapi.json").json())
    assert all(path.startswith("/api/") for _, path in operations), "the UI is not in it"
    for (method, path), operation in operations.items():
        answers = operation["responses"]
        assert {"400", "413"} <= set(answers), (method, path)
        assert ("403" in answers and "415" in answers) == (method != "GET"), (method, path)
        assert ("404" in answers) >= ("{" in path), (method, path)
        assert "401" not in answers and "security" not in operation
        for status, answer in answers.items():
            if status >= "400":
                assert _ref(answer) in ("ErrorBody", "ValidationErrorBody"), (method, path)
    assert set(operations["POST", "/api/work-pools"]["responses"]) >= {"201", "409", "422"}
    assert "200" not in operations["POST", "/api/work-pools"]["responses"]
    deleted = operations["DELETE", "/api/flows/{flow_id}"]["responses"]["204"]
    assert "content" not in deleted
    assert "409" in operations["POST", "/api/flow-runs/{run_id}/state"]["responses"]
    assert "404" in operations["POST", "/api/workers/claim"]["responses"]
    assert "422" in operations["GET", "/api/worker-types"]["responses"]  # its query is checked
    assert set(operations["GET", "/api/health"]["responses"]) == {"200", "400", "413"}


def test_with_a_key_the_schema_documents_401_and_the_key(server_factory: Any) -> None:
    server = server_factory(DOCKYARD_SERVER_API_KEY=KEY)
    with server.http() as http:
        schema = http.get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for (method, path), operation in _operations(schema).items():
        if path in ("/api/health", "/api/ready"):  # load balancers call them without a key
            assert "401" not in operation["responses"] and "security" not in operation
        else:
            assert _ref(operation["responses"]["401"]) == "ErrorBody", (method, path)
            assert operation["security"] == [{"apiKey": []}], (method, path)


TASK = "9b2f4d0e-5c1a-4e0b-8f7d-2a6c3e1b9d40"
# (path, body, the field refused): each body is refused, then taken once that field has a
# value of its right type (RIGHT_TYPES)
WRONG_TYPES: list[tuple[str, Any, str]] = [
    # a time given as a number (or as text of digits) was read as seconds since 1970
    ("/logs", [{"flow_run_id": "{run}", "message": "m", "timestamp": 0}], "0.timestamp"),
    ("/logs", [{"flow_run_id": "{run}", "message": "m", "timestamp": "1"}], "0.timestamp"),
    ("/deployments/{deployment}/runs", {"scheduled_start": 0}, "scheduled_start"),
    ("/deployments/{deployment}/schedules", {"interval": 60, "anchor_date": 5}, "anchor_date"),
    # a flag given as a number or as text, an integer given as a flag, a number as text
    ("/task-runs", [{"flow_run_id": "{run}", "cached": 1}], "0.cached"),
    ("/task-runs", [{"flow_run_id": "{run}", "attempts": False}], "0.attempts"),
    ("/work-pools/p/queues", {"name": "q1", "concurrency_limit": True}, "concurrency_limit"),
    ("/work-pools/p/queues", {"name": "q2", "paused": "true"}, "paused"),
    ("/workers/claim", {"worker_name": "w", "work_pool_name": "p", "wait": "1"}, "wait"),
    ("/deployments/{deployment}/schedules", {"interval": "60"}, "interval"),
]


def test_values_of_another_json_type_are_refused(server: RunningServer) -> None:
    with server.http() as http:
        http.post("/work-pools", json={"name": "p", "type": "process"}).raise_for_status()
        deployment = http.post("/deployments", json={"flow_name": "f", "name": "d"}).json()
        run = http.post("/flow-runs", json={"flow_name": "f"}).json()
        ids = {"run": run["id"], "deployment": deployment["id"]}
        for path, body, field in WRONG_TYPES:
            url = path.format(**ids)
            answer = http.post(url, json=_fill(body, ids))
            assert answer.status_code == 422, (path, body, answer.text)
            assert answer.json()["field"] == field, (path, body, answer.text)
            fixed = http.post(url, json=_fill(body, ids, right_type=field.rsplit(".", 1)[-1]))
            assert fixed.is_success, (path, body, fixed.text)


RIGHT_TYPES: dict[str, Any] = {
    "timestamp": "2030-01-31T09:00:00Z",
    "scheduled_start": "2030-01-31T09:00:00Z",
    "anchor_date": "2030-01-31T09:00:00",
    "cached": True,
    "attempts": 0,
    "concurrency_limit": 1,
    "paused": True,
    "wait": 0,
    "interval": 60.0,
}


def _fill(body: Any, ids: dict[str, str], right_type: str | None = None) -> Any:
    if isinstance(body, list):
        records = [_fill(item, ids, right_type) for item in body]
        if "cached" in body[0] or "attempts" in body[0]:  # a task run
            records = [{"id": TASK, "name": "t", "state": "COMPLETED", **r} for r in records]
        return records
    filled = {
        key: value.format(**ids) if isinstance(value, str) and "{" in value else value
        for key, value in body.items()
    }
    if right_type is not None:
        filled[right_type] = RIGHT_TYPES[right_type]
    return filled


def test_numbers_in_a_query_are_still_read_from_text(server: RunningServer) -> None:
    with server.http() as http:
        assert http.get("/logs", params={"after_id": "5", "min_level": "10"}).is_success
        assert http.get("/flows", params={"offset": "1", "limit": "2"}).is_success
        refused = http.get("/logs", params={"min_level": "ten"})
        assert refused.status_code == 422 and refused.json()["field"] == "min_level"
