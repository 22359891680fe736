"""A schedule's ``anchor_date``, through the API of a real server (SQLite and PostgreSQL).

An anchor without a zone is a wall-clock time in the schedule's timezone; one with an offset
is that instant, whatever the timezone. Runs fall on the anchor's grid. An anchor the server
cannot place (out of range once read in the zone or in UTC) is refused with 422 naming
``schedules.anchor_date``, for every kind of schedule, never a 500.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from _support import RunningServer, wait_until

FEW_RUNS = {"DOCKYARD_SCHEDULER_MAX_RUNS": "5"}
CHICAGO = ZoneInfo("America/Chicago")


def _deploy(http: httpx.Client, schedules: list[dict[str, Any]]) -> httpx.Response:
    http.post("/work-pools", json={"name": "pool", "type": "process"})
    body = {"flow_name": "f", "name": "d", "work_pool_name": "pool", "schedules": schedules}
    return http.post("/deployments", json=body)


def _starts(
    http: httpx.Client, deployment: dict[str, Any], count: int
) -> dict[str, list[datetime]]:
    """The start times of each schedule's runs (by schedule id), once there are ``count``."""
    params = {"deployment_id": deployment["id"], "state": "SCHEDULED", "limit": 1000}

    def runs() -> list[dict[str, Any]] | None:
        found = http.get("/flow-runs", params=params).json()
        return found if len(found) >= count else None

    starts: dict[str, list[datetime]] = {s["id"]: [] for s in deployment["schedules"]}
    for run in wait_until(runs, 30.0, f"{count} scheduled runs"):
        # a scheduled run's idempotency key is "schedule:<schedule id>:<slot>"
        schedule_id = run["idempotency_key"].split(":")[1]
        starts[schedule_id].append(datetime.fromisoformat(run["scheduled_start"]))
    return starts


def _on_grid(start: datetime, anchor: datetime, step: timedelta) -> bool:
    return (start - anchor) % step == timedelta(0)


@pytest.mark.parametrize("server", [FEW_RUNS], indirect=True)
def test_a_naive_anchor_is_read_in_the_schedules_timezone(server: RunningServer) -> None:
    # every 600 s from midnight in Chicago: on the grid of 06:00 UTC (CST is UTC-6)
    ten_minutes = {"interval": 600, "anchor_date": "2023-01-01T00:00:00"}
    # every 7 h from midnight in Chicago: a grid that midnight UTC would not give
    seven_hours = {"interval": 7 * 3600, "anchor_date": "2023-01-01T00:00:00"}
    schedules = [{**s, "timezone": "America/Chicago"} for s in (ten_minutes, seven_hours)]
    with server.http() as http:
        answer = _deploy(http, schedules)
        assert answer.status_code == 200, answer.text
        deployment = answer.json()
        starts = _starts(http, deployment, 10)
    anchor = datetime(2023, 1, 1, 6, tzinfo=UTC)
    midnight_utc = datetime(2023, 1, 1, tzinfo=UTC)
    for schedule in deployment["schedules"]:
        assert schedule["anchor_date"] == "2023-01-01T06:00:00Z"
        step = timedelta(seconds=schedule["interval"])
        times = starts[schedule["id"]]
        assert len(times) == 5
        assert all(_on_grid(t, anchor, step) for t in times)
        if step == timedelta(hours=7):
            assert not any(_on_grid(t, midnight_utc, step) for t in times)


@pytest.mark.parametrize("server", [FEW_RUNS], indirect=True)
def test_daily_times_from_a_naive_anchor_keep_its_wall_clock_time(server: RunningServer) -> None:
    zone = {"timezone": "America/Chicago"}
    schedules = [
        {"interval": 86400, "anchor_date": "2023-01-01T09:15:00", **zone},
        {"rrule": "FREQ=DAILY", "anchor_date": "2023-01-01T18:45:00", **zone},
    ]
    with server.http() as http:
        answer = _deploy(http, schedules)
        assert answer.status_code == 200, answer.text
        starts = _starts(http, answer.json(), 10)
    local = {
        tuple(sorted({t.astimezone(CHICAGO).strftime("%H:%M") for t in times}))
        for times in starts.values()
    }
    assert local == {("09:15",), ("18:45",)}


def test_an_anchor_with_an_offset_keeps_it(server: RunningServer) -> None:
    schedule = {
        "interval": 3600,
        "anchor_date": "2023-01-01T00:30:00+03:00",
        "timezone": "America/Chicago",
    }
    with server.http() as http:
        answer = _deploy(http, [schedule])
        assert answer.status_code == 200, answer.text
        [stored] = answer.json()["schedules"]
        assert stored["anchor_date"] == "2022-12-31T21:30:00Z"
        assert stored["timezone"] == "America/Chicago"
        # the same instant written in Chicago's offset is the same schedule: it is kept
        same = {**schedule, "anchor_date": "2022-12-31T15:30:00-06:00"}
        again = _deploy(http, [same]).json()
        assert [s["id"] for s in again["schedules"]] == [stored["id"]]


OUT_OF_RANGE = [
    # read in Chicago (UTC-6), the last second of 9999 is past the end of 9999 in UTC
    ("9999-12-31T23:59:59", "America/Chicago"),
    # an offset that puts the time before year 1 in UTC
    ("0001-01-01T00:00:00+14:00", "America/Chicago"),
    ("9999-12-31T23:59:59-12:00", "UTC"),
    # fine in UTC, but before year 1 in the schedule's zone
    ("0001-01-01T00:00:00Z", "America/Chicago"),
]
KINDS = [{"interval": 600}, {"rrule": "FREQ=HOURLY"}, {"cron": "0 * * * *"}]


def test_an_anchor_out_of_range_is_refused_naming_it(server: RunningServer) -> None:
    with server.http() as http:
        good = _deploy(http, [{"cron": "0 0 * * *"}])
        assert good.status_code == 200, good.text
        deployment = good.json()
        for (anchor, zone), kind in itertools.product(OUT_OF_RANGE, KINDS):
            schedule = {**kind, "anchor_date": anchor, "timezone": zone}
            refused = _deploy(http, [schedule])
            assert refused.status_code == 422, (schedule, refused.text)
            assert refused.json()["field"] == "schedules.anchor_date"
            assert "out of range" in refused.json()["detail"]
            alone = http.post(f"/deployments/{deployment['id']}/schedules", json=schedule)
            assert alone.status_code == 422, (schedule, alone.text)
            assert alone.json()["field"] == "schedules.anchor_date"
        # nothing was stored: the deployment keeps the one schedule it had
        kept = http.get(f"/deployments/{deployment['id']}/schedules").json()
        assert [s["cron"] for s in kept] == ["0 0 * * *"]


NOT_TIMES = ["2023-01-01", "2023-01-01T24:00:00", "2023-13-01T00:00:00", 1672531200, "soon"]


def test_an_anchor_that_is_not_a_time_is_refused_naming_it(server: RunningServer) -> None:
    with server.http() as http:
        for anchor in NOT_TIMES:
            refused = _deploy(http, [{"interval": 600, "anchor_date": anchor}])
            assert refused.status_code == 422, (anchor, refused.text)
            assert refused.json()["field"] == "schedules.0.anchor_date"
