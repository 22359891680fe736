"""Column types: how values are stored, on SQLite, where the tables' own code decides it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.types import DateTime

from dockyard.server.tables import UTCDateTime

metadata = MetaData()
STAMPED = Table(
    "stamped", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime)
)
# the same column read through SQLAlchemy's own DateTime: the format databases already hold
PLAIN = Table(
    "stamped", MetaData(), Column("id", Integer, primary_key=True), Column("at", DateTime)
)


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_sqlite_datetimes_are_sqlalchemys_text_in_utc(engine: Engine) -> None:
    paris = timezone(timedelta(hours=1))
    with engine.begin() as conn:
        conn.execute(insert(STAMPED), [{"id": 1, "at": datetime(2026, 3, 1, 13, 0, tzinfo=paris)}])
        conn.execute(insert(STAMPED), [{"id": 2, "at": datetime(2026, 3, 1, 12, 0, 0, 5, UTC)}])
        raw = conn.execute(text("SELECT at FROM stamped ORDER BY id")).scalars().all()
        plain = conn.execute(select(PLAIN.c.at).order_by(PLAIN.c.id)).scalars().all()
    assert raw == ["2026-03-01 12:00:00.000000", "2026-03-01 12:00:00.000005"]
    assert plain == [datetime(2026, 3, 1, 12, 0), datetime(2026, 3, 1, 12, 0, 0, 5)]


def test_sqlite_reads_what_sqlalchemy_wrote_as_utc(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(PLAIN), [{"id": 1, "at": datetime(2026, 3, 1, 12, 0, 0, 7)}])
        conn.execute(insert(PLAIN), [{"id": 2, "at": None}])
        read = conn.execute(select(STAMPED.c.at).order_by(STAMPED.c.id)).scalars().all()
    assert read == [datetime(2026, 3, 1, 12, 0, 0, 7, UTC), None]
    assert read[0].tzinfo is UTC


def test_comparisons_order_as_time(engine: Engine) -> None:
    base = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(STAMPED), [{"id": i, "at": base + timedelta(seconds=i)} for i in range(3)]
        )
        later = (
            conn.execute(
                select(STAMPED.c.id).where(STAMPED.c.at > base + timedelta(microseconds=1))
            )
            .scalars()
            .all()
        )
    assert sorted(later) == [1, 2]


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(Exception, match="naive datetime"):
        conn.execute(insert(STAMPED), [{"id": 1, "at": datetime(2026, 3, 1, 12, 0)}])
