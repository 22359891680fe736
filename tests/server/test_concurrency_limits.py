"""Global concurrency limits over the real API, on SQLite and PostgreSQL: the limits, slots
taken under leases and for good, long-polls woken by releases and expiries, and no two
acquires ever taking the last slot."""

from __future__ import annotations

import threading
from typing import Any

import httpx

LIMITS = "/concurrency-limits"


def _acquire(http: httpx.Client, *names: str, **fields: Any) -> httpx.Response:
    return http.post(f"{LIMITS}/acquire", json={"names": list(names), **fields})


def test_limit_lifecycle_and_refusals(server) -> None:
    with server.http() as http:
        created = http.post(LIMITS, json={"name": "db pool", "limit": 3})
        assert created.status_code == 201, created.text
        limit = created.json()
        assert (limit["name"], limit["limit"], limit["active"]) == ("db pool", 3, True)
        assert (limit["slot_decay_per_second"], limit["active_slots"]) == (0.0, 0)

        duplicate = http.post(LIMITS, json={"name": "db pool", "limit": 1})
        assert duplicate.status_code == 409 and duplicate.json()["field"] == "name"
        assert "gcl update" in duplicate.json()["hint"]
        read = http.get(f"{LIMITS}/name/db%20pool").json()
        assert read == {**limit, "leases": []}
        assert http.get(LIMITS).json() == [limit]

        changed = http.patch(
            f"{LIMITS}/name/db pool",
            json={"limit": 5, "active": False, "slot_decay_per_second": 0.5},
        )
        assert changed.status_code == 200, changed.text
        shown = changed.json()
        assert (shown["limit"], shown["active"], shown["slot_decay_per_second"]) == (5, False, 0.5)
        assert shown["updated"] > limit["updated"]

        for body in [
            {"name": "a/b", "limit": 1},
            {"name": "x", "limit": -1},
            {"name": "x", "limit": "2"},
            {"name": "x", "limit": 1, "slot_decay_per_second": -1},
            {"name": "x", "limit": 1, "active": "yes"},
            {"name": "x"},
        ]:
            refused = http.post(LIMITS, json=body)
            assert refused.status_code == 422, (body, refused.text)
        assert http.post(LIMITS, json={"name": "x", "limit": 1, "slot": 1}).status_code == 422
        no_decay = http.post(LIMITS, json={"name": "plain", "limit": 2}).json()
        reset = http.patch(f"{LIMITS}/name/plain", json={"active_slots": 1})
        assert reset.status_code == 422 and reset.json()["field"] == "active_slots"
        assert no_decay["active_slots"] == 0

        assert http.delete(f"{LIMITS}/name/db pool").status_code == 204
        gone = http.get(f"{LIMITS}/name/db pool")
        assert gone.status_code == 404
        assert gone.json()["detail"] == "concurrency limit 'db pool' not found"
        assert "dockyard gcl create db pool" in gone.json()["hint"]
        assert http.delete(f"{LIMITS}/name/db pool").status_code == 404
        assert http.patch(f"{LIMITS}/name/db pool", json={"limit": 1}).status_code == 404
        assert [x["name"] for x in http.get(LIMITS).json()] == ["plain"]

        paths = http.get("/openapi.json").json()["paths"]
    assert {"201", "409", "422"} <= set(paths["/api/concurrency-limits"]["post"]["responses"])
    assert "404" in paths["/api/concurrency-limits/acquire"]["post"]["responses"]
    release = paths["/api/concurrency-limits/leases/{lease_id}/release"]["post"]
    assert "204" in release["responses"]


def test_slots_are_leased_renewed_and_released(server) -> None:
    with server.http() as http:
        http.post(LIMITS, json={"name": "db", "limit": 3})
        http.post(LIMITS, json={"name": "api", "limit": 2})
        http.post(LIMITS, json={"name": "off", "limit": 1, "active": False})

        first = _acquire(http, "db", "api", "off", "nothing", occupy=2, holder="worker one")
        assert first.status_code == 200, first.text
        taken = first.json()
        assert taken["acquired"] is True and taken["lease_id"]
        assert (taken["limits"], taken["inactive"], taken["missing"]) == (
            ["api", "db"],
            ["off"],
            ["nothing"],
        )
        db = http.get(f"{LIMITS}/name/db").json()
        assert db["active_slots"] == 2
        [lease] = db["leases"]
        assert (lease["id"], lease["slots"], lease["holder"]) == (
            taken["lease_id"],
            2,
            "worker one",
        )
        assert lease["expires"] == taken["lease_expires"]

        # all or none: db has room for one more, api has none, so neither is taken
        blocked = _acquire(http, "db", "api", wait=0).json()
        assert (blocked["acquired"], blocked["lease_id"], blocked["full"]) == (False, None, ["api"])
        assert http.get(f"{LIMITS}/name/db").json()["active_slots"] == 2

        lease_path = f"{LIMITS}/leases/{taken['lease_id']}"
        renewed = http.post(f"{lease_path}/renew", json={"lease_seconds": 120})
        assert renewed.status_code == 200, renewed.text
        assert renewed.json()["lease_expires"] > taken["lease_expires"]

        assert http.post(f"{lease_path}/release").status_code == 204
        assert http.post(f"{lease_path}/release").status_code == 204  # twice: harmless
        gone = http.post(f"{lease_path}/renew", json={})
        assert gone.status_code == 404 and "no longer held" in gone.json()["detail"]
        assert [x["active_slots"] for x in http.get(LIMITS).json()] == [0, 0, 0]

        # no wait could ever satisfy these: refused at once
        over = _acquire(http, "db", occupy=4, wait=30)
        assert over.status_code == 422 and over.json()["field"] == "occupy"
        assert "only 3" in over.json()["detail"] and "--limit 4" in over.json()["detail"]
        no_decay = _acquire(http, "db", mode="rate_limit")
        assert no_decay.status_code == 422 and "--slot-decay-per-second" in no_decay.text
        strict = _acquire(http, "db", "nothing", strict=True)
        assert strict.status_code == 404 and strict.json()["field"] == "names"
        assert "'nothing'" in strict.json()["detail"]
        inactive_only = _acquire(http, "off", occupy=5).json()
        assert (inactive_only["acquired"], inactive_only["lease_id"]) == (True, None)
        for body in [
            {"names": []},
            {"names": ["db", "db"]},
            {"names": ["db"], "occupy": 0},
            {"names": ["db"], "lease_seconds": 0.5},
            {"names": ["db"], "wait": -1},
            {"names": ["db"], "mode": "other"},
        ]:
            refused = http.post(f"{LIMITS}/acquire", json=body)
            assert refused.status_code == 422, (body, refused.text)
        assert http.get(f"{LIMITS}/name/db").json()["active_slots"] == 0


def test_a_waiting_acquire_is_woken_by_a_release_an_expiry_and_a_raise(server) -> None:
    with server.http() as http:
        http.post(LIMITS, json={"name": "one", "limit": 1})
        held = _acquire(http, "one").json()["lease_id"]

        def wait_for_slot(answers: list[dict[str, Any]], **fields: Any) -> threading.Thread:
            def call() -> None:
                with server.http() as other:
                    answers.append(_acquire(other, "one", wait=25, **fields).json())

            thread = threading.Thread(target=call)
            thread.start()
            return thread

        # nothing but the release frees the slot before the 60 s lease ends: an answer
        # within the 25 s wait shows the release woke the long-poll
        woken: list[dict[str, Any]] = []
        thread = wait_for_slot(woken, lease_seconds=1)
        _wait_for_waiter(http, thread)
        http.post(f"{LIMITS}/leases/{held}/release")
        thread.join()
        assert woken[0]["acquired"] is True

        # that lease (1 s) is never renewed: its expiry frees the slot for the next waiter
        expired: list[dict[str, Any]] = []
        thread = wait_for_slot(expired)
        thread.join()
        assert expired[0]["acquired"] is True
        renew = http.post(f"{LIMITS}/leases/{woken[0]['lease_id']}/renew", json={})
        assert renew.status_code == 404
        release = http.post(f"{LIMITS}/leases/{woken[0]['lease_id']}/release")
        assert release.status_code == 204  # releasing an expired lease is harmless
        assert http.get(f"{LIMITS}/name/one").json()["active_slots"] == 1

        raised: list[dict[str, Any]] = []
        thread = wait_for_slot(raised)
        _wait_for_waiter(http, thread)
        http.patch(f"{LIMITS}/name/one", json={"limit": 2})
        thread.join()
        assert raised[0]["acquired"] is True
        assert http.get(f"{LIMITS}/name/one").json()["active_slots"] == 2


def _wait_for_waiter(http: httpx.Client, thread: threading.Thread) -> None:
    """Give the waiting acquire time to reach the server: one more write request, queued
    behind it on SQLite. (Should the release still come first, the waiter takes the free
    slot at once and the test passes without proving the wake-up; it cannot fail wrongly.)"""
    http.post(f"{LIMITS}/leases/00000000-0000-4000-8000-000000000000/release")
    assert thread.is_alive()


def test_rate_limit_slots_decay(server) -> None:
    with server.http() as http:
        # one slot decays per 100 s: full stays full for the first checks
        http.post(LIMITS, json={"name": "calls", "limit": 2, "slot_decay_per_second": 0.01})
        for _ in range(2):
            taken = _acquire(http, "calls", mode="rate_limit").json()
            assert (taken["acquired"], taken["lease_id"]) == (True, None)
        full = _acquire(http, "calls", mode="rate_limit", wait=0).json()
        assert (full["acquired"], full["full"]) == (False, ["calls"])
        assert http.get(f"{LIMITS}/name/calls").json()["active_slots"] == 2
        # faster decay: a call waits only until both slots have decayed
        http.patch(f"{LIMITS}/name/calls", json={"slot_decay_per_second": 20})
        later = _acquire(http, "calls", mode="rate_limit", occupy=2, wait=20).json()
        assert later["acquired"] is True  # (its slots decay within 0.1 s: not read back)

        reset = http.patch(f"{LIMITS}/name/calls", json={"active_slots": 0})
        assert reset.status_code == 200 and reset.json()["active_slots"] == 0
        off = http.patch(f"{LIMITS}/name/calls", json={"slot_decay_per_second": 0}).json()
        assert off["slot_decay_per_second"] == 0.0 and off["active_slots"] == 0


def test_concurrent_acquires_never_exceed_the_limit(server) -> None:
    limit, threads_count, rounds = 3, 8, 5
    lock = threading.Lock()
    holding = 0
    most = 0
    problems: list[str] = []
    with server.http() as http:
        http.post(LIMITS, json={"name": "race", "limit": limit})

    def work() -> None:
        nonlocal holding, most
        with server.http() as http:
            for _ in range(rounds):
                answer = _acquire(http, "race", wait=25).json()
                if not answer["acquired"]:
                    problems.append(f"not acquired: {answer}")
                    continue
                with lock:
                    holding += 1
                    most = max(most, holding)
                in_use = http.get(f"{LIMITS}/name/race").json()["active_slots"]
                if in_use > limit:
                    problems.append(f"{in_use} slots in use")
                with lock:
                    holding -= 1
                http.post(f"{LIMITS}/leases/{answer['lease_id']}/release")

    workers = [threading.Thread(target=work) for _ in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert problems == []
    assert 1 <= most <= limit
    with server.http() as http:
        final = http.get(f"{LIMITS}/name/race").json()
    assert (final["active_slots"], final["leases"]) == (0, [])
