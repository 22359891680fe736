"""Fixtures of the SDK tests.

Unit tests run flows with no server (``DOCKYARD_API_URL`` points at a closed port), or with
:class:`RecordingApi`, a stub of the server calls that records what the SDK sends. Tests that
take ``tracked`` run against a real server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sdk_stub import Recorded

from _support import RunningServer, free_port
from dockyard.exceptions import FlowRunAborted
from dockyard.sdk import api


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the SDK at a port nothing listens on: flows run untracked."""
    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("DOCKYARD_API_URL", url)
    return url


@pytest.fixture
def tracked(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> RunningServer:
    """A real server that flows called in this test report to."""
    monkeypatch.setenv("DOCKYARD_API_URL", server.api_url)
    return server


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorded]:
    """Replace the server calls of the SDK with a stub that records them."""
    recorded = Recorded()

    class RecordingApi(api.ServerApi):
        def create_flow_run(self, **fields: Any) -> tuple[uuid.UUID, str, uuid.UUID | None]:
            run_id = uuid.uuid4()
            recorded.add("create", {"id": run_id, **fields})
            return run_id, f"run-{len(recorded.runs)}", uuid.uuid4()

        def set_state(self, run_id: uuid.UUID, state: str, **fields: Any) -> dict[str, Any]:
            if state in recorded.refuse:
                raise FlowRunAborted(f"refused {state}")
            recorded.add("state", {"run_id": run_id, "state": state, **fields})
            return {"id": str(run_id), "state": state}

        def renew_lease(self, run_id: uuid.UUID, lease_token: uuid.UUID) -> str:
            if "renew" in recorded.refuse:
                raise FlowRunAborted("refused renewal")
            recorded.add("renew", {"run_id": run_id, "lease_token": lease_token})
            return recorded.renew_answer

        def create_task_runs(self, records: list[dict[str, Any]]) -> None:
            recorded.add("task_runs", records)

        def create_logs(self, logs: list[dict[str, Any]]) -> None:
            recorded.add("logs", logs)

    monkeypatch.setattr(api, "ServerApi", RecordingApi)
    yield recorded
