"""Request and response models of global concurrency limits (``/api/concurrency-limits``).

A limit allows at most ``limit`` slots in use at once. Slots are taken under a **lease**
(``concurrency``: given back at the end of the block, or when the lease expires unrenewed)
or, on a limit with ``slot_decay_per_second``, for good (``rate_limit``: they decay).
"""

import enum
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from dockyard.schemas import (
    TEXT,
    Flag,
    Model,
    Name,
    NonNegativeInt32,
    PositiveInt32,
    Response,
)

__all__ = [
    "MAX_LEASE_SECONDS",
    "MAX_NAMES",
    "MIN_LEASE_SECONDS",
    "AcquireMode",
    "ConcurrencyAcquire",
    "ConcurrencyAcquired",
    "ConcurrencyLease",
    "ConcurrencyLeaseRenewal",
    "ConcurrencyLeaseRenewed",
    "ConcurrencyLimit",
    "ConcurrencyLimitCreate",
    "ConcurrencyLimitDetail",
    "ConcurrencyLimitUpdate",
]

MIN_LEASE_SECONDS = 1.0
MAX_LEASE_SECONDS = 86_400.0
MAX_NAMES = 100
MAX_WAIT_SECONDS = 300.0

# slots that decay per second: 0 for none (a plain concurrency limit)
SlotDecay = Annotated[float, Field(strict=True, ge=0.0, le=1e6, allow_inf_nan=False)]
LeaseSeconds = Annotated[
    float, Field(strict=True, ge=MIN_LEASE_SECONDS, le=MAX_LEASE_SECONDS, allow_inf_nan=False)
]
Holder = Annotated[str, Field(max_length=200), TEXT]


def _distinct(names: list[str]) -> list[str]:
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        listed = ", ".join(repr(name) for name in twice)
        raise ValueError(f"names {listed} more than once; name each limit once")
    return names


class AcquireMode(enum.StrEnum):
    """``concurrency``: slots held under a lease, given back; ``rate_limit``: slots taken
    for good from limits that decay."""

    CONCURRENCY = "concurrency"
    RATE_LIMIT = "rate_limit"


class ConcurrencyLimitCreate(Model):
    name: Name
    limit: NonNegativeInt32
    active: Flag = True
    slot_decay_per_second: SlotDecay = 0.0


class ConcurrencyLimitUpdate(Model):
    """Change a limit: only the fields sent. ``active_slots`` resets what is in use: every
    lease on the limit is dropped, and the limit counts that many slots in use, which decay
    (so a number above 0 needs ``slot_decay_per_second``)."""

    limit: NonNegativeInt32 | None = None
    active: Flag | None = None
    slot_decay_per_second: SlotDecay | None = None
    active_slots: NonNegativeInt32 | None = None


class ConcurrencyLimit(Response):
    id: uuid.UUID
    name: str
    limit: int
    active: bool
    slot_decay_per_second: float
    # slots in use now: those of live leases, plus rate-limit slots not yet decayed
    active_slots: int
    created: datetime
    updated: datetime


class ConcurrencyLease(Response):
    """Slots of a limit held under one lease: given back when released, or when the lease
    expires unrenewed (its holder died)."""

    id: uuid.UUID
    slots: int
    holder: str | None
    created: datetime
    expires: datetime


class ConcurrencyLimitDetail(ConcurrencyLimit):
    """A limit with its live leases, oldest first."""

    leases: list[ConcurrencyLease]


class ConcurrencyAcquire(Model):
    """Take ``occupy`` slots of every named limit, all or none. Answers at once when they
    are free, else waits up to ``wait`` seconds (bounded by the server's long-poll)."""

    names: Annotated[
        list[Name], Field(min_length=1, max_length=MAX_NAMES), AfterValidator(_distinct)
    ]
    occupy: PositiveInt32 = 1
    mode: AcquireMode = AcquireMode.CONCURRENCY
    lease_seconds: LeaseSeconds = 60.0
    wait: float = Field(default=0.0, strict=True, ge=0.0, le=MAX_WAIT_SECONDS, allow_inf_nan=False)
    # refuse (404) when a name has no limit, rather than take nothing for it
    strict: Flag = False
    # who holds the slots, shown by `dockyard gcl inspect`
    holder: Holder | None = None


class ConcurrencyAcquired(Response):
    """The answer of an acquire.

    ``acquired``: the slots were taken (else ``full`` names the limits that had no room
    while the call waited). ``lease_id`` is None when nothing is to be given back: a rate
    limit, or no active limit among the names. ``missing`` names have no limit;
    ``inactive`` ones have an inactive limit: nothing was taken for either.
    """

    acquired: bool
    lease_id: uuid.UUID | None = None
    lease_expires: datetime | None = None
    limits: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    inactive: list[str] = Field(default_factory=list)
    full: list[str] = Field(default_factory=list)


class ConcurrencyLeaseRenewal(Model):
    lease_seconds: LeaseSeconds = 60.0


class ConcurrencyLeaseRenewed(Response):
    lease_id: uuid.UUID
    lease_expires: datetime
