"""Schedule math: the start times a cron, interval or rrule schedule gives in a window.

Times are computed in the schedule's timezone (so "9:00 every day" stays 9:00 across daylight
saving changes) and returned in UTC.

The work is bounded whatever a schedule says, because it runs for every schedule on every
scheduler pass: an expansion starts at the window (it never walks from an anchor years back),
makes at most ``limit`` times, takes at most ``MAX_STEPS`` steps of a rule beyond them, and
gives up on a rule that never matches within decades of calendar (see ``_frame``).

A schedule is refused (:class:`Invalid`, naming its field) when it is malformed, when its
times come closer together than the server's minimum interval, or when it has no start time
in the ``LOOKAHEAD`` after the window's start. The API refuses such schedules when they are
created; the scheduler marks one stored before these rules existed with the message.
"""

from __future__ import annotations

import calendar
import contextlib
import functools
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dockyard.server.errors import Invalid

if TYPE_CHECKING:
    from dateutil.rrule import rrule

DEFAULT_ANCHOR = datetime(2020, 1, 1, tzinfo=UTC)
LOOKAHEAD_YEARS = 10
LOOKAHEAD = timedelta(days=365 * LOOKAHEAD_YEARS + 3)
SAMPLE = 50  # times checked against the minimum interval when a schedule is created
MAX_STEPS = 20_000  # steps of a rule per expansion, on top of the times it gives
PERIOD_STEPS = 1_000  # period() runs on the event loop, once per overdue run
# what croniter and dateutil raise on a rule they cannot follow (bad syntax, an empty rule,
# a time beyond year 9999)
_LIBRARY_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)
_KINDS = ("cron", "interval", "rrule")


class Definition(Protocol):
    """What the math reads of a schedule: a table row, a request body or a :class:`Spec`."""

    @property
    def cron(self) -> str | None: ...
    @property
    def interval(self) -> float | None: ...
    @property
    def anchor_date(self) -> datetime | None: ...
    @property
    def rrule(self) -> str | None: ...
    @property
    def timezone(self) -> str: ...


@dataclass(frozen=True)
class Spec:
    """A schedule's definition as plain data, for math done off the event loop."""

    cron: str | None
    interval: float | None
    anchor_date: datetime | None
    rrule: str | None
    timezone: str

    @classmethod
    def of(cls, schedule: Definition) -> Spec:
        return cls(
            cron=schedule.cron,
            interval=schedule.interval,
            anchor_date=schedule.anchor_date,
            rrule=schedule.rrule,
            timezone=schedule.timezone,
        )


def check_form(schedule: Definition) -> None:
    """Refuse a schedule that is not exactly one well-formed cron, interval or rrule.

    Cheap (nothing is expanded), so it may run inside a transaction; :func:`validate` adds
    the checks that expand the schedule.
    """
    if sum(getattr(schedule, kind) is not None for kind in _KINDS) != 1:
        raise Invalid(
            "a schedule needs exactly one of 'cron', 'interval' or 'rrule'", field="schedules"
        )
    zone = zone_of(schedule)
    anchor = anchor_of(schedule, zone)  # refuses an anchor out of range, whatever the kind
    if schedule.cron is not None:
        _croniter(schedule.cron, datetime.now(zone))
    if schedule.rrule is not None:
        _Rule.parse(schedule.rrule, anchor)


def validate(schedule: Definition, minimum: timedelta, now: datetime | None = None) -> None:
    """Refuse a schedule that is malformed, fires more often than ``minimum``, or has no
    start time in the next ``LOOKAHEAD_YEARS`` years.

    Bounded, but it expands the schedule: call it off the event loop.
    """
    check_form(schedule)
    start = now or datetime.now(UTC)
    times(schedule, start, start + LOOKAHEAD, SAMPLE, minimum)


def times(
    schedule: Definition,
    start: datetime,
    end: datetime,
    limit: int,
    minimum: timedelta | None = None,
    steps: int | None = None,
) -> list[datetime]:
    """Up to ``limit`` start times in ``[start, end)``, in UTC, in order.

    An rrule may take ``steps`` (default ``MAX_STEPS``) steps besides the times it gives.

    Raises:
        Invalid: the schedule is malformed, two of its times are closer together than
            ``minimum`` (when given), or it has no start time before ``start + LOOKAHEAD``.
    """
    zone = zone_of(schedule)
    try:
        if schedule.cron is not None:
            found, after = _cron_times(schedule, zone, start, end, limit, minimum)
        elif schedule.interval is not None:
            found, after = _interval_times(schedule, zone, start, end, limit, minimum)
        elif schedule.rrule is not None:
            budget = MAX_STEPS if steps is None else steps
            found, after = _rrule_times(schedule, zone, start, end, limit, minimum, budget)
        else:
            raise Invalid(
                "a schedule needs exactly one of 'cron', 'interval' or 'rrule'", field="schedules"
            )
    except OverflowError:
        found, after = [], None  # its next time is beyond year 9999
    if not found and (after is None or after >= start + LOOKAHEAD):
        raise Invalid(
            f"{describe(schedule)} has no start time in the next {LOOKAHEAD_YEARS} years (it "
            "never fires, or it has ended); use one that still fires",
            field=field_of(schedule),
        )
    return found


def period(schedule: Definition, around: datetime) -> timedelta:
    """The gap between two consecutive slots near ``around`` (for "missed" and catch-up).

    Never raises: a schedule that cannot be expanded counts as daily here (the scheduler
    marks it with its error).
    """
    try:
        if schedule.interval is not None:
            return max(timedelta(seconds=schedule.interval), timedelta(0))
        pair = times(schedule, around, around + timedelta(days=400), 2, steps=PERIOD_STEPS)
    except (Invalid, *_LIBRARY_ERRORS):
        return timedelta(days=1)
    return pair[1] - pair[0] if len(pair) == 2 else timedelta(days=1)


def describe(schedule: Definition) -> str:
    if schedule.cron is not None:
        return f"cron '{schedule.cron}'"
    if schedule.interval is not None:
        return f"interval {schedule.interval:g} s"
    return f"rrule '{schedule.rrule}'"


def field_of(schedule: Definition) -> str:
    kind = next((k for k in _KINDS if getattr(schedule, k) is not None), None)
    return f"schedules.{kind}" if kind else "schedules"


def zone_of(schedule: Definition) -> ZoneInfo:
    try:
        return ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"unknown timezone '{schedule.timezone}'; use an IANA name such as 'Europe/Paris'",
            field="schedules.timezone",
        ) from None


def anchor_of(schedule: Definition, zone: ZoneInfo) -> datetime:
    """The schedule's anchor in its zone.

    An anchor without a zone is read in the schedule's zone; one with an offset is that
    instant, whatever the schedule's zone.

    Raises:
        Invalid: the anchor is not a time of years 1 to 9999 both in UTC (as it is stored)
            and in the schedule's zone (as the math reads it).
    """
    anchor = schedule.anchor_date or DEFAULT_ANCHOR
    if anchor.tzinfo is None:
        anchor = anchor.replace(tzinfo=zone)
    try:
        anchor.astimezone(UTC)
        return anchor.astimezone(zone)
    except OverflowError:
        raise Invalid(
            f"anchor_date {anchor.isoformat()} in {schedule.timezone} is out of range: it must "
            "be a time of years 1 to 9999 in UTC and in the schedule's timezone; use a time "
            "in that range (e.g. 2030-01-31T09:00:00)",
            field="schedules.anchor_date",
        ) from None


def _check_gaps(schedule: Definition, moments: list[datetime], minimum: timedelta | None) -> None:
    if minimum is None:
        return
    for earlier, later in itertools.pairwise(moments):
        if later - earlier < minimum:
            raise _too_often(schedule, later - earlier, minimum)


def _too_often(schedule: Definition, gap: timedelta, minimum: timedelta) -> Invalid:
    least = f"{minimum.total_seconds():g} s"
    how = " (a longer FREQ, or a larger INTERVAL)" if schedule.rrule is not None else ""
    return Invalid(
        f"{describe(schedule)} fires every {gap.total_seconds():g} s, more often than the "
        f"server's minimum interval of {least}; space its times at least {least} apart{how}",
        field=field_of(schedule),
    )


# ---------------------------------------------------------------- interval


def _interval_times(
    schedule: Definition,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    limit: int,
    minimum: timedelta | None,
) -> tuple[list[datetime], datetime | None]:
    assert schedule.interval is not None
    least = minimum or timedelta(microseconds=1)
    seconds = schedule.interval
    try:
        step = timedelta(0) if math.isnan(seconds) else timedelta(seconds=seconds)
    except OverflowError:
        step = timedelta.max  # its next slot is beyond year 9999: refused as never firing
    if step < least:
        raise Invalid(
            f"an interval of {schedule.interval:g} s is shorter than the server's minimum "
            f"interval of {least.total_seconds():g} s; use {least.total_seconds():g} s or more",
            field="schedules.interval",
        )
    found: list[datetime] = []
    for moment in _interval(step, anchor_of(schedule, zone), start, zone):
        if moment >= end or len(found) >= limit:
            return found, moment.astimezone(UTC)
        found.append(moment.astimezone(UTC))
    raise AssertionError("an interval never ends")


def _interval(
    step: timedelta, anchor: datetime, start: datetime, zone: ZoneInfo
) -> Iterator[datetime]:
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
    # shorter steps are elapsed time: step in UTC, where an hour is always an hour
    anchor = anchor.astimezone(UTC)
    n = max(0, -(-(start - anchor) // step))
    moment = anchor + n * step
    while True:
        yield moment
        moment += step


# ---------------------------------------------------------------- cron


def _croniter(expression: str, start: datetime) -> Any:
    from croniter import croniter

    try:
        # croniter steps in the zone of its start time, so DST changes keep the wall-clock
        # time; it stops looking for a next time LOOKAHEAD_YEARS years ahead
        return croniter(expression, start, max_years_between_matches=LOOKAHEAD_YEARS)
    except _LIBRARY_ERRORS as exc:
        raise Invalid(
            f"'{expression}' is not a valid cron expression (e.g. '0 9 * * 1-5'): {exc}",
            field="schedules.cron",
        ) from None


def _cron_times(
    schedule: Definition,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    limit: int,
    minimum: timedelta | None,
) -> tuple[list[datetime], datetime | None]:
    from croniter import CroniterBadDateError

    assert schedule.cron is not None
    iterator = _croniter(schedule.cron, start.astimezone(zone) - timedelta(microseconds=1))
    found: list[datetime] = []
    after = None
    while after is None:
        try:
            moment = iterator.get_next(datetime).astimezone(UTC)
        except CroniterBadDateError:
            break  # no time in the next LOOKAHEAD_YEARS years
        except _LIBRARY_ERRORS as exc:
            raise Invalid(
                f"cron '{schedule.cron}' cannot be followed: {exc}", field="schedules.cron"
            ) from None
        if moment >= end or len(found) >= limit:
            after = moment
        else:
            found.append(moment)
    _check_gaps(schedule, found, minimum)
    return found, after


# ---------------------------------------------------------------- rrule

_STEP_SECONDS = {2: 604_800, 3: 86_400, 4: 3_600, 5: 60, 6: 1}  # WEEKLY .. SECONDLY
_STEP_MONTHS = {0: 12, 1: 1}  # YEARLY, MONTHLY


@dataclass(frozen=True)
class _Rule:
    """One RRULE, in naive wall-clock time of the schedule's zone."""

    rule: rrule
    start: datetime
    until: datetime | None
    freq: int
    interval: int

    @classmethod
    def parse(cls, text: str, anchor: datetime) -> _Rule:
        from dateutil.rrule import rrule, rrulestr

        def refuse(why: str) -> Invalid:
            return Invalid(f"rrule '{text}' {why}", field="schedules.rrule")

        try:
            rule = rrulestr(text, dtstart=anchor.replace(tzinfo=None), ignoretz=True)
        except _LIBRARY_ERRORS as exc:
            raise refuse(f"is not a valid RRULE (e.g. 'FREQ=WEEKLY;BYDAY=MO'): {exc}") from None
        if not isinstance(rule, rrule):
            raise refuse("holds more than one rule or date; give one RRULE per schedule")
        # dateutil keeps a rule's parts private; these names are stable across its versions
        parts = vars(rule)
        if parts["_count"] is not None:
            raise refuse("has a COUNT, which is not supported; end it with UNTIL= instead")
        if parts["_byeaster"]:
            raise refuse("has a BYEASTER, which is not supported")
        if parts["_interval"] < 1:
            raise refuse("has an INTERVAL below 1; use INTERVAL=1 or more")
        return cls(rule, parts["_dtstart"], parts["_until"], parts["_freq"], parts["_interval"])

    def step(self) -> timedelta | None:
        """FREQ times INTERVAL, when it is a fixed length of time (not for months and years)."""
        seconds = _STEP_SECONDS.get(self.freq)
        return timedelta(seconds=seconds * self.interval) if seconds else None

    def aligned(self, start: datetime) -> datetime:
        """The latest start of one of the rule's periods at or before ``start`` (the rule's
        own start when that is later).

        Started there, the rule gives the same times from there on: its periods, and the
        parts dateutil takes from the start (weekday, day of month, time of day), are the same.
        """
        if self.start >= start:
            return self.start
        step = self.step()
        if step is not None:
            return self.start + ((start - self.start) // step) * step
        months = _STEP_MONTHS[self.freq] * self.interval
        count = ((start.year - self.start.year) * 12 + start.month - self.start.month) // months
        # the start's day may be missing in the months in between (the 31st, 29 February)
        for periods in range(count, max(count - 12, 0), -1):
            total = self.start.month - 1 + periods * months
            with contextlib.suppress(ValueError):
                moved = self.start.replace(year=self.start.year + total // 12, month=total % 12 + 1)
                if moved <= start:
                    return moved
        return self.start


def _rrule_times(
    schedule: Definition,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    limit: int,
    minimum: timedelta | None,
    budget: int,
) -> tuple[list[datetime], datetime | None]:
    assert schedule.rrule is not None
    rule = _Rule.parse(schedule.rrule, anchor_of(schedule, zone))
    step = rule.step()
    if minimum is not None and step is not None and step < minimum:
        raise _too_often(schedule, step, minimum)
    local_start = start.astimezone(zone).replace(tzinfo=None)
    local_end = end.astimezone(zone).replace(tzinfo=None)
    horizon = max(local_end, local_start + LOOKAHEAD)
    first = rule.aligned(local_start)
    if first > horizon:
        return [], first.replace(tzinfo=zone).astimezone(UTC)
    shift = _frame(max(1, first.year - 1), horizon.year + 1)
    until = rule.until + shift if rule.until and rule.until < datetime.max - shift else None
    moved = rule.rule.replace(dtstart=first + shift, until=until)
    found: list[datetime] = []
    after = None
    try:
        for steps, moment in enumerate(moved):
            if steps > budget + limit:
                raise Invalid(
                    f"rrule '{schedule.rrule}' has too many times in one FREQ period to "
                    f"expand; use a FREQ closer to how often it fires (e.g. FREQ=MINUTELY)",
                    field="schedules.rrule",
                )
            moment -= shift
            if moment < local_start:
                continue
            if moment >= local_end or len(found) >= limit:
                after = moment.replace(tzinfo=zone).astimezone(UTC)
                break
            found.append(moment)
    except _LIBRARY_ERRORS as exc:
        raise Invalid(
            f"rrule '{schedule.rrule}' cannot be followed: {exc}", field="schedules.rrule"
        ) from None
    _check_gaps(schedule, found, minimum)  # in the rule's own wall-clock time
    # a wall-clock time skipped by a DST change maps to an instant that may repeat another
    return sorted({m.replace(tzinfo=zone).astimezone(UTC) for m in found}), after


@functools.lru_cache(maxsize=64)
def _frame(first: int, last: int) -> timedelta:
    """How far to move the years ``first``..``last`` onto the latest years before 9999 that
    have the same calendar (the same leap years, each starting on the same weekday).

    dateutil looks for a rule's next time until year 9999: a rule that never matches (the
    30th of February) would take seconds to give up. Moved up there, it gives up within a
    few decades' steps. The calendar repeats every 400 years, so 400 tries always find a move.
    """
    top = MAXYEAR - 1 - last
    weekday = date(first, 1, 1).weekday()
    for n in range(top, max(top - 400, 0), -1):
        if date(first + n, 1, 1).weekday() == weekday and all(
            calendar.isleap(year) == calendar.isleap(year + n) for year in range(first, last + 1)
        ):
            return date(first + n, 1, 1) - date(first, 1, 1)
    return timedelta(0)
