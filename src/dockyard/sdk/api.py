"""The server calls the SDK makes while it runs flows, over :class:`dockyard.client.Client`.

Batches of task runs and logs are sent as plain JSON (built by the tracker's thread), through
the client's :class:`~dockyard.client.Call` so they get its retries and error mapping without
building a pydantic model per record.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

from dockyard.exceptions import Conflict, FlowRunAborted

if TYPE_CHECKING:
    import httpx

    from dockyard.client import Client

__all__ = ["ServerApi"]

_clients: dict[tuple[str, str | None], tuple[Client, Client]] = {}
_clients_lock = threading.Lock()


def _count(response: httpx.Response) -> int:
    return int(response.json()["count"])


def _clients_for(api_url: str, api_key: str | None) -> tuple[Client, Client]:
    """Return (probe, main) clients for a server, made once per process and kept alive.

    The probe client tries once: a flow started with no server running learns it at once
    and runs untracked. The main client retries transient failures. They share one pool.
    """
    key = (api_url, api_key)
    with _clients_lock:
        pair = _clients.get(key)
        if pair is None:
            import httpx

            from dockyard.client import Client, RetryPolicy

            transport = httpx.HTTPTransport(retries=0)
            probe = Client(
                api_url=api_url,
                api_key=api_key or "",
                retry=RetryPolicy(attempts=1),
                transport=transport,
            )
            main = Client(api_url=api_url, api_key=api_key or "", transport=transport)
            pair = _clients[key] = (probe, main)
    return pair


class ServerApi:
    """The calls of flow runs, task runs and logs, for one server.

    The client is made at first use, so that a run started by the engine pays for importing
    it off its start path.
    """

    def __init__(self, api_url: str, api_key: str | None) -> None:
        self.api_url = api_url
        self._api_key = api_key

    def _probe(self) -> Client:
        return _clients_for(self.api_url, self._api_key)[0]

    def _main(self) -> Client:
        return _clients_for(self.api_url, self._api_key)[1]

    def warm(self) -> None:
        """Import and build the client now (called from the tracker's thread)."""
        self._main()

    def create_flow_run(
        self,
        *,
        flow_name: str,
        parameters: dict[str, Any],
        parent_flow_run_id: uuid.UUID | None,
        tags: list[str],
    ) -> tuple[uuid.UUID, str, uuid.UUID | None]:
        """Create a RUNNING run; return its id, name and lease token.

        Raises:
            ServerUnreachable: no server answered (tried once, no retries).
        """
        from dockyard.schemas import FlowRunCreate

        body = FlowRunCreate(
            flow_name=flow_name,
            parameters=parameters,
            parent_flow_run_id=parent_flow_run_id,
            tags=tags,
            idempotency_key=str(uuid.uuid4()),
        )
        run = self._probe().create_flow_run(body)
        return run.id, run.name, run.lease_token

    def set_state(
        self,
        run_id: uuid.UUID,
        state: str,
        *,
        lease_token: uuid.UUID | None,
        message: str | None = None,
        result: Any = None,
    ) -> None:
        """Move a run to ``state`` (a retry of the call is answered the same).

        Raises:
            FlowRunAborted: the server refused (409): this process no longer holds the run.
        """
        from dockyard.schemas import StateTransition, StateType

        transition = StateTransition(
            state=StateType(state),
            message=message,
            idempotency_key=str(uuid.uuid4()),
            lease_token=lease_token,
            result=result,
        )
        try:
            self._main().set_flow_run_state(run_id, transition)
        except Conflict as exc:
            raise FlowRunAborted(
                f"the server refused to move flow run {run_id} to {state} "
                f"(it is {exc.current_state or 'in another state'}): {exc}"
            ) from exc

    def renew_lease(self, run_id: uuid.UUID, lease_token: uuid.UUID) -> str:
        """Renew a running flow run's lease; return the run's state.

        Raises:
            FlowRunAborted: the server refused (409): this process no longer holds the run.
        """
        from dockyard.schemas import LeaseRenewal

        try:
            run = self._main().renew_lease(run_id, LeaseRenewal(lease_token=lease_token))
        except Conflict as exc:
            raise FlowRunAborted(
                f"the server refused to renew the lease of flow run {run_id}: {exc}"
            ) from exc
        return str(run.state)

    def create_task_runs(self, records: list[dict[str, Any]]) -> None:
        """Send final task-run records (JSON objects of ``TaskRunRecord``), upserted by id."""
        from dockyard.client import Call

        self._main().send(Call("POST", "/task-runs", _count, body=records, idempotent=True))

    def create_logs(self, logs: list[dict[str, Any]]) -> None:
        """Send log lines (JSON objects of ``LogCreate``)."""
        from dockyard.client import Call

        self._main().send(Call("POST", "/logs", _count, body=logs, idempotent=False))
