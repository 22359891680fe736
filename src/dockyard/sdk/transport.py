"""A lean JSON-over-HTTP transport for the engine's few calls before a flow starts.

The engine starts a process per run, and its first calls (read the run and its deployment,
move the run to RUNNING) sit between the trigger and the flow's first line. This transport
needs only :mod:`socket` and :mod:`json`: one HTTP/1.1 request per connection, no pooling.
Errors map to the same exceptions as :class:`dockyard.client.Client`. Everything after the
start goes through the client.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from dockyard._version import __version__
from dockyard.exceptions import (
    ApiError,
    Conflict,
    DockyardError,
    InvalidInput,
    NotFound,
    ServerError,
    ServerUnreachable,
    Unauthorized,
)

__all__ = ["LeanTransport"]

_ERRORS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    422: InvalidInput,
}
ATTEMPTS = 4
BACKOFF = 0.1


class LeanTransport:
    """Sends JSON requests to the API at ``api_url``.

    Calls are retried on connection failures (every call the engine makes may be sent twice:
    reads, and state transitions carrying an idempotency key).
    """

    def __init__(self, api_url: str, api_key: str | None, timeout: float = 30.0) -> None:
        url = api_url.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DockyardError(
                f"invalid API URL {api_url!r}: it must start with http:// or https://, "
                "e.g. http://127.0.0.1:4200/api (set DOCKYARD_API_URL)"
            )
        self.api_url = url
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._netloc = parts.netloc.rpartition("@")[2]
        self._base = parts.path
        self._api_key = api_key
        self._timeout = timeout

    def get(self, path: str) -> Any:
        """Send a GET; return the decoded answer."""
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        """Send a POST of ``body`` as JSON; return the decoded answer."""
        return self.request("POST", path, body)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request and return the decoded JSON answer (None for an empty one).

        Raises:
            ServerUnreachable: no answer after the retries.
            ApiError: the server answered with an error status (a subclass per status).
        """
        payload = b"" if body is None else json.dumps(body).encode()
        request = self._head(method, path, len(payload)) + payload
        for attempt in range(1, ATTEMPTS + 1):
            try:
                raw = self._exchange(request)
                break
            except OSError as exc:
                if attempt == ATTEMPTS:
                    raise ServerUnreachable(self.api_url, str(exc) or type(exc).__name__) from exc
                time.sleep(BACKOFF * 2 ** (attempt - 1))
        status, data = _parse_response(raw)
        if 200 <= status < 300:
            return json.loads(data) if data.strip() else None
        raise _error(status, data, f"{method} {path}")

    def _head(self, method: str, path: str, length: int) -> bytes:
        lines = [
            f"{method} {self._base}{path} HTTP/1.1",
            f"Host: {self._netloc}",
            "Accept: application/json",
            f"User-Agent: dockyard-engine/{__version__}",
            "Connection: close",
        ]
        if length or method != "GET":
            lines += ["Content-Type: application/json", f"Content-Length: {length}"]
        if self._api_key:
            lines.append(f"Authorization: Bearer {self._api_key}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _exchange(self, request: bytes) -> bytes:
        sock = socket.create_connection((self._host, self._port), self._timeout)
        try:
            if self._tls:
                import ssl

                context = ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=self._host)
            sock.sendall(request)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            sock.close()
        return b"".join(chunks)


def _parse_response(raw: bytes) -> tuple[int, bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if not sep or len(status_line) < 2 or not status_line[1].isdigit():
        raise OSError(f"not an HTTP answer: {raw[:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return int(status_line[1]), body


def _dechunk(body: bytes) -> bytes:
    out = []
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        body = rest[size + 2 :]
    return b"".join(out)


def _error(status: int, data: bytes, what: str) -> ApiError:
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"detail": data.decode(errors="replace")[:200] or f"HTTP {status}"}
    detail = body.get("detail")
    if not isinstance(detail, str):
        body = {**body, "detail": f"HTTP {status} answering {what}"}
    cls = _ERRORS.get(status) or (ServerError if status >= 500 else ApiError)
    message = str(body["detail"])
    hint = body.get("hint")
    return cls(status, f"{message}\n{hint}" if hint else message, body)
