"""The contract every worker type keeps: launch, exit code, output, kill, launch errors.

A new type gets these tests by subclassing :class:`WorkerContract` and giving the
``worker`` fixture and :meth:`~WorkerContract.config_for` (see :class:`TestProcessWorker`).
They call the type's methods directly, as the base worker does, without a server.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dockyard import settings
from dockyard.exceptions import LaunchError
from dockyard.schemas import ClaimedRun, FlowRun
from dockyard.workers import BaseWorker, ProcessWorker

EXIT_TIMEOUT = 20.0
UNUSED_API = "http://127.0.0.1:9/api"  # the contract needs no server


def claimed_run(deployment_path: str | None = None) -> ClaimedRun:
    """A claimed run as the server would hand it out."""
    now = datetime.now(UTC).isoformat()
    run = FlowRun.model_validate(
        {
            "id": str(uuid.uuid4()),
            "name": "contract-run",
            "flow_id": str(uuid.uuid4()),
            "flow_name": "contract",
            "deployment_id": str(uuid.uuid4()),
            "deployment_name": "d",
            "work_pool_name": "contract",
            "work_queue_name": "default",
            "parent_flow_run_id": None,
            "parameters": {},
            "job_variables": {},
            "tags": [],
            "state": "PENDING",
            "state_message": None,
            "scheduled_start": now,
            "start_time": None,
            "end_time": None,
            "created": now,
            "attempt": 1,
            "worker_name": "contract-worker",
            "infrastructure_id": None,
            "lease_expires": now,
            "idempotency_key": None,
        }
    )
    return ClaimedRun(
        flow_run=run,
        lease_token=uuid.uuid4(),
        base_job_template={},
        job_variables={},
        deployment_path=deployment_path,
    )


class WorkerContract:
    """The tests; a type's test class provides the fixture and the two hooks below."""

    @pytest.fixture
    def worker(self) -> BaseWorker[Any]:
        raise NotImplementedError

    def config_for(self, code: str) -> dict[str, Any]:
        """A job configuration whose infrastructure runs the Python ``code``."""
        raise NotImplementedError

    def broken_config(self, tmp_path: Path) -> dict[str, Any]:
        """A job configuration whose infrastructure cannot start."""
        raise NotImplementedError

    @pytest.fixture
    def launch(self, worker: BaseWorker[Any]) -> Iterator[Any]:
        """``launch(code) -> (claimed, handle)``; every handle is killed when the test ends."""
        handles: list[Any] = []

        def start(code: str) -> tuple[ClaimedRun, Any]:
            claimed = claimed_run()
            handle = worker.launch(claimed, self.config_for(code))
            handles.append(handle)
            return claimed, handle

        yield start
        for handle in handles:
            worker.kill(handle, 0.0)

    def wait_exit(self, worker: BaseWorker[Any], handle: Any) -> int:
        deadline = time.monotonic() + EXIT_TIMEOUT
        while (code := worker.exit_code(handle)) is None:
            assert time.monotonic() < deadline, "the infrastructure did not exit"
            time.sleep(0.05)
        return code

    def test_exit_code_is_none_while_it_runs(self, worker: BaseWorker[Any], launch: Any) -> None:
        _, handle = launch("import time; time.sleep(1.5)")
        assert worker.exit_code(handle) is None
        assert self.wait_exit(worker, handle) == 0

    def test_exit_code_and_output_file(self, worker: BaseWorker[Any], launch: Any) -> None:
        code = "import sys; print('to stdout'); print('to stderr', file=sys.stderr); sys.exit(3)"
        claimed, handle = launch(code)
        assert self.wait_exit(worker, handle) == 3
        output = worker.output_path(claimed.flow_run.id).read_text()
        assert "to stdout" in output and "to stderr" in output

    def test_infrastructure_id_is_recorded_text(self, worker: BaseWorker[Any], launch: Any) -> None:
        _, handle = launch("pass")
        infrastructure_id = worker.infrastructure_id(handle)
        assert isinstance(infrastructure_id, str) and infrastructure_id

    def test_run_gets_its_id_and_lease_token(self, worker: BaseWorker[Any], launch: Any) -> None:
        code = (
            "import json, os, sys; print(json.dumps({'argv': sys.argv, "
            "'id': os.environ['DOCKYARD_FLOW_RUN_ID'], "
            "'token': os.environ['DOCKYARD_LEASE_TOKEN'], "
            "'api': os.environ['DOCKYARD_API_URL']}))"
        )
        claimed, handle = launch(code)
        assert self.wait_exit(worker, handle) == 0
        seen = json.loads(worker.output_path(claimed.flow_run.id).read_text().splitlines()[-1])
        assert seen["id"] == str(claimed.flow_run.id)
        assert seen["token"] == str(claimed.lease_token)
        assert seen["api"] == UNUSED_API
        assert seen["token"] not in " ".join(seen["argv"])

    def test_kill_stops_it(self, worker: BaseWorker[Any], launch: Any) -> None:
        _, handle = launch("import time; print('up', flush=True); time.sleep(60)")
        worker.kill(handle, 5.0)
        assert self.wait_exit(worker, handle) != 0

    def test_kill_forces_it_after_the_grace(self, worker: BaseWorker[Any], launch: Any) -> None:
        code = (
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('deaf', flush=True); time.sleep(60)"
        )
        claimed, handle = launch(code)
        output = worker.output_path(claimed.flow_run.id)
        deadline = time.monotonic() + EXIT_TIMEOUT
        while "deaf" not in (output.read_text() if output.exists() else ""):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        began = time.monotonic()
        worker.kill(handle, 0.5)
        assert self.wait_exit(worker, handle) != 0
        assert time.monotonic() - began < EXIT_TIMEOUT

    def test_kill_after_exit_is_harmless(self, worker: BaseWorker[Any], launch: Any) -> None:
        _, handle = launch("pass")
        assert self.wait_exit(worker, handle) == 0
        worker.kill(handle, 1.0)
        assert worker.exit_code(handle) == 0

    def test_launch_error_says_why(self, worker: BaseWorker[Any], tmp_path: Path) -> None:
        with pytest.raises(LaunchError) as raised:
            worker.launch(claimed_run(), self.broken_config(tmp_path))
        assert str(raised.value)

    def test_recover_answers_handles_with_their_lease_tokens(self, worker: BaseWorker[Any]) -> None:
        found = worker.recover()
        assert isinstance(found, dict)
        for run_id, (handle, token) in found.items():
            assert isinstance(run_id, uuid.UUID)
            assert worker.infrastructure_id(handle)
            assert token is None or isinstance(token, uuid.UUID)


class TestProcessWorker(WorkerContract):
    @pytest.fixture
    def worker(self) -> ProcessWorker:
        return ProcessWorker(pool="contract", settings=settings.load(api_url=UNUSED_API))

    def config_for(self, code: str) -> dict[str, Any]:
        return {"command": [sys.executable, "-c", code]}

    def broken_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"command": str(tmp_path / "no-such-program")}

    def test_a_string_command_is_split_like_a_shell(
        self, worker: ProcessWorker, tmp_path: Path
    ) -> None:
        claimed = claimed_run()
        command = shlex.join([sys.executable, "-c", "import sys; print(sys.argv[1:])", "a b", "c"])
        handle = worker.launch(claimed, {"command": command})
        assert self.wait_exit(worker, handle) == 0
        assert "['a b', 'c']" in worker.output_path(claimed.flow_run.id).read_text()

    def test_environment_and_working_directory(
        self, worker: ProcessWorker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("FROM_WORKER", "kept")
        monkeypatch.setenv("REMOVED", "gone")
        claimed = claimed_run(deployment_path=str(tmp_path))
        code = "import os; print(os.getcwd(), os.environ['FROM_WORKER'], os.environ.get('REMOVED'))"
        config = {"command": [sys.executable, "-c", code], "env": {"REMOVED": None}}
        handle = worker.launch(claimed, config)
        assert self.wait_exit(worker, handle) == 0
        output = worker.output_path(claimed.flow_run.id).read_text()
        assert output.split() == [str(tmp_path), "kept", "None"]

    def test_missing_working_directory(self, worker: ProcessWorker, tmp_path: Path) -> None:
        missing = tmp_path / "missing"
        with pytest.raises(LaunchError, match=f"working directory {missing} does not exist"):
            worker.launch(claimed_run(), {"working_dir": str(missing)})

    def test_the_run_leads_its_own_session(self, worker: ProcessWorker, launch: Any) -> None:
        _, handle = launch("import time; time.sleep(30)")
        assert os.getsid(handle.pid) == handle.pid != os.getsid(0)

    def test_kill_reaches_what_the_run_started(self, worker: ProcessWorker, launch: Any) -> None:
        code = (
            "import subprocess, sys, time; "
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "print(child.pid, flush=True); time.sleep(60)"
        )
        claimed, handle = launch(code)
        output = worker.output_path(claimed.flow_run.id)
        deadline = time.monotonic() + EXIT_TIMEOUT
        while not output.read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        child = int(output.read_text().split()[0])
        worker.kill(handle, 5.0)
        deadline = time.monotonic() + EXIT_TIMEOUT
        while _alive(child):
            assert time.monotonic() < deadline, "the run's child outlived the kill"
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
