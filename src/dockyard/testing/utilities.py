"""``dockyard_test_harness()``: a throwaway Dockyard server for the flows of a test session.

The harness starts the real server (``dockyard server start``, as a subprocess) on a free
port of 127.0.0.1, on an SQLite database in a new temporary ``DOCKYARD_HOME``, and points
this process at it for the time of the block:

- ``DOCKYARD_API_URL`` is the server's API and ``DOCKYARD_HOME`` the temporary home (so
  cached task results and profile settings start empty, and the user's stay untouched);
- ``DOCKYARD_API_KEY`` is unset (the server takes none), and 127.0.0.1 is added to
  ``NO_PROXY``, so that a proxy set for other traffic is not asked to reach it.

The SDK reads its settings at each flow run and each client it makes, so every flow run,
``Client`` and subprocess started in the block reports to that server. On the way out the
environment is as it was, the server is stopped, the SDK's connections to it are closed and
the temporary directory is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from dockyard.exceptions import DockyardError, ServerUnreachable

__all__ = ["dockyard_test_harness"]

HOST = "127.0.0.1"
PORT_ATTEMPTS = 3  # a port found free may be taken before the server binds it
POLL_SECONDS = 0.05
# what the harness sets for its block, and puts back afterwards
_ENVIRONMENT = ("DOCKYARD_API_URL", "DOCKYARD_API_KEY", "DOCKYARD_HOME", "NO_PROXY", "no_proxy")


@contextlib.contextmanager
def dockyard_test_harness(server_startup_timeout: float | None = 30) -> Iterator[None]:
    """Run the block against a new, empty Dockyard server of its own.

    ::

        @pytest.fixture(autouse=True, scope="session")
        def dockyard_server():
            with dockyard_test_harness():
                yield

    Starting a server takes a second or two: enter the harness once per test session (a
    session-scoped fixture) rather than once per test. Runs recorded by one test are seen by
    the next; the database goes away with the harness. The harness changes the process's
    environment: it is meant for one harness at a time, entered from the main thread.

    Args:
        server_startup_timeout: seconds to wait for the server to answer (None: no limit).

    Raises:
        DockyardError: the server did not start in time; the message holds its log's end.
    """
    from dockyard.sdk.deploy.local_server import stop_server

    base = Path(tempfile.mkdtemp(prefix="dockyard-test-harness-"))
    process = None
    try:
        home = base / "home"
        home.mkdir()
        process, api_url = _start(base, home, server_startup_timeout)
        with _pointed_at(api_url, home):
            yield
    finally:
        if process is not None:
            stop_server(process)
        _close_connections()
        shutil.rmtree(base, ignore_errors=True)


def _start(base: Path, home: Path, timeout: float | None) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server; return its process and API URL once it answers."""
    from dockyard.sdk.deploy.local_server import log_tail, spawn_server, stop_server

    env = {k: v for k, v in os.environ.items() if k != "DOCKYARD_SERVER_API_KEY"}
    env["DOCKYARD_HOME"] = str(home)
    env["DOCKYARD_DATABASE_URL"] = f"sqlite+aiosqlite:///{base / 'dockyard.db'}"
    log = base / "server.log"
    for _ in range(PORT_ATTEMPTS):
        port = _free_port()
        api_url = f"http://{HOST}:{port}/api"
        process = spawn_server(HOST, port, env, log)
        try:
            if _healthy(process, api_url, log, timeout):
                return process, api_url
        except BaseException:  # Ctrl-C while waiting included: leave no server behind
            stop_server(process)
            raise
        stop_server(process)
        if "address already in use" not in log.read_text(errors="replace").lower():
            break
    raise DockyardError(
        f"the test harness's Dockyard server exited before it answered; its log:\n{log_tail(log)}"
    )


def _healthy(
    process: subprocess.Popen[bytes], api_url: str, log: Path, timeout: float | None
) -> bool:
    """Wait until the server answers (True) or exits (False).

    Raises:
        DockyardError: it neither answered nor exited within ``timeout`` seconds.
    """
    from dockyard.sdk.deploy.local_server import log_tail
    from dockyard.sdk.transport import LeanTransport

    deadline = None if timeout is None else time.monotonic() + timeout
    # straight to the loopback port, whatever proxy the environment names
    transport = LeanTransport(api_url, None, timeout=5.0, attempts=1, environ={})
    try:
        while process.poll() is None:
            with contextlib.suppress(ServerUnreachable):
                transport.get("/health")
                return True
            if deadline is not None and time.monotonic() > deadline:
                raise DockyardError(
                    f"the test harness's Dockyard server did not answer at {api_url} within "
                    f"{timeout:g} s (raise server_startup_timeout on a slow machine); "
                    f"its log:\n{log_tail(log)}"
                )
            time.sleep(POLL_SECONDS)
    finally:
        transport.close()
    return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _pointed_at(api_url: str, home: Path) -> Iterator[None]:
    """Point this process's settings at the harness's server; put them back afterwards."""
    saved = {name: os.environ.get(name) for name in _ENVIRONMENT}
    # the lower-case name wins where both are set: keep what it (or else NO_PROXY) said
    bypass = saved["no_proxy"] if saved["no_proxy"] is not None else saved["NO_PROXY"]
    hosts = [h for h in (bypass or "").split(",") if h.strip()]
    if HOST not in (h.strip() for h in hosts):
        hosts.append(HOST)
    try:
        os.environ["DOCKYARD_API_URL"] = api_url
        os.environ["DOCKYARD_HOME"] = str(home)
        os.environ.pop("DOCKYARD_API_KEY", None)
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = ",".join(hosts)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _close_connections() -> None:
    """Close the SDK's idle connections (to the stopped server among them), if it made any."""
    if "dockyard.sdk.api" in sys.modules:
        from dockyard.sdk.api import close_connections

        close_connections()
