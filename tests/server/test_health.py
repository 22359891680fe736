"""The server answers its health, readiness and version routes, on SQLite and on
PostgreSQL, without an API key for health and readiness."""

from __future__ import annotations

import pytest

from _support import RunningServer
from dockyard._version import __version__
from dockyard.schemas import API_VERSION

KEY = "a-key-of-at-least-sixteen-characters"


def test_health(server: RunningServer) -> None:
    with server.http() as http:
        answer = http.get("/health")
    assert answer.status_code == 200
    health = answer.json()
    assert health["status"] == "ok"
    assert health["database"] == "ok"
    assert health["database_error"] is None
    if server.database_url.startswith("sqlite"):
        assert health["listener"] is None  # one process: nothing to listen to
    else:
        assert health["listener"]["connected"] is True
        assert health["listener"]["reconnects"] == 0


def test_ready(server: RunningServer) -> None:
    with server.http() as http:
        answer = http.get("/ready")
    assert answer.status_code == 200
    assert answer.json()["ready"] is True


@pytest.mark.parametrize("server", [{"DOCKYARD_SERVER_API_KEY": KEY}], indirect=True)
def test_health_and_ready_need_no_key(server: RunningServer) -> None:
    import httpx

    with httpx.Client(base_url=server.api_url, trust_env=False) as http:
        assert http.get("/health").status_code == 200
        assert http.get("/ready").status_code == 200
        assert http.get("/work-pools").status_code == 401
        schema = http.get("/openapi.json", headers={"authorization": f"Bearer {KEY}"}).json()
    ready = schema["paths"]["/api/ready"]["get"]["responses"]
    assert {"200", "503"} <= set(ready)
    assert "401" not in ready
    assert "401" not in schema["paths"]["/api/health"]["get"]["responses"]


def test_version(server: RunningServer) -> None:
    with server.http() as http:
        answer = http.get("/version")
    assert answer.status_code == 200
    assert answer.json() == {
        "server_version": __version__,
        "api_version": API_VERSION,
        "lease_seconds": 30.0,  # the engine renews and waits by the server's lease
    }
