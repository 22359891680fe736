"""Every value the API takes has the bounds its storage holds, on SQLite and on PostgreSQL.

Each hostile value is sent as raw bytes (``NaN`` literals, ``"\\ud800"`` escapes, a lone
surrogate's own bytes) to every route that stores it: the answer is 422 naming the field,
and nothing was stored. One server per database serves every case of this module; a
traceback it writes fails the case that caused it.
"""

from __future__ import annotations

import json
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from _support import RunningServer, ServerFactory
from dockyard.schemas import INT32_MAX, JSON_MAX_DEPTH, TAG_MAX_LENGTH, TEXT_MAX_LENGTH

# ---------------------------------------------------------------- the hostile values

OVER_INT32 = {"2**31": str(2**31), "2**63": str(2**63)}
NOT_FINITE = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity", "1e400": "1e400"}
INTEGERS = {**OVER_INT32, "NaN": "NaN", "Infinity": "Infinity"}
NEGATIVE = {"-1": "-1"}
TEXT = {
    "NUL": '"a\\u0000b"',
    "surrogate": '"a\\ud800b"',
    "low surrogate": '"\\udfff"',
    # the three bytes of U+D800 as they are (CESU-8), not an escape
    "surrogate bytes": '"a\ud800b"',
}
FREE_JSON = {
    "NaN": '{"x": NaN}',
    "Infinity": '{"x": [Infinity]}',
    "-Infinity": '{"x": {"y": -Infinity}}',
    "1e400": '{"x": 1e400}',
    "NUL": '{"x": "a\\u0000"}',
    "NUL key": '{"a\\u0000": 1}',
    "surrogate": '{"x": ["\\ud800"]}',
    "surrogate key": '{"\\udc00": 1}',
    "too deep": '{"x": ' + "[" * JSON_MAX_DEPTH + "]" * JSON_MAX_DEPTH + "}",
}
TIMES = {
    "past year 9999": '"9999-12-31T23:59:59-14:00"',
    "before year 1": '"0001-01-01T00:00:00+14:00"',
    "without an offset": '"2031-05-01T12:00:00"',
}


def too_long(limit: int) -> dict[str, str]:
    return {f"{limit + 1} characters": json.dumps("x" * (limit + 1))}


def long_text() -> dict[str, str]:
    return {**TEXT, **too_long(TEXT_MAX_LENGTH)}


def short_text(limit: int) -> dict[str, str]:
    return {**TEXT, **too_long(limit)}


def listed(values: dict[str, str]) -> dict[str, str]:
    """The values inside a list (tags): the field named is the item's, ``tags.0``."""
    return {name: f"[{raw}]" for name, raw in values.items()}


# ---------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """One request: ``body`` is raw JSON text (``$run``, ``$token``, ``$dep``, ``$new``
    stand for the world's ids and a fresh one), or None for a request without a body."""

    id: str
    method: str
    path: str
    body: str | None
    field: str


def fields(
    method: str,
    path: str,
    base: dict[str, Any],
    table: dict[str, dict[str, str]],
    *,
    batch: bool = False,
    inside: str = "",
) -> list[Case]:
    """One case per (field, value): ``base`` with ``field`` set to the raw value.

    A key ``tags.0`` sets ``tags`` and expects ``tags.0`` named (values made by
    :func:`listed`). ``batch``: the body is a list of one such object (task runs, logs).
    ``inside``: the field sits in a list of objects under this key (``schedules``).
    """
    cases = []
    for key, values in table.items():
        field = key.partition(".")[0]
        others = {k: v for k, v in base.items() if k != field}
        for name, raw in values.items():
            body = json.dumps(others)[:-1] + ("," if others else "") + f'"{field}": {raw}}}'
            named = key
            if inside:
                body = f'{{"flow_name": "f", "name": "d", "{inside}": [{body}]}}'
                named = f"{inside}.0.{key}"
            if batch:
                body, named = f"[{body}]", f"0.{key}"
            cases.append(Case(f"{method} {path} {key}={name}", method, path, body, named))
    return cases


def query(path: str, field: str, values: dict[str, str]) -> list[Case]:
    return [
        Case(f"GET {path} {field}={name}", "GET", f"{path}?{field}={raw}", None, field)
        for name, raw in values.items()
    ]


QUERY_TEXT = {"NUL": "a%00b"}
QUERY_INT64 = {"2**63": str(2**63), "-1": "-1"}

CASES = [
    *fields(
        "POST",
        "/flows",
        {"name": "hostile"},
        {"description": long_text(), "tags.0": listed(short_text(TAG_MAX_LENGTH))},
    ),
    *fields(
        "POST",
        "/deployments",
        {"flow_name": "f", "name": "hostile"},
        {
            "entrypoint": long_text(),
            "path": long_text(),
            "description": long_text(),
            "version": short_text(200),
            "image": long_text(),
            "tags.0": listed(TEXT),
            "parameters": FREE_JSON,
            "parameter_schema": FREE_JSON,
            "job_variables": FREE_JSON,
            "pull_steps.0": listed(FREE_JSON),
            "concurrency_limit": {**INTEGERS, **NEGATIVE, "0": "0"},
            "crash_retries": {**INTEGERS, **NEGATIVE},
            "max_lateness_seconds": NOT_FINITE,
        },
    ),
    *fields(
        "POST",
        "/deployments",
        {},
        {
            "cron": short_text(200),
            "rrule": short_text(2000),
            "timezone": short_text(100),
            "interval": NOT_FINITE,
        },
        inside="schedules",
    ),
    *fields(
        "PATCH",
        "/deployments/$dep",
        {},
        {
            "description": long_text(),
            "version": short_text(200),
            "tags.0": listed(TEXT),
            "parameters": FREE_JSON,
            "job_variables": FREE_JSON,
            "concurrency_limit": {**INTEGERS, **NEGATIVE},
            "crash_retries": {**INTEGERS, **NEGATIVE},
            "max_lateness_seconds": NOT_FINITE,
        },
    ),
    *fields(
        "POST",
        "/deployments/$dep/runs",
        {},
        {
            "parameters": FREE_JSON,
            "job_variables": FREE_JSON,
            "tags.0": listed(TEXT),
            "idempotency_key": short_text(200),
            "scheduled_start": TIMES,
        },
    ),
    *fields(
        "POST",
        "/deployments/$dep/schedules",
        {},
        {
            "cron": short_text(200),
            "rrule": short_text(2000),
            "timezone": short_text(100),
            "interval": NOT_FINITE,
        },
    ),
    *fields(
        "POST",
        "/flow-runs",
        {"flow_name": "f"},
        {
            "parameters": FREE_JSON,
            "tags.0": listed(TEXT),
            "idempotency_key": short_text(200),
            "parent_flow_run_id": {"no such run": '"$new"'},
        },
    ),
    *fields(
        "PATCH", "/flow-runs/$run", {"lease_token": "$token"}, {"infrastructure_id": long_text()}
    ),
    *fields(
        "POST",
        "/flow-runs/$run/state",
        {"state": "COMPLETED", "lease_token": "$token"},
        {
            "message": long_text(),
            "idempotency_key": short_text(200),
            "result": {**FREE_JSON, **{f"bare {k}": v for k, v in NOT_FINITE.items()}, **TEXT},
        },
    ),
    *fields(
        "POST",
        "/task-runs",
        {"id": "$new", "flow_run_id": "$run", "name": "t", "state": "COMPLETED"},
        {
            "name": short_text(200),
            "task_key": short_text(500),
            "cache_key": long_text(),
            "error": long_text(),
            "attempts": {**INTEGERS, **NEGATIVE},
            "tags.0": listed(TEXT),
            "start_time": TIMES,
        },
        batch=True,
    ),
    *fields(
        "POST",
        "/logs",
        {"flow_run_id": "$run", "message": "x"},
        {
            "name": short_text(200),
            "message": long_text(),
            "level": INTEGERS,
            "timestamp": TIMES,
        },
        batch=True,
    ),
    *fields(
        "POST",
        "/work-pools",
        {"name": "hostile", "type": "process"},
        {
            "description": long_text(),
            "base_job_template": FREE_JSON,
            "concurrency_limit": {**INTEGERS, **NEGATIVE},
        },
    ),
    *fields("POST", "/work-pools", {"name": "hostile"}, {"type": short_text(100)}),
    *fields(
        "PATCH",
        "/work-pools/pool",
        {},
        {
            "description": long_text(),
            "base_job_template": FREE_JSON,
            "concurrency_limit": {**INTEGERS, **NEGATIVE},
        },
    ),
    *fields(
        "POST",
        "/work-pools/pool/queues",
        {"name": "hostile"},
        {
            "description": long_text(),
            "priority": {**INTEGERS, **NEGATIVE, "0": "0"},
            "concurrency_limit": {**INTEGERS, **NEGATIVE},
        },
    ),
    *fields(
        "PATCH",
        "/work-pools/pool/queues/default",
        {},
        {
            "description": long_text(),
            "priority": {**INTEGERS, **NEGATIVE},
            "concurrency_limit": {**INTEGERS, **NEGATIVE},
        },
    ),
    *fields(
        "POST",
        "/workers/heartbeat",
        {"name": "hostile", "work_pool_name": "pool"},
        {"type": short_text(100), "version": short_text(50)},
    ),
    *fields(
        "POST",
        "/workers/claim",
        {"worker_name": "hostile", "work_pool_name": "pool"},
        {"wait": NOT_FINITE, "limit": OVER_INT32},
    ),
    # foreign keys named in a batch: the whole batch is refused
    Case(
        "POST /task-runs of no run",
        "POST",
        "/task-runs",
        '[{"id": "$new", "flow_run_id": "$new", "name": "t", "state": "COMPLETED"}]',
        "flow_run_id",
    ),
    Case(
        "POST /logs of no run",
        "POST",
        "/logs",
        '[{"flow_run_id": "$run", "message": "kept?"}, {"flow_run_id": "$new", "message": "x"}]',
        "flow_run_id",
    ),
    *[
        case
        for path in ("/flows", "/deployments", "/flow-runs", "/work-pools", "/task-runs")
        for case in query(path, "offset", QUERY_INT64)
    ],
    *query("/logs", "after_id", QUERY_INT64),
    *query("/logs", "min_level", {"2**31": str(2**31), "-2**31-1": str(-(2**31) - 1)}),
    *query("/flows", "name", QUERY_TEXT),
    *query("/flow-runs", "flow_name", QUERY_TEXT),
    *query("/deployments", "work_pool_name", QUERY_TEXT),
    *[
        Case(f"GET {path}", "GET", path, None, "name")
        for path in (
            "/flows/name/a%00b",
            "/work-pools/a%00b",
            "/deployments/name/f/a%00b",
            "/work-pools/pool/queues/a%00b",
        )
    ],
]


# ---------------------------------------------------------------- one server per database


@dataclass
class World:
    """What the cases act on: a pool with its default queue, a deployment, a leased run."""

    server: RunningServer
    deployment_id: str
    run_id: str
    lease_token: str
    # what the API showed after the last case: refused cases leave it as it is
    stored: dict[str, Any] | None = None

    def fill(self, text: str) -> str:
        return string.Template(text).substitute(
            run=self.run_id, token=self.lease_token, dep=self.deployment_id, new=uuid.uuid4()
        )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    base = tmp_path_factory.mktemp(f"hostile-{request.param}")
    if request.param == "sqlite":
        database_url = f"sqlite+aiosqlite:///{base / 'dockyard.db'}"
    else:
        database_url = request.getfixturevalue("postgres_cluster").new_database()
    factory = ServerFactory(base / "servers", database_url)
    # the leased run stays RUNNING through every case, unrenewed
    server = factory(DOCKYARD_LEASE_SECONDS="86400")
    with server.http() as http:
        http.post("/work-pools", json={"name": "pool", "type": "process"}).raise_for_status()
        deployment = http.post(
            "/deployments", json={"flow_name": "f", "name": "d", "work_pool_name": "pool"}
        )
        run = http.post("/flow-runs", json={"flow_name": "f"}).json()
    yield World(server, deployment.json()["id"], run["id"], run["lease_token"])
    problems = factory.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def http(world: World) -> Iterator[httpx.Client]:
    """A client on the shared server; the case fails if the server wrote a traceback."""
    start = len(world.server.log())
    with world.server.http() as client:
        yield client
    written = world.server.log()[start:]
    if "Traceback" in written:
        pytest.fail(f"the server wrote a traceback:\n{written}", pytrace=False)


# keys whose values move with the clock, not with what was stored
CLOCK = {"status", "late"}


def _stored(http: httpx.Client, world: World) -> dict[str, Any]:
    """Everything the cases could have written, read back through the API."""
    run = world.run_id
    paths = [
        "/flows",
        "/deployments",
        f"/deployments/{world.deployment_id}/schedules",
        "/flow-runs",
        f"/flow-runs/{run}/states",
        f"/task-runs?flow_run_id={run}",
        f"/logs?flow_run_id={run}",
        "/work-pools",
        "/work-pools/pool/queues",
        "/work-pools/pool/workers",
    ]
    return {path: _without_clock(http.get(path).raise_for_status().json()) for path in paths}


def _without_clock(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_clock(v) for k, v in value.items() if k not in CLOCK}
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_hostile_value_is_refused_naming_its_field_and_nothing_is_stored(
    world: World, http: httpx.Client, case: Case
) -> None:
    before = world.stored or _stored(http, world)
    if case.body is None:
        answer = http.request(case.method, world.fill(case.path))
    else:
        answer = http.request(
            case.method,
            world.fill(case.path),
            content=world.fill(case.body).encode("utf-8", "surrogatepass"),
            headers={"Content-Type": "application/json"},
        )
    world.stored = after = _stored(http, world)
    assert answer.status_code == 422, answer.text[:500]
    refusal = answer.json()
    assert refusal["field"] == case.field, refusal
    assert after == before


# ---------------------------------------------------------------- what is within the bounds


def test_values_at_the_bounds_are_stored_and_read_back(world: World, http: httpx.Client) -> None:
    limits = {"concurrency_limit": INT32_MAX, "crash_retries": INT32_MAX}
    deployment = http.post(
        "/deployments",
        json={
            "flow_name": "bounds",
            "name": "d",
            "version": "v" * 200,
            "tags": ["t" * TAG_MAX_LENGTH],
            # a character beyond the BMP, sent as its surrogate pair: a pair is no lone one
            "parameters": {"smile": "\U0001f600", "big": 2**70, "half": -0.5},
            "max_lateness_seconds": 1e300,
            **limits,
        },
    )
    assert deployment.status_code == 200, deployment.text
    stored = http.get(f"/deployments/{deployment.json()['id']}").json()
    assert stored["parameters"] == {"smile": "\U0001f600", "big": 2**70, "half": -0.5}
    assert {k: stored[k] for k in limits} == limits
    assert stored["version"] == "v" * 200

    queue = http.post("/work-pools/pool/queues", json={"name": "bounds", "priority": INT32_MAX})
    assert queue.status_code == 201, queue.text
    run = http.post("/flow-runs", json={"flow_name": "bounds"}).json()
    logs = [{"flow_run_id": run["id"], "message": "m" * TEXT_MAX_LENGTH, "level": -(2**31)}]
    assert http.post("/logs", json=logs).status_code == 200
    page = http.get(
        "/logs", params={"flow_run_id": run["id"], "min_level": -(2**31), "after_id": 0}
    )
    assert [len(log["message"]) for log in page.json()] == [TEXT_MAX_LENGTH]
    assert http.get("/flows", params={"offset": 2**63 - 1}).json() == []


def test_a_time_in_any_zone_is_stored_in_utc(world: World, http: httpx.Client) -> None:
    run = http.post(
        f"/deployments/{world.deployment_id}/runs",
        json={"scheduled_start": "9999-12-31T23:59:59+14:00", "idempotency_key": "far"},
    )
    assert run.status_code == 201, run.text
    assert run.json()["scheduled_start"] == "9999-12-31T09:59:59Z"


def test_a_child_run_of_an_existing_parent_is_created(world: World, http: httpx.Client) -> None:
    child = http.post("/flow-runs", json={"flow_name": "f", "parent_flow_run_id": world.run_id})
    assert child.status_code == 201, child.text
    assert child.json()["parent_flow_run_id"] == world.run_id


def test_unknown_deployments_in_claims_and_heartbeats_match_nothing(
    world: World, http: httpx.Client
) -> None:
    """A serve process names deployments it serves; one deleted meanwhile is no error (its
    other deployments go on), and an id of no deployment writes nothing."""
    nobody = [str(uuid.uuid4())]
    beat = http.post("/workers/heartbeat", json={"name": "serve", "deployment_ids": nobody})
    assert beat.status_code == 200, beat.text
    claim = http.post("/workers/claim", json={"worker_name": "serve", "deployment_ids": nobody})
    assert claim.status_code == 200 and claim.json() == []
