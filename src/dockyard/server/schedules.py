"""Schedule math: the start times a cron, interval or rrule schedule gives in a window.

Times are computed in the schedule's timezone (so "9:00 every day" stays 9:00 across daylight
saving changes) and returned in UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dockyard import schemas
from dockyard.server.errors import Invalid
from dockyard.server.tables import ScheduleRow

DEFAULT_ANCHOR = datetime(2020, 1, 1, tzinfo=UTC)


def validate(body: schemas.ScheduleCreate) -> None:
    """Refuse a schedule that is not exactly one valid cron, interval or rrule."""
    kinds = [k for k in ("cron", "interval", "rrule") if getattr(body, k) is not None]
    if len(kinds) != 1:
        raise Invalid(
            "a schedule needs exactly one of 'cron', 'interval' or 'rrule'", field="schedules"
        )
    try:
        ZoneInfo(body.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"unknown timezone '{body.timezone}'; use an IANA name such as 'Europe/Paris'",
            field="schedules.timezone",
        ) from None
    if body.cron is not None:
        from croniter import croniter

        if not croniter.is_valid(body.cron):
            raise Invalid(
                f"'{body.cron}' is not a valid cron expression (e.g. '0 9 * * 1-5')",
                field="schedules.cron",
            )
    if body.rrule is not None:
        from dateutil.rrule import rrulestr

        try:
            rrulestr(body.rrule, dtstart=DEFAULT_ANCHOR)
        except (ValueError, TypeError) as exc:
            raise Invalid(
                f"'{body.rrule}' is not a valid RRULE: {exc}", field="schedules.rrule"
            ) from None


def times(schedule: ScheduleRow, start: datetime, end: datetime, limit: int) -> list[datetime]:
    """Up to ``limit`` start times in ``[start, end)``, in UTC, in order."""
    found: list[datetime] = []
    for moment in _iterate(schedule, start):
        if moment >= end or len(found) >= limit:
            break
        found.append(moment.astimezone(UTC))
    return found


def _iterate(schedule: ScheduleRow, start: datetime) -> Iterator[datetime]:
    zone = ZoneInfo(schedule.timezone)
    if schedule.cron is not None:
        yield from _cron(schedule.cron, start.astimezone(zone))
    elif schedule.interval is not None:
        yield from _interval(schedule, start, zone)
    elif schedule.rrule is not None:
        yield from _rrule(schedule, start, zone)


def _cron(expression: str, start: datetime) -> Iterator[datetime]:
    from croniter import croniter

    # croniter steps in the zone of its start time, so DST changes keep the wall-clock time
    iterator = croniter(expression, start - timedelta(microseconds=1))
    while True:
        yield iterator.get_next(datetime)


def _interval(schedule: ScheduleRow, start: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    assert schedule.interval is not None
    step = timedelta(seconds=schedule.interval)
    anchor = (schedule.anchor_date or DEFAULT_ANCHOR).astimezone(zone)
    if step % timedelta(days=1) == timedelta(0):
        # whole days: keep the anchor's wall-clock time across DST changes
        days = step.days
        n = max(0, (start - anchor).days // days - 1)
        moment = anchor.replace(tzinfo=None) + timedelta(days=n * days)
        while True:
            local = moment.replace(tzinfo=zone)
            if local >= start:
                yield local
            moment += timedelta(days=days)
    n = max(0, -(-(start - anchor) // step))
    moment = anchor + n * step
    while True:
        yield moment
        moment += step


def _rrule(schedule: ScheduleRow, start: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    from dateutil.rrule import rrulestr

    assert schedule.rrule is not None
    anchor = (schedule.anchor_date or DEFAULT_ANCHOR).astimezone(zone).replace(tzinfo=None)
    rule = rrulestr(schedule.rrule, dtstart=anchor, ignoretz=True)
    local_start = start.astimezone(zone).replace(tzinfo=None)
    moment = rule.after(local_start, inc=True)
    while moment is not None:
        yield moment.replace(tzinfo=zone)
        moment = rule.after(moment, inc=False)


def period(schedule: ScheduleRow, around: datetime) -> timedelta:
    """The gap between two consecutive slots near ``around`` (for "missed" and catch-up)."""
    if schedule.interval is not None:
        return timedelta(seconds=schedule.interval)
    pair = times(schedule, around, around + timedelta(days=400), 2)
    return pair[1] - pair[0] if len(pair) == 2 else timedelta(days=1)
