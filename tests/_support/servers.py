"""The real Dockyard server, started as a subprocess on a free loopback port.

A server that writes a traceback to its log, or that does not stop within
:data:`STOP_TIMEOUT` of a Ctrl-C, fails the test that started it: a 5xx, a crashed
background loop and a shutdown that hangs on an open long-poll are all bugs.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from _support.cli import CLI_COMMAND, run_cli

HEALTH_TIMEOUT = 30.0
POLL_INTERVAL = 0.02
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 60
PORT_ATTEMPTS = 3


def free_port() -> int:
    """A TCP port that nothing listens on at 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """A started ``dockyard server start`` process and how to reach it."""

    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    home: Path
    database_url: str
    api_key: str | None = None
    killed: bool = field(default=False, init=False)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def client(self) -> Any:
        """A ``dockyard.client.Client`` for this server (with its API key, if any)."""
        from dockyard.client import Client

        return Client(api_url=self.api_url, api_key=self.api_key)

    def http(self, **kwargs: Any) -> httpx.Client:
        """A raw HTTP client on the API (base URL ``/api``, key sent): close it after use."""
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.api_url, headers=self.headers, **kwargs)

    def cli(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run ``dockyard *args`` pointed at this server (see :func:`run_cli`)."""
        return run_cli(*args, env=self.env, **kwargs)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def stop(self) -> None:
        """Ctrl-C the server and wait for it; kill it if it has not stopped in time."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.killed = True
            self.process.kill()
            self.process.wait()

    def problems(self) -> list[str]:
        """What went wrong in this server's life, once it has stopped."""
        found = []
        if self.killed:
            found.append(
                f"server {self.url} did not stop within {STOP_TIMEOUT} s of SIGINT and was "
                f"killed; log tail:\n{self.log_tail()}"
            )
        text = self.log()
        at = text.find("Traceback")
        if at >= 0:
            excerpt = "\n".join(text[at:].splitlines()[: LOG_TAIL_LINES * 2])
            found.append(f"server {self.url} wrote a traceback to {self.log_path}:\n{excerpt}")
        return found

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT) -> None:
        """Wait until ``GET /api/health`` answers 200; raise if the server exits or is slow."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0, trust_env=False) as http:
            while True:
                status = self.process.poll()
                if status is not None:
                    raise ServerDidNotStart(
                        f"server exited with status {status} before answering /api/health; "
                        f"log tail:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    # the answer may come from another test's server that holds the port
                    # this one failed to bind: only a server that bound it says it is ready
                    answered = http.get(f"{self.api_url}/health").status_code == 200
                    if answered and READY_LINE in self.log():
                        return
                if time.monotonic() > deadline:
                    raise ServerDidNotStart(
                        f"server did not answer /api/health within {timeout} s; "
                        f"log tail:\n{self.log_tail()}"
                    )
                time.sleep(POLL_INTERVAL)


# what `dockyard server start` prints once it holds its port (dockyard.server.serve)
READY_LINE = "Dockyard server ready"


class ServerDidNotStart(RuntimeError):
    """Raised when a started server exits, or stays silent, before it is healthy."""


class ServerFactory:
    """Starts servers for one test and stops them all when the test ends.

    Every server gets its own home and log under ``base``; they share ``database_url`` unless
    told otherwise, so a test can restart a server on the same database.
    """

    def __init__(self, base: Path, database_url: str) -> None:
        self.base = base
        self.database_url = database_url
        self.servers: list[RunningServer] = []
        self._numbers = itertools.count()

    def __call__(
        self,
        *args: str,
        host: str = "127.0.0.1",
        database_url: str | None = None,
        wait: bool = True,
        **env: str,
    ) -> RunningServer:
        """Start ``dockyard server start --host HOST --port FREE_PORT *args``.

        Args:
            args: extra command-line arguments (``--insecure``, ...).
            env: extra environment (``DOCKYARD_SERVER_API_KEY="..."``, ...), given to the server
                and to :attr:`RunningServer.env`.
            wait: wait until ``/api/health`` answers; the test fails, showing the server's log,
                if it exits or stays silent instead.
        """
        for attempt in range(1, PORT_ATTEMPTS + 1):
            server = self._spawn(args, host, database_url or self.database_url, env)
            if not wait:
                self.servers.append(server)
                return server
            problem = _wait(server)
            # The free port was free when chosen; another process may have taken it since.
            if problem and attempt < PORT_ATTEMPTS and _port_taken(server):
                continue
            self.servers.append(server)
            if problem:
                pytest.fail(problem, pytrace=False)
            return server
        raise AssertionError("unreachable")

    def _spawn(
        self, args: tuple[str, ...], host: str, database_url: str, env: Mapping[str, str]
    ) -> RunningServer:
        base = self.base / f"server-{next(self._numbers)}"
        home = base / "home"
        home.mkdir(parents=True)
        log_path = base / "server.log"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server_env = {
            **os.environ,
            "DOCKYARD_HOME": str(home),
            "DOCKYARD_DATABASE_URL": database_url,
            "PYTHONUNBUFFERED": "1",
            # automations made by a test (generated ones too) call loopback and nothing else
            "DOCKYARD_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1,localhost",
            **env,
        }
        command = [*CLI_COMMAND, "server", "start", "--host", host, "--port", str(port), *args]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                env=server_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=base,
            )
        api_key = env.get("DOCKYARD_SERVER_API_KEY")
        client_env = {**os.environ, **env, "DOCKYARD_HOME": str(home)}
        client_env["DOCKYARD_API_URL"] = f"{url}/api"
        if api_key:
            client_env["DOCKYARD_API_KEY"] = api_key
        return RunningServer(
            url=url,
            env=client_env,
            process=process,
            log_path=log_path,
            home=home,
            database_url=database_url,
            api_key=api_key,
        )

    def close(self) -> list[str]:
        """Stop every server; return what went wrong with them (empty when all was well)."""
        for server in reversed(self.servers):
            server.stop()
        return [problem for server in self.servers for problem in server.problems()]


def _wait(server: RunningServer) -> str | None:
    """Wait until ``server`` is healthy; return why it is not, if it is not."""
    try:
        server.wait_healthy()
    except ServerDidNotStart as exc:
        return f"`dockyard server start` on {server.url}: {exc}"
    return None


def _port_taken(server: RunningServer) -> bool:
    server.stop()
    return "address already in use" in server.log().lower()
