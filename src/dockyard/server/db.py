"""The database: engines, sessions and schema migrations.

SQLite (the embedded default) gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for every
write transaction, so that a write never fails half way with "database is locked"; writes are
also queued in-process so that concurrent requests wait their turn in order instead of
spinning in SQLite's busy handler. PostgreSQL needs none of this.

:func:`unreachable` tells an outage (PostgreSQL refused, lost, or no pooled connection in
time) from other errors: the API answers it with 503 (``errors``), the loops wait it out.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.pool import NullPool

from dockyard.server import leadership
from dockyard.server.migrations import HEAD_REVISION
from dockyard.server.notify import (
    CHANNEL,
    ListenerState,
    ListenerTimers,
    Notifier,
    PostgresListener,
    payload,
    to_wake,
)

__all__ = ["Database", "PoolSize", "unreachable"]

T = TypeVar("T")
# What a write transaction that lost a race raises (see Database.write_retrying).
LOST_RACE = (IntegrityError, StaleDataError)
# SQLSTATEs of a transaction PostgreSQL ended to break a deadlock or a serialization conflict
_ENDED_BY_POSTGRES = frozenset({"40P01", "40001"})
WRITE_ATTEMPTS = 4
_NETWORK_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EPIPE}
)
# asyncpg's errors that mean the connection is gone or refused (SQLSTATE class 08, a server
# shutting down or starting up), by name: asyncpg is an optional dependency
_GONE = frozenset(
    {
        "ConnectionDoesNotExistError",
        "PostgresConnectionError",
        "ConnectionFailureError",
        "ClientCannotConnectError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        "ConnectionRejectionError",
    }
)


@dataclass(frozen=True)
class PoolSize:
    """PostgreSQL connections one server process keeps (``size``) and may open beyond them
    under load (``overflow``), how long a request waits for one (``timeout`` seconds) before
    it is answered 503, and how long for a new connection or one statement's answer
    (``statement_timeout``) before the database counts as gone (a host that vanished drops
    packets: without a bound, a request would wait for TCP to give up, many minutes)."""

    size: int = 10
    overflow: int = 20
    timeout: float = 30.0
    statement_timeout: float = 15.0


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database cannot be reached now:
    connection refused or lost, the server shutting down, or no pooled connection in time.
    Everything else (a bug, a statement refused) is not an outage."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, PoolTimeout | ConnectionError | TimeoutError | socket.gaierror):
            return True
        # asyncio's connect says "Multiple exceptions: [Errno 111] Connect call failed ..."
        # when every address of a host refused; other OSErrors (a file) are no outage
        if isinstance(current, OSError) and (
            current.errno in _NETWORK_ERRNOS or "Connect call failed" in str(current)
        ):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if type(current).__module__.startswith("asyncpg") and type(current).__name__ in _GONE:
            return True
        if str(current) == "connection is closed":  # asyncpg's InterfaceError
            return True
        orig = current.orig if isinstance(current, DBAPIError) else None
        todo += [orig, current.__cause__, current.__context__]
        if isinstance(current, BaseExceptionGroup):  # from a task group in a middleware
            todo += current.exceptions
    return False


def outage(exc: BaseException) -> str:
    """What an outage's error says, for a log line: its message, or (a timeout says nothing)
    its kind."""
    return str(exc) or type(exc).__name__


class Database:
    """Engines and sessions for one database URL."""

    def __init__(
        self,
        url: str,
        *,
        pool: PoolSize | None = None,
        listener_timers: ListenerTimers | None = None,
    ) -> None:
        self.url = make_url(url)
        self.listener_timers = listener_timers
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
            pool = pool or PoolSize()
            self.write_engine = create_async_engine(
                self.url,
                pool_size=pool.size,
                max_overflow=pool.overflow,
                pool_timeout=pool.timeout,
                pool_pre_ping=True,
                connect_args={
                    "timeout": pool.statement_timeout,
                    "command_timeout": pool.statement_timeout,
                },
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

        Code that may make runs claimable calls ``notify.wake``; long-polls are woken once
        the transaction has committed.
        """
        lock = self._write_lock or contextlib.nullcontext()
        async with lock, self._write_sessions() as session:
            async with session.begin():
                yield session
                waking, pools = to_wake(session)
                if waking and not self.is_sqlite:
                    await session.execute(
                        text(f"SELECT pg_notify('{CHANNEL}', :pools)"), {"pools": payload(pools)}
                    )
            if waking:
                self.notifier.notify(pools)
            if session.info.get("schedules"):
                self.schedules_changed.set()

    async def write_retrying(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` in a write transaction, again if it lost a race to another writer.

        Two races end in a rolled-back transaction that a new try gets right, because it
        reads again and decides again: two requests creating the same thing (a flow, an
        idempotent run, a worker) both missed it and both inserted (``IntegrityError``); or a
        run changed between this transaction's read and its write (``StaleDataError``: every
        write of a run is a compare-and-set, see ``orchestration``). A third is PostgreSQL's
        own: two transactions that each wait for a row the other locked; it ends one of them
        (a deadlock), which is as safe to try again.
        """
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                async with self.write() as session:
                    return await work(session)
            except LOST_RACE:
                if attempt == WRITE_ATTEMPTS:
                    raise
            except DBAPIError as exc:
                if not lost_to_a_deadlock(exc) or attempt == WRITE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def start(self) -> None:
        """Migrate, then listen for other server processes' notifications (PostgreSQL)."""
        await self.migrate()
        if not self.is_sqlite:
            dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._listener = PostgresListener(dsn, self.notifier, self.listener_timers)
            await self._listener.start()

    @property
    def listener(self) -> ListenerState | None:
        """The state of this process's LISTEN connection (None on SQLite)."""
        return self._listener.state if self._listener is not None else None

    async def revision(self, timeout: float) -> str | None:
        """The schema's revision, read with one query that fails after ``timeout`` seconds
        (``TimeoutError``) or with the database's error: a cheap check that it answers."""

        async def read() -> str | None:
            async with self.read_engine.connect() as conn:
                found = await conn.execute(text("SELECT version_num FROM alembic_version"))
                return found.scalar()

        return await asyncio.wait_for(read(), timeout)

    async def ping(self, timeout: float) -> None:
        """``SELECT 1``, failing after ``timeout`` seconds (``TimeoutError``)."""

        async def select_one() -> None:
            async with self.read_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        await asyncio.wait_for(select_one(), timeout)

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
        if self.is_sqlite:
            async with self.write_engine.begin() as conn:
                await conn.run_sync(_migrate)
            return True
        # a migration's statements (an index on a large table) and the wait for another
        # replica's migration may take longer than requests are allowed: no statement bound
        engine = create_async_engine(self.url, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                # several replicas may start at once: one migrates, the others wait
                await leadership.lock(conn, leadership.Job.MIGRATE)
                await conn.run_sync(_migrate)
        finally:
            await engine.dispose()
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


def lost_to_a_deadlock(exc: DBAPIError) -> bool:
    """Whether PostgreSQL ended the transaction to break a deadlock (or a serialization
    conflict): the work was rolled back whole, and trying it again is safe."""
    seen: BaseException | None = exc.orig
    while seen is not None:
        if getattr(seen, "sqlstate", None) in _ENDED_BY_POSTGRES:
            return True
        seen = seen.__cause__
    return False
