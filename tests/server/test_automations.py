"""Automations over the real API, on SQLite and PostgreSQL: specs and their refusals, a
threshold that fires once per window, webhooks to a real HTTP server (retried on 5xx with
backoff, delivered once), and the server's own actions."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from test_events import ID, NAME, ROLE, claim_and_finish, setup_run

from _support import wait_until

FAST = {"DOCKYARD_AUTOMATION_RETRY_SECONDS": "0.2", "DOCKYARD_AUTOMATION_INTERVAL_SECONDS": "1"}


class Receiver:
    """An HTTP server on 127.0.0.1 that records the JSON posted to it and answers posts to
    ``/hook`` with the statuses of ``script`` in turn (200 once they are used up), to any
    other path 200."""

    def __init__(self, script: list[int] | None = None) -> None:
        self.script = list(script or [])
        self.calls: list[Any] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.calls.append(json.loads(body))
                    scripted = self.path == "/hook" and receiver.script
                    status = receiver.script.pop(0) if scripted else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started
    started.close()


def create(http: httpx.Client, **spec: Any) -> dict[str, Any]:
    answer = http.post("/automations", json=spec)
    assert answer.status_code == 201, answer.text
    return answer.json()


def results(http: httpx.Client, name: str) -> list[dict[str, Any]]:
    return http.get(f"/automations/{name}").json()["results"]


def emit(http: httpx.Client, name: str, resource_id: str = "acme.thing", **labels: str) -> str:
    body = {"event": name, "resource": {ID: resource_id, **labels}}
    answer = http.post("/events", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def evaluated(http: httpx.Client, event_id: str) -> None:
    """Wait until the event has its position: its automations' actions are written then."""

    def seen() -> bool:
        page = http.get("/events", params={"after": 0, "limit": 1000}).json()
        return any(e["id"] == event_id for e in page["events"])

    wait_until(seen, 30, f"event {event_id} evaluated")


GUARDED = {**FAST, "DOCKYARD_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}


@pytest.mark.parametrize("server", [GUARDED], indirect=True)
def test_specs_and_the_servers_own_actions(server, receiver) -> None:
    """Three stories on one server (a server start costs more than each)."""
    specs_are_checked_and_automations_managed(server)
    actions_run_pause_and_resume_deployments_and_pools_and_cancel_runs(server)
    a_webhook_to_a_host_not_allowed_is_never_called(server, receiver)


@pytest.mark.parametrize("server", [FAST], indirect=True)
def test_thresholds_and_webhooks(server, receiver) -> None:
    """Two stories on one server (a server start costs more than each)."""
    a_threshold_fires_once_on_the_third_failure_per_window(server, receiver)
    a_failing_webhook_is_retried_with_backoff_and_delivered_once(server)


def specs_are_checked_and_automations_managed(server: Any) -> None:
    spec = {
        "name": "a1",
        "trigger": {"expect": ["acme.*"], "match": {"tier": ["gold", "silver*"]}},
        "actions": [{"type": "call-webhook", "url": "http://127.0.0.1:9/hook"}],
    }
    with server.http() as http:
        made = create(http, **spec)
        assert made["enabled"] and made["results"] == [] and made["deployment_id"] is None
        assert made["trigger"]["threshold"] == 1 and made["trigger"]["within"] == 0
        assert http.post("/automations", json=spec).status_code == 409
        for bad, field in [
            ({"trigger": {"threshold": 3}}, "trigger.within"),
            ({"actions": [{"type": "explode"}]}, "actions.0"),
            ({"actions": []}, "actions"),
            (
                {"actions": [{"type": "call-webhook", "url": "ftp://x/y"}]},
                "actions.0.call-webhook.url",
            ),
            (
                {"actions": [{"type": "run-deployment", "deployment_id": str(uuid.uuid4())}]},
                "actions.0.deployment_id",
            ),
            (
                {"actions": [{"type": "pause-work-pool", "work_pool_name": "nope"}]},
                "actions.0.work_pool_name",
            ),
            ({"name": "a/b"}, "name"),
        ]:
            answer = http.post("/automations", json={**spec, "name": "a2", **bad})
            assert answer.status_code == 422, (bad, answer.text)
            assert answer.json()["field"].startswith(field), (bad, answer.json())

        paused = http.patch("/automations/a1", json={"enabled": False})
        assert paused.status_code == 200 and paused.json()["enabled"] is False
        by_id = http.get(f"/automations/{made['id']}").json()
        assert by_id["name"] == "a1" and by_id["enabled"] is False
        replaced = http.put("/automations/a1", json={**spec, "name": "a3"})
        assert replaced.status_code == 200 and replaced.json()["id"] == made["id"]
        assert [a["name"] for a in http.get("/automations").json()] == ["a3"]
        assert http.delete("/automations/a3").status_code == 204
        gone = http.get("/automations/a3")
        assert gone.status_code == 404 and "dockyard automation ls" in gone.json()["hint"]
        paths = http.get("/openapi.json").json()["paths"]
    assert set(paths["/api/automations"]) == {"get", "post"}
    assert set(paths["/api/automations/{name}"]) == {"get", "put", "patch", "delete"}
    assert {"201", "409", "422"} <= set(paths["/api/automations"]["post"]["responses"])
    assert {"get", "post"} == set(paths["/api/events"])


def a_threshold_fires_once_on_the_third_failure_per_window(server: Any, receiver: Receiver) -> None:
    with server.http() as http:
        deployment, first_run = setup_run(http)
        create(
            http,
            name="etl-failing",
            trigger={
                "expect": ["dockyard.flow-run.Failed"],
                "match_related": {ROLE: "deployment", NAME: "etl"},
                "threshold": 3,
                "within": 600,
            },
            actions=[{"type": "call-webhook", "url": receiver.url}],
        )
        runs = [first_run] + [
            http.post(f"/deployments/{deployment}/runs", json={}).json()["id"] for _ in range(3)
        ]

        def failed() -> list[dict[str, Any]]:
            params = {"after": 0, "event": "dockyard.flow-run.Failed"}
            return list(http.get("/events", params=params).json()["events"])

        for number, run in enumerate(runs, start=1):
            claim_and_finish(http, run, final="FAILED")
            wait_until(lambda n=number: len(failed()) == n, 30, f"failure {number} evaluated")
            fired = results(http, "etl-failing")
            assert len(fired) == (0 if number < 3 else 1), (number, fired)
        failed_events = failed()
        [result] = results(http, "etl-failing")
        assert result["event_id"] == failed_events[2]["id"]
        wait_until(lambda: results(http, "etl-failing")[0]["status"] == "SUCCEEDED", 30, "sent")
        [call] = receiver.calls
        assert call["flow_run"]["state"] == "FAILED"
        assert call["flow_run"]["name"] == failed_events[2]["resource"][NAME]
        assert call["flow_run"]["url"].endswith(f"/runs/{call['flow_run']['id']}")
        assert call["event"]["id"] == failed_events[2]["id"]
        assert call["automation"]["name"] == "etl-failing"


def a_failing_webhook_is_retried_with_backoff_and_delivered_once(server: Any) -> None:
    receiver = Receiver(script=[500, 503])
    try:
        with server.http() as http:
            create(
                http,
                name="hook",
                trigger={"expect": ["acme.go"]},
                actions=[
                    {
                        "type": "call-webhook",
                        "url": receiver.url,
                        "headers": {"X-Token": "t"},
                        "body": {"what": "{{ event_name }}", "about": "{{ resource_id }}!"},
                    },
                    {"type": "call-webhook", "url": receiver.url.replace("/hook", "/gone")},
                ],
            )
            emit(http, "acme.go", "acme.table.orders")

            def pending_with_error() -> dict[str, Any] | None:
                found = [r for r in results(http, "hook") if r["action_index"] == 0]
                if found and found[0]["status"] == "PENDING" and found[0]["last_error"]:
                    return found[0]
                return None

            meanwhile = wait_until(pending_with_error, 30, "the error shown while retrying")
            assert "answered 50" in meanwhile["last_error"]
            wait_until(
                lambda: {r["status"] for r in results(http, "hook")} == {"SUCCEEDED"},
                30,
                "delivered",
            )
            done = {r["action_index"]: r for r in results(http, "hook")}
            assert done[0]["attempts"] == 3 and done[0]["last_error"] is None
            assert done[1]["attempts"] == 1
        bodies = [
            c for c in receiver.calls if c == {"what": "acme.go", "about": "acme.table.orders!"}
        ]
        assert len(bodies) == 3 and len(receiver.calls) == 4  # 500, 503, 200, and the other
    finally:
        receiver.close()


def actions_run_pause_and_resume_deployments_and_pools_and_cancel_runs(server: Any) -> None:
    with server.http() as http:
        deployment, first_run = setup_run(http)
        other = http.post(
            "/deployments",
            json={"flow_name": "etl-flow", "name": "other", "work_pool_name": "pool"},
        ).json()["id"]
        create(
            http,
            name="stop-all",
            trigger={"expect": ["acme.stop"]},
            actions=[
                {"type": "pause-deployment", "deployment_id": deployment},
                {"type": "pause-work-pool", "work_pool_name": "pool"},
                {"type": "run-deployment", "deployment_id": other, "parameters": {"x": 1}},
            ],
        )
        create(
            http,
            name="start-all",
            trigger={"expect": ["acme.start"]},
            actions=[
                {"type": "resume-deployment", "deployment_id": deployment},
                {"type": "resume-work-pool"},  # the event's own pool
            ],
        )
        create(
            http,
            name="no-running",
            trigger={"expect": ["dockyard.flow-run.Running"]},
            actions=[{"type": "cancel-flow-run"}],
        )

        def all_done(name: str, count: int) -> bool:
            found = results(http, name)
            return len(found) == count and all(r["status"] == "SUCCEEDED" for r in found)

        emit(http, "acme.stop")
        wait_until(lambda: all_done("stop-all", 3), 30, "stop-all done")
        assert http.get(f"/deployments/{deployment}").json()["paused"] is True
        assert http.get("/work-pools/pool").json()["paused"] is True
        [made] = http.get("/flow-runs", params={"deployment_id": other}).json()
        assert made["parameters"] == {"x": 1} and made["state"] == "SCHEDULED"

        pool_id = http.get("/work-pools/pool").json()["id"]
        related = [{ID: f"dockyard.work-pool.{pool_id}", ROLE: "work-pool"}]
        answer = http.post(
            "/events", json={"event": "acme.start", "resource": {ID: "acme.x"}, "related": related}
        )
        assert answer.status_code == 201
        wait_until(lambda: all_done("start-all", 2), 30, "start-all done")
        assert http.get(f"/deployments/{deployment}").json()["paused"] is False
        assert http.get("/work-pools/pool").json()["paused"] is False

        body = {"worker_name": "w1", "work_pool_name": "pool", "limit": 1}
        claimed = wait_until(lambda: http.post("/workers/claim", json=body).json(), 30, "a claim")
        run_id, token = claimed[0]["flow_run"]["id"], claimed[0]["lease_token"]
        http.post(f"/flow-runs/{run_id}/state", json={"state": "RUNNING", "lease_token": token})
        wait_until(lambda: all_done("no-running", 1), 30, "the cancel")
        assert http.get(f"/flow-runs/{run_id}").json()["state"] == "CANCELLING"
        assert first_run


def a_webhook_to_a_host_not_allowed_is_never_called(server: Any, receiver: Receiver) -> None:
    """The receiver listens on 127.0.0.1, the one host allowed; called by another of its
    names, it is refused before any request leaves, at once and for good."""
    elsewhere = receiver.url.replace("127.0.0.1", "localhost")
    with server.http() as http:
        create(
            http,
            name="guarded",
            trigger={"expect": ["acme.guarded"]},
            actions=[{"type": "call-webhook", "url": elsewhere}],
        )
        evaluated(http, emit(http, "acme.guarded"))

        def refused() -> dict[str, Any] | None:
            found = results(http, "guarded")
            return found[0] if found and found[0]["status"] == "FAILED" else None

        wait_until(refused, 30, "the refused webhook recorded")
        result = refused()
        assert result is not None and result["attempts"] == 1
        assert "DOCKYARD_WEBHOOK_ALLOWED_HOSTS" in result["last_error"], result
    assert receiver.calls == []
