"""Schedule math: cron, interval and rrule slots, in a timezone, across DST changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dockyard import schemas
from dockyard.server import schedules
from dockyard.server.errors import Invalid
from dockyard.server.tables import ScheduleRow


def _row(**fields: object) -> ScheduleRow:
    base = {"cron": None, "interval": None, "anchor_date": None, "rrule": None, "timezone": "UTC"}
    return ScheduleRow(id=uuid.uuid4(), deployment_id=uuid.uuid4(), **(base | fields))


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_cron_keeps_local_time_across_spring_forward() -> None:
    row = _row(cron="0 9 * * *", timezone="America/New_York")
    # DST starts in New York on 2026-03-08
    got = schedules.times(row, _utc(2026, 3, 6), _utc(2026, 3, 10), 10)
    assert [t.hour for t in got] == [14, 14, 13, 13]  # 9:00 EST then 9:00 EDT, in UTC
    assert all(t.tzinfo == UTC for t in got)


def test_cron_in_the_skipped_and_repeated_hours() -> None:
    row = _row(cron="30 * * * *", timezone="Europe/Paris")
    # Paris: 2026-03-29 02:00 → 03:00 (spring forward); 2026-10-25 03:00 → 02:00 (fall back)
    spring = schedules.times(row, _utc(2026, 3, 28, 23), _utc(2026, 3, 29, 3), 10)
    assert len(spring) == len(set(spring)) == 4  # one hour less, no duplicates
    fall = schedules.times(row, _utc(2026, 10, 24, 23), _utc(2026, 10, 25, 3), 10)
    assert len(fall) == len(set(fall)) == 4
    assert fall == sorted(fall)


def test_interval_from_its_anchor() -> None:
    row = _row(interval=600, anchor_date=_utc(2026, 1, 1, 0, 5))
    got = schedules.times(row, _utc(2026, 5, 1, 12, 0), _utc(2026, 5, 1, 12, 31), 10)
    assert got == [_utc(2026, 5, 1, 12, m) for m in (5, 15, 25)]


def test_daily_interval_keeps_wall_clock_across_dst() -> None:
    anchor = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)  # 08:00 UTC = 09:00 in Paris (CET)
    row = _row(interval=86400, anchor_date=anchor, timezone="Europe/Paris")
    got = schedules.times(row, _utc(2026, 3, 27), _utc(2026, 3, 31), 10)
    assert [t.hour for t in got] == [8, 8, 7, 7]  # 09:00 local, before and after the change


def test_rrule_and_limit() -> None:
    row = _row(rrule="FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=9;BYMINUTE=0", timezone="UTC")
    got = schedules.times(row, _utc(2026, 6, 1), _utc(2026, 7, 1), 3)
    assert got == [_utc(2026, 6, 1, 9), _utc(2026, 6, 5, 9), _utc(2026, 6, 8, 9)]
    assert schedules.period(row, got[0]) == timedelta(days=4)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cron": "61 * * * *"}, "schedules.cron"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "schedules.timezone"),
        ({"rrule": "FREQ=SOMETIMES"}, "schedules.rrule"),
        ({}, "schedules"),
        ({"cron": "* * * * *", "interval": 60}, "schedules"),
    ],
)
def test_invalid_schedules_name_the_field(body: dict, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        schedules.validate(schemas.ScheduleCreate(**body))
    assert caught.value.extra["field"] == field
