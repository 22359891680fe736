"""The OpenAPI schema tells the truth: schemathesis over every operation of a real server.

On SQLite and on PostgreSQL, each once on a server without an API key and once on one that
requires it, every operation of ``/api/openapi.json`` is sent the schema's examples, its
boundary and off-by-one values (the "coverage" phase) and generated requests, valid and
invalid, with a fixed seed and a bounded number of examples; then sequences of calls follow
the links between operations (the stateful test). Every answer must:

- never be a 5xx (``not_a_server_error``);
- have a status the operation documents, a body that matches its model and the content
  type it declares (``status_code_conformance``, ``response_schema_conformance``,
  ``content_type_conformance``, ``response_headers_conformance``);
- refuse what the schema says is invalid (``negative_data_rejection``), answer 405 to a
  method the path does not take (``unsupported_method``), and 401 without the key where
  one is required (``ignored_auth``).

``positive_data_acceptance`` is off: a request the schema allows may still be refused, as
the schema cannot say it (a work pool that does not exist, a cron expression that does not
parse, a job variable the pool's template does not declare, a name with a control
character): those answers are 404 and 422, and documented.

Generated names and ids name nothing, so every request would end in a 404 before its
route did anything. A pool, a queue, a deployment with a schedule, runs, a task run, a log
and a worker are made first, and half of the requests (chosen from the request itself, so
the run stays reproducible) are aimed at them: each valid id or name in the path, and each
run id, lease token, pool, queue and flow name in the body, is replaced by a real one of
its kind — a valid value by another valid one, so a request the schema calls invalid stays
invalid. A DELETE is aimed at a resource made for it alone, so that the others live on.
The server's long-poll is bounded (``DOCKYARD_LONG_POLL_SECONDS``): a claim that finds
nothing answers within a second.
"""

from __future__ import annotations

import itertools
import json
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.schemas import BaseSchema

from _support import RunningServer
from dockyard import _names

SEED = 1011
MAX_EXAMPLES = 15  # per operation, in the fuzzing phase (small: CI runs it four times)
STATEFUL_SCENARIOS = 25
STATEFUL_STEPS = 8
KEY = "schema-test-key-0123456789abcdef"
# statuses that refuse a request the schema says is invalid (413: a body over the size
# limit, which an invalid body of a megabyte can be, is refused before it is read)
REFUSALS = [400, 401, 403, 404, 405, 409, 413, 415, 422]

# what each path parameter names, by route (a parameter's name alone does not say)
PATH_KINDS = {
    "name": "pool",
    "pool_name": "pool",
    "flow_id": "flow",
    "deployment_id": "deployment",
    "schedule_id": "schedule",
    "run_id": "run",
    "task_run_id": "task_run",
    "type_name": "worker_type",
    "flow_name": "flow_name",
    "lease_id": "concurrency_lease",
    "artifact_id": "artifact",
    "key": "artifact_key",
}
NAME_KINDS_BY_ROUTE = {
    "/api/work-pools/{pool_name}/queues/{name}": "queue",
    "/api/work-pools/{pool_name}/workers/{name}": "worker",
    "/api/flows/name/{name}": "flow_name",
    "/api/deployments/name/{flow_name}/{name}": "deployment_name",
    "/api/concurrency-limits/name/{name}": "concurrency_limit",
    "/api/automations/{name}": "automation",
}
BODY_KINDS = {
    "flow_run_id": "run",
    "parent_flow_run_id": "run",
    "lease_token": "lease_token",
    "work_pool_name": "pool",
    "work_queue_name": "queue",
    "flow_name": "flow_name",
}
UUID_KINDS = frozenset(
    {
        "flow",
        "deployment",
        "schedule",
        "run",
        "task_run",
        "lease_token",
        "concurrency_lease",
        "artifact",
    }
)

AUTOMATION = {
    "name": "schema-automation",
    "trigger": {"expect": ["dockyard.flow-run.Failed"]},
    "actions": [{"type": "cancel-flow-run"}],
}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(
    params=[
        pytest.param({}, id="open"),
        pytest.param({"DOCKYARD_SERVER_API_KEY": KEY}, id="key"),
    ]
)
def schema_server(request: pytest.FixtureRequest, server_factory: Any) -> RunningServer:
    # the fuzzing sends far more with one key than its rate limit lets through; 429s are
    # tested in tests/server/test_api_keys.py
    server: RunningServer = server_factory(
        DOCKYARD_LONG_POLL_SECONDS="1", DOCKYARD_SERVER_RATE_LIMIT_PER_SECOND="0", **request.param
    )
    return server


@pytest.fixture
def resources(schema_server: RunningServer) -> Any:
    with schema_server.http() as http:
        yield Resources.make(http)


@pytest.fixture
def api_schema(schema_server: RunningServer, resources: Resources) -> BaseSchema:
    """The server's schema, loaded as schemathesis runs it."""
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": schema_server.headers,
            "request-timeout": 30,
            "suppress-health-check": ["all"],
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "checks": {
                "positive_data_acceptance": {"enabled": False},
                "negative_data_rejection": {"expected-statuses": REFUSALS},
            },
        }
    )
    return schemathesis.openapi.from_url(
        f"{schema_server.api_url}/openapi.json", config=config, headers=schema_server.headers
    )


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_operation_answers_as_its_schema_says(
    case: Case, resources: Resources, schema_server: RunningServer
) -> None:
    if case.operation.label == "POST /api/api-keys" and not schema_server.api_key:
        # an open server's first API key turns keys on, and every later request would be
        # 401: that switch is tested in tests/server/test_api_keys.py
        return
    resources.aim(case)
    case.call_and_validate()


def test_call_sequences_answer_as_the_schema_says(
    api_schema: BaseSchema, resources: Resources
) -> None:
    class Machine(api_schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # every scenario starts from the same resources: hypothesis replays scenarios
            # and must see the same answers to draw the same requests
            resources.reset()

    Machine.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )


@dataclass
class Resources:
    """Real resources of a server, by kind, and how to aim a request at them."""

    http: httpx.Client
    real: dict[str, str]
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def make(cls, http: httpx.Client) -> Resources:
        def post(path: str, body: Any) -> Any:
            answer = http.post(path, json=body)
            assert answer.status_code in (200, 201), answer.text
            return answer.json()

        pool = post("/work-pools", {"name": "schema-pool", "type": "process"})["name"]
        queue = post(f"/work-pools/{pool}/queues", {"name": "schema-queue"})["name"]
        deployment = post(
            "/deployments",
            {
                "flow_name": "schema-flow",
                "name": "schema-deployment",
                "work_pool_name": pool,
                "work_queue_name": queue,
                "schedules": [{"interval": 86400, "active": False}],
            },
        )
        running = post("/flow-runs", {"flow_name": "schema-flow", "name": "schema-run"})
        task_run = str(uuid.uuid4())
        record = {"id": task_run, "flow_run_id": running["id"], "name": "t", "state": "COMPLETED"}
        post("/task-runs", [record])
        post("/logs", [{"flow_run_id": running["id"], "message": "hello"}])
        post("/workers/heartbeat", {"name": "schema-worker", "work_pool_name": pool})
        # a limit and an automation outlive a reset (which deletes flows and pools): made
        # once (409 after), leased anew; an artifact gets a new version of its key
        http.post("/concurrency-limits", json={"name": "schema-limit", "limit": 1000})
        lease = post("/concurrency-limits/acquire", {"names": ["schema-limit"]})["lease_id"]
        artifact = post("/artifacts", {"key": "schema-key", "type": "progress", "data": 5.0})
        http.post("/automations", json=AUTOMATION)
        real = {
            "pool": pool,
            "queue": queue,
            "worker": "schema-worker",
            "worker_type": "process",
            "flow": deployment["flow_id"],
            "flow_name": "schema-flow",
            "deployment": deployment["id"],
            "deployment_name": "schema-deployment",
            "schedule": deployment["schedules"][0]["id"],
            "run": running["id"],
            "lease_token": running["lease_token"],
            "task_run": task_run,
            "concurrency_lease": lease,
            "concurrency_limit": "schema-limit",
            "artifact": artifact["id"],
            "artifact_key": "schema-key",
            "automation": AUTOMATION["name"],
        }
        return cls(http=http, real=real)

    def reset(self) -> None:
        """Delete every flow and pool (their deployments, runs, queues and workers go with
        them) and make the resources again."""
        for kind in ("flows", "work-pools"):
            for found in self.http.get(f"/{kind}", params={"limit": 1000}).json():
                key = found["id"] if kind == "flows" else found["name"]
                assert self.http.delete(f"/{kind}/{key}").status_code == 204
        self.real = Resources.make(self.http).real

    def aim(self, case: Case) -> None:
        """Aim half of the requests at real resources (see the module's docstring)."""
        if _fingerprint(case) % 2:
            return
        route = case.operation.path
        parameters = case.path_parameters or {}
        last = list(parameters)[-1] if parameters else None
        for name, value in parameters.items():
            kind = NAME_KINDS_BY_ROUTE.get(route, PATH_KINDS[name]) if name == "name" else None
            kind = kind or PATH_KINDS[name]
            if _valid(kind, value):
                throwaway = case.method == "DELETE" and name == last
                parameters[name] = self._throwaway(kind) if throwaway else self.real[kind]
        if isinstance(case.body, dict | list):
            _replace_in_body(case.body, lambda kind, value: self.real[kind])

    def _throwaway(self, kind: str) -> str:
        """A resource of ``kind`` made for one DELETE (the real one goes on living)."""
        name = f"throwaway-{next(self._numbers)}"
        made: dict[str, Callable[[], str]] = {
            "pool": lambda: self._post("/work-pools", {"name": name, "type": "process"})["name"],
            "queue": lambda: self._post(f"/work-pools/{self.real['pool']}/queues", {"name": name})[
                "name"
            ],
            "worker": lambda: self._heartbeat(name),
            "flow": lambda: self._post("/flows", {"name": name})["id"],
            "deployment": lambda: self._post(
                "/deployments", {"flow_name": self.real["flow_name"], "name": name}
            )["id"],
            "schedule": lambda: self._post(
                f"/deployments/{self.real['deployment']}/schedules",
                {"interval": 86400, "active": False},
            )["id"],
            "run": lambda: self._post(f"/deployments/{self.real['deployment']}/runs", {})["id"],
            "artifact": lambda: self._post(
                "/artifacts", {"key": name, "type": "progress", "data": 1.0}
            )["id"],
            "artifact_key": lambda: self._post(
                "/artifacts", {"key": name, "type": "progress", "data": 1.0}
            )["key"],
            "concurrency_limit": lambda: self._post(
                "/concurrency-limits", {"name": name, "limit": 1}
            )["name"],
            "automation": lambda: self._post("/automations", {**AUTOMATION, "name": name})["name"],
        }
        return made[kind]() if kind in made else self.real[kind]

    def _heartbeat(self, name: str) -> str:
        self._post("/workers/heartbeat", {"name": name, "work_pool_name": self.real["pool"]})
        return name

    def _post(self, path: str, body: Any) -> Any:
        answer = self.http.post(path, json=body)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()


def _fingerprint(case: Case) -> int:
    """A number that depends on what the request is, and on nothing else (no address)."""
    body = case.body if isinstance(case.body, dict | list | str | int | float | None) else None
    seen = [case.operation.label, case.path_parameters, case.query, body]
    return zlib.crc32(json.dumps(seen, sort_keys=True, default=str).encode())


def _valid(kind: str, value: Any) -> bool:
    """Whether ``value`` is a valid value of ``kind``: only such a value may be replaced by
    a real one without changing what the schema says of the request."""
    if not isinstance(value, str):
        return False
    if kind in UUID_KINDS:
        try:
            return str(uuid.UUID(value)) == value.lower()
        except ValueError:
            return False
    if kind == "pool":
        return _names.pool_name_problem(value) is None
    if kind == "artifact_key":
        return _names.artifact_key_problem(value) is None
    if kind == "worker_type":
        return value.isprintable() and 0 < len(value) <= 100
    return _names.name_problem(value) is None


def _replace_in_body(body: Any, real: Callable[[str, Any], str]) -> None:
    """Replace, in place, each valid value of a known kind in ``body`` by a real one."""
    items = body if isinstance(body, list) else [body]
    for item in items:
        if not isinstance(item, dict):
            continue
        for key, kind in BODY_KINDS.items():
            if key in item and _valid(kind, item[key]):
                item[key] = real(kind, item[key])
