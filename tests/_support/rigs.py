"""The chaos rig: server replicas on one PostgreSQL database, process workers, and faults.

Shared by ``tests/scale/test_chaos.py`` (500 runs, in CI) and ``bench/chaos.py`` (5,000 runs,
figures), so both prove the same thing. No pytest here: problems are raised as
:class:`RigError` and the caller turns them into a failure.

Every process the rig starts is a ``dockyard`` command on 127.0.0.1 (or on an address the
caller owns, see :class:`Replica`), and :meth:`Chaos.close` stops each one by its pid; run
processes are found by their ``dockyard.engine`` command line among the workers' children
and by their environment (``DOCKYARD_API_URL`` of one of the rig's replicas), never by a
pattern matched across the machine.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

CLI = (sys.executable, "-m", "dockyard.cli.main")
LIVE = ("PENDING", "RUNNING", "CANCELLING")
UNFINISHED = ("SCHEDULED", "PENDING", "RUNNING", "CANCELLING", "AWAITING_RETRY")
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
STOP_TIMEOUT = 15.0

# What each run does: write "RUN_ID ATTEMPT" to the ledger, then take a moment (the window
# in which faults land mid-run). A duplicate line is an attempt that ran twice.
FLOW_FILE = """\
from dockyard import flow, get_run_context


@flow
def chaos_flow(ledger: str, seconds: float = 0.3):
    import os
    import time

    attempt = get_run_context().flow_run.run_count
    line = f"{os.environ['DOCKYARD_FLOW_RUN_ID']} {attempt}\\n"
    # one write call of a short line in append mode: lines from many processes never mix
    with open(ledger, "a") as file:
        file.write(line)
    time.sleep(seconds)
"""


class RigError(RuntimeError):
    """Raised when a part of the rig does not start or stop as it must."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Limits:
    """The concurrency limits the chaos deployments run under, and the rig's size."""

    pool: int = 8
    capped_queue: int = 3
    limited_deployment: int = 2
    workers: int = 6
    worker_slots: int = 3
    crash_retries: int = 3
    lease_seconds: float = 6.0
    heartbeat_seconds: float = 1.0


@dataclass
class Replica:
    """One ``dockyard server start`` process; :meth:`restart` starts it again on its port."""

    base: Path
    env: dict[str, str]
    host: str = "127.0.0.1"
    port: int = 0
    prefix: tuple[str, ...] = ()  # e.g. ``ip netns exec NS`` to start it in a namespace
    args: tuple[str, ...] = ()  # more arguments of ``server start`` (``--insecure``)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def log_path(self) -> Path:
        return self.base / "server.log"

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.host)
        command = [*self.prefix, *CLI, "server", "start", "--host", self.host]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), *self.args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base,
            )
        self.starts += 1
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0, trust_env=False) as http:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RigError(f"server {self.api_url} exited:\n{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if http.get(f"{self.api_url}/health").status_code == 200:
                        return
                time.sleep(0.05)
        raise RigError(f"server {self.api_url} not healthy in {timeout} s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal the server (SIGTERM, as a process manager stops it) and wait for it."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RigError(
                f"server {self.api_url} ignored signal {sig} for {STOP_TIMEOUT} s"
            ) from None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def tracebacks(self) -> str | None:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
            at = text.find("Traceback")
            if at >= 0:
                return "\n".join(text[at:].splitlines()[:80])
        return None


@dataclass
class Worker:
    """One ``dockyard worker start`` process, in its own session like a terminal job."""

    log_path: Path
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.log_path.parent,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the worker itself (its runs live in their own sessions and go on)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """Ctrl-C: the worker hands back unlaunched runs and leaves started ones running."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()

    def tracebacks(self) -> str | None:
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").splitlines()
            # a run's own output is echoed as "name | line"; only the worker's own counts
            if any(line.startswith("Traceback") for line in lines):
                return "\n".join(lines[-60:])
        return None


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def is_engine(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return b"dockyard.engine" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return False


def runs_of(api_urls: list[str]) -> list[int]:
    """Every live run process whose ``DOCKYARD_API_URL`` is one of ``api_urls``."""
    markers = [f"DOCKYARD_API_URL={url}\0".encode() for url in api_urls]
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            environ = (entry / "environ").read_bytes()
            if b"DOCKYARD_FLOW_RUN_ID=" in environ and any(m in environ for m in markers):
                found.append(int(entry.name))
    return found


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class Sampler:
    """Counts live runs (pool, per queue, per deployment) through the API while runs go."""

    api_urls: list[str]
    pool: str
    peaks: Counter[str] = field(default_factory=Counter)
    samples: int = 0
    errors: int = 0
    _done: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(30)

    def _loop(self) -> None:
        with httpx.Client(timeout=10.0, trust_env=False) as http:
            turn = 0
            while not self._done.is_set():
                # alternate replicas: the counts come from the one database either way
                url = self.api_urls[turn % len(self.api_urls)]
                turn += 1
                params: dict[str, Any] = {"work_pool_name": self.pool, "state": list(LIVE)}
                params["limit"] = 1000
                try:
                    live = http.get(f"{url}/flow-runs", params=params).raise_for_status().json()
                except httpx.HTTPError:
                    self.errors += 1  # a replica restarting: the next sample asks the other
                    continue
                self.samples += 1
                counts = Counter({"pool": len(live)})
                counts.update(f"queue:{r['work_queue_name']}" for r in live)
                counts.update(f"deployment:{r['deployment_name']}" for r in live)
                for key, value in counts.items():
                    self.peaks[key] = max(self.peaks[key], value)
                self._done.wait(0.05)


@dataclass
class Faults:
    """What the chaos loop did."""

    workers_killed: int = 0
    runs_killed: int = 0
    replica_restarts: int = 0


class Chaos:
    """Two replicas, workers split across them, a pool with limits, and the fault loop.

    Use as a context manager: leaving it stops every worker, every run process left behind
    and every replica, by pid.
    """

    POOL = "chaos"

    def __init__(
        self, base: Path, database_url: str, *, limits: Limits | None = None, seed: int = 14
    ) -> None:
        self.base = base
        self.database_url = database_url
        self.limits = limits or Limits()
        self.random = random.Random(seed)
        self.ledger = base / "ledger.txt"
        self.replicas: list[Replica] = []
        self.workers: list[Worker] = []
        self.faults = Faults()
        self.sampler: Sampler | None = None

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> Chaos:
        self.base.mkdir(parents=True, exist_ok=True)
        self.ledger.touch()
        try:
            for number in range(2):
                replica = Replica(self.base / f"replica-{number}", self._env(number))
                self.replicas.append(replica)
                replica.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        for worker in self.workers:
            worker.stop()
        kill_pids(runs_of([r.api_url for r in self.replicas]))
        for replica in self.replicas:
            with contextlib.suppress(RigError):
                replica.stop(signal.SIGINT)

    def problems(self) -> list[str]:
        """Tracebacks the replicas or workers wrote (call after :meth:`close`)."""
        found = [(f"replica {r.api_url}", r.tracebacks()) for r in self.replicas]
        found += [(f"worker {w.log_path.name}", w.tracebacks()) for w in self.workers]
        return [f"{who} wrote a traceback:\n{text}" for who, text in found if text]

    def _env(self, number: int) -> dict[str, str]:
        home = self.base / f"home-{number}"
        home.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        env.update(
            DOCKYARD_HOME=str(home),
            DOCKYARD_DATABASE_URL=self.database_url,
            DOCKYARD_LEASE_SECONDS=str(self.limits.lease_seconds),
            DOCKYARD_HEARTBEAT_SECONDS=str(self.limits.heartbeat_seconds),
            NO_PROXY="127.0.0.1,localhost",
            PYTHONUNBUFFERED="1",
        )
        return env

    # ---------------------------------------------------------------- setup

    def http(self, number: int = 0) -> httpx.Client:
        return httpx.Client(base_url=self.replicas[number].api_url, timeout=30.0, trust_env=False)

    def create_runs(self, count: int, seconds: float = 0.3) -> list[str]:
        """The pool, its queues and three deployments; ``count`` runs spread 6:2:2 over them."""
        limits = self.limits
        flows = self.base / "flows"
        flows.mkdir(exist_ok=True)
        (flows / "chaos_flows.py").write_text(FLOW_FILE)
        with self.http() as http:
            pool = {"name": self.POOL, "type": "process", "concurrency_limit": limits.pool}
            http.post("/work-pools", json=pool).raise_for_status()
            queue = {"name": "capped", "concurrency_limit": limits.capped_queue}
            http.post(f"/work-pools/{self.POOL}/queues", json=queue).raise_for_status()
            plan: dict[str, tuple[str, int | None]] = {"open": ("default", None)}
            plan["capped"] = ("capped", None)
            plan["limited"] = ("default", limits.limited_deployment)
            deployments = []
            for name, (queue_name, limit) in plan.items():
                body: dict[str, Any] = {
                    "flow_name": "chaos-flow",
                    "name": name,
                    "entrypoint": "chaos_flows.py:chaos_flow",
                    "path": str(flows),
                    "work_pool_name": self.POOL,
                    "work_queue_name": queue_name,
                    "concurrency_limit": limit,
                    "crash_retries": limits.crash_retries,
                    "parameters": {"ledger": str(self.ledger), "seconds": seconds},
                    "job_variables": {"stream_output": False},
                }
                deployments.append(http.post("/deployments", json=body).raise_for_status().json())
            ids = []
            # most runs to the open deployment: a limit of 2 drains 2 runs at a time
            spread = [0] * 6 + [1] * 2 + [2] * 2
            for number in range(count):
                deployment = deployments[spread[number % len(spread)]]
                answer = http.post(f"/deployments/{deployment['id']}/runs", json={})
                ids.append(answer.raise_for_status().json()["id"])
        return ids

    def start_workers(self) -> None:
        """Workers split across the replicas' URLs, each with a few slots."""
        for number in range(self.limits.workers):
            replica = self.replicas[number % len(self.replicas)]
            env = {**replica.env, "DOCKYARD_API_URL": replica.api_url}
            env.pop("DOCKYARD_DATABASE_URL")
            env["TMPDIR"] = str(self.base)
            command = [*CLI, "worker", "start", "--pool", self.POOL, "--name", f"w{number}"]
            command += ["--limit", str(self.limits.worker_slots)]
            worker = Worker(self.base / f"worker-{number}.log", command, env)
            self.workers.append(worker)
            worker.start()

    def start_sampler(self) -> Sampler:
        self.sampler = Sampler([r.api_url for r in self.replicas], self.POOL)
        self.sampler.start()
        return self.sampler

    # ---------------------------------------------------------------- faults

    def kill_a_worker(self) -> None:
        """SIGKILL a random worker and start it again (same name, same replica)."""
        worker = self.random.choice(self.workers)
        worker.kill()
        self.faults.workers_killed += 1
        worker.start()

    def kill_a_run(self) -> bool:
        """SIGKILL a random run process among the workers' children; False if none runs."""
        engines = sorted(
            pid
            for worker in self.workers
            if worker.process is not None and worker.process.poll() is None
            for pid in children(worker.pid)
            if is_engine(pid)
        )
        if not engines:
            return False
        kill_pids([self.random.choice(engines)])
        self.faults.runs_killed += 1
        return True

    def restart_a_replica(self) -> None:
        """SIGTERM the second replica and start it again on the same port."""
        self.replicas[1].restart()
        self.faults.replica_restarts += 1

    def unfinished(self) -> int:
        """How many runs of the pool are not final yet."""
        params: dict[str, Any] = {"work_pool_name": self.POOL, "limit": 1000}
        params["state"] = list(UNFINISHED)
        for number in range(len(self.replicas)):  # one may be restarting: ask the other
            with contextlib.suppress(httpx.HTTPError), self.http(number) as http:
                return len(http.get("/flow-runs", params=params).raise_for_status().json())
        return -1

    def run_chaos(self, *, until_left: int, budget: float, every: float = 0.5) -> None:
        """Inject faults (seeded choices) every ``every`` s until at most ``until_left`` runs
        are unfinished or ``budget`` s have passed; restart a replica once, half way."""
        started = time.monotonic()
        restarted = False
        while time.monotonic() - started < budget:
            left = self.unfinished()
            if 0 <= left <= until_left:
                return
            if not restarted and self.faults.workers_killed + self.faults.runs_killed >= 6:
                self.restart_a_replica()
                restarted = True
            elif self.random.random() < 0.3:
                self.kill_a_worker()
            else:
                self.kill_a_run()
            time.sleep(every)

    def wait_finished(self, timeout: float) -> int:
        """Wait until every run is final; return how many are not (0 when all are)."""
        deadline = time.monotonic() + timeout
        while (left := self.unfinished()) != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        return left

    # ---------------------------------------------------------------- results

    def all_runs(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        with self.http() as http:
            while True:
                params: dict[str, Any] = {"work_pool_name": self.POOL, "limit": 1000}
                params["offset"] = len(found)
                page = http.get("/flow-runs", params=params).raise_for_status().json()
                found += page
                if len(page) < 1000:
                    return found

    def ledger_lines(self) -> list[tuple[str, int]]:
        lines = self.ledger.read_text().split("\n")
        return [(run, int(attempt)) for run, attempt in (ln.split() for ln in lines if ln)]


def iter_limits(limits: Limits) -> Iterator[tuple[str, int]]:
    """The sampler keys and the limit each must stay within."""
    yield "pool", limits.pool
    yield "queue:capped", limits.capped_queue
    yield "deployment:limited", limits.limited_deployment
