"""What the worker tests share: real worker processes, a fake engine, waiting, cleanup."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from _support import CLI_COMMAND, RunningServer, wait_until
from dockyard import schemas

HERE = Path(__file__).resolve().parent
FAKE_ENGINE = HERE / "fake_engine.py"
STOP_TIMEOUT = 15.0

FLOW_FILE = """\
from dockyard import flow


@flow(log_prints=True)
def my_flow(greeting: str = "hello", append: str = ""):
    import os

    print(f"{greeting} from the engine")
    if append:
        with open(append, "a") as file:
            file.write(os.environ["DOCKYARD_FLOW_RUN_ID"] + "\\n")
    return greeting
"""


def fake_command(*args: str) -> str:
    """The job ``command`` that runs the fake engine with ``args``."""
    return shlex.join([sys.executable, str(FAKE_ENGINE), *args])


def make_pool(client: Any, name: str = "pool", **fields: Any) -> schemas.WorkPool:
    pool: schemas.WorkPool = client.create_work_pool(
        schemas.WorkPoolCreate(name=name, type="process", **fields)
    )
    return pool


def make_deployment(
    client: Any, pool: str | None = "pool", name: str = "d", **fields: Any
) -> schemas.Deployment:
    fields.setdefault("flow_name", "my-flow")
    deployment: schemas.Deployment = client.upsert_deployment(
        schemas.DeploymentCreate(name=name, work_pool_name=pool, **fields)
    )
    return deployment


def flow_deployment(client: Any, path: Path, pool: str | None = "pool", **fields: Any) -> Any:
    """A deployment of ``my_flow`` in ``path/flows.py`` (run by the real engine)."""
    (path / "flows.py").write_text(FLOW_FILE)
    return make_deployment(
        client, pool, entrypoint="flows.py:my_flow", path=str(path), flow_name="my-flow", **fields
    )


def trigger(client: Any, deployment: schemas.Deployment, **fields: Any) -> schemas.FlowRun:
    run: schemas.FlowRun = client.create_deployment_run(
        deployment.id, schemas.DeploymentRunCreate(**fields)
    )
    return run


def wait_for_state(
    client: Any, run_id: Any, states: set[str], timeout: float = 60.0
) -> schemas.FlowRun:
    def reached() -> schemas.FlowRun | None:
        run: schemas.FlowRun = client.read_flow_run(run_id)
        return run if run.state in states else None

    return wait_until(reached, timeout, f"flow run {run_id} to be {' or '.join(sorted(states))}")


@dataclass
class WorkerProcess:
    """A ``dockyard worker start`` subprocess, in its own session like a terminal job."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 30.0) -> str:
        def seen() -> bool:
            if self.process.poll() is not None and text not in self.output():
                pytest.fail(f"the worker exited ({self.process.returncode}):\n{self.output()}")
            return text in self.output()

        wait_until(seen, timeout, f"{text!r} in the worker's output")
        return self.output()

    def interrupt(self) -> None:
        """Ctrl-C as a terminal sends it: SIGINT to the worker's whole process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the worker did not exit within {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.interrupt()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()


class Workers:
    """Starts worker processes for one test; :meth:`close` stops them and their runs."""

    def __init__(self, server: RunningServer, base: Path) -> None:
        self.server = server
        self.base = base
        self.started: list[WorkerProcess] = []

    def start(
        self, *args: str, env: Mapping[str, str] | None = None, wait: bool = True
    ) -> WorkerProcess:
        """Start ``dockyard worker start *args``; wait until it says it waits for runs."""
        log_path = self.base / f"worker-{len(self.started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*CLI_COMMAND, "worker", "start", *args],
                env={
                    **self.server.env,
                    "PYTHONUNBUFFERED": "1",
                    "TMPDIR": str(self.base),  # where the runs' output files go
                    **(env or {}),
                },
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base,
                start_new_session=True,
            )
        worker = WorkerProcess(process, log_path)
        self.started.append(worker)
        if wait:
            worker.wait_for_output("waiting for runs")
        return worker

    def close(self) -> list[str]:
        """Stop every worker; kill the runs they left; return tracebacks they printed."""
        for worker in self.started:
            worker.stop()
        kill_runs_of(self.server.api_url)
        # a run's own output is echoed as "name | line": a traceback of the worker is not
        return [
            f"worker {i} printed a traceback:\n{worker.output()}"
            for i, worker in enumerate(self.started)
            if any(line.startswith("Traceback") for line in worker.output().splitlines())
        ]


def started_workers(server: RunningServer, base: Path) -> Iterator[Workers]:
    """The ``workers`` fixture's body: :class:`Workers` under ``base``; when the test ends
    every worker gets Ctrl-C (then SIGKILL), every run process left behind is killed, and a
    traceback printed by a worker fails the test."""
    base.mkdir()
    started = Workers(server, base)
    yield started
    problems = started.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def kill_runs_of(api_url: str) -> None:
    """SIGKILL every run process started for the server at ``api_url``."""
    marker = f"DOCKYARD_API_URL={api_url}\0".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ and b"DOCKYARD_FLOW_RUN_ID=" in environ:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"
