"""The database's host cut off for 10 s, mid-run: nothing hangs, nothing is lost.

PostgreSQL runs on a host of its own (a network namespace, listening on its veth address);
the server reaches it across that link, and a worker on a second host runs flows whose
engines report every task. The test then drops every packet the database's host sends, for
10 s (no refusal, no reset: what a lost host or a split network does), and lets them through
again. Meanwhile every request to the server answers (503 with Retry-After while
the database is gone, never another 5xx, never a hang); afterwards every run has COMPLETED
in its first attempt, none crashed, none ran twice. Needs root and ``ip``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from netns_support import Network

from _support import require, start_postgres_cluster, wait_until
from _support.rigs import CLI, Replica, Worker, free_port, kill_pids, runs_of

CUT_SECONDS = 10.0
RUNS = 4

FLOW_FILE = """\
from dockyard import flow, task


@task
def tick(number):
    return number


@flow
def steady(ledger: str, seconds: float = 14.0):
    import os
    import time

    run = os.environ["DOCKYARD_FLOW_RUN_ID"]
    with open(ledger, "a") as file:
        file.write(f"{run} start\\n")
    deadline = time.monotonic() + seconds
    number = 0
    while time.monotonic() < deadline:
        tick(number)
        number += 1
        time.sleep(0.1)
    with open(ledger, "a") as file:
        file.write(f"{run} end\\n")
"""


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_database_cut_loses_nothing(tmp_path: Path) -> None:
    require(
        os.geteuid() == 0 and shutil.which("ip"), "needs root and `ip` to make network namespaces"
    )
    ledger = tmp_path / "ledger.txt"
    ledger.touch()
    with Network() as network:
        db_host, far = network.add(), network.add()
        cluster = start_postgres_cluster(host=db_host.ns_ip, prefix=db_host.prefix)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        env.update(
            DOCKYARD_HOME=str(tmp_path),
            DOCKYARD_LEASE_SECONDS="5",
            DOCKYARD_HEARTBEAT_SECONDS="1",
            PYTHONUNBUFFERED="1",
        )
        key = secrets.token_urlsafe(24)
        server_env = {
            **env,
            "DOCKYARD_DATABASE_URL": cluster.new_database(),
            "DOCKYARD_SERVER_API_KEY": key,
            # a statement unanswered for 3 s: the database is gone (15 s by default)
            "DOCKYARD_DATABASE_STATEMENT_TIMEOUT_SECONDS": "3",
        }
        server = Replica(tmp_path / "server", server_env, host=far.host_ip)
        server.port = free_port(far.host_ip)
        worker: Worker | None = None
        try:
            server.start()
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(
                base_url=server.api_url, trust_env=False, timeout=120, headers=headers
            ) as http:
                ids = _setup(http, tmp_path, ledger)
                command = [*far.prefix, *CLI, "worker", "start", "--pool", "cut"]
                worker = Worker(tmp_path / "worker.log", [*command, "--limit", "2"], env)
                worker.env = {**env, "DOCKYARD_API_URL": server.api_url, "DOCKYARD_API_KEY": key}
                worker.start()
                _cut_while_running(http, db_host, ids, ledger)
                wait_until(
                    lambda: all(_state(http, i) == "COMPLETED" for i in ids),
                    120,
                    "every run to complete after the cut",
                )
                for run_id in ids:
                    run = http.get(f"/flow-runs/{run_id}").raise_for_status().json()
                    assert run["attempt"] == 1, run
                    history = http.get(f"/flow-runs/{run_id}/states").raise_for_status().json()
                    assert "CRASHED" not in [s["type"] for s in history], history
        finally:
            if worker is not None:
                worker.stop()
            kill_pids(runs_of([server.api_url]))
            server.stop(signal.SIGINT)
            cluster.stop()
    lines = [line.split() for line in ledger.read_text().splitlines() if line]
    assert Counter(map(tuple, lines)) == Counter(
        {(i, "start"): 1 for i in ids} | {(i, "end"): 1 for i in ids}
    ), lines
    assert worker is not None
    problems = [worker.tracebacks(), server.tracebacks()]
    assert not any(problems), "\n\n".join(p for p in problems if p)


def _state(http: httpx.Client, run_id: str) -> str:
    """The run's state; "" while the server says the database is not back yet (503)."""
    answer = http.get(f"/flow-runs/{run_id}")
    if answer.status_code == 503:
        return ""
    return str(answer.raise_for_status().json()["state"])


def _setup(http: httpx.Client, base: Path, ledger: Path) -> list[str]:
    (base / "steady_flows.py").write_text(FLOW_FILE)
    http.post("/work-pools", json={"name": "cut", "type": "process"}).raise_for_status()
    body: dict[str, Any] = {
        "flow_name": "steady",
        "name": "steady",
        "entrypoint": "steady_flows.py:steady",
        "path": str(base),
        "work_pool_name": "cut",
        "parameters": {"ledger": str(ledger)},
        "job_variables": {"stream_output": True},
    }
    deployment = http.post("/deployments", json=body).raise_for_status().json()
    runs = [http.post(f"/deployments/{deployment['id']}/runs", json={}) for _ in range(RUNS)]
    return [answer.raise_for_status().json()["id"] for answer in runs]


def _cut_while_running(http: httpx.Client, db_host: Any, ids: list[str], ledger: Path) -> None:
    """Cut the database's link once two runs are running; ask the server all the while."""
    wait_until(
        lambda: (
            sum(_state(http, i) == "RUNNING" for i in ids) == 2
            and ledger.read_text().count("start") == 2
        ),
        60,
        "two runs RUNNING",
    )
    time.sleep(1.0)  # their engines are reporting tasks
    db_host.black_hole()
    answers: Counter[int] = Counter()
    try:
        ends = time.monotonic() + CUT_SECONDS
        while time.monotonic() < ends:
            for path in (f"/flow-runs/{ids[0]}", "/health"):
                answer = http.get(path)
                answers[answer.status_code] += 1
                if answer.status_code == 503:
                    assert int(answer.headers["retry-after"]) >= 1, answer.headers
            time.sleep(0.2)
    finally:
        db_host.lift_black_hole()
    assert answers[503] > 0, f"the server never said the database was gone: {answers}"
    assert set(answers) <= {200, 503}, answers
