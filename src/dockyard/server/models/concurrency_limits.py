"""Global concurrency limits: named counts of slots, taken under leases or for good.

The rules:

- A limit allows at most ``limit`` slots in use at once. In use are the slots of its live
  leases (``concurrency``) plus, on a limit with ``slot_decay_per_second``, the slots rate
  limits took, which decay continuously at that rate (``rate_limit``).
- A lease lives until it is released or until ``expires`` passes unrenewed: then its slots
  are free, whether or not anyone deleted its rows. Expired rows are deleted lazily, by the
  next acquire of the limit (under the limit's lock), and never counted meanwhile; so a
  holder that died (SIGKILL, a lost machine) leaks nothing.
- An acquire takes ``occupy`` slots of every named limit or of none. It locks the limits'
  rows in name order (PostgreSQL ``FOR UPDATE``; on SQLite the write transaction is
  ``BEGIN IMMEDIATE``), so two acquires can never both take the last slot, and two acquires
  of the same limits in different orders never deadlock.
- An inactive limit is not enforced; a name without a limit takes nothing (``strict``
  refuses it). Asking more slots than a limit has, or a rate limit of a limit that does not
  decay, is refused at once: no wait could ever satisfy it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Delete, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard._names import name_problem
from dockyard.schemas import concurrency as cs
from dockyard.server.errors import Conflict, Invalid, NotFound
from dockyard.server.notify import wake
from dockyard.server.tables import ConcurrencyLeaseRow, ConcurrencyLimitRow, utcnow

# decayed slots are counted in floating point: a fit within this much is a fit
EPSILON = 1e-9


def decaying_now(row: ConcurrencyLimitRow, now: datetime) -> float:
    """The rate-limit slots of ``row`` not yet decayed at ``now``."""
    if row.decaying_slots <= 0:
        return 0.0
    elapsed = max(0.0, (now - row.decayed_at).total_seconds())
    return max(0.0, row.decaying_slots - row.slot_decay_per_second * elapsed)


def _settle(row: ConcurrencyLimitRow, now: datetime) -> None:
    """Count the decay so far into the row, before its rate or its slots change."""
    row.decaying_slots = decaying_now(row, now)
    row.decayed_at = now


def limit_schema(row: ConcurrencyLimitRow, leased: int, now: datetime) -> cs.ConcurrencyLimit:
    return cs.ConcurrencyLimit(
        id=row.id,
        name=row.name,
        limit=row.limit,
        active=row.active,
        slot_decay_per_second=row.slot_decay_per_second,
        active_slots=leased + _whole(decaying_now(row, now)),
        created=row.created,
        updated=row.updated,
    )


def _whole(slots: float) -> int:
    """Slots partly decayed still count as one (rounded up, past float noise)."""
    whole = int(slots)
    return whole + 1 if slots - whole > EPSILON else whole


def _unknown(name: str) -> NotFound:
    problem = name_problem(name)
    return NotFound(
        f"concurrency limit '{name}' not found",
        hint=f"{name!r} {problem}"
        if problem
        else f"create it with `dockyard gcl create {name} --limit N`",
    )


async def read_limit(
    session: AsyncSession, name: str, *, lock: bool = False
) -> ConcurrencyLimitRow:
    query = select(ConcurrencyLimitRow).where(ConcurrencyLimitRow.name == name)
    row = await session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise _unknown(name)
    return row


async def leased_slots(
    session: AsyncSession, limit_ids: Sequence[uuid.UUID], now: datetime
) -> Counter[uuid.UUID]:
    """The slots of live leases, by limit."""
    rows = await session.execute(
        select(ConcurrencyLeaseRow.limit_id, func.sum(ConcurrencyLeaseRow.slots))
        .where(ConcurrencyLeaseRow.limit_id.in_(list(limit_ids)), ConcurrencyLeaseRow.expires > now)
        .group_by(ConcurrencyLeaseRow.limit_id)
    )
    return Counter({limit_id: int(slots or 0) for limit_id, slots in rows.all()})


async def create_limit(
    session: AsyncSession, body: cs.ConcurrencyLimitCreate
) -> cs.ConcurrencyLimit:
    """Add a limit. Two creates of one name racing both find none; the unique name fails
    the second, whose retry (``Database.write_retrying``) then answers 409."""
    taken = select(ConcurrencyLimitRow.id).where(ConcurrencyLimitRow.name == body.name)
    if await session.scalar(taken) is not None:
        raise Conflict(
            f"a concurrency limit named '{body.name}' already exists",
            field="name",
            hint=f"change it with `dockyard gcl update {body.name} --limit N`",
        )
    now = utcnow()
    row = ConcurrencyLimitRow(
        name=body.name,
        limit=body.limit,
        active=body.active,
        slot_decay_per_second=body.slot_decay_per_second,
        decaying_slots=0.0,
        decayed_at=now,
        created=now,
        updated=now,
    )
    session.add(row)
    await session.flush()
    return limit_schema(row, 0, now)


async def update_limit(
    session: AsyncSession, name: str, body: cs.ConcurrencyLimitUpdate
) -> cs.ConcurrencyLimit:
    """Set the fields sent. Anything that may make room wakes the waiting acquires."""
    row = await read_limit(session, name, lock=True)
    now = utcnow()
    _settle(row, now)
    decay = body.slot_decay_per_second
    if body.active_slots is not None:
        if (
            body.active_slots > 0
            and (decay if decay is not None else row.slot_decay_per_second) <= 0
        ):
            raise Invalid(
                f"concurrency limit '{name}' has no slot decay, so it counts only the slots "
                f"of live leases: set active_slots to 0 to free them all, or give it a "
                "slot_decay_per_second",
                field="active_slots",
            )
        await session.execute(
            delete(ConcurrencyLeaseRow).where(ConcurrencyLeaseRow.limit_id == row.id)
        )
        row.decaying_slots = float(body.active_slots)
    if body.limit is not None:
        row.limit = body.limit
    if body.active is not None:
        row.active = body.active
    if decay is not None:
        row.slot_decay_per_second = decay
        if decay == 0:
            # nothing would ever free them: a limit that does not decay holds leases only
            row.decaying_slots = 0.0
    row.updated = now
    wake(session)
    await session.flush()
    return limit_schema(row, (await leased_slots(session, [row.id], now))[row.id], now)


def _leases_of(row: ConcurrencyLimitRow) -> Delete:
    return delete(ConcurrencyLeaseRow).where(ConcurrencyLeaseRow.limit_id == row.id)


async def delete_limit(session: AsyncSession, name: str) -> None:
    """Delete a limit and its leases (their holders' renewals then answer 404)."""
    row = await read_limit(session, name, lock=True)
    await session.execute(_leases_of(row))
    await session.delete(row)
    wake(session)  # its waiters now take nothing for it


async def list_limits(
    session: AsyncSession, *, limit: int = 200, offset: int = 0
) -> list[cs.ConcurrencyLimit]:
    """Limits by name, with the slots in use now."""
    rows = list(
        await session.scalars(
            select(ConcurrencyLimitRow)
            .order_by(ConcurrencyLimitRow.name)
            .limit(limit)
            .offset(offset)
        )
    )
    now = utcnow()
    leased = await leased_slots(session, [row.id for row in rows], now)
    return [limit_schema(row, leased[row.id], now) for row in rows]


async def read_detail(session: AsyncSession, name: str) -> cs.ConcurrencyLimitDetail:
    """A limit with its live leases, oldest first."""
    row = await read_limit(session, name)
    now = utcnow()
    leases = list(
        await session.scalars(
            select(ConcurrencyLeaseRow)
            .where(ConcurrencyLeaseRow.limit_id == row.id, ConcurrencyLeaseRow.expires > now)
            .order_by(ConcurrencyLeaseRow.created, ConcurrencyLeaseRow.id)
        )
    )
    shown = limit_schema(row, sum(lease.slots for lease in leases), now)
    return cs.ConcurrencyLimitDetail(
        **shown.model_dump(),
        leases=[
            cs.ConcurrencyLease(
                id=lease.id,
                slots=lease.slots,
                holder=lease.holder,
                created=lease.created,
                expires=lease.expires,
            )
            for lease in leases
        ],
    )


# ---------------------------------------------------------------- acquire, renew, release


async def acquire(
    session: AsyncSession, body: cs.ConcurrencyAcquire
) -> tuple[cs.ConcurrencyAcquired, datetime | None]:
    """Take the slots if every active named limit has room; else take nothing.

    Returns the answer and, when nothing was taken, the earliest time at which room could
    appear without anyone releasing anything (a lease expiring, rate-limit slots decaying),
    or None when only a release or a change of a limit can make room.
    """
    now = utcnow()
    rows = list(
        await session.scalars(
            select(ConcurrencyLimitRow)
            .where(ConcurrencyLimitRow.name.in_(body.names))
            .order_by(ConcurrencyLimitRow.name)
            .with_for_update()
        )
    )
    known = {row.name for row in rows}
    missing = [name for name in body.names if name not in known]
    if missing and body.strict:
        listed = ", ".join(f"'{name}'" for name in missing)
        raise NotFound(
            f"no concurrency limit named {listed} (strict: every name must have one)",
            field="names",
            hint=f"create it with `dockyard gcl create {missing[0]} --limit N`",
        )
    active = [row for row in rows if row.active]
    answer = cs.ConcurrencyAcquired(
        acquired=True, missing=missing, inactive=[row.name for row in rows if not row.active]
    )
    _check_satisfiable(active, body)
    if not active:
        return answer, None
    ids = [row.id for row in active]
    await session.execute(
        delete(ConcurrencyLeaseRow)
        .where(ConcurrencyLeaseRow.limit_id.in_(ids), ConcurrencyLeaseRow.expires <= now)
        .execution_options(synchronize_session=False)
    )
    leased = await leased_slots(session, ids, now)
    full = [
        row
        for row in active
        if leased[row.id] + decaying_now(row, now) + body.occupy > row.limit + EPSILON
    ]
    if full:
        blocked = cs.ConcurrencyAcquired(
            acquired=False, missing=missing, inactive=answer.inactive, full=[r.name for r in full]
        )
        return blocked, await _room_expected(session, full, leased, body.occupy, now)
    answer.limits = [row.name for row in active]
    if body.mode is cs.AcquireMode.RATE_LIMIT:
        for row in active:
            _settle(row, now)
            row.decaying_slots += body.occupy
        return answer, None
    lease_id = uuid.uuid4()
    expires = now + timedelta(seconds=body.lease_seconds)
    for row in active:
        session.add(
            ConcurrencyLeaseRow(
                id=lease_id,
                limit_id=row.id,
                slots=body.occupy,
                holder=body.holder,
                created=now,
                expires=expires,
            )
        )
    answer.lease_id, answer.lease_expires = lease_id, expires
    return answer, None


def _check_satisfiable(active: list[ConcurrencyLimitRow], body: cs.ConcurrencyAcquire) -> None:
    """Refuse at once what no wait could ever give."""
    for row in active:
        if body.occupy > row.limit:
            raise Invalid(
                f"cannot occupy {body.occupy} slots of concurrency limit '{row.name}': it has "
                f"only {row.limit}; occupy at most {row.limit}, or raise the limit with "
                f"`dockyard gcl update {row.name} --limit {body.occupy}`",
                field="occupy",
            )
        if body.mode is cs.AcquireMode.RATE_LIMIT and row.slot_decay_per_second <= 0:
            raise Invalid(
                f"concurrency limit '{row.name}' has no slot decay, so slots a rate limit takes "
                "would never come back; give it one with "
                f"`dockyard gcl update {row.name} --slot-decay-per-second 1`, or hold its "
                "slots with concurrency() instead",
                field="mode",
            )


async def _room_expected(
    session: AsyncSession,
    full: list[ConcurrencyLimitRow],
    leased: Counter[uuid.UUID],
    occupy: int,
    now: datetime,
) -> datetime | None:
    """When every full limit could have room by time alone (the latest of their earliest)."""
    expiries = dict(
        (
            await session.execute(
                select(ConcurrencyLeaseRow.limit_id, func.min(ConcurrencyLeaseRow.expires))
                .where(ConcurrencyLeaseRow.limit_id.in_([row.id for row in full]))
                .group_by(ConcurrencyLeaseRow.limit_id)
            )
        ).all()
    )
    latest = now
    for row in full:
        candidates = [expiries[row.id]] if row.id in expiries else []
        decaying = decaying_now(row, now)
        # how much must decay before the slots fit (the leases' part cannot decay)
        excess = (leased[row.id] + occupy - row.limit) + decaying
        if row.slot_decay_per_second > 0 and excess <= decaying + EPSILON:
            seconds = max(0.0, excess) / row.slot_decay_per_second
            candidates.append(now + timedelta(seconds=seconds))
        if not candidates:
            return None
        latest = max(latest, min(candidates))
    return latest


async def renew(session: AsyncSession, lease_id: uuid.UUID, lease_seconds: float) -> datetime:
    """Extend a live lease; an expired or released one cannot come back (404): its slots
    may already be someone else's."""
    now = utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    result = await session.execute(
        update(ConcurrencyLeaseRow)
        .where(ConcurrencyLeaseRow.id == lease_id, ConcurrencyLeaseRow.expires > now)
        .values(expires=expires)
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound(
            f"concurrency lease {lease_id} has expired or was released (or its limit was "
            "deleted or reset): its slots are no longer held",
            hint="acquire the slots again; renew a lease more often than its duration",
        )
    return expires


async def release(session: AsyncSession, lease_id: uuid.UUID) -> None:
    """Give the lease's slots back; releasing a lease that is gone does nothing."""
    result = await session.execute(
        delete(ConcurrencyLeaseRow)
        .where(ConcurrencyLeaseRow.id == lease_id)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0):
        wake(session)
