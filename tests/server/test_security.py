"""The security baseline: API key, Host allow-list, loopback unless told otherwise, and
no writes from pages of other sites."""

from __future__ import annotations

import os

import httpx
import pytest

from _support import free_port

KEY = "s3cret-key-of-the-security-tests"


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


def _pool_and_run(http: httpx.Client) -> str:
    assert http.post("/work-pools", json={"name": "pool", "type": "process"}).is_success
    run = http.post("/flow-runs", json={"flow_name": "f", "state": "SCHEDULED"})
    assert run.status_code == 201, run.text
    return str(run.json()["id"])


def test_writes_from_pages_of_other_sites_are_refused(server) -> None:
    """What a page of another site can make a browser send without asking the server first:
    a form (url-encoded or multipart) or text/plain, each with that site's Origin."""
    with server.http() as http:
        run_id = _pool_and_run(http)
        writes = (
            "/work-pools/pool/pause",
            "/work-pools/pool/queues/default/pause",
            f"/flow-runs/{run_id}/cancel",
        )
        for path in writes:
            form = http.post(path, data={"x": "1"}, headers={"Origin": "http://evil.example"})
            assert form.status_code == 403, (path, form.text)
            assert "another site" in form.json()["detail"]
            for content_type in (
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "text/plain",
            ):
                # no Origin at all (an old browser): the content type alone is refused
                plain = http.post(path, content=b"x=1", headers={"Content-Type": content_type})
                assert plain.status_code == 415, (path, content_type, plain.text)
                assert "application/json" in plain.json()["detail"]
        # another port of the same host is another site; so is a sandboxed page ("null")
        port = int(server.url.rsplit(":", 1)[1])
        for origin in (f"http://127.0.0.1:{port % 65535 + 1}", "null"):
            other = http.post(writes[0], json={}, headers={"Origin": origin})
            assert other.status_code == 403, origin
        assert http.get("/work-pools/pool").json()["paused"] is False
        assert http.get("/work-pools/pool/queues/default").json()["paused"] is False
        assert http.get(f"/flow-runs/{run_id}").json()["state"] == "SCHEDULED"

        # the server's own origin, JSON, and a write without a body (curl -X POST) pass
        ours = http.post(writes[0], headers={"Origin": server.url, "Content-Type": "text/json"})
        assert ours.status_code == 415  # JSON means application/json (or a +json type)
        ours = http.post(writes[0], headers={"Origin": server.url})
        assert ours.status_code == 200 and ours.json()["paused"] is True
        bare = http.post("/work-pools/pool/resume")
        assert bare.status_code == 200 and bare.json()["paused"] is False
        typed = http.post(
            writes[1], content=b"", headers={"Content-Type": "application/json; charset=utf-8"}
        )
        assert typed.status_code == 200
        # reads are not writes: a page may link to the API
        assert http.get("/work-pools", headers={"Origin": "http://evil.example"}).is_success


def test_our_clients_pass_the_write_checks(server) -> None:
    """The client (CLI, workers) sends body-less writes as JSON too."""
    with server.http() as http:
        run_id = _pool_and_run(http)
    with server.client() as client:
        assert client.pause_work_pool("pool").paused is True
        assert client.resume_work_pool("pool").paused is False
        assert client.cancel_flow_run(run_id).state == "CANCELLED"


@pytest.mark.parametrize(
    ("key", "status"),
    [
        ("short-key", 1),  # refused by the server: too short to be a key
        ("   ", 2),  # refused with the settings (exit 2): a key is visible ASCII
        ("sixteen chars ok", 2),
    ],
)
def test_weak_api_keys_are_refused_at_start(cli, key: str, status: int) -> None:
    env = {**os.environ, "DOCKYARD_SERVER_API_KEY": key}
    refused = cli("server", "start", "--port", str(free_port()), env=env, check=status)
    assert "DOCKYARD_SERVER_API_KEY" in refused.stderr
    assert "secrets.token_urlsafe" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) <= 2  # one line, wrapped at most once
