"""The asynchronous client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Generic, ParamSpec, TypeVar, overload

import httpx

from dockyard import schemas
from dockyard.client import _api_key_calls as akc
from dockyard.client import _artifact_calls as ac
from dockyard.client import _calls as c
from dockyard.client import _concurrency_calls as gc
from dockyard.client import _core
from dockyard.client import _dispatch_calls as dc
from dockyard.client import _event_calls as ec
from dockyard.client import _pool_calls as pc
from dockyard.client import _schedule_calls as sc
from dockyard.client import _secret_calls as xc
from dockyard.client import _variable_calls as vc
from dockyard.client._config import resolve, version_mismatch

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger("dockyard.client")


class _Endpoint(Generic[P, T]):
    """Makes a call builder a coroutine method of :class:`AsyncClient` with its signature."""

    def __init__(self, build: Callable[P, _core.Call[T]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, client: None, owner: type[AsyncClient]) -> _Endpoint[P, T]: ...

    @overload
    def __get__(
        self, client: AsyncClient, owner: type[AsyncClient]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(
        self, client: AsyncClient | None, owner: type[AsyncClient]
    ) -> _Endpoint[P, T] | Callable[P, Coroutine[Any, Any, T]]:
        if client is None:
            return self
        build = self._build

        async def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return await client.send(build(*args, **kwargs))

        method.__name__ = build.__name__
        method.__doc__ = build.__doc__
        return method


class AsyncClient:
    """An asynchronous client of the Dockyard API over one keep-alive connection pool.

    Args:
        api_url: the API's base URL, e.g. ``http://127.0.0.1:4200/api``
            (default: the ``api_url`` setting).
        api_key: sent as ``Authorization: Bearer <key>`` (default: the ``api_key`` setting).
        timeout: seconds to wait for the server on each request.
        retry: how transient failures are retried.
        transport: an httpx transport to send requests through (tests use
            ``httpx.MockTransport``).

    Use it as an async context manager, or await :meth:`aclose` when done. Every method raises
    :class:`~dockyard.exceptions.ServerUnreachable` when no server answers and an
    :class:`~dockyard.exceptions.ApiError` subclass when the server refuses the request.
    """

    def __init__(
        self,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        retry: _core.RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url, key = resolve(api_url, api_key)
        self._retry = retry or _core.RetryPolicy()
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            headers=_core.headers(key),
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def send(self, call: _core.Call[T]) -> T:
        """Send ``call``, retrying transient failures, and return its parsed answer."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(
                    call.method, call.path, **_core.request_kwargs(call)
                )
            except httpx.RequestError as exc:
                delay = self._retry.delay(call, attempt, error=exc)
                if delay is None:
                    raise _core.transport_error(self.api_url, call, exc) from exc
                log.debug("%s %s failed (%s); retrying", call.method, call.path, exc)
            else:
                retry_after = response.headers.get("retry-after")
                delay = self._retry.delay(
                    call, attempt, status=response.status_code, retry_after=retry_after
                )
                if delay is None:
                    return _core.decode(call, response)
                log.debug("%s %s answered %s; retrying", call.method, call.path, response)
            await asyncio.sleep(delay)

    async def check_compatible(self) -> schemas.ServerVersion:
        """Return the server's version if it speaks this client's API version.

        Raises:
            IncompatibleServer: it speaks another one.
        """
        server = await self.version()
        error = version_mismatch(self.api_url, server)
        if error is not None:
            raise error
        return server

    health = _Endpoint(c.health)
    version = _Endpoint(c.version)

    create_flow = _Endpoint(c.create_flow)
    read_flow = _Endpoint(c.read_flow)
    read_flow_by_name = _Endpoint(c.read_flow_by_name)
    list_flows = _Endpoint(c.list_flows)
    delete_flow = _Endpoint(c.delete_flow)

    upsert_deployment = _Endpoint(c.upsert_deployment)
    read_deployment = _Endpoint(c.read_deployment)
    read_deployment_by_name = _Endpoint(c.read_deployment_by_name)
    list_deployments = _Endpoint(c.list_deployments)
    update_deployment = _Endpoint(c.update_deployment)
    delete_deployment = _Endpoint(c.delete_deployment)
    create_deployment_run = _Endpoint(c.create_deployment_run)

    create_flow_run = _Endpoint(c.create_flow_run)
    read_flow_run = _Endpoint(c.read_flow_run)
    list_flow_runs = _Endpoint(c.list_flow_runs)
    update_flow_run = _Endpoint(c.update_flow_run)
    delete_flow_run = _Endpoint(c.delete_flow_run)
    set_flow_run_state = _Endpoint(c.set_flow_run_state)
    read_flow_run_states = _Endpoint(c.read_flow_run_states)
    cancel_flow_run = _Endpoint(c.cancel_flow_run)
    resume_flow_run = _Endpoint(c.resume_flow_run)

    create_task_runs = _Endpoint(c.create_task_runs)
    list_task_runs = _Endpoint(c.list_task_runs)
    read_task_run = _Endpoint(c.read_task_run)

    create_logs = _Endpoint(c.create_logs)
    read_logs = _Endpoint(c.read_logs)

    list_worker_types = _Endpoint(pc.list_worker_types)
    read_worker_type = _Endpoint(pc.read_worker_type)

    create_work_pool = _Endpoint(pc.create_work_pool)
    read_work_pool = _Endpoint(pc.read_work_pool)
    list_work_pools = _Endpoint(pc.list_work_pools)
    update_work_pool = _Endpoint(pc.update_work_pool)
    delete_work_pool = _Endpoint(pc.delete_work_pool)
    pause_work_pool = _Endpoint(pc.pause_work_pool)
    resume_work_pool = _Endpoint(pc.resume_work_pool)

    create_work_queue = _Endpoint(pc.create_work_queue)
    read_work_queue = _Endpoint(pc.read_work_queue)
    list_work_queues = _Endpoint(pc.list_work_queues)
    update_work_queue = _Endpoint(pc.update_work_queue)
    delete_work_queue = _Endpoint(pc.delete_work_queue)
    pause_work_queue = _Endpoint(pc.pause_work_queue)
    resume_work_queue = _Endpoint(pc.resume_work_queue)

    list_workers = _Endpoint(pc.list_workers)
    delete_worker = _Endpoint(pc.delete_worker)

    heartbeat = _Endpoint(dc.heartbeat)
    claim = _Endpoint(dc.claim)
    list_schedules = _Endpoint(sc.list_schedules)
    create_schedule = _Endpoint(sc.create_schedule)
    update_schedule = _Endpoint(sc.update_schedule)
    delete_schedule = _Endpoint(sc.delete_schedule)
    renew_lease = _Endpoint(dc.renew_lease)
    preview_job_configuration = _Endpoint(dc.preview_job_configuration)

    create_variable = _Endpoint(vc.create_variable)
    read_variable_by_name = _Endpoint(vc.read_variable_by_name)
    list_variables = _Endpoint(vc.list_variables)
    set_variable = _Endpoint(vc.set_variable)
    update_variable = _Endpoint(vc.update_variable)
    delete_variable = _Endpoint(vc.delete_variable)
    create_api_key = _Endpoint(akc.create_api_key)
    list_api_keys = _Endpoint(akc.list_api_keys)
    revoke_api_key = _Endpoint(akc.revoke_api_key)

    create_secret = _Endpoint(xc.create_secret)
    read_secret_by_name = _Endpoint(xc.read_secret_by_name)
    read_secret_value = _Endpoint(xc.read_secret_value)
    list_secrets = _Endpoint(xc.list_secrets)
    set_secret = _Endpoint(xc.set_secret)
    delete_secret = _Endpoint(xc.delete_secret)

    # artifacts
    create_artifact = _Endpoint(ac.create_artifact)
    read_artifact = _Endpoint(ac.read_artifact)
    read_latest_artifact = _Endpoint(ac.read_latest_artifact)
    list_artifacts = _Endpoint(ac.list_artifacts)
    list_latest_artifacts = _Endpoint(ac.list_latest_artifacts)
    update_artifact = _Endpoint(ac.update_artifact)
    delete_artifact = _Endpoint(ac.delete_artifact)
    delete_artifact_key = _Endpoint(ac.delete_artifact_key)

    # global concurrency limits
    create_concurrency_limit = _Endpoint(gc.create_concurrency_limit)
    read_concurrency_limit_by_name = _Endpoint(gc.read_concurrency_limit_by_name)
    list_concurrency_limits = _Endpoint(gc.list_concurrency_limits)
    update_concurrency_limit = _Endpoint(gc.update_concurrency_limit)
    delete_concurrency_limit = _Endpoint(gc.delete_concurrency_limit)

    # events and automations
    emit_event = _Endpoint(ec.emit_event)
    read_events = _Endpoint(ec.read_events)
    create_automation = _Endpoint(ec.create_automation)
    read_automation = _Endpoint(ec.read_automation)
    list_automations = _Endpoint(ec.list_automations)
    replace_automation = _Endpoint(ec.replace_automation)
    set_automation_enabled = _Endpoint(ec.set_automation_enabled)
    delete_automation = _Endpoint(ec.delete_automation)
    set_deployment_automations = _Endpoint(ec.set_deployment_automations)

    def __repr__(self) -> str:
        return f"AsyncClient(api_url={self.api_url!r})"
