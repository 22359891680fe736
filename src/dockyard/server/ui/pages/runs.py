"""A flow run's page (live state, timeline, task runs, logs), Cancel, Run again, and Resume
for a paused run (a form built from its pause's input schema). The list is in ``run_list``,
the logs in ``run_logs``."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.schemas import StateType as S
from dockyard.server import masking, orchestration
from dockyard.server.errors import ApiError, Conflict
from dockyard.server.models import flows, pausing, pools, runs
from dockyard.server.tables import TaskRunRow, utcnow
from dockyard.server.ui import forms, gantt, queries
from dockyard.server.ui.pages import run_logs
from dockyard.server.ui.web import (
    UI,
    Form,
    Paged,
    PageError,
    Posted,
    Ui,
    found,
    paged,
    redirect,
)

router = APIRouter(include_in_schema=False)

NOTICES = {
    "cancelling": "Cancel requested: the run's worker stops it and it ends Cancelled.",
    "cancelled": "Run cancelled before it started.",
    "not-cancellable": "This run has already ended; there is nothing to cancel.",
    "resumed": "Run resumed.",
}
# notices about something still under way, gone once the run is final
UNDER_WAY = {"cancelling", "resumed"}
CANCEL_QUESTION = "Cancel this run? Its worker stops it; this cannot be undone."
INPUT_PREFIX = "input."


@dataclass
class ResumeForm:
    """The Resume form of a paused run: what was typed, and what was wrong with it (by
    input field; ``__all__`` for the whole form)."""

    pause: schemas.FlowRunPause
    values: dict[str, Any] = field(default_factory=dict)
    typed: dict[str, str | None] | None = None
    text: str = ""  # the input as JSON, when its pause gave no schema with properties
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def fresh(cls, pause: schemas.FlowRunPause) -> ResumeForm:
        """The form as first shown: the fields' defaults filled in."""
        properties = (pause.input_schema or {}).get("properties", {})
        defaults = {k: p["default"] for k, p in properties.items() if "default" in p}
        return cls(pause, values=defaults)

    @property
    def schema(self) -> dict[str, Any]:
        return self.pause.input_schema or {}

    def fields(self) -> list[forms.Field]:
        if not self.schema.get("properties"):
            return []
        return forms.build(self.schema, self.values, INPUT_PREFIX, self.errors, self.typed)


def is_final(run: schemas.FlowRun) -> bool:
    return run.state in orchestration.FINAL


def _notice(ui: Ui, run: schemas.FlowRun) -> tuple[str, str | None]:
    """The notice an action left (``?done=cancelling``), unless the run has moved on."""
    done = ui.request.query_params.get("done", "")
    if done not in NOTICES or (done in UNDER_WAY and is_final(run)):
        return "", None
    return done, NOTICES[done]


@router.get("/runs/{run_id}")
async def run_page(run_id: uuid.UUID, ui: UI) -> Response:
    return await _show(ui, run_id)


async def _show(
    ui: Ui, run_id: uuid.UUID, resume: ResumeForm | None = None, status: int = 200
) -> Response:
    tasks: Paged[schemas.TaskRun] = paged(ui, "tasks")
    async with ui.db.read() as session:
        run = await run_logs.flow_run(session, run_id)
        if resume is None and run.state == S.PAUSED:
            resume = ResumeForm.fresh(pausing.view(await runs.read_run(session, run_id)))
        if ui.partial == "resume":
            return ui.page("runs/_resume.html", run=run, final=is_final(run), resume=resume)
        if ui.partial == "gantt":
            chart = await _gantt(ui, session, run)
            return ui.page("runs/_gantt.html", run=run, final=is_final(run), gantt=chart)
        states = await runs.states_of(session, run_id)
        rows = await session.scalars(
            select(TaskRunRow)
            .where(TaskRunRow.flow_run_id == run_id)
            .order_by(TaskRunRow.start_time, TaskRunRow.id)
            .limit(tasks.limit)
            .offset(tasks.offset)
        )
        tasks.fill([schemas.TaskRun.model_validate(r) for r in rows])
        done, notice = _notice(ui, run)
        context: dict[str, Any] = {
            "run": run,
            "states": states,
            "tasks": tasks,
            "final": is_final(run),
            "done": done,
            "notice": notice,
            "cancel_question": CANCEL_QUESTION,
        }
        if ui.partial == "summary":
            return ui.page("runs/_summary.html", **context)
        template = await _pool_template(session, run.work_pool_name)
        log_filter = run_logs.LogFilter.read(ui)
        batch = await run_logs.read_batch(session, run_id, log_filter)
        task_choices = await run_logs.task_choices(session, run_id)
        chart = await _gantt(ui, session, run)
    return ui.page(
        "runs/detail.html",
        status=status,
        gantt=chart,
        resume=resume,
        job_variables=masking.mask_variables(run.job_variables, template),
        task_choices=task_choices,
        levels=run_logs.LEVELS,
        fixed_task=None,
        page_path=f"/runs/{run_id}",
        **{**context, **run_logs.tail_context(run, batch, log_filter)},
    )


async def _gantt(ui: Ui, session: AsyncSession, run: schemas.FlowRun) -> gantt.Chart:
    """The run's task timeline, its rows in the order asked for (``?gantt=start|duration``;
    anything else is ``start``)."""
    order = gantt.order_of(ui.request.query_params.get("gantt"))
    final = is_final(run)
    now = (run.end_time if final else None) or utcnow()
    limit = gantt.MAX_BARS
    spans, total = await queries.gantt_spans(session, run.id, order=order, limit=limit, now=now)
    return gantt.layout(
        spans,
        now=now,
        order=order,
        total=total,
        origin=run.start_time,
        until=run.end_time,
        live=not final,
    )


async def _pool_template(session: AsyncSession, pool_name: str | None) -> dict[str, Any]:
    if pool_name is None:
        return {}
    try:
        return (await pools.read_pool(session, pool_name)).base_job_template
    except ApiError:
        return {}


@router.post("/runs/{run_id}/cancel")
async def cancel_run(run_id: uuid.UUID, ui: UI, form: Posted) -> Response:
    async with ui.db.write() as session:
        with found():
            row = await runs.read_run(session, run_id, lock=True)
        try:
            orchestration.cancel(session, row, "cancelled from the UI")
        except Conflict:
            return redirect(f"/runs/{run_id}?done=not-cancellable")
        done = "cancelled" if row.state == S.CANCELLED else "cancelling"
    return redirect(f"/runs/{run_id}?done={done}")


@router.post("/runs/{run_id}/again")
async def run_again(run_id: uuid.UUID, ui: UI, form: Posted) -> Response:
    """A new run of the same deployment with the same parameters and job variables."""
    async with ui.db.write() as session:
        with found():
            row = await runs.read_run(session, run_id)
            if row.deployment_id is None:
                raise PageError(
                    409,
                    "Cannot run again",
                    "This run has no deployment (its flow was called "
                    "directly), so the server cannot start it again.",
                )
            deployment = await flows.read_deployment(session, row.deployment_id)
        body = schemas.DeploymentRunCreate(
            parameters=row.parameters, job_variables=row.job_variables
        )
        try:
            new = await runs.create_deployment_run(session, deployment, body)
        except ApiError as exc:
            raise PageError(exc.status, "Run refused", exc.detail) from None
    return redirect(f"/runs/{new.id}")


@router.post("/runs/{run_id}/resume")
async def resume_run(run_id: uuid.UUID, ui: UI, form: Posted) -> Response:
    """Resume a paused run with the input typed in its form; a value that does not fit is
    shown next to its field (422) and the run stays paused."""
    async with ui.db.read() as session:
        with found():
            seen = pausing.view(await runs.read_run(session, run_id))
    resume = _read_input(ResumeForm(seen), form)
    if not resume.errors:
        run_input = resume.values if resume.schema.get("properties") or resume.text else None
        problem = pausing.input_problem(seen.input_schema, run_input)
        if problem is not None:
            where = problem.field.removeprefix("run_input").lstrip(".").split(".")[0]
            resume.errors[where or "__all__"] = problem.detail.split("; the run stays")[0]
        else:
            try:
                async with ui.db.write() as session:
                    row = await runs.read_run(session, run_id, lock=True)
                    if row.state == S.PAUSED and row.pause_key != seen.key:
                        raise orchestration.refuse(row, "it paused again meanwhile")
                    body = schemas.ResumeRequest(run_input=run_input)
                    pausing.resume(session, row, body, lease_seconds=ui.settings.lease_seconds)
            except ApiError as exc:
                resume.errors["__all__"] = f"Not resumed: {exc.detail}"
            else:
                return redirect(f"/runs/{run_id}?done=resumed")
    return await _show(ui, run_id, resume, status=422)


def _read_input(resume: ResumeForm, form: Form) -> ResumeForm:
    """Read the posted input into ``resume`` (values and what could not be read)."""
    schema = resume.schema
    if schema.get("properties"):
        resume.typed = form.section(INPUT_PREFIX, schema["properties"])
        resume.values = forms.read(schema, resume.typed, resume.errors)
        forms.validate(schema, resume.values, resume.errors)
        return resume
    resume.text = form.get("run_input").strip()
    if resume.text:
        try:
            value = json.loads(resume.text)
        except ValueError as exc:
            resume.errors["run_input"] = f"not valid JSON: {exc}"
            return resume
        if not isinstance(value, dict):
            resume.errors["run_input"] = 'enter a JSON object, e.g. {"approved": true}'
        else:
            resume.values = value
    return resume
