"""The security baseline: API key, Host allow-list, loopback unless told otherwise."""

from __future__ import annotations

import httpx
import pytest

KEY = "s3cret-key"


@pytest.mark.parametrize("server", [{"DOCKYARD_SERVER_API_KEY": KEY}], indirect=True)
def test_api_key_guards_every_route_but_health(server) -> None:
    with httpx.Client(base_url=server.api_url) as anonymous:
        assert anonymous.get("/health").status_code == 200
        for path in ("/version", "/work-pools", "/flow-runs", "/openapi.json"):
            answer = anonymous.get(path)
            assert answer.status_code == 401, path
            assert "DOCKYARD_API_KEY" in answer.json()["detail"]
        wrong = anonymous.get("/work-pools", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = anonymous.get("/work-pools", headers={"Authorization": f"Bearer {KEY}"})
        assert right.status_code == 200


def test_foreign_host_headers_are_refused(server) -> None:
    with httpx.Client(base_url=server.api_url) as http:
        assert http.get("/health", headers={"Host": "localhost:1234"}).status_code == 200
        rebound = http.get("/work-pools", headers={"Host": "attacker.example"})
        assert rebound.status_code == 400
        assert "DOCKYARD_SERVER_ALLOWED_HOSTS" in rebound.json()["detail"]


@pytest.mark.parametrize(
    "server", [{"DOCKYARD_SERVER_ALLOWED_HOSTS": "dockyard.internal"}], indirect=True
)
def test_extra_allowed_hosts(server) -> None:
    with httpx.Client(base_url=server.api_url) as http:
        assert http.get("/health", headers={"Host": "dockyard.internal"}).status_code == 200


def test_non_loopback_bind_needs_a_key(cli) -> None:
    refused = cli("server", "start", "--host", "0.0.0.0", "--port", "4999", check=False)
    assert refused.returncode != 0
    assert "DOCKYARD_SERVER_API_KEY" in refused.stderr
    assert "--insecure" in refused.stderr
    assert "Traceback" not in refused.stderr
