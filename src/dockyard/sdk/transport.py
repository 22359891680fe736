"""A lean JSON-over-HTTP transport: every call a flow run makes to the server.

The engine starts a process per run, and what it imports sits between a run's trigger and
its first line of code. This transport needs only :mod:`socket` and :mod:`json` (and
:mod:`ssl` for ``https``): HTTP/1.1 with keep-alive connections shared by the threads of a
process (the flow's, the lease keeper's, the shipper's). Errors map to the same exceptions
as :class:`dockyard.client.Client`, and retries follow the same rules: a call is tried again
after a connection failure only when sending it twice does no harm, or when it surely never
reached the server.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from dockyard._http_errors import error_for
from dockyard._version import __version__
from dockyard.exceptions import DockyardError, ServerUnreachable

__all__ = ["ATTEMPTS", "LeanTransport"]

ATTEMPTS = 4
BACKOFF = 0.1
RETRY_STATUSES = frozenset({502, 503, 504})
# The server closes a connection idle for 5 s; one idle for longer than this is not reused,
# so that a request never races the server's close.
IDLE_SECONDS = 2.0
MAX_IDLE = 4


class _Stale(Exception):
    """A reused connection failed before any byte of the answer: the server had closed it."""


class _Connection:
    """One keep-alive connection and the buffered reader of its answers."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")
        self.idle_since = time.monotonic()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class LeanTransport:
    """Sends JSON requests to the API at ``api_url``; safe to share between threads.

    Args:
        api_url: the API's base URL, e.g. ``http://127.0.0.1:4200/api``.
        api_key: sent as ``Authorization: Bearer <key>``.
        timeout: seconds to wait for a connection or an answer.
        attempts: how many times a call is tried at most (1: never retried).
    """

    def __init__(
        self,
        api_url: str,
        api_key: str | None,
        *,
        timeout: float = 30.0,
        attempts: int = ATTEMPTS,
    ) -> None:
        url = api_url.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DockyardError(
                f"invalid API URL {api_url!r}: it must start with http:// or https://, "
                "e.g. http://127.0.0.1:4200/api (set DOCKYARD_API_URL)"
            )
        self.api_url = url
        self.attempts = max(1, attempts)
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._netloc = parts.netloc.rpartition("@")[2]
        self._base = parts.path
        self._api_key = api_key
        self._timeout = timeout
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """Send a GET; return the decoded answer."""
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, *, idempotent: bool = True) -> Any:
        """Send a POST of ``body`` as JSON; return the decoded answer."""
        return self.request("POST", path, body, idempotent=idempotent)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        idempotent: bool = True,
        attempts: int | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON answer (None for an empty one).

        Args:
            idempotent: sending the call twice does no harm (reads, transitions carrying an
                idempotency key, upserts); only such calls are retried once they may have
                reached the server.
            attempts: overrides the transport's ``attempts`` for this call.

        Raises:
            ServerUnreachable: no answer after the retries.
            ApiError: the server answered with an error status (a subclass per status).
        """
        if params:
            query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
            path = f"{path}?{query}" if query else path
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        request = self._head(method, path, len(payload)) + payload
        tries = self.attempts if attempts is None else max(1, attempts)
        for attempt in range(1, tries + 1):
            try:
                status, data = self._send(request)
            except OSError as exc:
                sent = not isinstance(exc, ConnectionRefusedError | socket.gaierror)
                if attempt == tries or (sent and not idempotent):
                    raise ServerUnreachable(self.api_url, _reason(exc)) from exc
            else:
                if 200 <= status < 300:
                    return json.loads(data) if data.strip() else None
                if attempt == tries or not idempotent or status not in RETRY_STATUSES:
                    raise error_for(status, data, method, path)
            time.sleep(BACKOFF * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the idle connections (later calls open new ones)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    # ------------------------------------------------------------ connections

    def _head(self, method: str, path: str, length: int) -> bytes:
        lines = [
            f"{method} {self._base}{path} HTTP/1.1",
            f"Host: {self._netloc}",
            "Accept: application/json",
            f"User-Agent: dockyard-sdk/{__version__}",
        ]
        if length or method != "GET":
            lines += ["Content-Type: application/json", f"Content-Length: {length}"]
        if self._api_key:
            lines.append(f"Authorization: Bearer {self._api_key}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _send(self, request: bytes) -> tuple[int, bytes]:
        connection = self._take_idle()
        if connection is not None:
            try:
                return self._exchange(connection, request)
            except _Stale:
                pass  # the request never reached a live server: send it on a new connection
        try:
            return self._exchange(self._connect(), request)
        except _Stale as exc:
            raise ConnectionResetError("the server closed the connection") from exc

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if now - connection.idle_since < IDLE_SECONDS:
                    return connection
                connection.close()
        return None

    def _connect(self) -> _Connection:
        sock = socket.create_connection((self._host, self._port), self._timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls:
            import ssl

            context = ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=self._host)
        return _Connection(sock)

    def _exchange(self, connection: _Connection, request: bytes) -> tuple[int, bytes]:
        """Send ``request`` and read the answer; keep the connection if the server does."""
        try:
            connection.sock.sendall(request)
            status_line = connection.reader.readline(65537)
        except TimeoutError:
            connection.close()
            raise
        except OSError as exc:
            connection.close()
            raise _Stale() from exc
        if not status_line:
            connection.close()
            raise _Stale()
        try:
            status, headers, body = _read_answer(connection.reader, status_line)
        except (OSError, ValueError) as exc:
            connection.close()
            if isinstance(exc, OSError):
                raise
            raise ConnectionError(f"not an HTTP answer: {exc}") from exc
        closing = headers.get("connection", "").lower() == "close"
        if closing or status_line.startswith(b"HTTP/1.0") or not self._keep(connection):
            connection.close()
        return status, body

    def _keep(self, connection: _Connection) -> bool:
        connection.idle_since = time.monotonic()
        with self._lock:
            if len(self._idle) >= MAX_IDLE:
                return False
            self._idle.append(connection)
        return True


def _read_answer(reader: Any, status_line: bytes) -> tuple[int, dict[str, str], bytes]:
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(repr(status_line[:80]))
    headers: dict[str, str] = {}
    while True:
        line = reader.readline(65537)
        if not line:
            raise ConnectionResetError("the server closed the connection mid-answer")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _read_chunked(reader)
    else:
        body = _read_exactly(reader, int(headers.get("content-length", "0")))
    return int(parts[1]), headers, body


def _read_exactly(reader: Any, size: int) -> bytes:
    data: bytes = reader.read(size) if size else b""
    if len(data) < size:
        raise ConnectionResetError("the server closed the connection mid-answer")
    return data


def _read_chunked(reader: Any) -> bytes:
    chunks: list[bytes] = []
    while True:
        size = int(reader.readline(65537).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while reader.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        chunks.append(_read_exactly(reader, size))
        reader.readline(65537)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
