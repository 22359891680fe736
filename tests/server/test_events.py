"""Events over the real API, on SQLite and PostgreSQL: every state change of a run, pools and
workers becoming ready or not, events emitted by hand, and following them with a long-poll."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from _support import wait_until

ID, NAME, ROLE = "dockyard.resource.id", "dockyard.resource.name", "dockyard.resource.role"


def setup_run(http: httpx.Client) -> tuple[str, str]:
    """A pool, a tagged deployment on it, and a SCHEDULED run of it: (deployment, run)."""
    assert http.post("/work-pools", json={"name": "pool", "type": "process"}).status_code == 201
    deployment = http.post(
        "/deployments",
        json={
            "flow_name": "etl-flow",
            "name": "etl",
            "work_pool_name": "pool",
            "tags": ["nightly"],
        },
    ).json()["id"]
    run = http.post(f"/deployments/{deployment}/runs", json={"tags": ["extra"]}).json()["id"]
    return deployment, run


def claim_and_finish(http: httpx.Client, run_id: str, final: str = "COMPLETED") -> None:
    body = {"worker_name": "w1", "work_pool_name": "pool", "limit": 1}
    [claimed] = http.post("/workers/claim", json=body).json()
    assert claimed["flow_run"]["id"] == run_id
    token = claimed["lease_token"]
    for state in ("RUNNING", final):
        answer = http.post(
            f"/flow-runs/{run_id}/state", json={"state": state, "lease_token": token}
        )
        assert answer.status_code == 200, answer.text


def events_of(http: httpx.Client, resource_id: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` events about a resource, oldest first (waiting for them)."""

    def read() -> list[dict[str, Any]]:
        page = http.get("/events", params={"after": 0, "resource_id": resource_id}).json()
        return page["events"] if len(page["events"]) >= count else []

    return wait_until(read, 30, f"{count} events about {resource_id}")


def test_run_states_and_emitted_events_are_events_in_order(server) -> None:
    """Two stories on one server (a server start costs more than each)."""
    every_state_change_of_a_run_is_an_event_in_order(server)
    emitted_events_are_checked_listed_and_followed(server)


def every_state_change_of_a_run_is_an_event_in_order(server: Any) -> None:
    with server.http() as http:
        deployment, run_id = setup_run(http)
        claim_and_finish(http, run_id)
        found = events_of(http, f"dockyard.flow-run.{run_id}", 4)

    names = [e["event"] for e in found]
    assert names == [
        "dockyard.flow-run.Scheduled",
        "dockyard.flow-run.Pending",
        "dockyard.flow-run.Running",
        "dockyard.flow-run.Completed",
    ]
    positions = [e["position"] for e in found]
    assert positions == sorted(positions) and len(set(positions)) == 4
    assert [e["payload"]["previous_state"] for e in found] == [
        None,
        "SCHEDULED",
        "PENDING",
        "RUNNING",
    ]
    completed = found[-1]
    assert (
        completed["resource"][NAME] and completed["resource"]["dockyard.state-type"] == "COMPLETED"
    )
    assert completed["resource"]["dockyard.state-name"] == "Completed"
    related = {r[ROLE]: r for r in completed["related"] if r[ROLE] != "tag"}
    assert related["deployment"] == {
        ID: f"dockyard.deployment.{deployment}",
        ROLE: "deployment",
        NAME: "etl",
    }
    assert related["flow"][NAME] == "etl-flow"
    assert related["work-pool"][NAME] == "pool"
    assert related["work-queue"][NAME] == "default"
    tags = sorted(r[NAME] for r in completed["related"] if r[ROLE] == "tag")
    assert tags == ["extra", "nightly"]


def emitted_events_are_checked_listed_and_followed(server: Any) -> None:
    with server.http() as http:
        cursor = http.get("/events", params={"limit": 1}).json()["cursor"]
        answers: list[dict[str, Any]] = []

        def follow() -> None:
            with server.http() as other:
                params = {"after": cursor, "wait": 20, "event": "acme."}
                answers.append(other.get("/events", params=params).json())

        follower = threading.Thread(target=follow)
        follower.start()
        body = {
            "id": "6f0c1a7e-0000-4000-8000-000000000001",
            "event": "acme.table.refreshed",
            "resource": {ID: "acme.table.orders", "rows": "1200"},
            "related": [{ID: "acme.db.main", ROLE: "database"}],
            "payload": {"took": 3.2},
        }
        first = http.post("/events", json=body)
        assert first.status_code == 201, first.text
        again = http.post("/events", json=body)  # the same id: answered, not stored twice
        assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
        follower.join(30)
        [page] = answers
        [seen] = page["events"]
        assert seen["event"] == "acme.table.refreshed" and seen["payload"] == {"took": 3.2}
        assert seen["related"] == body["related"] and page["cursor"] >= seen["position"]

        listed = http.get("/events", params={"event": "acme.", "limit": 10}).json()["events"]
        assert [e["id"] for e in listed] == [first.json()["id"]]
        # nothing after the cursor: the answer comes at once, empty, with the same cursor
        empty = http.get("/events", params={"after": page["cursor"], "event": "acme."}).json()
        assert empty == {"events": [], "cursor": page["cursor"]}

        for refused, field in [
            ({**body, "id": None, "event": "dockyard.flow-run.Failed"}, "event"),
            ({**body, "id": None, "resource": {"rows": "1"}}, "resource"),
            ({**body, "id": None, "event": " spaced"}, "event"),
            ({**body, "id": None, "payload": {"x": "y" * 70_000}}, "payload"),
            ({**body, "id": None, "resource": {ID: "x", "bad": 1}}, "resource.bad"),
        ]:
            answer = http.post("/events", json=refused)
            assert answer.status_code == 422, answer.text
            assert answer.json()["field"].startswith(field), answer.json()


@pytest.mark.parametrize(
    "server",
    [{"DOCKYARD_WORKER_OFFLINE_SECONDS": "1", "DOCKYARD_AUTOMATION_INTERVAL_SECONDS": "0.2"}],
    indirect=True,
)
def test_pools_and_workers_are_announced_ready_and_not_ready_once(server) -> None:
    beat = {"name": "w1", "work_pool_name": "pool", "type": "process"}
    with server.http() as http:
        assert http.post("/work-pools", json={"name": "pool", "type": "process"}).status_code == 201
        pool_id = http.get("/work-pools/pool").json()["id"]
        for _ in range(3):
            assert http.post("/workers/heartbeat", json=beat).status_code == 200

        def announced() -> list[str]:
            page = http.get("/events", params={"after": 0, "event": "dockyard.work"}).json()
            return [e["event"] for e in page["events"]]

        # the beats stop: one not-ready each, once the worker's heartbeat is stale
        wait_until(lambda: "dockyard.work-pool.not-ready" in announced(), 30, "not-ready")
        wait_until(lambda: len(announced()) == 4, 30, "both not-ready events")
        names = announced()
        assert sorted(names[:2]) == ["dockyard.work-pool.ready", "dockyard.worker.ready"]
        assert sorted(names[2:]) == ["dockyard.work-pool.not-ready", "dockyard.worker.not-ready"]
        pool_events = http.get(
            "/events", params={"after": 0, "resource_id": f"dockyard.work-pool.{pool_id}"}
        ).json()["events"]
        assert [e["resource"][NAME] for e in pool_events] == ["pool", "pool"]
        assert http.get("/work-pools/pool").json()["status"] == "NOT_READY"

        assert http.post("/workers/heartbeat", json=beat).status_code == 200
        wait_until(lambda: len(announced()) == 6, 30, "ready again")
        assert sorted(announced()[4:]) == ["dockyard.work-pool.ready", "dockyard.worker.ready"]
