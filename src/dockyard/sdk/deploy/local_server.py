"""A server for ``serve()`` when none answers: ``dockyard server start`` as a subprocess.

``serve()`` needs a server to register its deployments with and to claim their runs from.
When nothing answers at the API URL and that URL is on this machine (the default,
``http://127.0.0.1:4200/api``, or any loopback address and port), it starts one there on
the default SQLite database, and stops it when serving stops.

:func:`spawn_server` and :func:`stop_server` also start and stop the throwaway server of
:func:`dockyard.testing.dockyard_test_harness`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from dockyard.exceptions import DockyardError, ServerUnreachable
from dockyard.sdk.transport import LeanTransport
from dockyard.settings import Settings

__all__ = ["ensure_server", "log_tail", "spawn_server", "stop_server", "ui_url"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
POLL_SECONDS = 0.1
LOG_TAIL_LINES = 20


def ui_url(api_url: str) -> str:
    """The UI's address for an API URL: ``http://127.0.0.1:4200/api`` → ``.../``."""
    return api_url.rstrip("/").removesuffix("/api") + "/"


def is_up(settings: Settings) -> bool:
    """Whether a server answers ``GET /health`` at ``settings.api_url``."""
    transport = LeanTransport(settings.api_url, settings.api_key, timeout=5.0, attempts=1)
    try:
        transport.get("/health")
    except ServerUnreachable:
        return False
    finally:
        transport.close()
    return True


@contextlib.contextmanager
def ensure_server(settings: Settings) -> Iterator[subprocess.Popen[bytes] | None]:
    """Within the block a server answers at ``settings.api_url``.

    Yields the server process this started, or None when one was already running.

    Raises:
        ServerUnreachable: nothing answers and the URL is not on this machine.
        DockyardError: the server started here did not become healthy.
    """
    if is_up(settings):
        yield None
        return
    parts = urlsplit(settings.api_url)
    if parts.hostname not in LOOPBACK or parts.path.rstrip("/") != "/api":
        raise ServerUnreachable(settings.api_url, "nothing answers there")
    process = _start(settings, parts.hostname, parts.port or 80)
    try:
        yield process
    finally:
        stop_server(process)


def _log_path(settings: Settings) -> Path:
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings.home / "serve-server.log"


def spawn_server(
    host: str, port: int, env: Mapping[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """Start ``dockyard server start --host HOST --port PORT`` with ``env``, its output in
    ``log``; it does not wait for the server to answer. Stop it with :func:`stop_server`."""
    command = [sys.executable, "-m", "dockyard.cli.main", "server", "start"]
    command += ["--host", host, "--port", str(port)]
    with log.open("wb") as output:
        # its own session: a Ctrl-C meant for its caller must not stop the server under it
        # before the caller has stopped using it
        return subprocess.Popen(
            command,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _start(settings: Settings, host: str, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if settings.api_key:
        env["DOCKYARD_SERVER_API_KEY"] = settings.api_key
    log = _log_path(settings)
    process = spawn_server(host, port, env, log)
    try:
        _wait_healthy(settings, process, log)
    except BaseException:  # Ctrl-C while waiting included: leave no server behind
        stop_server(process)
        raise
    print(
        f"Started a Dockyard server for this process (it stops with it): "
        f"UI {ui_url(settings.api_url)} (log: {log})",
        flush=True,
    )
    return process


def _wait_healthy(settings: Settings, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not is_up(settings):
        if process.poll() is not None or time.monotonic() > deadline:
            raise DockyardError(
                f"the Dockyard server started for serve() at {settings.api_url} did not come "
                f"up; its log ({log}):\n{log_tail(log)}"
            )
        time.sleep(POLL_SECONDS)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C a server started here and wait for it; kill it if it has not stopped in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(path: Path) -> str:
    """The last lines of a server's log (``(no log)`` when it cannot be read)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-LOG_TAIL_LINES:])
