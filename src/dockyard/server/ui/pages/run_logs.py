"""A run's logs: the live tail on its page and on its task runs' pages, filtered by level,
task run and text, each line labelled with the task run that wrote it; and the same lines
as a text file to download."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.server import orchestration
from dockyard.server.models import runs
from dockyard.server.tables import LogRow, TaskRunRow, utcnow
from dockyard.server.ui.rendering import level_name
from dockyard.server.ui.web import SECURITY_HEADERS, UI, Ui, found

router = APIRouter(include_in_schema=False)

LOG_BATCH = 500
DOWNLOAD_BATCH = 2000
# logs may still arrive this long after a run ended (a worker adding a crash trace)
LOG_GRACE = timedelta(seconds=10)
LEVELS = {0: "All levels", 20: "Info and above", 30: "Warnings and errors", 40: "Errors only"}
FLOW_ONLY = "flow"
MAX_SEARCH = 200
TASK_CHOICES = 200


@dataclass(frozen=True)
class LogFilter:
    """Which of a run's log lines to show: ``?level=30&task=ID&q=text``.

    ``task`` is a task run's id, ``flow`` for the lines the flow wrote outside its tasks, or
    empty for all; ``text`` is found anywhere in a line, in any case.
    """

    level: int = 0
    task: str = ""
    text: str = ""

    @classmethod
    def read(cls, ui: Ui) -> LogFilter:
        params = ui.request.query_params
        task = params.get("task", "").strip()
        if task != FLOW_ONLY:
            task = str(_uuid(task) or "")
        level = ui.number("level", default=0, minimum=0)
        return cls(
            level=level if level in LEVELS else 0,
            task=task,
            text=params.get("q", "").strip()[:MAX_SEARCH],
        )

    @property
    def active(self) -> bool:
        return bool(self.level or self.task or self.text)

    def query(self, **more: Any) -> str:
        """The filter as a query string, with ``more`` parameters (``after_id=N``)."""
        params = {"level": self.level or None, "task": self.task or None, "q": self.text or None}
        return urlencode({k: v for k, v in {**params, **more}.items() if v is not None})

    def apply(self, query: Any) -> Any:
        if self.level:
            query = query.where(LogRow.level >= self.level)
        if self.task == FLOW_ONLY:
            query = query.where(LogRow.task_run_id.is_(None))
        elif self.task:
            query = query.where(LogRow.task_run_id == uuid.UUID(self.task))
        if self.text:
            query = query.where(LogRow.message.icontains(self.text, autoescape=True))
        return query


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class LogBatch:
    """Log lines, and the names of the task runs that wrote them (by task run id)."""

    lines: list[schemas.Log]
    task_names: dict[uuid.UUID, str]

    @property
    def last_id(self) -> int | None:
        return self.lines[-1].id if self.lines else None


async def read_batch(
    session: AsyncSession,
    run_id: uuid.UUID,
    filters: LogFilter,
    after_id: int = 0,
    limit: int = LOG_BATCH,
) -> LogBatch:
    rows = await session.scalars(
        filters.apply(select(LogRow).where(LogRow.flow_run_id == run_id, LogRow.id > after_id))
        .order_by(LogRow.id)
        .limit(limit)
    )
    lines = [schemas.Log.model_validate(r) for r in rows]
    ids = {line.task_run_id for line in lines if line.task_run_id is not None}
    return LogBatch(lines, await task_names(session, ids))


async def task_names(
    session: AsyncSession, ids: Sequence[uuid.UUID] | set[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The names of these task runs (a task run is recorded once it ends: until then its
    lines show its id)."""
    if not ids:
        return {}
    rows = await session.execute(
        select(TaskRunRow.id, TaskRunRow.name).where(TaskRunRow.id.in_(list(ids)))
    )
    return dict(rows.tuples().all())


async def task_choices(session: AsyncSession, run_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """The task runs the task box offers (the first ones; every task run's page has its
    own lines)."""
    rows = await session.execute(
        select(TaskRunRow.id, TaskRunRow.name)
        .where(TaskRunRow.flow_run_id == run_id)
        .order_by(TaskRunRow.start_time, TaskRunRow.id)
        .limit(TASK_CHOICES)
    )
    return list(rows.tuples().all())


def more_logs(run: schemas.FlowRun, batch: LogBatch) -> str | None:
    """How the log tail asks again: at once (a full batch), every second, or never (done)."""
    if len(batch.lines) >= LOG_BATCH:
        return "load"
    ended_long_ago = run.end_time is not None and utcnow() - run.end_time > LOG_GRACE
    if run.state in orchestration.FINAL and ended_long_ago and not batch.lines:
        return None
    return "every 1s"


def tail_context(
    run: schemas.FlowRun, batch: LogBatch, filters: LogFilter, after_id: int = 0
) -> dict[str, Any]:
    """What ``runs/_logs.html`` shows: the lines, and the poller that asks for the next."""
    return {
        "run": run,
        "logs": batch.lines,
        "task_names": batch.task_names,
        "log_filter": filters,
        "more": more_logs(run, batch),
        "after_id": batch.last_id or after_id,
        "source_name": source_name,
    }


async def flow_run(session: AsyncSession, run_id: uuid.UUID) -> schemas.FlowRun:
    """The run, or the 404 page."""
    with found():
        return await runs.run_schema(session, run_id)


@router.get("/runs/{run_id}/logs")
async def run_logs(run_id: uuid.UUID, ui: UI) -> Response:
    """The log lines after ``after_id`` that pass the filter, and the poller for the next."""
    after_id = ui.number("after_id", default=0, minimum=0)
    filters = LogFilter.read(ui)
    async with ui.db.read() as session:
        run = await flow_run(session, run_id)
        batch = await read_batch(session, run_id, filters, after_id)
    return ui.page("runs/_logs.html", **tail_context(run, batch, filters, after_id))


@router.get("/runs/{run_id}/logs.txt")
async def download_logs(run_id: uuid.UUID, ui: UI) -> Response:
    """The run's log lines (those that pass the filter) as a text file, read in batches."""
    filters = LogFilter.read(ui)
    async with ui.db.read() as session:
        run = await flow_run(session, run_id)

    async def text() -> AsyncIterator[str]:
        after_id = 0
        while True:
            async with ui.db.read() as session:
                batch = await read_batch(session, run_id, filters, after_id, DOWNLOAD_BATCH)
            yield "".join(log_text(line, batch.task_names) for line in batch.lines)
            if len(batch.lines) < DOWNLOAD_BATCH or batch.last_id is None:
                return
            after_id = batch.last_id

    filename = re.sub(r"[^A-Za-z0-9._-]+", "-", run.name).strip("-") or "run"
    headers = {
        **SECURITY_HEADERS,
        "content-disposition": f'attachment; filename="{filename}-logs.txt"',
    }
    return StreamingResponse(text(), media_type="text/plain; charset=utf-8", headers=headers)


def log_text(log: schemas.Log, names: dict[uuid.UUID, str]) -> str:
    """One line of the text file: time, level, source (a task run, or the flow), message."""
    moment = log.timestamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:23]
    source = "flow" if log.task_run_id is None else source_name(log.task_run_id, names)
    return f"{moment} {level_name(log.level):<8} [{source}] {log.message}\n"


def source_name(task_run_id: uuid.UUID, names: dict[uuid.UUID, str]) -> str:
    return names.get(task_run_id) or f"task run {str(task_run_id)[:8]}"
