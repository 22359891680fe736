"""The Dockyard server: REST API, UI and background services.

Only ``dockyard server start`` (the CLI) and the tests import this package.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import sys
from types import FrameType

from dockyard.exceptions import DockyardError
from dockyard.settings import Settings

__all__ = ["run"]


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DockyardError(
                f"cannot listen on {host}:{port} ({exc.strerror}); is another server running "
                "there? Pick another port with --port"
            ) from None


def run(*, host: str, port: int, insecure: bool, settings: Settings) -> None:
    """Serve the API and UI until interrupted (Ctrl-C).

    Raises:
        DockyardError: the address is refused (non-loopback without an API key) or in use,
            the API key is too weak, the encryption key is not one, or the body size limit
            too small.
    """
    from dockyard.server.encryption import check_key
    from dockyard.server.security import MIN_BODY_BYTES, is_loopback, key_problem

    problem = key_problem(settings.server_api_key) if settings.server_api_key is not None else None
    if problem:
        raise DockyardError(problem)
    check_key(settings)
    if settings.server_max_body_bytes < MIN_BODY_BYTES:
        raise DockyardError(
            f"DOCKYARD_SERVER_MAX_BODY_BYTES={settings.server_max_body_bytes} is too small: "
            f"flow runs and workers send batches of log lines of up to {MIN_BODY_BYTES} bytes; "
            f"set it to at least {MIN_BODY_BYTES}"
        )
    if not is_loopback(host) and not settings.server_api_key and not insecure:
        raise DockyardError(
            f"refusing to listen on {host} without an API key: set DOCKYARD_SERVER_API_KEY "
            "(clients then set DOCKYARD_API_KEY), or pass --insecure to allow it anyway"
        )
    _check_port(host, port)

    # Importing the server makes a great many objects and next to no garbage: the cyclic
    # collector pauses meanwhile (some 8% of the start, measured), and what was loaded is
    # then frozen out of later collections.
    gc.disable()
    try:
        import uvicorn

        from dockyard.server.app import create_app

        app = create_app(settings, bind_host=host)
    finally:
        gc.freeze()
        gc.enable()

    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # wake open long-polls now, so that stopping never waits for them
            db = getattr(app.state, "db", None)
            loop = asyncio.events._get_running_loop()
            if db is not None and loop is not None:
                loop.call_soon_threadsafe(db.notifier.close)
            super().handle_exit(sig, frame)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                print(f"Dockyard server ready\n  UI:  {base}/\n  API: {base}/api", flush=True)
                print(f"  database: {_safe_url(settings.effective_database_url)}", flush=True)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
    )
    Server(config).run()
    sys.stdout.flush()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
