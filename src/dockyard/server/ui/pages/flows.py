"""Flows, with their deployments."""

from __future__ import annotations

from collections import defaultdict

from fastapi import APIRouter
from fastapi.responses import Response

from dockyard.server.tables import DeploymentRow, FlowRow
from dockyard.server.ui import queries
from dockyard.server.ui.web import UI, Paged, paged

router = APIRouter(include_in_schema=False)

# a flow's deployments shown in its row; the rest are a click away
DEPLOYMENTS_PER_FLOW = 50


@router.get("/flows")
async def flow_list(ui: UI) -> Response:
    page: Paged[FlowRow] = paged(ui)
    async with ui.db.read() as session:
        page.fill(await queries.flows(session, limit=page.limit, offset=page.offset))
        ids = [f.id for f in page.items]
        rows = await queries.deployments(
            session, limit=DEPLOYMENTS_PER_FLOW * max(1, len(ids)), flow_ids=ids
        )
        run_counts = await queries.run_counts_by_flow(session, ids)
    by_flow: dict[object, list[DeploymentRow]] = defaultdict(list)
    for row in rows:
        if len(by_flow[row.flow_id]) < DEPLOYMENTS_PER_FLOW:
            by_flow[row.flow_id].append(row)
    return ui.page("flows.html", page=page, deployments=by_flow, run_counts=run_counts)
