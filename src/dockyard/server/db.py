"""The database: engines, sessions and schema migrations.

SQLite (the embedded default) gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for every
write transaction, so that a write never fails half way with "database is locked"; writes are
also queued in-process so that concurrent requests wait their turn in order instead of
spinning in SQLite's busy handler. PostgreSQL needs none of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm.exc import StaleDataError

from dockyard.server.migrations import HEAD_REVISION
from dockyard.server.notify import CHANNEL, Notifier, PostgresListener

__all__ = ["Database"]

T = TypeVar("T")
# What a write transaction that lost a race raises (see Database.write_retrying).
LOST_RACE = (IntegrityError, StaleDataError)
WRITE_ATTEMPTS = 4


class Database:
    """Engines and sessions for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self.notifier = Notifier()
        # set after a commit that changed schedules: the scheduler runs at once
        self.schedules_changed = asyncio.Event()
        self._listener: PostgresListener | None = None
        if self.is_sqlite:
            self._prepare_sqlite_path()
            self.write_engine = self._sqlite_engine(immediate=True)
            self.read_engine = self._sqlite_engine(immediate=False)
        else:
            self.write_engine = create_async_engine(
                self.url, pool_size=10, max_overflow=20, pool_pre_ping=True
            )
            self.read_engine = self.write_engine
        self._write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)

    def _prepare_sqlite_path(self) -> None:
        database = self.url.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)

    def _sqlite_engine(self, *, immediate: bool) -> AsyncEngine:
        from dockyard.server.sqlite_inline import connector

        engine = create_async_engine(
            self.url,
            async_creator=connector(self.url.database or ":memory:", timeout=60),
            # one writer at a time anyway; a few readers in WAL mode
            pool_size=1 if immediate else 5,
            max_overflow=0,
            pool_timeout=120,
            # a write ends in COMMIT or ROLLBACK, and reads run outside any transaction,
            # so there is nothing to reset when a connection goes back to the pool
            pool_reset_on_return=None,
            json_serializer=_json_text,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # take over transaction control from the driver, so that BEGIN is ours to emit
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        if immediate:

            @event.listens_for(engine.sync_engine, "begin")
            def _on_begin(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed when the block ends without error.

        Code that may make runs claimable sets ``session.info["wake"]``; long-polls are woken
        once the transaction has committed.
        """
        lock = self._write_lock or contextlib.nullcontext()
        async with lock, self._write_sessions() as session:
            async with session.begin():
                yield session
                if session.info.get("wake") and not self.is_sqlite:
                    await session.execute(text(f"NOTIFY {CHANNEL}"))
            if session.info.get("wake"):
                self.notifier.notify()
            if session.info.get("schedules"):
                self.schedules_changed.set()

    async def write_retrying(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` in a write transaction, again if it lost a race to another writer.

        Two races end in a rolled-back transaction that a new try gets right, because it
        reads again and decides again: two requests creating the same thing (a flow, an
        idempotent run, a worker) both missed it and both inserted (``IntegrityError``); or a
        run changed between this transaction's read and its write (``StaleDataError``: every
        write of a run is a compare-and-set, see ``orchestration``).
        """
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                async with self.write() as session:
                    return await work(session)
            except LOST_RACE:
                if attempt == WRITE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def start(self) -> None:
        """Migrate, then listen for other server processes' notifications (PostgreSQL)."""
        await self.migrate()
        if not self.is_sqlite:
            dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._listener = PostgresListener(dsn, self.notifier)
            await self._listener.start()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (never commits)."""
        async with self._read_sessions() as session:
            yield session

    async def dispose(self) -> None:
        self.notifier.close()
        if self._listener is not None:
            await self._listener.stop()
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()

    async def current_revision(self) -> str | None:
        async with self.write_engine.connect() as conn:
            return await conn.run_sync(_revision)

    async def migrate(self) -> bool:
        """Bring the schema up to date. Returns whether anything was changed.

        The common case (schema current) costs one query. A new, empty database gets the
        tables at once and is stamped with the newest revision; Alembic is imported only
        when an existing database needs an upgrade.
        """
        if await self.current_revision() == HEAD_REVISION:
            return False
        async with self.write_engine.begin() as conn:
            if not self.is_sqlite:
                # several replicas may start at once: one migrates, the others wait
                await conn.execute(text("SELECT pg_advisory_xact_lock(7244310501)"))
            await conn.run_sync(_migrate)
        return True


def _revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _migrate(conn: Connection) -> None:
    revision = _revision(conn)
    if revision == HEAD_REVISION:
        return  # another server process migrated while this one waited for the lock
    if revision is None and not inspect(conn).get_table_names():
        from dockyard.server.tables import Base

        Base.metadata.create_all(conn)
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": HEAD_REVISION})
        return
    from dockyard.server.migrations.runner import upgrade

    upgrade(conn)


def _json_text(value: Any) -> str:
    """JSON text for SQLite, at once for the empty lists and objects most rows hold (tags,
    parameters), which ``json.dumps`` takes microseconds to write."""
    if not value:
        if value == []:
            return "[]"
        if value == {}:
            return "{}"
    return json.dumps(value)
