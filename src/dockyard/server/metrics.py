"""The server's figures for Prometheus: ``GET /metrics``, in the Prometheus text format.

Each server process exposes its own figures (with several replicas, Prometheus scrapes each
one), from a registry of its app's own, never the library's global one: two apps in one
process (tests) never mix their figures. What a metric means is in docs/metrics.md.

Two kinds of figures, so that the hot paths pay only a counter increment or a histogram
observation:

- events counted where they happen (claims, lease expiries, HTTP requests): code that has a
  :class:`~dockyard.server.db.Database` finds the app's figures with :func:`of`;
- states read when Prometheus asks (runs by state, scheduler lag, database pools): the
  database is asked at most once per ``server_metrics_cache_seconds``, however often and by
  however many scrapers it is scraped.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Iterator
from datetime import datetime

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from starlette.routing import Mount

from dockyard.schemas import StateType
from dockyard.server.db import Database, unreachable
from dockyard.server.security import ASGIApp, Message, Receive, Scope, Send
from dockyard.server.tables import FlowRunRow, utcnow

__all__ = ["PATH", "HttpLatency", "Metrics", "install", "of"]

log = logging.getLogger("dockyard.server")
# No ``*_created`` series beside every counter and histogram: Prometheus does not read them in
# the text format, and they would double the series a scrape carries. (The library's switch
# is process-wide; the server's process is ours.)
disable_created_metrics()  # type: ignore[no-untyped-call]

PATH = "/metrics"
# the format ``generate_latest`` writes (the library's "latest" names a newer one)
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
# requests the HTTP histogram leaves out: the UI's static files (and the scrape itself)
STATIC_PREFIX = "/static/"
# a claim's transaction takes milliseconds; seconds mean the database is in trouble
CLAIM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# up to a long-poll's whole wait (30 s by default) and a little past it
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# a method label takes these values and "other": a client choosing methods cannot make
# series without end
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# the route label of a request answered before routing (Host check, API key, body limits)
# or that no route took
UNROUTED = "unrouted"


class Metrics:
    """The figures of one app, in a registry of its own (:attr:`registry`)."""

    def __init__(self, *, cache_seconds: float) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        into = self.registry
        self.claim_calls = Counter(
            "dockyard_claim_calls", "Claim requests (POST /api/workers/claim).", registry=into
        )
        self.claimed_runs = Counter(
            "dockyard_claimed_runs", "Runs handed out to workers by claims.", registry=into
        )
        self.claim_seconds = Histogram(
            "dockyard_claim_transaction_seconds",
            "Time of a claim's database transaction, waiting for its turn included.",
            buckets=CLAIM_BUCKETS,
            registry=into,
        )
        self.long_polls = Gauge(
            "dockyard_claim_long_polls_waiting",
            "Claims waiting in their long-poll for a run to become claimable.",
            registry=into,
        )
        self.lease_expiries = Counter(
            "dockyard_lease_expiries",
            "Runs the lease reaper declared CRASHED because their lease ran out.",
            registry=into,
        )
        self.http_seconds = Histogram(
            "dockyard_http_request_duration_seconds",
            "HTTP request latency by method, route template and status class.",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=into,
        )
        self.database = DatabaseFigures(cache_seconds=cache_seconds)
        into.register(self.database)

    def claimed(self, seconds: float, runs: int) -> None:
        """Count one claim transaction that took ``seconds`` and handed out ``runs``."""
        self.claim_seconds.observe(seconds)
        if runs:
            self.claimed_runs.inc(runs)

    def watch(self, db: Database) -> None:
        """Count what happens on ``db`` here (see :func:`of`), and read its figures."""
        _BY_DATABASE[db] = self
        self.database.db = db

    async def exposition(self) -> bytes:
        """Every figure in the Prometheus text format, database figures refreshed if stale."""
        await self.database.refresh()
        return generate_latest(self.registry)


class DatabaseFigures(Collector):
    """Figures read from the database when scraped: runs by state, scheduler lag, pool use.

    Counts are read by :meth:`refresh` (one ``GROUP BY`` and one ``min``, both on the index
    of due runs), at most once per ``cache_seconds``; pool use is read from SQLAlchemy's
    pools, which costs no query, at every scrape. When the database does not answer, the
    figures it gives are left out of the scrape, never shown stale.
    """

    def __init__(self, *, cache_seconds: float) -> None:
        self.db: Database | None = None
        self.cache_seconds = cache_seconds
        self._lock = asyncio.Lock()
        self._read_at: float | None = None
        self._by_state: dict[str, int] | None = None
        self._oldest_due: datetime | None = None

    async def refresh(self) -> None:
        # one scrape reads at a time: others arriving meanwhile take its figures
        async with self._lock:
            now = time.monotonic()
            if self.db is None or (
                self._read_at is not None and now - self._read_at < self.cache_seconds
            ):
                return
            try:
                self._by_state, self._oldest_due = await _read(self.db)
            except Exception as exc:
                if not unreachable(exc):
                    raise  # a bug, not an outage
                log.warning("metrics: the database did not answer (%s); figures left out", exc)
                self._by_state, self._oldest_due = None, None
            self._read_at = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        if self._by_state is not None:
            runs = GaugeMetricFamily(
                "dockyard_flow_runs", "Flow runs in the database by state.", labels=["state"]
            )
            for state in StateType:
                runs.add_metric([str(state)], self._by_state.get(str(state), 0))
            yield runs
            # measured from now, not from the read: it grows between two reads, as it does
            lag = (utcnow() - self._oldest_due).total_seconds() if self._oldest_due else 0.0
            yield GaugeMetricFamily(
                "dockyard_scheduler_lag_seconds",
                "How long the oldest due SCHEDULED run has waited to be claimed (0: none).",
                value=max(lag, 0.0),
            )
        if self.db is not None:
            yield from _pool_figures(self.db)


async def _read(db: Database) -> tuple[dict[str, int], datetime | None]:
    async with db.read() as session:
        rows = await session.execute(
            select(FlowRunRow.state, func.count()).group_by(FlowRunRow.state)
        )
        by_state = {str(state): int(count) for state, count in rows.all()}
        oldest: datetime | None = await session.scalar(
            select(func.min(FlowRunRow.scheduled_start)).where(
                FlowRunRow.state == StateType.SCHEDULED, FlowRunRow.scheduled_start <= utcnow()
            )
        )
    return by_state, oldest


def _pool_figures(db: Database) -> Iterator[Metric]:
    """Connections of each SQLAlchemy pool: ``write`` and ``read`` on SQLite, where each
    has its own; ``shared`` when one pool serves both (PostgreSQL)."""
    engines: dict[str, AsyncEngine] = {"shared": db.write_engine}
    if db.read_engine is not db.write_engine:
        engines = {"write": db.write_engine, "read": db.read_engine}
    families = {
        "checked_out": GaugeMetricFamily(
            "dockyard_db_pool_checked_out_connections",
            "Database connections in use now.",
            labels=["engine"],
        ),
        "size": GaugeMetricFamily(
            "dockyard_db_pool_size_connections",
            "Connections the pool keeps open (its size).",
            labels=["engine"],
        ),
        "overflow": GaugeMetricFamily(
            "dockyard_db_pool_overflow_connections",
            "Connections open beyond the pool's size now.",
            labels=["engine"],
        ),
    }
    for name, engine in engines.items():
        pool = engine.sync_engine.pool
        if not isinstance(pool, QueuePool):
            continue  # a pool without a size (in-memory SQLite): nothing to tell
        families["checked_out"].add_metric([name], pool.checkedout())
        families["size"].add_metric([name], pool.size())
        # negative while the pool has not opened all its connections yet
        families["overflow"].add_metric([name], max(pool.overflow(), 0))
    yield from families.values()


class HttpLatency:
    """ASGI middleware: every request's latency into :attr:`Metrics.http_seconds`.

    Labels: the method, the route's template (``/api/flow-runs/{run_id}``, never the path
    asked for, so a series exists per route and not per run) and the status class (``2xx``).
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.histogram = metrics.http_seconds
        # the labelled series, found without the library's lock (it halves the cost); as
        # bounded as the labels are
        self._series: dict[tuple[str, str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path == PATH or path.startswith(STATIC_PREFIX):
            await self.app(scope, receive, send)
            return
        status = 0

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, watched)
        except Exception:
            status = 500  # what the errors middleware outside answers (or the connection ends)
            raise
        finally:
            # a request whose client left before any answer (status 0) is not counted
            if status:
                method = scope["method"] if scope["method"] in METHODS else "other"
                labels = (method, route_template(scope), f"{status // 100}xx")
                series = self._series.get(labels)
                if series is None:
                    series = self._series[labels] = self.histogram.labels(*labels)
                series.observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The template of the route that took the request (set in ``scope`` by the router);
    :data:`UNROUTED` when none took it, or a mounted app without routes (static files).

    The UI is mounted at ``/``, so its routes' templates are whole paths already.
    """
    route = scope.get("route")
    if route is None or isinstance(route, Mount):
        return UNROUTED
    # FastAPI (0.16x) keeps an included router's routes as they were declared, without the
    # prefix they were included under (``/api``): the whole template is in the context it
    # records for the route it chose. Older versions copied the routes, prefix included.
    fastapi_scope = scope.get("fastapi")
    chosen = (
        fastapi_scope.get("effective_route_context") if isinstance(fastapi_scope, dict) else None
    )
    template = getattr(chosen, "path_format", None) or getattr(route, "path_format", None)
    return template if isinstance(template, str) else UNROUTED


def install(app: FastAPI, *, cache_seconds: float) -> Metrics:
    """Add ``GET /metrics`` (not in the OpenAPI schema) to ``app``; returns its figures,
    also kept as ``app.state.metrics``. Call :meth:`Metrics.watch` once the database is open,
    and add :class:`HttpLatency` with the app's middleware."""
    metrics = Metrics(cache_seconds=cache_seconds)
    app.state.metrics = metrics

    async def scrape() -> Response:
        return Response(await metrics.exposition(), media_type=TEXT_FORMAT)

    app.add_api_route(PATH, scrape, methods=["GET"], include_in_schema=False)
    return metrics


_BY_DATABASE: weakref.WeakKeyDictionary[Database, Metrics] = weakref.WeakKeyDictionary()
# what code running on a database no app watches counts into (a script, a test): nowhere
_UNWATCHED = Metrics(cache_seconds=1.0)


def of(db: Database) -> Metrics:
    """The figures of the app serving ``db``: one dictionary lookup, for the hot paths."""
    return _BY_DATABASE.get(db, _UNWATCHED)
