"""Schedules of deployments, as objects: :func:`Cron`, :func:`Interval` and :func:`RRule`.

::

    from datetime import datetime, timedelta
    from dockyard.schedules import Cron, Interval

    etl.deploy(
        "nightly",
        work_pool_name="pool",
        schedules=[
            Cron("0 2 * * *", timezone="Europe/Paris"),
            Interval(timedelta(minutes=10), datetime(2030, 1, 1), timezone="America/Chicago"),
        ],
    )

Each makes a :class:`Schedule`, which ``flow.deploy()``, ``flow.serve()`` and
``flow.to_deployment()`` take in ``schedules=[...]`` (or ``schedule=``), next to their
``cron=``, ``interval=`` and ``rrule=`` keywords and plain dicts.

Times are read in the schedule's ``timezone``: a cron's "9:00" stays 9:00 across daylight
saving changes, and an ``anchor_date`` without a zone is a wall-clock time there. An anchor
with a zone (or offset) is that instant, whatever the schedule's timezone. A schedule is
checked when it is made: a bad timezone or an anchor out of range is refused here, not by
the server.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dockyard.exceptions import DockyardError

__all__ = ["Cron", "Interval", "RRule", "Schedule", "request_of"]


@dataclass(frozen=True)
class Schedule:
    """One schedule of a deployment: exactly one of ``cron``, ``interval`` or ``rrule``.

    Make it with :func:`Cron`, :func:`Interval` or :func:`RRule`.

    Attributes:
        cron: a cron expression, e.g. ``"0 9 * * 1-5"``.
        interval: the time between runs.
        anchor_date: where an interval (or an rrule) starts, with its zone; None: the
            server's default, 2020-01-01 00:00 UTC.
        rrule: one RRULE (RFC 5545), e.g. ``"FREQ=WEEKLY;BYDAY=MO,FR"``; no COUNT.
        timezone: the IANA zone its times are read in.
        active: False keeps it on the deployment without making runs.
        slug: a name for it in code; the server tells schedules apart by their definition,
            so it is not sent.
    """

    cron: str | None = None
    interval: timedelta | None = None
    anchor_date: datetime | None = None
    rrule: str | None = None
    timezone: str = "UTC"
    active: bool = True
    slug: str | None = None

    def request(self) -> dict[str, Any]:
        """The ``ScheduleCreate`` body (JSON) that adds this schedule on the server."""
        body: dict[str, Any] = {"timezone": self.timezone, "active": self.active}
        if self.cron is not None:
            body["cron"] = self.cron
        if self.interval is not None:
            body["interval"] = self.interval.total_seconds()
        if self.rrule is not None:
            body["rrule"] = self.rrule
        if self.anchor_date is not None:
            body["anchor_date"] = self.anchor_date.isoformat()
        return body


# Cron, Interval and RRule are functions named like classes: each makes a Schedule of one
# kind, and reads in a flow file as the kind of schedule it is.


def Cron(
    cron: str,
    timezone: str | None = None,
    day_or: bool = True,
    active: bool = True,
    parameters: Mapping[str, Any] | None = None,
    slug: str | None = None,
) -> Schedule:
    """A cron schedule: runs at the times ``cron`` matches, in ``timezone``.

    ::

        Cron("0 8 * * 1", timezone="America/New_York")  # Mondays at 8:00 in New York

    Args:
        cron: a five-field cron expression, e.g. ``"0 0 * * *"``.
        timezone: an IANA zone (default UTC).
        day_or: must be True: a day of month and a day of week both given match either (as
            cron does). For "the second Friday" use ``RRule("FREQ=MONTHLY;BYDAY=2FR")``.
        active: False keeps the schedule without making runs.
        parameters: must be empty: runs take the deployment's parameters.
        slug: a name for it in code (not sent).

    Raises:
        DockyardError: ``cron`` is not text, the timezone is unknown, or a value the server
            does not support is given (``day_or=False``, ``parameters``).
    """
    _supported(day_or, parameters)
    if not isinstance(cron, str) or not cron.strip():
        raise DockyardError(f"cron must be a cron expression such as '0 9 * * 1-5', got {cron!r}")
    return Schedule(cron=cron, timezone=_zone_name(timezone), active=active, slug=slug)


def Interval(
    interval: float | timedelta,
    anchor_date: datetime | None = None,
    timezone: str | None = None,
    active: bool = True,
    parameters: Mapping[str, Any] | None = None,
    slug: str | None = None,
) -> Schedule:
    """An interval schedule: runs every ``interval``, on the grid of ``anchor_date``.

    ::

        # every 10 minutes from midnight in Chicago: 06:00, 06:10, ... UTC in winter
        Interval(600, anchor_date=datetime(2030, 1, 1), timezone="America/Chicago")

    Intervals of whole days keep the anchor's wall-clock time across daylight saving
    changes; shorter ones are elapsed time.

    Args:
        interval: seconds (a number) or a timedelta, more than zero.
        anchor_date: a run falls on it and every ``interval`` from it. Without a zone it is
            read in ``timezone``; with one it is that instant. Default: 2020-01-01 00:00 UTC.
        timezone: an IANA zone; default: the anchor's own zone when it has a named one
            (``ZoneInfo``), else UTC.
        active: False keeps the schedule without making runs.
        parameters: must be empty: runs take the deployment's parameters.
        slug: a name for it in code (not sent).

    Raises:
        DockyardError: the interval is not a positive duration, the timezone is unknown, the
            anchor is not a datetime of years 1 to 9999, or ``parameters`` is given.
    """
    _supported(True, parameters)
    step = _interval(interval)
    zone = _zone_name(timezone if timezone is not None else _zone_of(anchor_date))
    anchor = _anchor(anchor_date, zone)
    return Schedule(interval=step, anchor_date=anchor, timezone=zone, active=active, slug=slug)


def RRule(
    rrule: str,
    timezone: str | None = None,
    active: bool = True,
    parameters: Mapping[str, Any] | None = None,
    slug: str | None = None,
    *,
    anchor_date: datetime | None = None,
) -> Schedule:
    """An RRULE schedule (RFC 5545), read in ``timezone``.

    ::

        RRule("FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=9;BYMINUTE=0", timezone="Europe/Paris")

    Args:
        rrule: one RRULE, with or without ``RRULE:``; end it with UNTIL (COUNT is not
            supported). Its DTSTART, if any, is where it starts.
        timezone: an IANA zone; default: the anchor's own zone when it has a named one,
            else UTC.
        active: False keeps the schedule without making runs.
        parameters: must be empty: runs take the deployment's parameters.
        slug: a name for it in code (not sent).
        anchor_date: where the rule starts when it has no DTSTART (read as
            :func:`Interval` reads it). Default: 2020-01-01 00:00 UTC.

    Raises:
        DockyardError: ``rrule`` is not text, the timezone is unknown, the anchor is out of
            range, or ``parameters`` is given.
    """
    _supported(True, parameters)
    if not isinstance(rrule, str) or not rrule.strip():
        raise DockyardError(f"rrule must be an RRULE such as 'FREQ=WEEKLY;BYDAY=MO', got {rrule!r}")
    zone = _zone_name(timezone if timezone is not None else _zone_of(anchor_date))
    anchor = _anchor(anchor_date, zone)
    return Schedule(rrule=rrule, anchor_date=anchor, timezone=zone, active=active, slug=slug)


def request_of(schedule: Schedule | Mapping[str, Any]) -> dict[str, Any]:
    """The ``ScheduleCreate`` body of a :class:`Schedule` or of a dict such as
    ``{"interval": timedelta(hours=1), "anchor_date": datetime(...), "timezone": ...}``.

    A dict's interval is turned into seconds and its anchor, read as :func:`Interval`
    reads one, into ISO 8601 text with its offset; its other keys are sent as they are
    (the server refuses, naming the field, what it cannot take).

    Raises:
        DockyardError: the dict's timezone is unknown or its anchor out of range.
    """
    if isinstance(schedule, Schedule):
        return schedule.request()
    body = dict(schedule)
    if isinstance(body.get("interval"), timedelta):
        body["interval"] = body["interval"].total_seconds()
    anchor = body.get("anchor_date")
    if isinstance(anchor, datetime):
        zone = body.get("timezone")
        if zone is None:
            zone = body["timezone"] = _zone_name(_zone_of(anchor))
        if isinstance(zone, str):
            body["anchor_date"] = _placed(anchor, _zone_name(zone)).isoformat()
    return body


# ---------------------------------------------------------------- checks


def _supported(day_or: bool, parameters: Mapping[str, Any] | None) -> None:
    if day_or is not True:
        raise DockyardError(
            "day_or=False is not supported: a cron with both a day of month and a day of "
            "week matches either; for e.g. the second Friday of each month use "
            "RRule('FREQ=MONTHLY;BYDAY=2FR')"
        )
    if parameters:
        raise DockyardError(
            "a schedule's own parameters are not supported: its runs take the deployment's "
            "parameters; give them to the deployment (parameters=...), or make one "
            "deployment per set of parameters"
        )


def _interval(value: float | timedelta) -> timedelta:
    if isinstance(value, timedelta):
        step = value
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            step = timedelta(seconds=value)
        except OverflowError:
            step = timedelta.max
    else:
        raise DockyardError(
            f"interval must be seconds (a number) or a timedelta, got {type(value).__name__}"
        )
    if step <= timedelta(0):
        raise DockyardError(f"interval must be more than zero, got {step.total_seconds():g} s")
    return step


def _zone_of(anchor: datetime | None) -> str | None:
    """The IANA name of an anchor's zone, when it has one (a ``ZoneInfo``)."""
    key = getattr(getattr(anchor, "tzinfo", None), "key", None)
    return key if isinstance(key, str) else None


def _zone_name(timezone: str | None) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if timezone is None:
        return "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise DockyardError(
            f"unknown timezone {timezone!r}; use an IANA name such as 'America/Chicago'"
        ) from None
    return timezone


def _anchor(anchor: datetime | None, timezone: str) -> datetime | None:
    return None if anchor is None else _placed(anchor, timezone)


def _placed(anchor: datetime, timezone: str) -> datetime:
    """The anchor with its zone: one without a zone is a wall-clock time in ``timezone``.

    Sent with its offset, the server reads the same instant, whatever it does with text
    that has none.
    """
    from zoneinfo import ZoneInfo

    if not isinstance(anchor, datetime):
        raise DockyardError(
            f"anchor_date must be a datetime, e.g. datetime(2030, 1, 1), got "
            f"{type(anchor).__name__}"
        )
    zone = ZoneInfo(timezone)
    placed = anchor.replace(tzinfo=zone) if anchor.tzinfo is None else anchor
    try:
        placed.astimezone(UTC)
        placed.astimezone(zone)
    except OverflowError:
        raise DockyardError(
            f"anchor_date {anchor.isoformat()} is out of range in {timezone}: it must be a "
            "time of years 1 to 9999 in UTC and in the schedule's timezone"
        ) from None
    return placed
