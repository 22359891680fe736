"""API keys: scopes over every route, hashing, revocation, last use, and the rate limit."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import uuid
from typing import Any

import httpx
import pytest

from _support import RunningServer, ServerFactory
from dockyard.client._core import Call, RetryPolicy
from dockyard.schemas.api_keys import ApiKeyScope
from dockyard.server import scopes
from dockyard.server.app import create_app
from dockyard.settings import Settings

BOOTSTRAP = "bootstrap-admin-key-of-the-api-key-tests"
SCOPES = [ApiKeyScope.USER, ApiKeyScope.WORKER, ApiKeyScope.RUNNER]
WRITES = {"POST", "PUT", "PATCH", "DELETE"}

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _create(http: httpx.Client, name: str, scope: str, **headers: str) -> dict[str, Any]:
    answer = http.post("/api-keys", json={"name": name, "scope": scope}, headers=headers)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _http(server: RunningServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.api_url, headers=_bearer(key), timeout=30.0)


def _openapi_routes(server: RunningServer) -> list[tuple[str, str]]:
    with _http(server, BOOTSTRAP) as http:
        schema = http.get("/openapi.json").json()
    return [
        (method.upper(), f"/api{path}" if not path.startswith("/api") else path)
        for path, operations in schema["paths"].items()
        for method in operations
    ]


def _concrete(template: str) -> str:
    """A path for ``template``: a fresh UUID for ids, a plain name for the rest."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(uuid.uuid4()) if name.endswith("id") else "nothing-here"

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, template)


def test_every_route_of_the_schema_is_in_the_scope_table() -> None:
    app = create_app(Settings())
    paths = app.openapi()["paths"]
    served = {(m.upper(), p) for p, ops in paths.items() for m in ops}
    missing = sorted(served - set(scopes.ROUTES))
    assert not missing, f"add these routes to dockyard.server.scopes.ROUTES: {missing}"
    listed = {(m, p) for m, p in scopes.ROUTES if p.startswith("/api/")}
    stale = sorted(listed - served - {("GET", "/api/openapi.json")})
    assert not stale, f"no such routes (remove them from scopes.ROUTES): {stale}"


@sqlite_only
def test_walk_every_route_with_each_scope(server_factory: ServerFactory) -> None:
    server = server_factory(DOCKYARD_SERVER_API_KEY=BOOTSTRAP)
    with _http(server, BOOTSTRAP) as admin:
        keys = {s: _create(admin, f"walk-{s.value}", s.value)["key"] for s in SCOPES}
    routes = _openapi_routes(server)
    assert len(routes) > 90
    wrong: list[str] = []
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        for method, template in routes:
            path = _concrete(template)
            body: dict[str, Any] = {"json": {}} if method in WRITES else {}
            if template in scopes.OPEN:
                continue
            anonymous = http.request(method, path, **body)
            if anonymous.status_code != 401:
                wrong.append(f"{method} {template} without a key: {anonymous.status_code}")
            allowed = scopes.ROUTES.get((method, template), frozenset())
            callers = [(s, keys[s]) for s in SCOPES] + [(ApiKeyScope.ADMIN, BOOTSTRAP)]
            for scope, key in callers:
                answer = http.request(method, path, headers=_bearer(key), **body)
                may = scope is ApiKeyScope.ADMIN or scope in allowed
                status = answer.status_code
                if (may and status in (401, 403)) or (not may and status != 403) or status >= 500:
                    wrong.append(f"{method} {template} with {scope.value}: {status} {answer.text}")
    assert not wrong, "\n".join(wrong)


@sqlite_only
def test_keys_are_open_until_one_exists_then_hashed_revocable_and_used(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    with httpx.Client(base_url=server.api_url) as http:
        assert http.get("/work-pools").status_code == 200  # no key anywhere: open, as before
        first = http.post("/api-keys", json={"name": "early", "scope": "user"})
        assert first.status_code == 409, first.text
        assert "admin key first" in first.json()["hint"]
        admin = _create(http, "root", "admin")
        assert http.get("/work-pools").status_code == 401  # a key exists: all need one
        user = _create(http, "reader", "user", **_bearer(admin["key"]))
        assert user["key"].startswith(f"dk_{uuid.UUID(user['id']).hex}_")

        assert http.get("/work-pools", headers=_bearer(user["key"])).status_code == 200
        made = http.post(
            "/work-pools", json={"name": "p", "type": "process"}, headers=_bearer(user["key"])
        )
        assert made.status_code == 403
        assert "user key may not POST /api/work-pools" in made.json()["detail"]

        listed = http.get("/api-keys", headers=_bearer(admin["key"])).json()
        assert {k["name"]: k["scope"] for k in listed} == {"reader": "user", "root": "admin"}
        assert all("key" not in k for k in listed)
        reader = next(k for k in listed if k["name"] == "reader")
        assert reader["last_used"] is not None and reader["revoked"] is None

        last = http.post("/api-keys/root/revoke", headers=_bearer(admin["key"]))
        assert last.status_code == 409 and "last admin key" in last.json()["detail"]
        revoked = http.post("/api-keys/reader/revoke", headers=_bearer(admin["key"]))
        assert revoked.status_code == 200 and revoked.json()["revoked"] is not None
        # this replica forgets it at once (others within their cache time)
        assert http.get("/work-pools", headers=_bearer(user["key"])).status_code == 401
        forged = user["key"][:-4] + "AAAA"
        assert http.get("/work-pools", headers=_bearer(forged)).status_code == 401

    database = server.database_url.removeprefix("sqlite+aiosqlite:///")
    secret = user["key"].rsplit("_", 1)[1]
    for path in (database, f"{database}-wal"):  # the write-ahead log holds recent rows
        with contextlib.suppress(FileNotFoundError), open(path, "rb") as raw:
            assert secret.encode() not in raw.read()
    with sqlite3.connect(database) as db:
        digests = [row[0] for row in db.execute("SELECT digest FROM api_keys")]
    assert len(digests) == 2 and all(len(d) == 64 and secret not in d for d in digests)


@sqlite_only
def test_the_schema_and_docs_follow_the_first_key_made(server_factory: ServerFactory) -> None:
    server = server_factory()  # no bootstrap key
    base = server.api_url.removesuffix("/api")
    with httpx.Client(base_url=server.api_url, timeout=30.0) as http:
        before = http.get("/openapi.json").json()
        assert "security" not in before["paths"]["/api/work-pools"]["get"]
        assert "401" not in before["paths"]["/api/work-pools"]["get"]["responses"]
        assert httpx.get(f"{base}/docs", follow_redirects=False).status_code == 200

        admin = _create(http, "root", "admin")
        assert http.get("/openapi.json").status_code == 401
        after = http.get("/openapi.json", headers=_bearer(admin["key"])).json()
        operation = after["paths"]["/api/work-pools"]["get"]
        assert operation["security"] and "401" in operation["responses"]
        assert "bearer" in str(after["components"]["securitySchemes"]).lower()
        assert "security" not in after["paths"]["/api/health"]["get"]
    docs = httpx.get(f"{base}/docs", follow_redirects=False)
    assert docs.status_code == 303 and docs.headers["location"].startswith("/login")


@sqlite_only
def test_a_burst_past_the_rate_answers_429_with_retry_after(server_factory: ServerFactory) -> None:
    server = server_factory(
        DOCKYARD_SERVER_API_KEY=BOOTSTRAP,
        DOCKYARD_SERVER_RATE_LIMIT_PER_SECOND="0.01",
        DOCKYARD_SERVER_RATE_LIMIT_BURST="3",
    )
    with _http(server, BOOTSTRAP) as http:
        statuses = [http.get("/work-pools") for _ in range(4)]
    assert [a.status_code for a in statuses[:3]] == [200, 200, 200]
    limited = statuses[3]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["retry_after"] == int(limited.headers["retry-after"])
    # another key has its own bucket
    with httpx.Client(base_url=server.api_url) as anonymous:
        assert anonymous.get("/health").status_code == 200


def test_the_schema_lists_429_where_a_key_is_taken_and_rates_are_limited() -> None:
    from dockyard.server.app import create_app

    for rate, listed in ((100.0, True), (0.0, False)):
        settings = Settings(server_api_key=BOOTSTRAP, server_rate_limit_per_second=rate)
        paths = create_app(settings).openapi()["paths"]
        assert ("429" in paths["/api/work-pools"]["get"]["responses"]) is listed
        assert "429" not in paths["/api/health"]["get"]["responses"]


def test_clients_retry_429_after_retry_after() -> None:
    policy = RetryPolicy(attempts=3)
    create = Call("POST", "/flow-runs", lambda r: r, idempotent=False)
    assert policy.delay(create, 1, status=429, retry_after="2") == 2.0
    assert policy.delay(create, 1, status=429, retry_after=None) == policy.backoff
    assert policy.delay(create, 3, status=429, retry_after="2") is None
    assert policy.delay(create, 1, status=503) is None  # not idempotent: not retried


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_keys_on_postgres(server_factory: ServerFactory) -> None:
    server = server_factory()
    with httpx.Client(base_url=server.api_url) as http:
        admin = _create(http, "root", "admin")
        worker = _create(http, "w1", "worker", **_bearer(admin["key"]))
        assert http.get("/work-pools/x", headers=_bearer(worker["key"])).status_code == 404
        assert http.get("/variables", headers=_bearer(worker["key"])).status_code == 403
        assert http.post("/api-keys/w1/revoke", headers=_bearer(admin["key"])).is_success
        assert http.get("/work-pools/x", headers=_bearer(worker["key"])).status_code == 401
        names = [k["name"] for k in http.get("/api-keys", headers=_bearer(admin["key"])).json()]
        assert names == ["root", "w1"]


@sqlite_only
def test_a_claim_gives_each_run_a_key_for_that_run_only(server_factory: ServerFactory) -> None:
    server = server_factory(DOCKYARD_SERVER_API_KEY=BOOTSTRAP)
    with _http(server, BOOTSTRAP) as admin:
        worker = _create(admin, "w", "worker")["key"]
        assert admin.post("/work-pools", json={"name": "pool", "type": "process"}).is_success
        body = {"flow_name": "f", "name": "d", "work_pool_name": "pool"}
        deployment = admin.post("/deployments", json=body).json()["id"]
        runs = [admin.post(f"/deployments/{deployment}/runs", json={}).json()["id"] for _ in "ab"]
    with _http(server, worker) as http:
        claim = {"worker_name": "w1", "work_pool_name": "pool", "limit": 1}
        [claimed] = http.post("/workers/claim", json=claim).json()
    run_key = claimed["runner_key"]
    own = claimed["flow_run"]["id"]
    other = next(run for run in runs if run != own)
    assert run_key.startswith(f"dkr_{uuid.UUID(own).hex}_")
    token = {"lease_token": claimed["lease_token"]}
    with _http(server, run_key) as engine:
        assert engine.post(f"/flow-runs/{own}/state", json={"state": "RUNNING", **token}).is_success
        assert engine.get(f"/flow-runs/{own}").status_code == 200
        assert engine.get(f"/flow-runs/{other}").status_code == 200  # reads are not bound
        cancel = {"state": "CANCELLED", **token}
        refused = engine.post(f"/flow-runs/{other}/state", json=cancel)
        assert refused.status_code == 403 and own in refused.json()["detail"]
        assert engine.get("/work-pools").status_code == 403  # a runner's scope still applies
        forged = run_key[:-4] + ("0000" if not run_key.endswith("0000") else "1111")
        assert engine.get(f"/flow-runs/{own}", headers=_bearer(forged)).status_code == 401
