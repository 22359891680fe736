"""Guarantees over the real API, on SQLite and PostgreSQL: fencing, queues that starve no
one, no run without a queue, idempotency per deployment, leases across an outage, and
first contact from many clients at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from _support.waiting import wait_until


def _pool(http: httpx.Client, **body: Any) -> None:
    answer = http.post("/work-pools", json={"name": "pool", "type": "process", **body})
    assert answer.status_code == 201, answer.text


def _deployment(http: httpx.Client, name: str = "d", flow: str = "f", **body: Any) -> str:
    request = {"flow_name": flow, "name": name, "work_pool_name": "pool", **body}
    answer = http.post("/deployments", json=request)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def _runs(http: httpx.Client, deployment_id: str, n: int = 1, **body: Any) -> list[dict]:
    made = [http.post(f"/deployments/{deployment_id}/runs", json=body) for _ in range(n)]
    assert all(answer.status_code == 201 for answer in made), made[0].text
    return [answer.json() for answer in made]


def _claim(http: httpx.Client, limit: int = 10, **body: Any) -> list[dict]:
    request = {"worker_name": "w", "work_pool_name": "pool", "limit": limit, **body}
    answer = http.post("/workers/claim", json=request)
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def _state(http: httpx.Client, run_id: str, **body: Any) -> httpx.Response:
    return http.post(f"/flow-runs/{run_id}/state", json=body)


def _history(http: httpx.Client, run_id: str) -> list[str]:
    return [s["type"] for s in http.get(f"/flow-runs/{run_id}/states").json()]


# ---------------------------------------------------------------- fencing


def test_a_run_reaches_pending_only_under_the_rules_of_a_claim(server) -> None:
    """The state API's SCHEDULED → PENDING (an engine started by hand) skips no pause and
    no limit, and hands out the lease token."""
    with server.http() as http:
        _pool(http)
        deployment = _deployment(http, concurrency_limit=1)
        first, second = _runs(http, deployment, 2)
        http.post("/work-pools/pool/pause")
        paused = _state(http, first["id"], state="PENDING")
        assert paused.status_code == 409 and "paused" in paused.json()["detail"]
        http.post("/work-pools/pool/resume")
        taken = _state(http, first["id"], state="PENDING")
        assert taken.status_code == 200 and taken.json()["lease_token"]
        full = _state(http, second["id"], state="PENDING")
        assert full.status_code == 409 and "limit" in full.json()["detail"]
        assert _history(http, second["id"]) == ["SCHEDULED"]


def test_every_transition_of_a_leased_run_needs_its_token(server) -> None:
    """A stale or missing token cannot crash, cancel or finish a live attempt, nor record
    its infrastructure; a request to cancel needs none."""
    with server.http() as http:
        _pool(http)
        (run,) = _runs(http, _deployment(http))
        (claimed,) = _claim(http)
        run_id, token = run["id"], claimed["lease_token"]
        for state in ("CRASHED", "RUNNING", "SCHEDULED"):
            refused = _state(http, run_id, state=state)
            assert refused.status_code == 409, (state, refused.text)
            assert refused.json()["current_state"] == "PENDING"
        bad = http.patch(f"/flow-runs/{run_id}", json={"infrastructure_id": "pid-1"})
        assert bad.status_code == 409
        good = http.patch(
            f"/flow-runs/{run_id}", json={"infrastructure_id": "pid-1", "lease_token": token}
        )
        assert good.status_code == 200 and good.json()["infrastructure_id"] == "pid-1"
        assert _state(http, run_id, state="RUNNING", lease_token=token).status_code == 200
        assert _state(http, run_id, state="CANCELLING").json()["state"] == "CANCELLING"
        assert _state(http, run_id, state="CANCELLED").status_code == 409
        ended = _state(http, run_id, state="CANCELLED", lease_token=token)
        assert ended.json()["state"] == "CANCELLED"
        assert _history(http, run_id) == [
            "SCHEDULED",
            "PENDING",
            "RUNNING",
            "CANCELLING",
            "CANCELLED",
        ]


def test_a_cancel_always_wins_and_expected_state_is_compared(server) -> None:
    """A transition decided from a state the run has left is refused (409 with the current
    one); nothing but CANCELLED follows CANCELLING."""
    with server.http() as http:
        _pool(http)
        (run,) = _runs(http, _deployment(http, crash_retries=3))
        (claimed,) = _claim(http)
        run_id, token = run["id"], claimed["lease_token"]
        _state(http, run_id, state="RUNNING", lease_token=token)
        http.post(f"/flow-runs/{run_id}/cancel")
        stale = _state(http, run_id, state="CRASHED", lease_token=token, expected_state="RUNNING")
        assert stale.status_code == 409 and stale.json()["current_state"] == "CANCELLING"
        crash = _state(http, run_id, state="CRASHED", lease_token=token)
        assert crash.status_code == 409  # not even with its token: the cancel wins
        done = _state(
            http, run_id, state="CANCELLED", lease_token=token, expected_state="CANCELLING"
        )
        assert done.json()["state"] == "CANCELLED" and done.json()["attempt"] == 1


def test_a_crash_that_would_happen_again_spends_no_retry(server) -> None:
    with server.http() as http:
        _pool(http)
        deployment = _deployment(http, crash_retries=2)
        first, second = _runs(http, deployment, 2)
        tokens = {c["flow_run"]["id"]: c["lease_token"] for c in _claim(http)}
        kept = _state(
            http,
            first["id"],
            state="CRASHED",
            lease_token=tokens[first["id"]],
            crash_retry=False,
            message="its image does not exist",
        ).json()
        assert kept["state"] == "CRASHED" and kept["attempt"] == 1
        retried = _state(
            http, second["id"], state="CRASHED", lease_token=tokens[second["id"]]
        ).json()
        assert retried["state"] == "SCHEDULED" and retried["attempt"] == 2


# ---------------------------------------------------------------- queues


def test_a_backlog_in_a_full_or_paused_queue_never_blocks_another(server) -> None:
    """More waiting runs than a claim reads at once, in the first queue by priority, at its
    limit or of a paused deployment: a claim still takes the other queue's runs."""
    with server.http() as http:
        _pool(http)
        http.post("/work-pools/pool/queues", json={"name": "urgent", "priority": 1})
        http.post("/work-pools/pool/queues", json={"name": "later"})
        busy = _deployment(http, "busy", work_queue_name="urgent", concurrency_limit=1)
        other = _deployment(http, "other", work_queue_name="later")
        _runs(http, busy, 25)  # a claim of 1 used to read 20 runs, all of this queue
        (taken,) = _claim(http, limit=1)
        assert taken["flow_run"]["deployment_name"] == "busy"
        (later,) = _runs(http, other)
        assert [c["flow_run"]["id"] for c in _claim(http, limit=1)] == [later["id"]]

        http.patch(f"/deployments/{busy}", json={"concurrency_limit": None, "paused": True})
        (again,) = _runs(http, other)
        assert [c["flow_run"]["id"] for c in _claim(http, limit=1)] == [again["id"]]
        http.patch("/work-pools/pool/queues/later", json={"concurrency_limit": 0})
        assert _claim(http, limit=1) == []


def test_deleting_a_queue_moves_its_deployments_and_runs_to_the_default_queue(server) -> None:
    """No run is ever left without a queue (it would never be claimed)."""
    with server.http() as http:
        _pool(http)
        http.post("/work-pools/pool/queues", json={"name": "gone"})
        deployment = _deployment(http, work_queue_name="gone")
        (waiting,) = _runs(http, deployment)
        assert http.delete("/work-pools/pool/queues/gone").status_code == 204
        moved = http.get(f"/flow-runs/{waiting['id']}").json()
        assert moved["work_queue_name"] == "default"
        assert http.get(f"/deployments/{deployment}").json()["work_queue_name"] == "default"
        (new,) = _runs(http, deployment)
        assert new["work_queue_name"] == "default"
        claimed = {c["flow_run"]["id"] for c in _claim(http)}
        assert claimed == {waiting["id"], new["id"]}


def test_a_pool_in_use_is_not_deleted_and_an_unused_one_cancels_its_waiting_runs(server) -> None:
    with server.http() as http:
        _pool(http)
        deployment = _deployment(http)
        (waiting,) = _runs(http, deployment)
        refused = http.delete("/work-pools/pool")
        assert refused.status_code == 409 and "f/d" in refused.json()["detail"]
        assert http.delete(f"/deployments/{deployment}").status_code == 204
        cancelled = http.get(f"/flow-runs/{waiting['id']}").json()
        assert cancelled["state"] == "CANCELLED" and "deleted" in cancelled["state_message"]
        assert http.delete("/work-pools/pool").status_code == 204


def test_a_deployment_moved_to_another_pool_or_queue_takes_its_waiting_runs(server) -> None:
    with server.http() as http:
        _pool(http)
        http.post("/work-pools", json={"name": "other", "type": "process"})
        http.post("/work-pools/other/queues", json={"name": "fast"})
        deployment = _deployment(http)
        (waiting,) = _runs(http, deployment)
        _deployment(http, work_pool_name="other")
        moved = http.get(f"/flow-runs/{waiting['id']}").json()
        assert (moved["work_pool_name"], moved["work_queue_name"]) == ("other", "default")
        assert _claim(http) == []  # the old pool's workers no longer see it
        http.patch(f"/deployments/{deployment}", json={"work_queue_name": "fast"})
        again = http.get(f"/flow-runs/{waiting['id']}").json()
        assert again["work_queue_name"] == "fast"
        claimed = _claim(http, work_pool_name="other", work_queue_names=["fast"])
        assert [c["flow_run"]["id"] for c in claimed] == [waiting["id"]]


# ---------------------------------------------------------------- idempotency


def test_an_idempotency_key_names_one_run_per_deployment(server) -> None:
    with server.http() as http:
        _pool(http)
        a, b = _deployment(http, "a"), _deployment(http, "b")
        (first,) = _runs(http, a, idempotency_key="nightly")
        (again,) = _runs(http, a, idempotency_key="nightly")
        (other,) = _runs(http, b, idempotency_key="nightly")
        assert again["id"] == first["id"]
        assert other["id"] != first["id"] and other["deployment_name"] == "b"
        direct = http.post("/flow-runs", json={"flow_name": "f", "idempotency_key": "nightly"})
        assert direct.status_code == 201 and direct.json()["id"] not in (first["id"], other["id"])


# ---------------------------------------------------------------- outages


def test_a_server_outage_longer_than_a_lease_crashes_no_live_run(server_factory) -> None:
    """The engine renews its lease as soon as the server answers again: the reaper gives
    every lease one full lease period after a start."""
    lease = {"DOCKYARD_LEASE_SECONDS": "6"}
    first = server_factory(**lease)
    with first.http() as http:
        _pool(http)
        (run,) = _runs(http, _deployment(http))
        (claimed,) = _claim(http)
        token = claimed["lease_token"]
        assert _state(http, run["id"], state="RUNNING", lease_token=token).status_code == 200
    first.stop()
    time.sleep(7)  # the lease runs out while no server answers
    second = server_factory(**lease)
    with second.http() as http:
        renewed = http.post(f"/flow-runs/{run['id']}/lease", json={"lease_token": token})
        assert renewed.status_code == 200, renewed.text
        done = _state(http, run["id"], state="COMPLETED", lease_token=token)
        assert done.json()["state"] == "COMPLETED"
        assert _history(http, run["id"])[-1] == "COMPLETED"


def test_a_run_whose_process_died_during_an_outage_is_reaped_after_the_grace(
    server_factory,
) -> None:
    lease = {"DOCKYARD_LEASE_SECONDS": "2"}
    first = server_factory(**lease)
    with first.http() as http:
        _pool(http)
        (run,) = _runs(http, _deployment(http))
        _claim(http)
    first.stop()
    time.sleep(3)
    second = server_factory(**lease)
    with second.http() as http:

        def crashed() -> bool:
            return http.get(f"/flow-runs/{run['id']}").json()["state"] == "CRASHED"

        wait_until(crashed, 30, "the reaper to end a run nobody renewed")


# ---------------------------------------------------------------- first contact


def _at_once(calls: list[Callable[[], httpx.Response]]) -> list[int]:
    statuses: list[int] = []
    start = threading.Barrier(len(calls))

    def call(make: Callable[[], httpx.Response]) -> None:
        start.wait()
        statuses.append(make().status_code)

    threads = [threading.Thread(target=call, args=(make,)) for make in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return statuses


@pytest.mark.parametrize("what", ["heartbeat", "claim", "pool", "queue", "deployment"])
def test_first_contact_from_many_clients_at_once_never_answers_500(server, what: str) -> None:
    clients = [server.http() for _ in range(12)]
    try:
        if what != "pool":
            _pool(clients[0])

        def make(http: httpx.Client) -> Callable[[], httpx.Response]:
            if what == "heartbeat":
                body = {"name": "new-worker", "work_pool_name": "pool"}
                return lambda: http.post("/workers/heartbeat", json=body)
            if what == "claim":
                body = {"worker_name": "new-worker", "work_pool_name": "pool"}
                return lambda: http.post("/workers/claim", json=body)
            if what == "pool":
                return lambda: http.post("/work-pools", json={"name": "p2", "type": "process"})
            if what == "deployment":
                body = {"flow_name": "new-flow", "name": "d", "work_pool_name": "pool"}
                return lambda: http.post("/deployments", json=body)
            return lambda: http.post("/work-pools/pool/queues", json={"name": "q"})

        statuses = _at_once([make(http) for http in clients])
    finally:
        for http in clients:
            http.close()
    assert 500 not in statuses, statuses
    if what in ("pool", "queue"):
        assert sorted(statuses) == [201] + [409] * 11
    else:
        assert set(statuses) == {200}
