"""The flow-run list: filters by state (or Late), flow, deployment, pool and time, each
active one shown as a chip that removes it, and how many runs match."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.schemas import StateType as S
from dockyard.server.tables import FlowRow, WorkPoolRow
from dockyard.server.ui import queries
from dockyard.server.ui.rendering import state_label
from dockyard.server.ui.web import UI, Paged, Ui, paged

router = APIRouter(include_in_schema=False)

FILTER_STATES = [*S.__members__, "LATE"]
# the count stops here: the list refreshes itself every few seconds
COUNT_AT_MOST = 10_000


@dataclass(frozen=True)
class Chip:
    """An active filter of the run list, and the list's URL without it."""

    label: str
    value: str
    remove_url: str


def _filters(ui: Ui) -> queries.RunFilter:
    params = ui.request.query_params
    deployment_id = params.get("deployment_id", "")
    try:
        parsed = uuid.UUID(deployment_id) if deployment_id else None
    except ValueError:
        parsed = None
    return queries.RunFilter(
        state=params.get("state", "").upper(),
        flow=params.get("flow", "").strip(),
        deployment=params.get("deployment", "").strip(),
        pool=params.get("pool", "").strip(),
        range=params.get("range", "past") if params.get("range") in queries.RANGES else "past",
        deployment_id=parsed,
    )


async def _by_deployment(
    ui: Ui, session: AsyncSession, filters: queries.RunFilter
) -> tuple[queries.RunFilter, str]:
    """The filters to apply, and the deployment as the box shows it.

    ``deployment_id`` (a deployment page's link) is shown as its ``FLOW/NAME``; once the
    box says something else (or nothing), what it says is the filter."""
    if filters.deployment_id is None:
        return filters, filters.deployment
    shown = await queries.deployment_name(session, filters.deployment_id)
    shown = shown or str(filters.deployment_id)
    typed = ui.request.query_params.get("deployment")
    if typed is None or typed.strip().lower() == shown.lower():
        return replace(filters, deployment=""), shown
    return replace(filters, deployment_id=None), filters.deployment


def _state_text(filters: queries.RunFilter) -> str:
    """The states filtered on, in words (``"Failed, Crashed"``), or ``""``."""
    states = ["Late"] if filters.state == "LATE" else [state_label(s) for s in filters.states]
    return ", ".join(states)


def _chips(ui: Ui, filters: queries.RunFilter, deployment: str) -> list[Chip]:
    chips = []
    if _state_text(filters):
        chips.append(Chip("State", _state_text(filters), ui.url_with(state=None, page=None)))
    if filters.flow:
        chips.append(Chip("Flow", filters.flow, ui.url_with(flow=None, page=None)))
    if deployment:
        remove = ui.url_with(deployment=None, deployment_id=None, page=None)
        chips.append(Chip("Deployment", deployment, remove))
    if filters.pool:
        chips.append(Chip("Work pool", filters.pool, ui.url_with(pool=None, page=None)))
    if filters.range != "past":
        label = queries.RANGES[filters.range][0]
        chips.append(Chip("Time", label, ui.url_with(range=None, page=None)))
    return chips


def _count_text(count: int, filtered: bool) -> str:
    """``"12 flow runs"``; with filters ``"1 flow run matches"``, ``"12 flow runs match"``."""
    if count >= COUNT_AT_MOST:
        text, one = f"{COUNT_AT_MOST:,} or more flow runs", False
    else:
        text, one = f"{count:,} flow run{'' if count == 1 else 's'}", count == 1
    if not filtered:
        return text
    return f"{text} {'matches' if one else 'match'}"


@router.get("/runs")
async def run_list(ui: UI) -> Response:
    page: Paged[schemas.FlowRun] = paged(ui)
    async with ui.db.read() as session:
        filters, deployment = await _by_deployment(ui, session, _filters(ui))
        page.fill(await queries.list_runs(session, filters, limit=page.limit, offset=page.offset))
        count = await queries.count_runs_upto(session, filters, COUNT_AT_MOST)
        if ui.partial != "rows":
            flow_names = await queries.names(session, FlowRow.name)
            pool_names = await queries.names(session, WorkPoolRow.name)
            deployment_names = await queries.deployment_names(session)
    chips = _chips(ui, filters, deployment)
    context: dict[str, Any] = {
        "page": page,
        "chips": chips,
        "count_text": _count_text(count, bool(chips)),
    }
    if ui.partial == "rows":
        return ui.page("runs/_rows.html", **context)
    return ui.page(
        "runs/list.html",
        filters=filters,
        state_text=_state_text(filters),
        deployment=deployment,
        states=FILTER_STATES,
        ranges=queries.RANGES,
        flow_names=flow_names,
        pool_names=pool_names,
        deployment_names=deployment_names,
        **context,
    )
