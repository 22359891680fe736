"""Schedule objects (``dockyard.schedules``) and the schedule keywords of deploy(),
to_deployment() and serve(): what they send, what they refuse, and where the runs fall on a
real server.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from _support import RunningServer, wait_until
from dockyard import flow
from dockyard.exceptions import DockyardError
from dockyard.schedules import Cron, Interval, RRule, Schedule
from dockyard.sdk.deploy.deployments import Deployment, register, schedule_specs

CHICAGO = ZoneInfo("America/Chicago")
# every 600 s from midnight in Chicago (UTC-6 in January): 06:00 UTC is on the grid
CHICAGO_MIDNIGHT_UTC = datetime(2023, 1, 1, 6, tzinfo=UTC)


@flow
def ticking(n: int = 1) -> int:
    return n


# ---------------------------------------------------------------- the objects


def test_each_kind_makes_a_schedule_body() -> None:
    assert Cron("0 8 * * 1", timezone="America/New_York").request() == {
        "cron": "0 8 * * 1",
        "timezone": "America/New_York",
        "active": True,
    }
    assert RRule("FREQ=WEEKLY;BYDAY=MO", active=False).request() == {
        "rrule": "FREQ=WEEKLY;BYDAY=MO",
        "timezone": "UTC",
        "active": False,
    }
    every_hour = Interval(timedelta(hours=1))
    assert isinstance(every_hour, Schedule)
    assert every_hour.request() == {"interval": 3600.0, "timezone": "UTC", "active": True}
    assert Interval(90).interval == timedelta(seconds=90)


def test_a_naive_anchor_is_sent_as_the_time_in_the_schedules_timezone() -> None:
    body = Interval(600, anchor_date=datetime(2023, 1, 1), timezone="America/Chicago").request()
    assert body["anchor_date"] == "2023-01-01T00:00:00-06:00"
    assert body["timezone"] == "America/Chicago"
    # no timezone: UTC
    assert Interval(600, datetime(2023, 7, 1, 12)).request()["anchor_date"] == (
        "2023-07-01T12:00:00+00:00"
    )


def test_an_aware_anchor_keeps_its_offset_and_names_the_zone() -> None:
    offset = datetime(2023, 1, 1, tzinfo=timezone(timedelta(hours=3)))
    body = Interval(600, anchor_date=offset, timezone="America/Chicago").request()
    assert body["anchor_date"] == "2023-01-01T00:00:00+03:00"
    assert body["timezone"] == "America/Chicago"
    # a named zone is the schedule's timezone when none is given
    paris = Interval(3600, anchor_date=datetime(2023, 6, 1, 9, tzinfo=ZoneInfo("Europe/Paris")))
    assert paris.timezone == "Europe/Paris"
    assert paris.request()["anchor_date"] == "2023-06-01T09:00:00+02:00"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Cron("0 0 * * *", day_or=False), "day_or=False is not supported"),
        (lambda: Cron("0 0 * * *", parameters={"n": 2}), "own parameters are not supported"),
        (lambda: Interval(60, parameters={"n": 2}), "own parameters are not supported"),
        (lambda: RRule("FREQ=DAILY", parameters={"n": 2}), "own parameters are not supported"),
        (lambda: Cron("0 0 * * *", timezone="Mars/Olympus"), "unknown timezone 'Mars/Olympus'"),
        (lambda: Interval(0), "more than zero"),
        (lambda: Interval(timedelta(seconds=-5)), "more than zero"),
        (lambda: Interval(True), "seconds (a number) or a timedelta"),
        (lambda: Interval(float("nan")), "seconds (a number) or a timedelta"),
        (lambda: Interval(60, anchor_date="2023-01-01"), "anchor_date must be a datetime"),
        (
            lambda: Interval(60, datetime(9999, 12, 31, 23), timezone="America/Chicago"),
            "out of range",
        ),
        (lambda: Cron(""), "cron must be a cron expression"),
        (lambda: RRule(""), "rrule must be an RRULE"),
    ],
)
def test_what_the_server_cannot_take_is_refused_when_made(make: Any, message: str) -> None:
    with pytest.raises(DockyardError) as raised:
        make()
    assert message in str(raised.value)


def test_the_keywords_objects_and_dicts_make_one_list() -> None:
    specs = schedule_specs(
        cron="0 * * * *",
        interval=[600, timedelta(hours=2)],
        timezone="America/Chicago",
        anchor_date=datetime(2023, 1, 1),
        schedule=RRule("FREQ=DAILY"),
        schedules=[
            Cron("30 2 * * *"),
            {"interval": timedelta(minutes=5), "anchor_date": datetime(2023, 1, 1)},
        ],
    )
    assert [(s.get("cron"), s.get("interval"), s.get("rrule")) for s in specs] == [
        ("0 * * * *", None, None),
        (None, 600.0, None),
        (None, 7200.0, None),
        (None, None, "FREQ=DAILY"),
        ("30 2 * * *", None, None),
        (None, 300.0, None),
    ]
    assert specs[1]["anchor_date"] == "2023-01-01T00:00:00-06:00"
    # a dict's anchor without a zone is read in its timezone (UTC when it names none)
    assert specs[5]["anchor_date"] == "2023-01-01T00:00:00+00:00"


def test_a_deployment_made_with_schedule_objects_sends_their_bodies() -> None:
    deployment = Deployment(ticking, "direct", schedules=(Cron("0 0 * * *"), {"interval": 60}))
    assert deployment.request()["schedules"] == [
        {"cron": "0 0 * * *", "timezone": "UTC", "active": True},
        {"interval": 60},
    ]
    served = ticking.to_deployment("served", schedule=Cron("0 1 * * *"), cron="0 2 * * *")
    assert [s["cron"] for s in served.request()["schedules"]] == ["0 2 * * *", "0 1 * * *"]


# ---------------------------------------------------------------- on a real server


def _pool(server: RunningServer) -> None:
    with server.http() as http:
        http.post("/work-pools", json={"name": "pool", "type": "process"})


def _schedules(server: RunningServer, deployment_id: uuid.UUID) -> list[Any]:
    with server.client() as client:
        return list(client.read_deployment(deployment_id).schedules)


def _starts(server: RunningServer, deployment_id: uuid.UUID, count: int) -> list[datetime]:
    def scheduled() -> list[Any] | None:
        with server.client() as client:
            runs = client.list_flow_runs(deployment_id=deployment_id, state=["SCHEDULED"])
        return runs if len(runs) >= count else None

    runs = wait_until(scheduled, 30.0, f"{count} scheduled runs")
    return sorted(run.scheduled_start for run in runs)


@pytest.mark.parametrize("server", [{"DOCKYARD_SCHEDULER_MAX_RUNS": "5"}], indirect=True)
@pytest.mark.parametrize("how", ["keywords", "object", "dict"])
def test_deploy_places_runs_on_the_anchors_grid_in_its_timezone(
    tracked: RunningServer, how: str
) -> None:
    _pool(tracked)
    anchor = datetime(2023, 1, 1)  # midnight, in Chicago
    given: dict[str, Any] = {
        "keywords": {"interval": 600, "anchor_date": anchor, "timezone": "America/Chicago"},
        "object": {"schedules": [Interval(600, anchor, "America/Chicago")]},
        "dict": {
            "schedules": [{"interval": 600, "anchor_date": anchor, "timezone": "America/Chicago"}]
        },
    }[how]
    deployment_id = ticking.deploy("grid", work_pool_name="pool", **given)
    [schedule] = _schedules(tracked, deployment_id)
    assert schedule.anchor_date == CHICAGO_MIDNIGHT_UTC
    assert schedule.timezone == "America/Chicago" and schedule.interval == 600
    starts = _starts(tracked, deployment_id, 5)
    assert all((s - CHICAGO_MIDNIGHT_UTC) % timedelta(seconds=600) == timedelta(0) for s in starts)


@pytest.mark.parametrize("server", [{"DOCKYARD_SCHEDULER_MAX_RUNS": "5"}], indirect=True)
def test_to_deployment_takes_every_kind_and_redeploying_keeps_them(
    tracked: RunningServer,
) -> None:
    # a grid of 7 hours from 01:00 in Chicago: one that a misread zone would not give
    anchor = datetime(2023, 1, 1, 1)
    schedules = [
        Cron("15 9 * * *", timezone="America/Chicago"),
        RRule("FREQ=DAILY;BYHOUR=18;BYMINUTE=45", timezone="America/Chicago"),
        Interval(timedelta(hours=7), anchor_date=anchor, timezone="America/Chicago"),
        Interval(timedelta(days=1), anchor_date=anchor, timezone="Asia/Tokyo", active=False),
    ]
    deployment = ticking.to_deployment("kinds", schedules=schedules)
    with tracked.client() as client:
        [registered] = register(client, [deployment])
        [again] = register(client, [deployment])
    assert sorted(s.id for s in again.schedules) == sorted(s.id for s in registered.schedules)
    by_kind = {(s.cron or s.rrule or s.interval): s for s in registered.schedules}
    assert by_kind[86400.0].active is False
    assert by_kind[86400.0].anchor_date == datetime(2022, 12, 31, 16, tzinfo=UTC)  # 01:00 JST
    seven = by_kind[25200.0]
    assert seven.anchor_date == datetime(2023, 1, 1, 7, tzinfo=UTC)
    starts = _starts(tracked, registered.id, 15)
    local = {s.astimezone(CHICAGO).strftime("%H:%M") for s in starts}
    assert {"09:15", "18:45"} <= local
    sevens = [s for s in starts if (s - seven.anchor_date) % timedelta(hours=7) == timedelta(0)]
    assert len(sevens) >= 5


def test_deploy_refuses_a_bad_schedule_before_it_reaches_the_server(
    tracked: RunningServer,
) -> None:
    _pool(tracked)
    with pytest.raises(DockyardError, match="out of range"):
        ticking.deploy(
            "bad",
            work_pool_name="pool",
            interval=600,
            anchor_date=datetime(9999, 12, 31, 23, 59),
            timezone="America/Chicago",
        )
    with tracked.client() as client:
        assert client.list_deployments() == []
