"""The server calls flow runs make, over :class:`~dockyard.sdk.transport.LeanTransport`.

Flows called directly and flow runs started by the engine use the same calls. Bodies and
answers are plain JSON: no HTTP client library and no pydantic model is imported to run a
flow, which keeps the engine's process cheap to start.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

from dockyard._names import path_segment
from dockyard._version import __version__
from dockyard.exceptions import Conflict, FlowRunAborted, IncompatibleServer, NotFound
from dockyard.sdk.transport import LeanTransport

__all__ = ["API_VERSION", "ServerApi", "close_connections", "version_problem"]

# The API version this SDK speaks: ``dockyard.schemas.API_VERSION``, repeated here so that
# running a flow never imports pydantic (a unit test keeps the two in step).
API_VERSION = "1"

_transports: dict[tuple[str, str | None], LeanTransport] = {}
_transports_lock = threading.Lock()


def _after_fork() -> None:
    # A forked child must not share its parent's connections (nor a lock held at the fork).
    global _transports_lock
    _transports.clear()
    _transports_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


def _transport(api_url: str, api_key: str | None) -> LeanTransport:
    """Return the process's transport for a server: its connections are shared."""
    key = (api_url, api_key)
    with _transports_lock:
        transport = _transports.get(key)
        if transport is None:
            transport = _transports[key] = LeanTransport(api_url, api_key)
    return transport


def close_connections() -> None:
    """Close the idle connections to every server (later calls open new ones)."""
    with _transports_lock:
        transports = list(_transports.values())
    for transport in transports:
        transport.close()


def version_problem(api_url: str, answer: dict[str, Any]) -> IncompatibleServer | None:
    """Return the error to raise when ``answer`` (``GET /version``) is another API version."""
    theirs = str(answer.get("api_version"))
    if theirs == API_VERSION:
        return None
    return IncompatibleServer(
        f"the server at {api_url} speaks API version {theirs} "
        f"(dockyard {answer.get('server_version', '?')}), but this process speaks API version "
        f"{API_VERSION} (dockyard {__version__}); install the same Dockyard version on both "
        "sides"
    )


class ServerApi:
    """The calls of flow runs, task runs and logs, for one server."""

    def __init__(self, api_url: str, api_key: str | None) -> None:
        self.api_url = api_url
        self.transport = _transport(api_url, api_key)

    def check_version(self) -> dict[str, Any]:
        """Refuse a server that speaks another API version; return its answer.

        Raises:
            IncompatibleServer: it does; the message says both versions.
            ServerUnreachable: no server answered.
        """
        answer: dict[str, Any] = self.transport.get("/version")
        problem = version_problem(self.api_url, answer)
        if problem is not None:
            raise problem
        return answer

    def create_flow_run(
        self,
        *,
        flow_name: str,
        parameters: dict[str, Any],
        parent_flow_run_id: uuid.UUID | None,
        tags: list[str],
        name: str | None = None,
    ) -> tuple[uuid.UUID, str, uuid.UUID | None]:
        """Create a RUNNING run (named ``name``, else by the server); return its id, name and
        lease token.

        Raises:
            ServerUnreachable: no server answered (tried once, no retries).
        """
        body = {
            "flow_name": flow_name,
            "parameters": parameters,
            "parent_flow_run_id": str(parent_flow_run_id) if parent_flow_run_id else None,
            "tags": tags,
            "idempotency_key": str(uuid.uuid4()),
        }
        if name is not None:
            body["name"] = name
        run = self.transport.request("POST", "/flow-runs", body, attempts=1)
        token = run.get("lease_token")
        return uuid.UUID(run["id"]), str(run["name"]), uuid.UUID(token) if token else None

    def read_flow_run(self, run_id: uuid.UUID) -> dict[str, Any]:
        """Read a flow run (JSON of ``FlowRun``)."""
        run: dict[str, Any] = self.transport.get(f"/flow-runs/{run_id}")
        return run

    def rename_flow_run(self, run_id: uuid.UUID, name: str, lease_token: uuid.UUID) -> None:
        """Give a run this process holds the lease of the name its flow gives it."""
        body = {"name": name, "lease_token": str(lease_token)}
        self.transport.request("PATCH", f"/flow-runs/{run_id}", body)

    def read_run_deployment(
        self, run_id: uuid.UUID, lease_token: uuid.UUID | None
    ) -> dict[str, Any]:
        """Read the deployment of a run this process holds the lease of (JSON of
        ``Deployment``), in clear: its pull steps' credentials are not masked."""
        body = {"lease_token": str(lease_token) if lease_token else None}
        deployment: dict[str, Any] = self.transport.post(f"/flow-runs/{run_id}/deployment", body)
        return deployment

    def set_state(
        self,
        run_id: uuid.UUID,
        state: str,
        *,
        lease_token: uuid.UUID | None,
        message: str | None = None,
        result: Any = None,
        idempotency_key: str | None = None,
        attempts: int | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Move a run to ``state`` and return the run (a retry of the call is answered the same).

        Args:
            lease_token: the lease this process holds the run by (every transition of a
                leased run needs it).
            idempotency_key: the same key for every try of one transition, so that a try
                whose answer was lost is answered, not refused (default: a new key).
            attempts, timeout: override the transport's for this call.

        Raises:
            FlowRunAborted: the server refused (409): this process no longer holds the run.
            ServerUnreachable, ApiError: the server could not be reached, or failed.
        """
        body = {
            "state": state,
            "message": message,
            "idempotency_key": idempotency_key or str(uuid.uuid4()),
            "lease_token": str(lease_token) if lease_token else None,
            "result": result,
        }
        try:
            run: dict[str, Any] = self.transport.request(
                "POST", f"/flow-runs/{run_id}/state", body, attempts=attempts, timeout=timeout
            )
        except Conflict as exc:
            raise FlowRunAborted(
                f"the server refused to move flow run {run_id} to {state} "
                f"(it is {exc.current_state or 'in another state'}): {exc}"
            ) from exc
        return run

    def renew_lease(self, run_id: uuid.UUID, lease_token: uuid.UUID) -> str:
        """Renew a running flow run's lease; return the run's state.

        Raises:
            FlowRunAborted: the server refused (409): this process no longer holds the run.
        """
        body = {"lease_token": str(lease_token)}
        try:
            run = self.transport.post(f"/flow-runs/{run_id}/lease", body)
        except Conflict as exc:
            raise FlowRunAborted(
                f"the server refused to renew the lease of flow run {run_id}: {exc}"
            ) from exc
        return str(run["state"])

    def create_task_runs(self, records: list[dict[str, Any]]) -> None:
        """Send final task-run records (JSON objects of ``TaskRunRecord``), upserted by id."""
        self.transport.post("/task-runs", records)

    def create_logs(self, logs: list[dict[str, Any]]) -> None:
        """Send log lines (JSON objects of ``LogCreate``)."""
        self.transport.post("/logs", logs, idempotent=False)

    # ------------------------------------------------------------ variables

    def read_variable(self, name: str) -> dict[str, Any] | None:
        """Read a variable (JSON of ``Variable``), or None when none has that name."""
        try:
            variable: dict[str, Any] = self.transport.get(self._variable_path(name))
        except NotFound:
            return None
        return variable

    def create_variable(self, name: str, value: Any, tags: list[str]) -> dict[str, Any]:
        """Create a variable; return it (JSON of ``Variable``).

        Raises:
            Conflict: a variable with that name exists.
        """
        body = {"name": name, "value": value, "tags": tags}
        # not retried once sent: a retry of a creation that succeeded would answer 409
        variable: dict[str, Any] = self.transport.post("/variables", body, idempotent=False)
        return variable

    def set_variable(self, name: str, value: Any, tags: list[str]) -> dict[str, Any]:
        """Create a variable or replace its value and tags; return it."""
        body = {"value": value, "tags": tags}
        variable: dict[str, Any] = self.transport.request("PUT", self._variable_path(name), body)
        return variable

    def delete_variable(self, name: str) -> bool:
        """Delete a variable; return whether there was one."""
        try:
            self.transport.request("DELETE", self._variable_path(name))
        except NotFound:
            return False
        return True

    @staticmethod
    def _variable_path(name: str) -> str:
        return f"/variables/name/{path_segment(name)}"

    # ------------------------------------------------------------ secrets

    def read_secret_value(self, name: str) -> Any:
        """Return the value of the secret ``name`` in clear.

        Raises:
            NotFound: no secret has that name.
        """
        secret: dict[str, Any] = self.transport.get(f"{self._secret_path(name)}/value")
        return secret["value"]

    def create_secret(self, name: str, value: Any) -> None:
        """Create a secret.

        Raises:
            Conflict: a secret with that name exists.
        """
        body = {"name": name, "value": value}
        # not retried once sent: a retry of a creation that succeeded would answer 409
        self.transport.post("/secrets", body, idempotent=False)

    def set_secret(self, name: str, value: Any) -> None:
        """Create a secret or replace its value."""
        self.transport.request("PUT", self._secret_path(name), {"value": value})

    @staticmethod
    def _secret_path(name: str) -> str:
        return f"/secrets/name/{path_segment(name)}"

    # ------------------------------------------------------------ artifacts

    def create_artifact(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create an artifact (``body``: JSON of ``ArtifactCreate``); return it (JSON of
        ``Artifact``).

        Raises:
            InvalidInput: the server refused a value (the message names it and the rule).
        """
        # not retried once sent: a retry of a creation that succeeded would add a version
        artifact: dict[str, Any] = self.transport.post("/artifacts", body, idempotent=False)
        return artifact

    def update_artifact(self, artifact_id: uuid.UUID, body: dict[str, Any]) -> dict[str, Any]:
        """Change a progress artifact (``body``: JSON of ``ArtifactUpdate``); return it.

        Raises:
            NotFound: no artifact has that id.
            Conflict: the artifact is not a progress artifact.
        """
        path = f"/artifacts/{path_segment(artifact_id)}"
        artifact: dict[str, Any] = self.transport.request("PATCH", path, body)
        return artifact

    def read_latest_artifact(self, key: str) -> dict[str, Any] | None:
        """Read the latest version of ``key`` (JSON of ``Artifact``), or None for none."""
        try:
            artifact: dict[str, Any] = self.transport.get(f"/artifacts/latest/{path_segment(key)}")
        except NotFound:
            return None
        return artifact

    # ------------------------------------------------------------ global concurrency limits

    def acquire_concurrency_slots(
        self,
        names: list[str],
        occupy: int,
        *,
        mode: str,
        lease_seconds: float,
        wait: float,
        strict: bool,
        holder: str | None,
    ) -> dict[str, Any]:
        """Take ``occupy`` slots of every named limit, waiting on the server up to ``wait``
        seconds; return the answer (JSON of ``ConcurrencyAcquired``: ``acquired``,
        ``lease_id``, ``missing``, ``full``, ...).

        Raises:
            NotFound: ``strict`` and a name has no limit.
            InvalidInput: no wait could give the slots (more than a limit has; a rate limit
                of a limit without slot decay).
        """
        body = {
            "names": names,
            "occupy": occupy,
            "mode": mode,
            "lease_seconds": lease_seconds,
            "wait": wait,
            "strict": strict,
            "holder": holder,
        }
        # Not retried once sent: slots taken by a call whose answer was lost are held by no
        # one, and come back when their lease expires; a retry would take more.
        answer: dict[str, Any] = self.transport.request(
            "POST", "/concurrency-limits/acquire", body, idempotent=False, timeout=wait + 30.0
        )
        return answer

    def renew_concurrency_lease(self, lease_id: str, lease_seconds: float) -> bool:
        """Extend a lease; return False when it is gone (expired, released, or its limit
        was deleted or reset): its slots are no longer held."""
        path = f"/concurrency-limits/leases/{path_segment(lease_id)}/renew"
        try:
            self.transport.post(path, {"lease_seconds": lease_seconds})
        except NotFound:
            return False
        return True

    def release_concurrency_lease(self, lease_id: str) -> None:
        """Give a lease's slots back (harmless when already released or expired)."""
        self.transport.post(f"/concurrency-limits/leases/{path_segment(lease_id)}/release")

    # ------------------------------------------------------------ pause and resume

    def pause_flow_run(
        self,
        run_id: uuid.UUID,
        *,
        key: str,
        timeout: int,
        lease_token: uuid.UUID | None,
        input_schema: dict[str, Any] | None = None,
        suspend: bool = False,
    ) -> dict[str, Any]:
        """Pause (or suspend) a RUNNING run; return its pause (JSON of ``FlowRunPause``).

        A key resumed before is answered ``resumed``, with its input, and changes nothing.

        Raises:
            Conflict: the run cannot pause (not RUNNING, another lease, no deployment to
                start a suspended run again).
        """
        body = {
            "key": key,
            "timeout": timeout,
            "lease_token": str(lease_token) if lease_token else None,
            "input_schema": input_schema,
            "suspend": suspend,
        }
        pause: dict[str, Any] = self.transport.post(f"/flow-runs/{run_id}/pause", body)
        return pause

    def wait_for_resume(self, run_id: uuid.UUID, key: str, wait: float) -> dict[str, Any]:
        """Return the run's pause once it is no longer PAUSED under ``key``, or after
        ``wait`` seconds (a long-poll; JSON of ``FlowRunPause``)."""
        params = {"key": key, "wait": round(max(0.0, wait), 3)}
        pause: dict[str, Any] = self.transport.request(
            "GET", f"/flow-runs/{run_id}/pause", params=params, timeout=wait + 30.0
        )
        return pause

    def resume_flow_run(self, run_id: uuid.UUID, run_input: dict[str, Any] | None) -> None:
        """Resume a PAUSED run with ``run_input``.

        Raises:
            Conflict: the run is not PAUSED. InvalidInput: the input does not fit.
        """
        self.transport.post(f"/flow-runs/{run_id}/resume", {"run_input": run_input})

    # ------------------------------------------------------------ events

    def emit_event(
        self,
        event: str,
        resource: dict[str, str],
        payload: dict[str, Any] | None,
        related: list[dict[str, str]] | None,
    ) -> dict[str, Any]:
        """Emit an event; return it as stored (JSON of ``Event``). Its new id makes a retry
        of the call harmless: the server answers the event it stored."""
        body = {
            "id": str(uuid.uuid4()),
            "event": event,
            "resource": resource,
            "payload": payload or {},
            "related": related or [],
        }
        stored: dict[str, Any] = self.transport.post("/events", body)
        return stored
