"""What each action does. The server's own actions go through the model functions the API
uses (the same rules apply: a paused deployment's runs wait, a final run cannot be
cancelled); a webhook is a POST over httpx, with a timeout, on the event loop.

An action either succeeds, fails for good (the error is its own: a 4xx answer, a deployment
that is gone), or fails for now (a connection error, a 5xx answer, a lost race): only those
are tried again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import job_templates, schemas
from dockyard.schemas.events import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from dockyard.server import orchestration
from dockyard.server.db import LOST_RACE, Database
from dockyard.server.errors import ApiError, NotFound
from dockyard.server.models import flows, pools, runs
from dockyard.server.tables import WorkPoolRow
from dockyard.settings import Settings

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("dockyard.server")
MAX_REDIRECTS = 5
SHOWN_ANSWER = 300  # characters of a webhook's answer kept in the error


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str | None = None
    retry: bool = False


@dataclass(frozen=True)
class Job:
    """A claimed action: its row's id, the action's spec and what it acts on."""

    id: uuid.UUID
    action: dict[str, Any]
    context: dict[str, Any]
    attempts: int


def related_id(context: dict[str, Any], role: str) -> uuid.UUID | None:
    """The id of what the event is about if it is a ``role`` (``flow-run``, ``work-pool``),
    else of its related resource of that role."""
    event = context.get("event") or {}
    related = [r for r in event.get("related") or [] if r.get(RESOURCE_ROLE) == role]
    prefix = f"dockyard.{role}."
    for labels in [event.get("resource") or {}, *related]:
        found = str(labels.get(RESOURCE_ID, ""))
        if found.startswith(prefix):
            try:
                return uuid.UUID(found.removeprefix(prefix))
            except ValueError:
                continue
    return None


def variables(context: dict[str, Any], ui_url: str) -> dict[str, Any]:
    """What a webhook's body template may name: ``{{ flow_run_name }}`` and the like."""
    event = context.get("event") or {}
    resource = event.get("resource") or {}
    found: dict[str, Any] = {
        "automation_id": context.get("automation", {}).get("id"),
        "automation_name": context.get("automation", {}).get("name"),
        "event": event,
        "event_id": event.get("id"),
        "event_name": event.get("event"),
        "event_occurred": event.get("occurred"),
        "resource": resource,
        "related": event.get("related"),
        "payload": event.get("payload"),
        "resource_id": resource.get(RESOURCE_ID),
        "resource_name": resource.get(RESOURCE_NAME),
    }
    for labels in event.get("related") or []:
        role = labels.get(RESOURCE_ROLE, "").replace("-", "_")
        if role in ("flow", "deployment", "work_pool", "work_queue"):
            found[f"{role}_name"] = labels.get(RESOURCE_NAME)
            found[f"{role}_id"] = labels.get(RESOURCE_ID, "").rpartition(".")[2]
    run_id = related_id(context, "flow-run")
    if run_id is not None:
        found.update(
            flow_run_id=str(run_id),
            flow_run_name=resource.get(RESOURCE_NAME),
            flow_run_state=resource.get("dockyard.state-type"),
            flow_run_url=f"{ui_url}/runs/{run_id}",
        )
    return found


def webhook_body(action: dict[str, Any], context: dict[str, Any], ui_url: str) -> Any:
    """The JSON a webhook sends: its body template filled in, or by default the event with
    the automation and the flow run (id, name, state, UI URL) it is about."""
    given = variables(context, ui_url)
    if action.get("body") is not None:
        return job_templates.render({"body": action["body"]}, given, None).get("body")
    flow_run = None
    if given.get("flow_run_id"):
        flow_run = {key: given[f"flow_run_{key}"] for key in ("id", "name", "state", "url")}
    return {"automation": context.get("automation"), "event": given["event"], "flow_run": flow_run}


class HostRefused(Exception):
    """A webhook's URL names a host outside ``DOCKYARD_WEBHOOK_ALLOWED_HOSTS``."""


class Webhooks:
    """The HTTP client webhooks go out by, made for the first webhook: importing httpx (and
    what it imports) would cost every server ~10 MiB and time at start, for a client most
    servers never use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                timeout=self.settings.webhook_timeout_seconds,
                follow_redirects=False,
                event_hooks={"request": [host_guard(self.settings.webhook_allowed_hosts)]},
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def host_guard(allowed: str) -> Callable[[httpx.Request], Awaitable[None]]:
    """A request hook that refuses hosts outside ``allowed`` (comma separated; empty: any),
    for every request the webhook client sends, redirects included."""
    hosts = {host.strip().lower() for host in allowed.split(",") if host.strip()}

    async def guard(request: httpx.Request) -> None:
        if hosts and request.url.host.lower() not in hosts:
            raise HostRefused(
                f"host {request.url.host!r} is not one webhooks may call; add it to "
                "DOCKYARD_WEBHOOK_ALLOWED_HOSTS on the server, or call another"
            )

    return guard


async def call_webhook(
    http: httpx.AsyncClient, action: dict[str, Any], context: dict[str, Any], ui_url: str
) -> Outcome:
    import httpx

    """POST the body; follow redirects to the same scheme, host and port only."""
    try:
        url = httpx.URL(action["url"])
    except httpx.InvalidURL as exc:
        return Outcome(False, f"{action['url']!r} is not a URL httpx can call: {exc}")
    body = webhook_body(action, context, ui_url)
    headers = {"Content-Type": "application/json", **(action.get("headers") or {})}
    for _ in range(MAX_REDIRECTS + 1):
        try:
            answer = await http.post(url, json=body, headers=headers)
        except HostRefused as exc:
            return Outcome(False, str(exc))
        except httpx.TransportError as exc:
            return Outcome(False, f"no answer from {url}: {exc or type(exc).__name__}", retry=True)
        if answer.is_redirect:
            target = url.join(answer.headers.get("location", ""))
            if (target.scheme, target.host, target.port) != (url.scheme, url.host, url.port):
                return Outcome(
                    False,
                    f"{url} answered {answer.status_code}, a redirect to another host "
                    f"({target.scheme}://{target.host}); not followed: give the webhook the "
                    "final URL",
                )
            url = target
            continue
        if answer.is_success:
            return Outcome(True)
        shown = answer.text[:SHOWN_ANSWER]
        error = f"{url} answered {answer.status_code}: {shown}"
        return Outcome(False, error, retry=answer.status_code >= 500)
    return Outcome(False, f"{url} redirected more than {MAX_REDIRECTS} times")


async def perform(db: Database, webhooks: Webhooks, job: Job, ui_url: str) -> Outcome:
    """Do one action; never raises (an unexpected error is logged and retried)."""
    kind = job.action.get("type")
    try:
        if kind == "call-webhook":
            return await call_webhook(webhooks.client(), job.action, job.context, ui_url)

        async def work(session: AsyncSession) -> None:
            await server_action(session, job)

        await db.write_retrying(work)
        return Outcome(True)
    except ApiError as exc:
        return Outcome(False, exc.detail)
    except LOST_RACE:
        return Outcome(False, "lost a race to another change; trying again", retry=True)
    except Exception as exc:
        log.exception("automation action %s (%s) failed", job.id, kind)
        return Outcome(False, f"unexpected error (see the server's log): {exc}", retry=True)


async def server_action(session: AsyncSession, job: Job) -> None:
    action, kind = job.action, job.action["type"]
    if kind in ("run-deployment", "pause-deployment", "resume-deployment"):
        deployment_id = _given(action.get("deployment_id")) or related_id(job.context, "deployment")
        if deployment_id is None:
            raise NotFound("the event has no deployment; name one with deployment_id")
        deployment = await flows.read_deployment(session, deployment_id)
        if kind == "run-deployment":
            body = schemas.DeploymentRunCreate(
                parameters=action.get("parameters") or {},
                job_variables=action.get("job_variables") or {},
                # a retry after a lost answer finds the run it made: one run per action
                idempotency_key=f"automation-action:{job.id}",
            )
            await runs.create_deployment_run(session, deployment, body)
        else:
            paused = kind == "pause-deployment"
            await flows.update_deployment(
                session, deployment, schemas.DeploymentUpdate(paused=paused)
            )
    elif kind in ("pause-work-pool", "resume-work-pool"):
        name = action.get("work_pool_name")
        if name is None:
            pool_id = _given(action.get("work_pool_id")) or related_id(job.context, "work-pool")
            pool = await session.get(WorkPoolRow, pool_id) if pool_id else None
            if pool is None:
                raise NotFound("the work pool is gone, or the event has none; name one")
            name = pool.name
        paused = kind == "pause-work-pool"
        await pools.update_pool(session, name, schemas.WorkPoolUpdate(paused=paused))
    elif kind == "cancel-flow-run":
        run_id = related_id(job.context, "flow-run")
        if run_id is None:
            raise NotFound("the event is not about a flow run: there is nothing to cancel")
        run = await runs.read_run(session, run_id, lock=True)
        orchestration.cancel(session, run, "cancelled by an automation")
    else:
        raise NotFound(f"unknown action type {kind!r}")


def _given(value: Any) -> uuid.UUID | None:
    return uuid.UUID(str(value)) if value else None
