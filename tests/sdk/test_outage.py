"""A server that does not answer at a run's end: the engine waits, then hands over; logs wait.

The engine reaches the server through a test proxy (``http_proxy.HttpProxy``) that drops
every request while ``dropping`` is set, as a proxy whose upstream went away.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_proxy import HttpProxy

from _support import RunningServer, wait_until
from dockyard import flow
from dockyard.schemas import DeploymentCreate, DeploymentRunCreate
from dockyard.sdk import api
from dockyard.sdk.engine import EXIT_UNREPORTED
from dockyard.sdk.runtime import shipping, tracking
from dockyard.sdk.runtime.context import FLOW_RUN
from dockyard.workers._output import OutputFile

FLOWS = """
import time
from pathlib import Path
from dockyard import flow

@flow(log_prints=True)
def patient(go: str) -> dict:
    print("waiting for the go")
    while not Path(go).exists():
        time.sleep(0.05)
    print("going")
    return {"answer": 42}
"""


@pytest.fixture
def proxy() -> Iterator[HttpProxy]:
    made = HttpProxy()
    yield made
    made.close()


def start_engine(
    server: RunningServer, path: Path, proxy: HttpProxy, **env: str
) -> tuple[uuid.UUID, subprocess.Popen[str]]:
    """Deploy ``patient`` and start the engine on a run of it, through ``proxy``."""
    (path / "flows.py").write_text(textwrap.dedent(FLOWS))
    with server.client() as client:
        deployment = client.upsert_deployment(
            DeploymentCreate(
                flow_name="patient", name="d", entrypoint="flows.py:patient", path=str(path)
            )
        )
        run = client.create_deployment_run(
            deployment.id, DeploymentRunCreate(parameters={"go": str(path / "go")})
        )
    environ = {**server.env, "http_proxy": proxy.url, "no_proxy": "", "NO_PROXY": "", **env}
    engine = subprocess.Popen(
        [sys.executable, "-m", "dockyard.engine", str(run.id)],
        env=environ,
        cwd=path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: "waiting for the go" in messages(server, run.id), 30, "the flow to start")
    return run.id, engine


def messages(server: RunningServer, run_id: uuid.UUID) -> list[str]:
    with server.client() as client:
        return [log.message for log in client.read_logs(flow_run_id=run_id)]


def test_the_engine_waits_for_the_server_to_take_its_final_state(
    server: RunningServer, tmp_path: Path, proxy: HttpProxy
) -> None:
    run_id, engine = start_engine(server, tmp_path, proxy, DOCKYARD_LEASE_SECONDS="120")
    proxy.dropping = True
    (tmp_path / "go").touch()
    # the run's end is tried again and again while nothing gets through
    wait_until(lambda: len(proxy.requests_to("/logs", dropped=True)) >= 4, 60, "4 tries")
    proxy.dropping = False
    _, stderr = engine.communicate(timeout=60)
    assert engine.returncode == 0, stderr
    with server.client() as client:
        run = client.read_flow_run(run_id)
        states = [str(s.type) for s in client.read_flow_run_states(run_id)]
    assert (run.state, run.result) == ("COMPLETED", {"answer": 42})
    assert states == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]
    counts = Counter(messages(server, run_id))
    assert counts["going"] == 1  # sent once the server answered again, not dropped
    assert counts["finished in state COMPLETED"] == 1


def test_the_engine_hands_over_a_final_state_the_server_never_takes(
    server: RunningServer, tmp_path: Path, proxy: HttpProxy
) -> None:
    # two thirds of a 1 s lease: long gone by the flow's end, so one try and the hand-over
    run_id, engine = start_engine(server, tmp_path, proxy, DOCKYARD_LEASE_SECONDS="1")
    proxy.dropping = True
    (tmp_path / "go").touch()
    stdout, stderr = engine.communicate(timeout=60)
    assert engine.returncode == EXIT_UNREPORTED, stderr
    assert "hands it to the worker" in stderr
    # the worker's reader finds it in the run's output, as the engine wrote it
    output = tmp_path / "output"
    output.write_text(stdout + stderr)
    record = OutputFile(output).handed_over()
    assert record is not None
    assert record["flow_run_id"] == str(run_id)
    assert (record["state"], record["result"]) == ("COMPLETED", {"answer": 42})
    assert uuid.UUID(record["lease_token"])
    with server.client() as client:
        assert client.read_flow_run(run_id).state == "RUNNING"  # nobody told the server


@pytest.fixture
def through_proxy(
    proxy: HttpProxy, server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HttpProxy]:
    """Flows called in this process report to ``server`` through ``proxy``."""
    monkeypatch.setenv("DOCKYARD_API_URL", server.api_url)
    monkeypatch.setenv("http_proxy", proxy.url)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "")
    monkeypatch.setattr(api, "_transports", {})  # a transport reads the proxies when made
    yield proxy
    api.close_connections()


def _logs_dropped(proxy: HttpProxy, count: int) -> None:
    wait_until(
        lambda: len(proxy.requests_to("/logs", dropped=True)) >= count,
        60,
        f"{count} tries to send logs",
    )


def test_log_lines_wait_for_the_server_instead_of_being_dropped(
    server: RunningServer, through_proxy: HttpProxy
) -> None:
    proxy = through_proxy
    ids: list[uuid.UUID] = []

    @flow(log_prints=True)
    def chatty() -> None:
        context = FLOW_RUN.get()
        assert context is not None
        ids.append(context.handle.id)
        proxy.dropping = True
        for i in range(50):
            print(f"line {i}")
        _logs_dropped(proxy, 3)
        proxy.dropping = False

    chatty()
    counts = Counter(messages(server, ids[0]))
    assert {f"line {i}": counts[f"line {i}"] for i in range(50)} == {
        f"line {i}": 1 for i in range(50)
    }


def test_a_full_queue_lets_its_oldest_lines_go_with_one_counted_warning(
    server: RunningServer,
    through_proxy: HttpProxy,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    proxy = through_proxy
    monkeypatch.setattr(tracking, "MAX_QUEUED", 20)
    monkeypatch.setattr(shipping, "MAX_QUEUED", 20)
    ids: list[uuid.UUID] = []

    @flow(log_prints=True)
    def flood() -> None:
        context = FLOW_RUN.get()
        assert context is not None
        ids.append(context.handle.id)
        context.tracker.flush()
        proxy.dropping = True
        for i in range(100):
            print(f"line {i}")
        _logs_dropped(proxy, 2)
        proxy.dropping = False

    flood()
    logged = [m for m in messages(server, ids[0]) if m.startswith("line ")]
    assert logged[-20:] == [f"line {i}" for i in range(80, 100)]  # the newest are all there
    warnings = re.findall(r"(\d+) log lines \(the oldest", capfd.readouterr().err)
    assert warnings == [str(100 - len(logged))]  # one warning, counting what was let go


def test_a_signalled_engine_hands_over_its_end_without_waiting_out_its_lease(
    server: RunningServer, tmp_path: Path, proxy: HttpProxy
) -> None:
    # an hour's lease: only the signal keeps the engine from trying for 40 minutes
    run_id, engine = start_engine(server, tmp_path, proxy, DOCKYARD_LEASE_SECONDS="3600")
    proxy.dropping = True
    engine.send_signal(signal.SIGTERM)
    stdout, stderr = engine.communicate(timeout=60)
    assert engine.returncode == EXIT_UNREPORTED, stderr
    output = tmp_path / "output"
    output.write_text(stdout + stderr)
    record = OutputFile(output).handed_over()
    assert record is not None and record["flow_run_id"] == str(run_id)
    assert record["state"] == "CRASHED"
    assert record["message"].startswith("terminated by signal SIGTERM")
