"""The worker class used from Python: stop(), handing back runs, serving deployments."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from worker_support import (
    fake_command,
    flow_deployment,
    kill_runs_of,
    make_deployment,
    make_pool,
    trigger,
    wait_for_state,
    wait_until,
)

from _support import RunningServer
from dockyard import settings
from dockyard.exceptions import DockyardError, NotFound
from dockyard.schemas import ClaimedRun
from dockyard.workers import BaseWorker, ProcessWorker, worker_class
from dockyard.workers.process import Process

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


class SlowLaunch(ProcessWorker):
    """A process worker whose launches wait until the test lets them go."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.launching = threading.Event()
        self.go = threading.Event()

    def launch(self, claimed: ClaimedRun, config: dict[str, Any]) -> Process:
        self.launching.set()
        self.go.wait(30)
        return super().launch(claimed, config)


@pytest.fixture
def in_thread(server: RunningServer) -> Iterator[list[BaseWorker[Any]]]:
    """Workers a test runs in threads: stopped, and their runs killed, when it ends."""
    started: list[BaseWorker[Any]] = []
    yield started
    for worker in started:
        worker.stop()
    kill_runs_of(server.api_url)
    for worker in started:  # reap the runs it left (else Popen warns they still run)
        for entry in list(worker._running.values()):
            entry.handle.wait(10)


def run_in_thread(worker: BaseWorker[Any], started: list[BaseWorker[Any]]) -> threading.Thread:
    started.append(worker)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def test_stop_hands_back_claimed_runs_it_did_not_launch(
    server: RunningServer, in_thread: list[BaseWorker[Any]], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    with server.client() as client:
        make_pool(client)
        deployment = make_deployment(
            client, job_variables={"command": fake_command("--append", str(marker))}
        )
        first, second = trigger(client, deployment), trigger(client, deployment)
        worker = SlowLaunch(
            pool="pool", name="slow", settings=settings.load(api_url=server.api_url)
        )
        thread = run_in_thread(worker, in_thread)
        assert worker.launching.wait(30)
        worker.stop()  # what Ctrl-C does: the launch under way ends, the next never starts
        worker.go.set()
        thread.join(30)
        assert not thread.is_alive()

        launched = wait_for_state(client, first.id, FINAL)
        assert launched.state == "COMPLETED"
        handed_back = client.read_flow_run(second.id)
        assert handed_back.state == "SCHEDULED"
        assert handed_back.worker_name is None
        assert "handed back by worker 'slow'" in (handed_back.state_message or "")
    assert marker.read_text().split() == [str(first.id)]


def test_serving_deployments_without_a_pool(
    server: RunningServer, in_thread: list[BaseWorker[Any]], tmp_path: Path
) -> None:
    with server.client() as client:
        deployment = flow_deployment(client, tmp_path, pool=None)
        assert client.read_deployment(deployment.id).status == "NOT_READY"
        worker = ProcessWorker(
            deployment_ids=[deployment.id],
            name="my-serve",
            limit=2,
            settings=settings.load(api_url=server.api_url),
        )
        thread = run_in_thread(worker, in_thread)
        wait_until(lambda: client.read_deployment(deployment.id).status == "READY", 30, "READY")
        run = trigger(client, deployment, parameters={"greeting": "served"})
        done = wait_for_state(client, run.id, FINAL)
        assert done.state == "COMPLETED", done.state_message
        assert done.worker_name == "my-serve"
        assert "served from the engine" in [
            log.message for log in client.read_logs(flow_run_id=run.id)
        ]
        worker.stop()
        thread.join(30)
        assert not thread.is_alive()


def test_a_missing_pool_fails_at_start(server: RunningServer) -> None:
    worker = ProcessWorker(pool="nope", settings=settings.load(api_url=server.api_url))
    with pytest.raises(NotFound, match="nope"):
        worker.run()


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="work pool or for deployments"):
        ProcessWorker()
    with pytest.raises(ValueError, match="work pool or for deployments"):
        ProcessWorker(pool="p", deployment_ids=[uuid.uuid4()])
    with pytest.raises(ValueError, match="at least 1"):
        ProcessWorker(pool="p", limit=0)
    assert ProcessWorker(pool="p").name  # <hostname>-<random> by default


def test_worker_class_by_pool_type() -> None:
    assert worker_class("process") is ProcessWorker
    with pytest.raises(DockyardError, match="no worker here runs work pools of type 'k8s'"):
        worker_class("k8s")


def test_the_workers_lines_show_control_characters_as_escapes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state message or an error the server passes on is printed, never obeyed."""
    import logging

    from dockyard.workers import base

    logger = logging.getLogger("dockyard.worker")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "propagate", False)
    base._ensure_logging()
    logger.info("run ended: %s", "\x1b]0;owned\x07\x1b[2Jgone\u202eevil\nnext line")
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\x07" not in printed and "\u202e" not in printed
    assert "\\x1b]0;owned\\x07\\x1b[2Jgone\\u202eevil\nnext line" in printed
