"""Deployments described in code: what ``flow.deploy()``, ``flow.to_deployment()`` and
``serve()`` register on the server.

A :class:`Deployment` names a flow and how its runs go: to a work pool (``deploy``) or to
the process that serves it (``serve``, no pool). Registering one is an upsert by flow name
and deployment name, so running the same script again updates it.
"""

from __future__ import annotations

import json
import shlex
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dockyard.exceptions import ApiError, DockyardError

if TYPE_CHECKING:
    from dockyard import schemas
    from dockyard.client import Client
    from dockyard.schedules import Schedule
    from dockyard.sdk.deploy.images import DeploymentImage
    from dockyard.sdk.flows import Flow

__all__ = ["Deployment", "deploy", "quoted", "register", "schedule_specs"]


@dataclass(frozen=True)
class Deployment:
    """A deployment of a flow, described in code; :func:`register` records it.

    Made by ``flow.to_deployment(...)`` (served, no pool) or by ``flow.deploy(...)``.

    Attributes:
        flow: the flow to run.
        name: the deployment's name (unique per flow; no ``/``).
        work_pool_name: the pool whose workers run it; None for a served deployment.
        work_queue_name: the pool's queue (default: ``default``).
        job_variables: overrides of the pool's job template for its runs.
        parameters: default parameters of its runs (a run's own override them).
        tags, description, version: shown with it (description and version default to
            the flow's).
        concurrency_limit: most runs of it at once.
        crash_retries: how many times a CRASHED run is scheduled again.
        paused: its scheduled runs wait until it is resumed.
        schedules: its schedules, as ``ScheduleCreate`` bodies (see :func:`schedule_specs`);
            registering replaces the deployment's schedules with these.
        catchup: what to do with missed scheduled runs: ``latest``, ``all`` or ``skip``.
        max_lateness_seconds: a run later than this is cancelled instead of started.
        triggers: events that run it (:class:`~dockyard.events.DeploymentEventTrigger`).
    """

    flow: Flow[..., Any]
    name: str
    work_pool_name: str | None = None
    work_queue_name: str | None = None
    job_variables: Mapping[str, Any] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    description: str | None = None
    version: str | None = None
    concurrency_limit: int | None = None
    crash_retries: int = 0
    paused: bool = False
    schedules: tuple[Schedule | Mapping[str, Any], ...] = ()
    catchup: str = "latest"
    max_lateness_seconds: float | None = None
    image: str | None = None
    # DeploymentEventTrigger (or EventTrigger, or dicts of one): each becomes an automation
    # of this deployment that runs it; registering replaces the deployment's automations
    triggers: tuple[Any, ...] = ()

    @property
    def full_name(self) -> str:
        """``flow-name/deployment-name``, as ``dockyard deployment run`` takes it."""
        return f"{self.flow.name}/{self.name}"

    def request(self) -> dict[str, Any]:
        """The ``DeploymentCreate`` body (JSON) that registers this deployment.

        Raises:
            DockyardError: the flow cannot be located, or a parameter is unknown or not JSON.
        """
        from dockyard.schedules import request_of
        from dockyard.sdk.deploy.sources import locate

        source = self.flow.source or locate(self.flow)
        return {
            "flow_name": self.flow.name,
            "name": self.name,
            "entrypoint": source.entrypoint,
            "path": source.path,
            "pull_steps": list(source.pull_steps),
            "description": self.description or self.flow.description,
            "version": self.version or self.flow.version,
            "tags": list(self.tags),
            "parameters": _checked_parameters(self.flow, self.parameters),
            "parameter_schema": self.flow.parameter_schema(),
            "work_pool_name": self.work_pool_name,
            "work_queue_name": self.work_queue_name,
            "job_variables": dict(self.job_variables),
            "concurrency_limit": self.concurrency_limit,
            "crash_retries": self.crash_retries,
            "paused": self.paused,
            "schedules": [request_of(spec) for spec in self.schedules],
            "catchup": self.catchup,
            "max_lateness_seconds": self.max_lateness_seconds,
            "image": self.image,
        }

    def trigger_automations(self, deployment_id: uuid.UUID) -> list[Any]:
        """The automations (``AutomationCreate``) that its triggers make: each runs it."""
        from dockyard.schemas.events import (
            AutomationCreate,
            DeploymentEventTrigger,
            RunDeployment,
        )

        made = []
        for index, given in enumerate(self.triggers, start=1):
            raw = given if isinstance(given, dict) else given.model_dump()
            trigger = DeploymentEventTrigger.model_validate(raw)
            suffix = f"-trigger-{index}"
            name = trigger.name or f"{self.flow.name}-{self.name}"[: 200 - len(suffix)] + suffix
            action = RunDeployment(deployment_id=deployment_id, parameters=trigger.parameters)
            made.append(
                AutomationCreate(
                    name=name,
                    enabled=trigger.enabled,
                    trigger=trigger.event_trigger(),
                    actions=[action],
                )
            )
        return made


def schedule_specs(
    *,
    cron: str | Iterable[str] | None = None,
    interval: float | timedelta | Iterable[float | timedelta] | None = None,
    rrule: str | Iterable[str] | None = None,
    timezone: str | None = None,
    anchor_date: datetime | None = None,
    schedule: Schedule | Mapping[str, Any] | None = None,
    schedules: Iterable[Schedule | Mapping[str, Any]] = (),
) -> tuple[dict[str, Any], ...]:
    """The ``ScheduleCreate`` bodies that the keywords of ``deploy()`` and the like describe.

    ``cron``, ``interval`` and ``rrule`` each make one schedule, or one per item of an
    iterable, in ``timezone`` from ``anchor_date`` (see :func:`dockyard.schedules.Interval`);
    ``schedule`` and ``schedules`` add :class:`~dockyard.schedules.Schedule` objects and
    dicts.

    Raises:
        DockyardError: a schedule is malformed (see :mod:`dockyard.schedules`).
    """
    from dockyard.schedules import Cron, Interval, RRule, Schedule, request_of

    made: list[Schedule | Mapping[str, Any]] = [Cron(c, timezone) for c in _each(cron)]
    made += [Interval(i, anchor_date, timezone) for i in _each(interval)]
    made += [RRule(r, timezone, anchor_date=anchor_date) for r in _each(rrule)]
    if schedule is not None:
        made.append(schedule)
    # one schedule given as schedules= is taken as a list of one
    made += [schedules] if isinstance(schedules, Schedule | Mapping) else schedules
    return tuple(request_of(spec) for spec in made)


def _each(value: Any) -> list[Any]:
    """A keyword's value as a list: None is none, text or a number is one."""
    if value is None:
        return []
    if isinstance(value, str | int | float | timedelta):
        return [value]
    return list(value)


def quoted(name: str) -> str:
    """``name`` quoted for a shell, always in single quotes as in the docs: ``'flow/name'``."""
    return f"'{name}'" if "'" not in name else shlex.quote(name)


def _checked_parameters(flow: Flow[..., Any], values: Mapping[str, Any]) -> dict[str, Any]:
    names = {p.name for p in flow.signature.parameters}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in flow.signature.parameters)
    for name, value in values.items():
        if name not in names and not takes_any:
            known = ", ".join(sorted(names)) or "none"
            raise DockyardError(
                f"flow {flow.name!r} has no parameter {name!r} (its parameters: {known})"
            )
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise DockyardError(
                f"parameter {name!r} of a deployment must be JSON (a string, number, bool, "
                f"list, dict or None); got {type(value).__name__}"
            ) from None
    return dict(values)


def register(client: Client, deployments: Iterable[Deployment]) -> list[schemas.Deployment]:
    """Create or update each deployment on the server; return them as the server has them.

    Raises:
        InvalidInput, NotFound: the server refused one (unknown pool, bad job variables,
            a bad name); the message is the server's.
        DockyardError: a deployment could not be described (see :meth:`Deployment.request`).
    """
    from dockyard import schemas
    from dockyard.client import Call

    def parse(response: Any) -> schemas.Deployment:
        return schemas.Deployment.model_validate(response.json())

    registered = []
    for deployment in deployments:
        body = deployment.request()
        try:
            registered.append(client.send(Call("POST", "/deployments", parse, body=body)))
            automations = deployment.trigger_automations(registered[-1].id)
            client.set_deployment_automations(registered[-1].id, automations)
        except ApiError as exc:
            # the server's message says it all; the client's internals would only hide it
            raise type(exc)(exc.status, str(exc), exc.body) from None
    return registered


def deploy(
    deployment: Deployment,
    *,
    image: str | DeploymentImage | None = None,
    build: bool = True,
    push: bool = True,
) -> uuid.UUID:
    """Register a deployment to a work pool, say how to run it, and return its id.

    With ``image``, first builds it (the current directory is the build context) and pushes
    it, unless told not to. When no worker polls the pool, prints the command that starts
    one.
    """
    from dockyard.client import Client

    pool_name = deployment.work_pool_name
    assert pool_name, "deploy() is for deployments to a work pool"
    with Client() as api:
        if image is not None:
            pool = api.read_work_pool(pool_name)
            deployment = _with_image(deployment, pool, image, build=build, push=push)
        [registered] = register(api, [deployment])
        pool = api.read_work_pool(pool_name)
    print(f"Deployment '{deployment.full_name}' is registered on work pool '{pool.name}'.")
    for line in _next_steps(registered, pool):
        print(line)
    return registered.id


def _with_image(
    deployment: Deployment,
    pool: schemas.WorkPool,
    image: str | DeploymentImage,
    *,
    build: bool,
    push: bool,
) -> Deployment:
    """The deployment running from ``image``: built from the current directory, with the
    entrypoint relative to it, and the image set as the runs' ``image`` job variable."""
    import dataclasses
    from pathlib import Path

    from dockyard.sdk.deploy.images import (
        DeploymentImage,
        build_image,
        entrypoint_in_image,
        push_image,
    )
    from dockyard.sdk.deploy.sources import FlowSource, locate

    variables = pool.base_job_template.get("variables", {}).get("properties", {})
    if "image" not in variables:
        raise DockyardError(
            f"work pool '{pool.name}' (type {pool.type}) has no 'image' job variable; deploy "
            "to a docker pool, or leave out image= to run the flow from where its code lies"
        )
    spec = image if isinstance(image, DeploymentImage) else DeploymentImage(image)
    if deployment.flow.task_runner is not None:  # `dockyard[dask]` for a DaskTaskRunner
        spec = spec.with_extras(*deployment.flow.task_runner.extras)
    context = Path.cwd()
    source = deployment.flow.source or locate(deployment.flow)
    file_part, _, function = source.entrypoint.rpartition(":")
    flow_file = Path(source.path or context) / file_part
    relative = entrypoint_in_image(flow_file, context)
    reference = build_image(spec, context, entrypoint_file=flow_file) if build else spec.reference
    if reference is None:
        raise DockyardError(f"build=False needs an image with a tag, e.g. '{spec.name}:1.0'")
    if push:
        push_image(reference)
    # path None: the engine finds the entrypoint from the image's working directory
    flow = deployment.flow.with_source(FlowSource(entrypoint=f"{relative}:{function}"))
    return dataclasses.replace(
        deployment,
        flow=flow,
        image=reference,
        job_variables={**deployment.job_variables, "image": reference},
    )


def _next_steps(deployment: schemas.Deployment, pool: schemas.WorkPool) -> list[str]:
    full_name = f"{deployment.flow_name}/{deployment.name}"
    lines = []
    if deployment.paused:
        lines.append("It is paused: its runs wait until it is resumed.")
    if pool.paused:
        lines += [
            f"Work pool '{pool.name}' is paused; resume it with:",
            f"    dockyard work-pool resume {shlex.quote(pool.name)}",
        ]
    elif str(pool.status) != "READY":
        lines += [
            f"No worker is polling work pool '{pool.name}' yet; start one with:",
            f"    dockyard worker start --pool {shlex.quote(pool.name)}",
        ]
    lines += ["Run it with:", f"    dockyard deployment run {quoted(full_name)}"]
    return lines
