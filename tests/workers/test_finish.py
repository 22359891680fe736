"""What a run did is never lost: final states handed over, output shipped, ends decided by CAS.

Real worker processes and real engines against a real server (SQLite and PostgreSQL); an
outage is a relay in front of the server that cuts every connection (``outage.Relay``).
"""

from __future__ import annotations

import textwrap
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from outage import Relay
from worker_support import (
    Workers,
    fake_command,
    make_deployment,
    make_pool,
    trigger,
    wait_for_state,
    wait_until,
)

from _support import RunningServer
from dockyard import schemas
from dockyard.client import AsyncClient
from dockyard.workers import _finish
from dockyard.workers._output import OutputFile
from dockyard.workers._runs import Launched

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


def messages(client: Any, run_id: uuid.UUID) -> list[str]:
    return [log.message for log in client.read_logs(flow_run_id=run_id, limit=1000)]


def history(client: Any, run_id: uuid.UUID) -> list[str]:
    return [str(state.type) for state in client.read_flow_run_states(run_id)]


# ---------------------------------------------------------------- a handed-over final state


def test_the_worker_reports_the_final_state_its_engine_handed_over(
    server: RunningServer, workers: Workers
) -> None:
    with server.client() as client:
        make_pool(client)
        deployment = make_deployment(
            client,
            crash_retries=1,
            job_variables={
                "command": fake_command("--hand-over", "COMPLETED", "--result", '{"n": 42}')
            },
        )
        worker = workers.start("--pool", "pool")
        run = trigger(client, deployment)
        done = wait_for_state(client, run.id, FINAL)
        assert (done.state, done.result, done.attempt) == ("COMPLETED", {"n": 42}, 1)
        assert history(client, run.id) == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]
        # the worker reports a handed-over state first, then adds the output to the logs
        output = worker.wait_for_output(f"flow run '{run.name}' ({run.id}) completed")
        logged = "\n".join(messages(client, run.id))
    assert "its engine could not report it; the worker did" in output
    # the hand-over line names the lease: neither echoed nor added to the run's logs
    assert "dockyard-final-state" not in output and "dockyard-final-state" not in logged
    assert "a line without its newline" in output and "a line without its newline" in logged


def test_a_handed_over_state_with_another_lease_token_is_not_trusted(
    server: RunningServer, workers: Workers
) -> None:
    forged = str(uuid.uuid4())
    with server.client() as client:
        make_pool(client)
        command = fake_command("--hand-over", "COMPLETED", "--result", "1", "--token", forged)
        deployment = make_deployment(client, job_variables={"command": command})
        workers.start("--pool", "pool")
        run = trigger(client, deployment)
        done = wait_for_state(client, run.id, FINAL)
    assert done.state == "CRASHED" and done.result is None
    assert done.state_message is not None
    assert "exited with code 3 without reporting a final state" in done.state_message


FLOWS = """
import os, sys, time
from pathlib import Path
from dockyard import flow, get_logger
from dockyard.sdk.runtime.context import FLOW_RUN

@flow
def patient(go: str) -> int:
    print("waiting for the go", flush=True)
    while not Path(go).exists():
        time.sleep(0.05)
    return 42

@flow
def abrupt() -> None:
    for i in range(50):
        print(f"early {i}")
    get_logger().info("logged early")
    FLOW_RUN.get().tracker.flush()  # these reached the server through the engine
    for i in range(300):
        print(f"late {i}")
    print("late stderr", file=sys.stderr)
    sys.stdout.flush()
    os._exit(7)  # nothing more is shipped, nothing is reported
"""


def flow_deployment(client: Any, path: Path, entrypoint: str, **fields: Any) -> Any:
    (path / "flows.py").write_text(textwrap.dedent(FLOWS))
    return make_deployment(
        client, entrypoint=f"flows.py:{entrypoint}", path=str(path), flow_name=entrypoint, **fields
    )


# The server's lease outlasts any slowness of the machine; the engine is told of a 3 s one,
# whose share runs out at once: it hands its end over as soon as the server is gone.
@pytest.mark.parametrize("server", [{"DOCKYARD_LEASE_SECONDS": "300"}], indirect=True)
def test_a_completed_run_survives_an_outage_at_its_end(
    server: RunningServer, workers: Workers, tmp_path: Path
) -> None:
    relay = Relay(int(server.url.rsplit(":", 1)[1]))
    go = tmp_path / "go"
    try:
        with server.client() as client:
            make_pool(client)
            deployment = flow_deployment(
                client,
                tmp_path,
                "patient",
                crash_retries=1,
                parameters={"go": str(go)},
                job_variables={"env": {"DOCKYARD_LEASE_SECONDS": "3"}},
            )
            worker = workers.start("--pool", "pool", env={"DOCKYARD_API_URL": relay.api_url})
            run = trigger(client, deployment)
            wait_for_state(client, run.id, {"RUNNING"})
            wait_until(
                lambda: "waiting for the go" in messages(client, run.id), 30, "the flow to log"
            )
            relay.down()
            go.touch()
            worker.wait_for_output("ended; could not report it yet")
            relay.up()
            done = wait_for_state(client, run.id, FINAL)
            assert (done.state, done.result, done.attempt) == ("COMPLETED", 42, 1)
            assert history(client, run.id) == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]
        output = worker.wait_for_output(f"flow run '{run.name}' ({run.id}) completed")
        assert "could not report it; the worker did" in output
        assert "dockyard-final-state" not in output
    finally:
        relay.close()


# ---------------------------------------------------------------- what the engine did not ship


def test_an_abrupt_exit_keeps_every_line_once(
    server: RunningServer, workers: Workers, tmp_path: Path
) -> None:
    with server.client() as client:
        make_pool(client)
        deployment = flow_deployment(client, tmp_path, "abrupt")
        workers.start("--pool", "pool")
        run = trigger(client, deployment)
        done = wait_for_state(client, run.id, FINAL)
        assert done.state == "CRASHED" and done.state_message is not None
        assert "exited with code 7 without reporting a final state" in done.state_message
        counts = Counter(messages(client, run.id))
    expected = [f"early {i}" for i in range(50)] + [f"late {i}" for i in range(300)]
    assert {line: counts[line] for line in expected} == dict.fromkeys(expected, 1)
    assert counts["logged early"] == 1  # its console line is known without its prefix
    assert counts["late stderr"] == 1
    headers = [m for m in counts if "the lines of its output that its logs did not hold" in m]
    assert len(headers) == 1


# ---------------------------------------------------------------- compare-and-set


class CancelledWhileDeciding:
    """A client whose first read of a run is followed at once by a cancel of that run:
    the worker decides from a state that is gone by the time it writes."""

    def __init__(self, client: AsyncClient, server: RunningServer) -> None:
        self._client = client
        self._server = server
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def read_flow_run(self, run_id: uuid.UUID) -> schemas.FlowRun:
        run: schemas.FlowRun = await self._client.read_flow_run(run_id)
        self.reads += 1
        if self.reads == 1:
            with self._server.client() as other:
                other.cancel_flow_run(run_id)
        return run


async def test_finish_decides_again_when_the_run_moved_on(
    server: RunningServer, tmp_path: Path
) -> None:
    with server.client() as client:
        make_pool(client)
        deployment = make_deployment(client)
        trigger(client, deployment)
    async with AsyncClient(api_url=server.api_url) as client:
        [claimed] = await client.claim(schemas.ClaimRequest(worker_name="w", work_pool_name="pool"))
        run, token = claimed.flow_run, claimed.lease_token
        running = schemas.StateTransition(state="RUNNING", lease_token=token)
        await client.set_flow_run_state(run.id, running)
        entry: Launched[None] = Launched(
            run, token, None, OutputFile(tmp_path / "out"), stream=False, exit_code=9
        )
        racing = CancelledWhileDeciding(client, server)
        said = await _finish.finish(racing, entry, "its process (pid 1)")  # type: ignore[arg-type]
        assert racing.reads == 2  # it read the run again after the server refused
        now = await client.read_flow_run(run.id)
        states = [str(s.type) for s in await client.read_flow_run_states(run.id)]
    assert now.state == "CANCELLED", said
    assert states == ["SCHEDULED", "PENDING", "RUNNING", "CANCELLING", "CANCELLED"]
    assert said == f"flow run '{run.name}' ({run.id}) cancelled"


@pytest.mark.parametrize("token", ["claim", "none"])
async def test_finish_presents_the_claims_lease_token(
    server: RunningServer, tmp_path: Path, token: str
) -> None:
    with server.client() as client:
        make_pool(client)
        trigger(client, make_deployment(client))
    async with AsyncClient(api_url=server.api_url) as client:
        [claimed] = await client.claim(schemas.ClaimRequest(worker_name="w", work_pool_name="pool"))
        run = claimed.flow_run
        lease = claimed.lease_token if token == "claim" else None
        entry: Launched[None] = Launched(
            run, lease, None, OutputFile(tmp_path / "out"), stream=False, exit_code=1
        )
        await _finish.finish(client, entry, "its process (pid 1)")
        now = await client.read_flow_run(run.id)
    # without the lease token the server refuses: the run is left to its lease
    assert now.state == ("CRASHED" if token == "claim" else "PENDING")
