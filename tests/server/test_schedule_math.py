"""Schedule math: cron, interval and rrule slots, in a timezone, across DST changes."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dockyard import schemas
from dockyard.server import schedules
from dockyard.server.errors import Invalid
from dockyard.server.tables import ScheduleRow

MINIMUM = timedelta(seconds=10)
NOW = datetime(2026, 5, 1, 12, 0, 7, tzinfo=UTC)


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
        schedules.validate(schemas.ScheduleCreate(**body), MINIMUM)
    assert caught.value.extra["field"] == field


def _refusal(minimum: timedelta = MINIMUM, **body: object) -> Invalid:
    with pytest.raises(Invalid) as caught:
        schedules.validate(schemas.ScheduleCreate(**body), minimum, NOW)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"interval": 1e-7}, "schedules.interval"),
        ({"interval": 9.5}, "schedules.interval"),
        ({"rrule": "FREQ=SECONDLY"}, "schedules.rrule"),
        ({"rrule": "FREQ=SECONDLY;INTERVAL=5"}, "schedules.rrule"),
        ({"rrule": "FREQ=MINUTELY;BYSECOND=0,5"}, "schedules.rrule"),  # 5 s apart each minute
        ({"cron": "* * * * * */5"}, "schedules.cron"),  # a seconds field: every 5 s
    ],
)
def test_schedules_firing_more_often_than_the_minimum_are_refused(body: dict, field: str) -> None:
    refused = _refusal(**body)
    assert refused.extra["field"] == field
    assert "minimum interval of 10 s" in refused.detail
    assert "at least 10 s" in refused.detail or "use 10 s or more" in refused.detail


def test_the_minimum_is_a_parameter() -> None:
    minute = timedelta(seconds=60)
    for body in ({"interval": 60}, {"rrule": "FREQ=MINUTELY"}, {"cron": "* * * * *"}):
        schedules.validate(schemas.ScheduleCreate(**body), minute, NOW)  # type: ignore[arg-type]
    refused = _refusal(timedelta(seconds=120), rrule="FREQ=MINUTELY")
    assert refused.extra["field"] == "schedules.rrule" and "120 s" in refused.detail
    schedules.validate(schemas.ScheduleCreate(rrule="FREQ=SECONDLY;INTERVAL=10"), MINIMUM, NOW)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cron": "0 0 30 2 *"}, "schedules.cron"),  # the 30th of February
        ({"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"}, "schedules.rrule"),
        ({"rrule": "FREQ=MINUTELY;BYMONTH=4;BYMONTHDAY=31"}, "schedules.rrule"),
        ({"rrule": "FREQ=DAILY;UNTIL=20210101T000000"}, "schedules.rrule"),  # has ended
        ({"rrule": "DTSTART:20500101T000000\nRRULE:FREQ=DAILY"}, "schedules.rrule"),
        ({"interval": 1e12}, "schedules.interval"),  # its next slot is past year 9999
    ],
)
def test_schedules_that_never_fire_are_refused(body: dict, field: str) -> None:
    refused = _refusal(**body)
    assert refused.extra["field"] == field
    assert "no start time in the next 10 years" in refused.detail


@pytest.mark.parametrize(
    ("rrule", "says"),
    [
        ("FREQ=DAILY;COUNT=3", "UNTIL="),
        ("RRULE:FREQ=DAILY\nEXDATE:20260101T000000", "one RRULE"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL=1 or more"),
        ("FREQ=YEARLY;BYEASTER=0", "BYEASTER"),
    ],
)
def test_rrules_the_scheduler_cannot_bound_are_refused(rrule: str, says: str) -> None:
    refused = _refusal(rrule=rrule)
    assert refused.extra["field"] == "schedules.rrule" and says in refused.detail


# Each rule against dateutil walking it from its anchor (slow, but the reference): the
# scheduler starts it at the window instead, and walks it in a calendar moved ahead.
RULES = [
    "FREQ=HOURLY;INTERVAL=5",
    "FREQ=HOURLY;INTERVAL=7;BYMINUTE=15,45",
    "FREQ=DAILY;INTERVAL=3;BYHOUR=6,18",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH",
    "FREQ=WEEKLY;WKST=SU;INTERVAL=2;BYDAY=SU,SA",
    "FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO,TU,WE,TH,FR",
    "FREQ=MONTHLY;INTERVAL=5",
    "FREQ=MONTHLY;INTERVAL=3;BYDAY=2FR",
    "FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=23",
    "FREQ=YEARLY;BYWEEKNO=1,53;BYDAY=MO",
    "FREQ=YEARLY",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29",
    "FREQ=MINUTELY;INTERVAL=17",
    "FREQ=MINUTELY;INTERVAL=45;BYHOUR=1,2,3",
    "FREQ=SECONDLY;INTERVAL=97;BYHOUR=3",
    "FREQ=HOURLY;INTERVAL=5;UNTIL=20290101T000000",
]


@pytest.mark.parametrize("seed", range(4))
def test_rrules_give_the_times_dateutil_gives_from_their_anchor(seed: int) -> None:
    from dateutil.rrule import rrulestr

    pick = random.Random(seed)
    for _ in range(30):
        rule = pick.choice(RULES)
        zone = pick.choice(["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe"])
        anchor = _utc(2024 + pick.randrange(2), pick.randrange(1, 13), pick.randrange(1, 29))
        anchor += timedelta(seconds=pick.randrange(86400))
        if rule == "FREQ=MONTHLY;INTERVAL=5" and pick.random() < 0.5:
            anchor = anchor.replace(month=1, day=31)  # a day most months lack
        start = _utc(2026, 1, 1) + timedelta(seconds=pick.randrange(365 * 86400))
        end = start + timedelta(days=pick.choice([1, 7, 60, 800]))
        row = _row(rrule=rule, anchor_date=anchor, timezone=zone)
        local = ZoneInfo(zone)
        walked = rrulestr(rule, dtstart=anchor.astimezone(local).replace(tzinfo=None))
        first = start.astimezone(local).replace(tzinfo=None)
        last = end.astimezone(local).replace(tzinfo=None)
        expected = sorted(
            {
                t.replace(tzinfo=local).astimezone(UTC)
                for t in walked.xafter(first, count=60, inc=True)
                if t < last
            }
        )
        try:
            got = schedules.times(row, start, end, 60)
        except Invalid:
            got = []  # nothing in the next ten years: the reference has nothing either
        assert got == expected, (rule, zone, anchor, start, end)


def _count_days_walked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the days dateutil looks at (its work on a rule that matches rarely or never)."""
    from dateutil import rrule

    walked = [0]
    original = rrule._iterinfo.ddayset

    def counting(self: object, year: int, month: int, day: int) -> object:
        walked[0] += 1
        return original(self, year, month, day)  # type: ignore[arg-type]

    monkeypatch.setattr(rrule._iterinfo, "ddayset", counting)
    return walked


def test_a_rule_that_never_matches_is_given_up_within_decades(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    walked = _count_days_walked(monkeypatch)
    row = _row(rrule="FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30")
    with pytest.raises(Invalid):
        schedules.times(row, NOW, NOW + timedelta(days=7), 100)
    # walked to year 9999 that would be some 2.9 million days; the cap is a few decades
    assert 0 < walked[0] < 50 * 366
    assert schedules.period(row, NOW) == timedelta(days=1)


def test_a_fine_rule_from_an_old_anchor_starts_at_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the default anchor is 2020: walked from there, an hourly rule takes ~55,000 steps
    monkeypatch.setattr(schedules, "MAX_STEPS", 10)
    row = _row(rrule="FREQ=HOURLY")
    got = schedules.times(row, NOW, NOW + timedelta(days=1), 5)
    assert got == [_utc(2026, 5, 1, h) for h in range(13, 18)]
    minutely = _row(rrule="FREQ=SECONDLY;INTERVAL=10", anchor_date=_utc(1990, 1, 1))
    assert len(schedules.times(minutely, NOW, NOW + timedelta(hours=1), 5, MINIMUM)) == 5


def test_a_rule_with_too_many_times_per_period_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(schedules, "MAX_STEPS", 100)
    every_minute = "FREQ=YEARLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR=0,6,12,18;BYMINUTE=0,30"
    with pytest.raises(Invalid) as caught:
        schedules.times(_row(rrule=every_minute), NOW, NOW + timedelta(days=1), 5)
    assert "FREQ closer to how often it fires" in caught.value.detail


@pytest.mark.parametrize(
    "fields",
    [
        {"interval": 1e-7},
        {"interval": float("nan")},
        {"rrule": "FREQ=SECONDLY"},
        {"rrule": "not a rule"},
        {"cron": "0 0 30 2 *"},
        {"cron": "nope"},
        {"cron": "0 * * * *", "timezone": "Mars/Olympus"},
    ],
)
def test_period_never_raises(fields: dict) -> None:
    assert schedules.period(_row(**fields), NOW) >= timedelta(0)


def test_hourly_interval_is_elapsed_time_across_dst() -> None:
    # Paris springs forward on 2026-03-29 at 01:00 UTC: an hourly interval stays hourly
    row = _row(interval=3600, timezone="Europe/Paris")
    got = schedules.times(row, _utc(2026, 3, 28, 23, 30), _utc(2026, 3, 29, 3, 30), 10)
    assert got == [_utc(2026, 3, 29, h) for h in range(0, 4)]
