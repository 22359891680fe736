"""What a :class:`~dockyard.sdk.flows.Flow` does with deployments: ``to_deployment``,
``deploy`` and ``serve`` (their machinery is in :mod:`dockyard.sdk.deploy.deployments` and
:mod:`dockyard.sdk.deploy.serve`, imported at first use).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uuid

    from dockyard.schedules import Schedule
    from dockyard.sdk.deploy.deployments import Deployment
    from dockyard.sdk.deploy.images import DeploymentImage
    from dockyard.sdk.flows import Flow

__all__ = ["DeploymentMethods"]


class DeploymentMethods:
    """The deployment methods of :class:`~dockyard.sdk.flows.Flow`."""

    def _flow(self) -> Flow[..., Any]:
        return self  # type: ignore[return-value] # only Flow inherits these methods

    def to_deployment(
        self,
        name: str,
        *,
        parameters: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        description: str | None = None,
        version: str | None = None,
        concurrency_limit: int | None = None,
        crash_retries: int = 0,
        paused: bool = False,
        cron: str | Iterable[str] | None = None,
        interval: float | timedelta | Iterable[float | timedelta] | None = None,
        rrule: str | Iterable[str] | None = None,
        timezone: str | None = None,
        anchor_date: datetime | None = None,
        schedule: Schedule | Mapping[str, Any] | None = None,
        schedules: Iterable[Schedule | Mapping[str, Any]] = (),
        catchup: str = "latest",
        max_lateness_seconds: float | None = None,
        triggers: Iterable[Any] = (),
    ) -> Deployment:
        """Describe a deployment of this flow for :func:`dockyard.serve` (no work pool).

        Nothing is registered until it is served. The arguments are those of :meth:`deploy`.
        """
        from dockyard.sdk.deploy.deployments import Deployment, schedule_specs

        return Deployment(
            self._flow(),
            name,
            parameters=dict(parameters or {}),
            tags=tuple(tags),
            description=description,
            version=version,
            concurrency_limit=concurrency_limit,
            crash_retries=crash_retries,
            paused=paused,
            schedules=schedule_specs(
                cron=cron,
                interval=interval,
                rrule=rrule,
                timezone=timezone,
                anchor_date=anchor_date,
                schedule=schedule,
                schedules=schedules,
            ),
            catchup=catchup,
            max_lateness_seconds=max_lateness_seconds,
            triggers=tuple(triggers),
        )

    def deploy(
        self,
        name: str,
        work_pool_name: str,
        *,
        work_queue_name: str | None = None,
        job_variables: Mapping[str, Any] | None = None,
        parameters: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        description: str | None = None,
        version: str | None = None,
        concurrency_limit: int | None = None,
        crash_retries: int = 0,
        paused: bool = False,
        cron: str | Iterable[str] | None = None,
        interval: float | timedelta | Iterable[float | timedelta] | None = None,
        rrule: str | Iterable[str] | None = None,
        timezone: str | None = None,
        anchor_date: datetime | None = None,
        schedule: Schedule | Mapping[str, Any] | None = None,
        schedules: Iterable[Schedule | Mapping[str, Any]] = (),
        catchup: str = "latest",
        max_lateness_seconds: float | None = None,
        triggers: Iterable[Any] = (),
        image: str | DeploymentImage | None = None,
        build: bool = True,
        push: bool = True,
    ) -> uuid.UUID:
        """Register (or update) a deployment of this flow on a work pool; return its id.

        The deployment runs the flow from where its code lies: the file it is defined in
        (its directory is recorded as the deployment's path), or its ``from_source``
        source. Prints how to run it, and the command that starts a worker when none
        polls the pool.

        Args:
            name: the deployment's name (unique per flow).
            work_pool_name: the pool whose workers run it.
            work_queue_name: the pool's queue (default: ``default``).
            job_variables: overrides of the pool's job template, e.g. ``{"env": {...}}``.
            parameters: default parameters of its runs.
            tags: labels shown with it.
            description: default: the flow's.
            version: default: the flow's.
            concurrency_limit: most runs of it at once.
            crash_retries: how many times a CRASHED run is scheduled again.
            paused: its runs wait until it is resumed.
            cron, interval, rrule: a schedule each (``interval`` in seconds or a
                timedelta), or one per item of a list of them.
            timezone: the IANA zone their times are read in; default: the zone of
                ``anchor_date`` when it has a named one, else UTC.
            anchor_date: where intervals and rrules start; without a zone it is a
                wall-clock time in ``timezone``, with one it is that instant.
            schedule, schedules: more schedules: ``Cron(...)``, ``Interval(...)``,
                ``RRule(...)`` of :mod:`dockyard.schedules`, or dicts such as
                ``{"cron": ..., "timezone": ...}``. The deployment's schedules become
                exactly those given (none: none).
            catchup: missed scheduled runs: ``latest`` (default), ``all`` or ``skip``.
            max_lateness_seconds: a run later than this is cancelled instead of started.
            triggers: events that run it: ``DeploymentEventTrigger(expect=...,
                match_related=..., parameters=...)`` of :mod:`dockyard.events`; each
                becomes an automation of the deployment (deploying again replaces them).
            image: run the flow in this image (``"name:tag"`` or a ``DeploymentImage``),
                built from the current directory; the pool must have an ``image`` variable.
            build: build the image (else it must exist, with a tag).
            push: push the image to its registry after the build.

        Raises:
            InvalidInput: the server refused it (unknown pool or queue, bad job variables).
            DockyardError: the flow cannot be located, or a parameter is unknown or not JSON.
        """
        import dataclasses

        from dockyard.sdk.deploy.deployments import deploy

        served = self.to_deployment(
            name,
            parameters=parameters,
            tags=tags,
            description=description,
            version=version,
            concurrency_limit=concurrency_limit,
            crash_retries=crash_retries,
            paused=paused,
            cron=cron,
            interval=interval,
            rrule=rrule,
            timezone=timezone,
            anchor_date=anchor_date,
            schedule=schedule,
            schedules=schedules,
            catchup=catchup,
            max_lateness_seconds=max_lateness_seconds,
            triggers=tuple(triggers),
        )
        deployment = dataclasses.replace(
            served,
            work_pool_name=work_pool_name,
            work_queue_name=work_queue_name,
            job_variables=dict(job_variables or {}),
        )
        return deploy(deployment, image=image, build=build, push=push)

    def serve(
        self,
        name: str,
        *,
        parameters: Mapping[str, Any] | None = None,
        limit: int | None = None,
        tags: Iterable[str] = (),
        description: str | None = None,
        version: str | None = None,
        concurrency_limit: int | None = None,
        crash_retries: int = 0,
        paused: bool = False,
        cron: str | Iterable[str] | None = None,
        interval: float | timedelta | Iterable[float | timedelta] | None = None,
        rrule: str | Iterable[str] | None = None,
        timezone: str | None = None,
        anchor_date: datetime | None = None,
        schedule: Schedule | Mapping[str, Any] | None = None,
        schedules: Iterable[Schedule | Mapping[str, Any]] = (),
        catchup: str = "latest",
        max_lateness_seconds: float | None = None,
        triggers: Iterable[Any] = (),
    ) -> None:
        """Serve a deployment of this flow from this process until Ctrl-C.

        Registers it (no work pool), then claims its runs and runs each in a subprocess;
        see :func:`dockyard.serve`. ``limit`` caps the runs at once; the other arguments
        are those of :meth:`deploy`.
        """
        from dockyard.sdk.deploy.serve import serve

        deployment = self.to_deployment(
            name,
            parameters=parameters,
            tags=tags,
            description=description,
            version=version,
            concurrency_limit=concurrency_limit,
            crash_retries=crash_retries,
            paused=paused,
            cron=cron,
            interval=interval,
            rrule=rrule,
            timezone=timezone,
            anchor_date=anchor_date,
            schedule=schedule,
            schedules=schedules,
            catchup=catchup,
            max_lateness_seconds=max_lateness_seconds,
            triggers=tuple(triggers),
        )
        serve(deployment, limit=limit)
