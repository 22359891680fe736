"""Paused and suspended runs over the real API, on SQLite and PostgreSQL: who may pause,
what a resume checks, the slots a paused run keeps and a suspended one gives back, the
cancel that always wins, and the timeouts and lease expiries the reaper ends."""

from __future__ import annotations

import itertools
import threading
import uuid
from typing import Any

import httpx

from _support import RunningServer, ServerFactory, wait_until
from dockyard.schemas import StateType as S
from dockyard.server import orchestration

SCHEMA = {
    "type": "object",
    "title": "Approval",
    "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}},
    "required": ["approved"],
    "additionalProperties": False,
}


def _direct_run(http: httpx.Client) -> tuple[str, str]:
    """A RUNNING run of a flow called directly: its id and lease token."""
    made = http.post("/flow-runs", json={"flow_name": "approve"})
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["lease_token"]


def _deployment_run(http: httpx.Client, **deployment: Any) -> tuple[str, str]:
    """A RUNNING run of a deployment of no pool, taken by hand: its id and lease token."""
    body = {"flow_name": "approve", "name": "d", **deployment}
    made = http.post("/deployments", json=body)
    assert made.status_code == 200, made.text
    run = http.post(f"/deployments/{made.json()['id']}/runs", json={}).json()
    return run["id"], _take(http, run["id"])


def _take(http: httpx.Client, run_id: str) -> str:
    pending = http.post(f"/flow-runs/{run_id}/state", json={"state": "PENDING"})
    assert pending.status_code == 200, pending.text
    token = pending.json()["lease_token"]
    running = http.post(
        f"/flow-runs/{run_id}/state", json={"state": "RUNNING", "lease_token": token}
    )
    assert running.status_code == 200, running.text
    return str(token)


def _pause(http: httpx.Client, run_id: str, **body: Any) -> httpx.Response:
    return http.post(f"/flow-runs/{run_id}/pause", json={"key": "pause-1", **body})


def _history(http: httpx.Client, run_id: str) -> list[str]:
    history = [state["type"] for state in http.get(f"/flow-runs/{run_id}/states").json()]
    steps = list(itertools.pairwise(history))
    assert all(S(b) in orchestration.ALLOWED[S(a)] for a, b in steps), history
    return history


def test_pause_resume_with_input_and_the_rules_around_it(server: RunningServer) -> None:
    with server.http() as http:
        run_id, token = _direct_run(http)
        refused = _pause(http, run_id)  # no lease token: only a suspend comes from elsewhere
        assert refused.status_code == 409 and "own process" in refused.json()["detail"]
        stale = _pause(http, run_id, lease_token=str(uuid.uuid4()))
        assert stale.status_code == 409 and "stale lease token" in stale.json()["detail"]
        bad_schema = _pause(http, run_id, lease_token=token, input_schema={"type": 5})
        assert bad_schema.status_code == 422 and bad_schema.json()["field"] == "input_schema"
        no_deployment = _pause(http, run_id, lease_token=token, suspend=True)
        assert (
            no_deployment.status_code == 409 and "no deployment" in no_deployment.json()["detail"]
        )

        paused = _pause(http, run_id, lease_token=token, input_schema=SCHEMA, timeout=600)
        assert paused.status_code == 200, paused.text
        pause = paused.json()
        assert (pause["state"], pause["key"], pause["resumed"]) == ("PAUSED", "pause-1", False)
        assert pause["suspended"] is False and pause["input_schema"] == SCHEMA
        run = http.get(f"/flow-runs/{run_id}").json()
        assert run["state"] == "PAUSED" and run["lease_expires"] is not None  # kept
        assert "waiting up to 600 s" in run["state_message"]
        # only a resume ends a pause; the generic route says how
        by_hand = http.post(
            f"/flow-runs/{run_id}/state", json={"state": "RUNNING", "lease_token": token}
        )
        assert by_hand.status_code == 409 and "flow-run resume" in by_hand.json()["detail"]
        assert http.post(f"/flow-runs/{run_id}/lease", json={"lease_token": token}).is_success

        for bad, field in (
            ({"approved": "maybe"}, "run_input.approved"),
            ({"note": "no"}, "run_input.approved"),
            ({"approved": True, "extra": 1}, "run_input"),
            (None, "run_input.approved"),
        ):
            answer = http.post(f"/flow-runs/{run_id}/resume", json={"run_input": bad})
            assert answer.status_code == 422, answer.text
            assert answer.json()["field"] == field
            assert "stays PAUSED" in answer.json()["detail"]
        assert http.get(f"/flow-runs/{run_id}").json()["state"] == "PAUSED"

        # an engine's long-poll returns as soon as the resume lands
        waited: list[dict[str, Any]] = []

        def long_poll() -> None:
            with server.http() as engine:
                params = {"key": "pause-1", "wait": 30}
                waited.append(engine.get(f"/flow-runs/{run_id}/pause", params=params).json())

        poll = threading.Thread(target=long_poll)
        poll.start()
        resumed = http.post(
            f"/flow-runs/{run_id}/resume", json={"run_input": {"approved": True, "note": "ok"}}
        )
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["state"] == "RUNNING"
        poll.join(20)
        assert not poll.is_alive()
        assert waited[0]["resumed"] is True and waited[0]["state"] == "RUNNING"
        assert waited[0]["run_input"] == {"approved": True, "note": "ok"}

        again = http.post(f"/flow-runs/{run_id}/resume", json={})
        assert again.status_code == 409 and again.json()["current_state"] == "RUNNING"
        # the same key again (a run started again from the top): answered, nothing changes
        repeat = _pause(http, run_id, lease_token=token, input_schema=SCHEMA)
        assert repeat.json()["resumed"] is True
        assert repeat.json()["run_input"] == {"approved": True, "note": "ok"}
        assert http.get(f"/flow-runs/{run_id}").json()["state"] == "RUNNING"

        # a cancel wins over a pause: the paused process is asked to stop
        _pause(http, run_id, lease_token=token, key="pause-2")
        assert http.post(f"/flow-runs/{run_id}/cancel").json()["state"] == "CANCELLING"
        assert http.post(f"/flow-runs/{run_id}/resume", json={}).status_code == 409
        assert _history(http, run_id) == [
            "RUNNING", "PAUSED", "RUNNING", "PAUSED", "CANCELLING"
        ]  # fmt: skip


def test_a_paused_run_keeps_its_slot_and_a_suspended_one_gives_it_back(
    server: RunningServer,
) -> None:
    with server.http() as http:
        first, token = _deployment_run(http, concurrency_limit=1)
        deployment_id = http.get(f"/flow-runs/{first}").json()["deployment_id"]
        second = http.post(f"/deployments/{deployment_id}/runs", json={}).json()["id"]

        assert _pause(http, first, lease_token=token).status_code == 200
        blocked = http.post(f"/flow-runs/{second}/state", json={"state": "PENDING"})
        assert blocked.status_code == 409 and "concurrency limit" in blocked.json()["detail"]
        http.post(f"/flow-runs/{first}/resume", json={})

        suspended = _pause(http, first, lease_token=token, key="s-1", suspend=True)
        assert suspended.status_code == 200 and suspended.json()["suspended"] is True
        run = http.get(f"/flow-runs/{first}").json()
        assert run["state"] == "PAUSED" and run["lease_expires"] is None
        # its lease is gone: its old process is fenced off, and the worker may not crash it
        renewal = http.post(f"/flow-runs/{first}/lease", json={"lease_token": token})
        assert renewal.status_code == 409
        crash = http.post(
            f"/flow-runs/{first}/state", json={"state": "CRASHED", "lease_token": token}
        )
        assert crash.status_code == 409 and "suspended" in crash.json()["detail"]
        second_token = _take(http, second)  # the slot is free

        resumed = http.post(f"/flow-runs/{first}/resume", json={"run_input": {"x": 1}})
        assert resumed.json()["state"] == "SCHEDULED" and resumed.json()["worker_name"] is None
        http.post(
            f"/flow-runs/{second}/state", json={"state": "COMPLETED", "lease_token": second_token}
        )
        again = _take(http, first)  # started again from the top: same key, answered at once
        repeat = _pause(http, first, lease_token=again, key="s-1", suspend=True)
        assert repeat.json()["resumed"] is True and repeat.json()["run_input"] == {"x": 1}
        assert http.get(f"/flow-runs/{first}").json()["state"] == "RUNNING"

        # a suspended run that is cancelled is CANCELLED at once: nothing runs it
        _pause(http, first, lease_token=again, key="s-2", suspend=True)
        assert http.post(f"/flow-runs/{first}/cancel").json()["state"] == "CANCELLED"
        assert _history(http, first)[-3:] == ["RUNNING", "PAUSED", "CANCELLED"]


def test_the_reaper_fails_an_expired_suspend_and_crashes_a_dead_paused_run(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(DOCKYARD_LEASE_SECONDS="2")  # the reaper's first pass after 2 s
    with server.http() as http:
        suspended, token = _deployment_run(http)
        _pause(http, suspended, lease_token=token, suspend=True, timeout=1)
        paused, token = _direct_run(http)
        _pause(http, paused, lease_token=token, timeout=600)  # nobody renews its lease

        def ended(run_id: str) -> dict[str, Any] | None:
            run = http.get(f"/flow-runs/{run_id}").json()
            return run if run["state"] in ("FAILED", "CRASHED") else None

        failed = wait_until(lambda: ended(suspended), 30, "the suspended run to time out")
        assert failed["state"] == "FAILED"
        assert "paused for more than 1 s without being resumed" in failed["state_message"]
        crashed = wait_until(lambda: ended(paused), 30, "the paused run's lease to expire")
        assert crashed["state"] == "CRASHED" and "lease expired" in crashed["state_message"]
        _history(http, suspended)
        _history(http, paused)
