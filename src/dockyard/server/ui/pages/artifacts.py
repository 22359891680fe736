"""Artifacts: the latest version of each key (``/artifacts``), a key's page (its latest,
rendered, and its history), and the Artifacts panel of a run's page, which that page loads
from ``/runs/{id}/artifacts`` (and reloads while the run is not final).

What an artifact holds is somebody's input, shown to everybody: Markdown is rendered with
raw HTML off (tags are shown as text), links only to ``http``, ``https`` and ``mailto``
URLs and images only from ``http(s)`` ones (anything else stays text); a table's cells, a
link's text and every other value go through the templates' escaping. Rendering runs in a
worker thread, never on the event loop: its cost grows with the data (up to 1 MiB each).
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from dockyard._names import artifact_key_problem
from dockyard._states import FINAL_STATES
from dockyard.schemas.artifacts import Artifact, ArtifactType, table_cells
from dockyard.server.models import artifacts
from dockyard.server.tables import FlowRunRow
from dockyard.server.ui.web import UI, Paged, PageError, found, paged

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

router = APIRouter(include_in_schema=False)

RUN_PANEL_SIZE = 50  # a run's newest artifacts shown on its page
HISTORY_SIZE = 100  # versions of a key listed on its page
ROWS_SHOWN = 500  # rows of a table shown (the API answers them all)
SAFE_LINK = re.compile(r"(?:https?|mailto):", re.IGNORECASE)
SAFE_IMAGE = re.compile(r"https?://", re.IGNORECASE)


# ---------------------------------------------------------------- rendering


@functools.cache
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.validateLink = _valid_link  # type: ignore[method-assign]
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("image", _image)
    return md


def _valid_link(url: str) -> bool:
    # an allow-list, matched from the first character: "java\tscript:" and " javascript:"
    # are refused as surely as "javascript:"
    return SAFE_LINK.match(url) is not None


def _link_open(self: Any, tokens: Any, index: int, options: Any, env: Any) -> str:
    tokens[index].attrSet("rel", "noopener nofollow")
    return str(self.renderToken(tokens, index, options, env))


def _image(self: Any, tokens: Any, index: int, options: Any, env: Any) -> str:
    token = tokens[index]
    if SAFE_IMAGE.match(str(token.attrGet("src") or "")):
        return str(self.image(tokens, index, options, env))
    # a mailto: image passed the links' rule; it is shown as its alt text
    return str(self.renderInlineAsText(token.children or [], options, env))


def markdown_html(text: str) -> Markup:
    """``text`` rendered as HTML, safely (see the module's docstring)."""
    return Markup(_markdown().render(text))


def safe_url(url: Any, pattern: re.Pattern[str]) -> str | None:
    """``url`` when it may be an ``href`` or a ``src`` (it matches ``pattern``), else None."""
    return url if isinstance(url, str) and pattern.match(url) else None


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


@dataclass
class ArtifactView:
    """An artifact as the templates show it: its HTML parts made, its values checked."""

    artifact: Artifact
    run_name: str | None = None
    description: Markup | None = None
    markdown: Markup | None = None
    columns: list[str] | None = None
    rows: list[list[str]] = field(default_factory=list)
    hidden_rows: int = 0
    href: str | None = None
    text: str | None = None
    progress: float | None = None


def view(artifact: Artifact, run_name: str | None = None) -> ArtifactView:
    shown = ArtifactView(artifact, run_name)
    if artifact.description:
        shown.description = markdown_html(artifact.description)
    data = artifact.data
    if artifact.type is ArtifactType.MARKDOWN:
        shown.markdown = markdown_html(str(data))
    elif artifact.type is ArtifactType.TABLE:
        try:
            columns, rows = table_cells(data)
        except ValueError:  # stored before a stricter rule: shown as its JSON, in one cell
            columns, rows = None, [[data]]
        shown.columns = columns
        shown.rows = [[cell_text(cell) for cell in row] for row in rows[:ROWS_SHOWN]]
        shown.hidden_rows = max(0, len(rows) - ROWS_SHOWN)
    elif artifact.type is ArtifactType.LINK:
        link = data.get("link") if isinstance(data, dict) else None
        shown.href = safe_url(link, SAFE_LINK)
        shown.text = (data.get("link_text") if isinstance(data, dict) else None) or str(link)
    elif artifact.type is ArtifactType.PROGRESS:
        shown.progress = float(data)
    elif artifact.type is ArtifactType.IMAGE:
        shown.href = safe_url(data, SAFE_IMAGE)
        shown.text = artifact.description or artifact.key or "image"
    return shown


async def views(artifacts_: list[Artifact], run_names: dict[uuid.UUID, str]) -> list[ArtifactView]:
    def build() -> list[ArtifactView]:
        return [view(a, _run_of(a, run_names)) for a in artifacts_]

    return await run_in_threadpool(build)


def _run_of(artifact: Artifact, names: dict[uuid.UUID, str]) -> str | None:
    return names.get(artifact.flow_run_id) if artifact.flow_run_id else None


async def _run_names(session: AsyncSession, found_: list[Artifact]) -> dict[uuid.UUID, str]:
    ids = {a.flow_run_id for a in found_ if a.flow_run_id}
    if not ids:
        return {}
    rows = await session.execute(
        select(FlowRunRow.id, FlowRunRow.name).where(FlowRunRow.id.in_(ids))
    )
    return dict(rows.tuples().all())


# ---------------------------------------------------------------- pages


@router.get("/artifacts")
async def artifact_list(ui: UI) -> Response:
    page: Paged[ArtifactView] = paged(ui)
    prefix = ui.request.query_params.get("prefix", "").strip()[:255]
    kind = ui.request.query_params.get("type", "")
    chosen = ArtifactType(kind) if kind in set(ArtifactType) else None
    async with ui.db.read() as session:
        rows = await artifacts.list_latest(
            session, key_prefix=prefix or None, type=chosen, limit=page.limit, offset=page.offset
        )
        latest = [artifacts.artifact_schema(row) for row in rows]
        names = await _run_names(session, latest)
        versions = await artifacts.count_versions(session, [a.key for a in latest if a.key])
    page.fill([ArtifactView(a, _run_of(a, names)) for a in latest])
    return ui.page(
        "artifacts/list.html",
        page=page,
        prefix=prefix,
        chosen=chosen.value if chosen else "",
        types=[t.value for t in ArtifactType],
        versions=versions,
        brief=_brief,
    )


@router.get("/artifacts/{key}")
async def artifact_page(key: str, ui: UI) -> Response:
    if artifact_key_problem(key):
        raise PageError(404, "Not found", f"No artifact has the key {key!r}.")
    wanted = ui.request.query_params.get("version", "")
    async with ui.db.read() as session:
        with found():
            latest = artifacts.artifact_schema(await artifacts.read_latest(session, key))
        rows = await artifacts.list_artifacts(session, key=key, limit=HISTORY_SIZE)
        history = [artifacts.artifact_schema(row) for row in rows]
        total = (await artifacts.count_versions(session, [key])).get(key, len(history))
        shown = next((a for a in history if str(a.id) == wanted), latest)
        number = total - next((i for i, a in enumerate(history) if a.id == shown.id), 0)
        names = await _run_names(session, history)
    [current] = await views([shown], names)
    return ui.page(
        "artifacts/detail.html",
        key=key,
        latest=latest,
        shown=current,
        history=[ArtifactView(a, _run_of(a, names)) for a in history],
        total=total,
        number=number,
        brief=_brief,
    )


@router.get("/runs/{run_id}/artifacts")
async def run_artifacts(run_id: uuid.UUID, ui: UI) -> Response:
    """The Artifacts panel of a run's page (an htmx fragment)."""
    async with ui.db.read() as session:
        state = await session.scalar(select(FlowRunRow.state).where(FlowRunRow.id == run_id))
        if state is None:
            raise PageError(404, "Not found", f"No flow run has the id {run_id}.")
        rows = await artifacts.list_artifacts(session, flow_run_id=run_id, limit=RUN_PANEL_SIZE + 1)
    found_ = [artifacts.artifact_schema(row) for row in rows]
    shown = await views(found_[:RUN_PANEL_SIZE], {})
    return ui.page(
        "artifacts/_panel.html",
        run_id=run_id,
        shown=shown,
        more=len(found_) > RUN_PANEL_SIZE,
        live=state not in FINAL_STATES,
    )


def _brief(text: str | None, limit: int = 100) -> str:
    """The first line of a description, cut to ``limit`` characters."""
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
