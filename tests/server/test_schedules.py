"""The scheduler service, catch-up policies, LATE and pauses, on a real server."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

FAST = {
    "DOCKYARD_SCHEDULER_MAX_RUNS": "5",
    "DOCKYARD_LATE_THRESHOLD_SECONDS": "1",
    # the catch-up test needs a slot every second
    "DOCKYARD_SCHEDULER_MIN_INTERVAL_SECONDS": "1",
}


def _deploy(http: httpx.Client, **extra: object) -> dict:
    http.post("/work-pools", json={"name": "pool", "type": "process"})
    body = {"flow_name": "f", "name": "d", "work_pool_name": "pool", **extra}
    answer = http.post("/deployments", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def _scheduled(http: httpx.Client) -> list[dict]:
    return http.get("/flow-runs", params={"state": "SCHEDULED", "limit": 1000}).json()


@pytest.mark.parametrize("server", [FAST], indirect=True)
def test_runs_are_made_at_once_bounded_and_replaced_with_the_schedule(server) -> None:
    with server.http() as http:
        deployment = _deploy(http, schedules=[{"cron": "0 * * * *"}])
        assert deployment["schedules"][0]["cron"] == "0 * * * *"
        _until(lambda: len(_scheduled(http)) == 5)  # max runs per schedule
        starts = sorted(r["scheduled_start"] for r in _scheduled(http))
        assert all(s.endswith(":00:00Z") for s in starts)

        # the same schedules again: nothing changes
        again = _deploy(http, schedules=[{"cron": "0 * * * *"}])
        assert again["schedules"][0]["id"] == deployment["schedules"][0]["id"]
        assert sorted(r["scheduled_start"] for r in _scheduled(http)) == starts

        # a changed schedule: the old runs go, new ones come
        _deploy(http, schedules=[{"cron": "30 * * * *"}])
        _until(
            lambda: (
                {r["scheduled_start"][-7:] for r in _scheduled(http)} == {":30:00Z"}
                and len(_scheduled(http)) == 5
            )
        )
        schedule_id = http.get(f"/deployments/{deployment['id']}/schedules").json()[0]["id"]
        paused = http.patch(
            f"/deployments/{deployment['id']}/schedules/{schedule_id}", json={"active": False}
        )
        assert paused.json()["active"] is False
        assert _scheduled(http) == []
        assert (
            http.delete(f"/deployments/{deployment['id']}/schedules/{schedule_id}").status_code
            == 204
        )
        bad = http.post(f"/deployments/{deployment['id']}/schedules", json={"cron": "nope"})
        assert bad.status_code == 422 and bad.json()["field"] == "schedules.cron"


@pytest.mark.parametrize("server", [FAST], indirect=True)
def test_restarts_never_duplicate_a_slot(server, server_factory) -> None:
    with server.http() as http:
        _deploy(http, schedules=[{"interval": 3600}])
        _until(lambda: len(_scheduled(http)) == 5)
    server.stop()
    second = server_factory(database_url=server.database_url, **FAST)
    with second.http() as http:
        time.sleep(1.0)
        starts = [r["scheduled_start"] for r in _scheduled(http)]
        assert len(starts) == len(set(starts)) == 5


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_servers_on_postgres_make_each_slot_once(server_factory) -> None:
    one = server_factory(**FAST)
    two = server_factory(**FAST)
    with one.http() as http:
        _deploy(http, schedules=[{"interval": 60}, {"cron": "*/2 * * * *"}])
    with two.http() as http:
        _until(lambda: len(_scheduled(http)) == 10)
        time.sleep(1.0)
        runs = _scheduled(http)
        keys = [r["idempotency_key"] for r in runs]
        assert len(keys) == len(set(keys)) == 10


def _claim(http: httpx.Client) -> list[dict]:
    body = {"worker_name": "w", "work_pool_name": "pool", "limit": 50}
    return http.post("/workers/claim", json=body).json()


# latest: the newest overdue run starts; skip: only a slot due now (not missed) may start
@pytest.mark.parametrize(
    ("catchup", "claimable"), [("latest", {1}), ("all", None), ("skip", {0, 1})]
)
@pytest.mark.parametrize("server", [FAST], indirect=True)
def test_catch_up_policies_after_an_outage(
    server, catchup: str, claimable: set[int] | None
) -> None:
    with server.http() as http:
        # a slot every second and no worker: after a few seconds, several were missed
        _deploy(http, schedules=[{"interval": 1}], catchup=catchup)
        time.sleep(4.5)
        http.post("/work-pools/pool/pause")  # freeze: no new runs become due unnoticed
        overdue = [r for r in _scheduled(http) if r["late"]]
        assert len(overdue) >= 2
        http.post("/work-pools/pool/resume")
        claimed = _claim(http)
        cancelled = http.get("/flow-runs", params={"state": "CANCELLED"}).json()
        if claimable is None:
            assert not cancelled and len(claimed) >= len(overdue)
        else:
            assert len(claimed) in claimable
            assert cancelled and all(
                f"catch-up policy '{catchup}'" in r["state_message"] for r in cancelled
            )


@pytest.mark.parametrize("server", [FAST], indirect=True)
def test_max_lateness_cancels_instead_of_starting(server) -> None:
    with server.http() as http:
        deployment = _deploy(http, catchup="all", max_lateness_seconds=1)
        run = http.post(f"/deployments/{deployment['id']}/runs", json={}).json()
        time.sleep(1.5)
        assert http.get("/flow-runs", params={"late": "true"}).json()[0]["id"] == run["id"]
        assert _claim(http) == []
        ended = http.get(f"/flow-runs/{run['id']}").json()
        assert ended["state"] == "CANCELLED" and "max_lateness" in ended["state_message"]


@pytest.mark.parametrize("server", [FAST], indirect=True)
def test_paused_deployments_get_no_runs_and_resume_at_once(server) -> None:
    with server.http() as http:
        deployment = _deploy(http, paused=True, schedules=[{"cron": "0 0 * * *"}])
        time.sleep(1.0)
        assert _scheduled(http) == []
        http.patch(f"/deployments/{deployment['id']}", json={"paused": False})
        _until(lambda: len(_scheduled(http)) == 5)
        assert http.get("/flow-runs", params={"late": "true"}).json() == []


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ({"interval": 1e-7}, "schedules.interval"),
        ({"interval": 90}, "schedules.interval"),
        ({"rrule": "FREQ=SECONDLY"}, "schedules.rrule"),
        ({"rrule": "FREQ=MINUTELY;INTERVAL=1"}, "schedules.rrule"),
        ({"cron": "* * * * *"}, "schedules.cron"),
        ({"cron": "0 0 30 2 *"}, "schedules.cron"),
        ({"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"}, "schedules.rrule"),
    ],
)
@pytest.mark.parametrize(
    "server", [{"DOCKYARD_SCHEDULER_MIN_INTERVAL_SECONDS": "120"}], indirect=True
)
def test_schedules_too_frequent_or_never_firing_are_refused(
    server, schedule: dict, field: str
) -> None:
    with server.http() as http:
        deployment = _deploy(http, schedules=[{"rrule": "FREQ=MINUTELY;INTERVAL=2"}])
        refused = http.post(
            "/deployments", json={"flow_name": "f", "name": "d2", "schedules": [schedule]}
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == field
        alone = http.post(f"/deployments/{deployment['id']}/schedules", json=schedule)
        assert alone.status_code == 422 and alone.json()["field"] == field
        detail = alone.json()["detail"]
        assert "minimum interval of 120 s" in detail or "no start time" in detail
        # nothing was stored: the deployment keeps the one schedule it had
        assert len(http.get(f"/deployments/{deployment['id']}/schedules").json()) == 1
        listed = http.get("/deployments", params={"flow_name": "f"}).json()
        assert [d["name"] for d in listed] == ["d"]


def test_an_anchor_without_a_zone_is_read_in_the_schedules_zone(server) -> None:
    schedule = {"interval": 7200, "anchor_date": "2026-01-01T09:00:00", "timezone": "Europe/Paris"}
    with server.http() as http:
        deployment = _deploy(http, schedules=[schedule])
        [stored] = deployment["schedules"]
        assert stored["anchor_date"] == "2026-01-01T08:00:00Z"  # 09:00 in Paris, in winter
        again = _deploy(http, schedules=[schedule])  # the same schedule: kept as it is
        assert [s["id"] for s in again["schedules"]] == [stored["id"]]
        added = http.post(f"/deployments/{deployment['id']}/schedules", json=schedule)
        assert added.status_code == 201 and added.json()["anchor_date"] == stored["anchor_date"]
