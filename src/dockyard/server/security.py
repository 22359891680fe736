"""The security baseline: a Host header allow-list, and what the API refuses to take
(writes from other sites, bodies that are not JSON, bodies over the limit). API keys and
their scopes are checked in ``server/access.py``.

All are plain ASGI middleware, so they guard every route, the UI's included.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# outside /api, yet guarded by the key like it (Prometheus sends it as a bearer token)
GUARDED_PATHS = frozenset({"/metrics"})
# the paths that need no API key (load balancers ask them)
OPEN_PATHS = frozenset({"/api/health", "/api/ready"})
API_PREFIX = "/api/"
# methods that change something: the ones a page of another site must not send us
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}
# An API key shorter than this is guessable rather than secret; 16 characters of a random
# token carry some 96 bits.
MIN_KEY_LENGTH = 16
MAKE_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
# The most an engine or a worker puts in one batch of log lines: a server takes at least this.
MIN_BODY_BYTES = 1 << 20
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def host_only(value: str) -> str:
    """``[::1]:4200`` → ``::1``; ``example.com:80`` → ``example.com``."""
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _split_host(value: str) -> tuple[str, int | None]:
    """``[::1]:4200`` → ``("::1", 4200)``; ``example.com`` → ``("example.com", None)``."""
    host = host_only(value)
    rest = value[value.find("]") + 1 :] if value.startswith("[") else value[len(host) :]
    port = rest[1:] if rest.startswith(":") else ""
    return host.lower(), int(port) if port.isdigit() else None


def same_origin(origin: str, host: str) -> bool:
    """Whether the ``Origin`` header of a request names the server it was sent to: the same
    host and port as its ``Host`` header (``Origin: null`` names none)."""
    try:
        parts = urlsplit(origin)
        origin_port = parts.port
    except ValueError:
        return False
    default = DEFAULT_PORTS.get(parts.scheme.lower())
    if not parts.hostname or default is None:
        return False
    name, port = _split_host(host)
    return (parts.hostname.lower(), origin_port or default) == (name, port or default)


def is_json(content_type: str) -> bool:
    """``application/json`` or a ``+json`` type (``application/merge-patch+json``), with or
    without parameters: none of these can leave a browser for another site unasked."""
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def reject(
    send: Send,
    status: int,
    detail: str,
    extra: Iterable[tuple[bytes, bytes]] = (),
    fields: Mapping[str, object] | None = None,
) -> None:
    """Answer ``status`` with ``{"detail": detail, **fields}`` (and the ``extra`` headers)."""
    body = json.dumps({"detail": detail, **(fields or {})}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HostAllowList:
    """Refuse requests whose Host header is not ours: no DNS rebinding from a browser."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed}
        self.any = "*" in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.any:
            host = host_only(_header(scope, b"host")).lower()
            if host not in self.allowed:
                await reject(
                    send,
                    400,
                    f"Host '{host}' is not allowed; add it to DOCKYARD_SERVER_ALLOWED_HOSTS",
                )
                return
        await self.app(scope, receive, send)


def key_problem(key: str) -> str | None:
    """What makes ``key`` unfit to be the server's API key, or None if it is fit."""
    if not key.strip():
        what = "blank"
    elif len(key) < MIN_KEY_LENGTH:
        what = f"only {len(key)} characters long (at least {MIN_KEY_LENGTH} are needed)"
    elif not all("!" <= c <= "~" for c in key):
        what = "not made of visible ASCII characters only (no spaces: it travels in a header)"
    else:
        return None
    return f"DOCKYARD_SERVER_API_KEY is {what}; make a key with: {MAKE_KEY}"


def allowed_hosts(bind_host: str, extra: str) -> set[str]:
    hosts = set(LOOPBACK_NAMES)
    if bind_host not in WILDCARDS:
        hosts.add(bind_host.strip("[]"))
    hosts.update(h.strip() for h in extra.split(",") if h.strip())
    return hosts


class RequestGuard:
    """Refuse what no client of ours sends, before a route reads a byte of the body.

    - Under ``/api``, a write (POST, PUT, PATCH, DELETE) whose ``Origin`` is another site's
      (403), or whose body is not JSON (415): a browser sends forms and ``text/plain`` to any
      site without asking it first, so without these a page of another site could pause a
      pool on a server that needs no key. A write without a body and without a content type
      passes (``curl -X POST .../pause``): browsers always send ``Origin`` with a write.
    - On every path, a body over ``max_body_bytes`` (413): refused at once when
      ``Content-Length`` says so, and while reading when it does not (a chunked body).
      Bodies are read whole before the app runs, which it does for JSON anyway.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await reject(send, *refusal)
            return
        length = headers.get(b"content-length")
        if length is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await reject(send, 413, self._too_large())
            return
        try:
            body = await self._read(receive)
        except _ClientLeft:
            return  # nobody to answer
        if body is None:
            await reject(send, 413, self._too_large())
            return
        await self.app(scope, _replay(body, receive), send)

    def _refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        if scope["method"] not in WRITES or not scope["path"].startswith(API_PREFIX):
            return None
        origin = headers.get(b"origin")
        host = headers.get(b"host", b"").decode("latin-1")
        if origin is not None and not same_origin(origin.decode("latin-1"), host):
            return 403, (
                f"refused a {scope['method']} from another site (Origin "
                f"{origin.decode('latin-1')!r}, but this server is {host!r}): the API takes "
                "writes from its own clients and pages only; a proxy in front of the server "
                "must pass the Host header through"
            )
        content_type = headers.get(b"content-type")
        if content_type is not None and not is_json(content_type.decode("latin-1")):
            return 415, (
                f"Content-Type {content_type.decode('latin-1')!r} refused: the API takes JSON "
                "only; send the body as JSON with 'Content-Type: application/json'"
            )
        length = headers.get(b"content-length", b"")
        has_body = b"transfer-encoding" in headers or (length.isdigit() and int(length) > 0)
        if content_type is None and has_body:
            return 415, (
                "a request body without a Content-Type is refused: the API takes JSON only; "
                "send it with 'Content-Type: application/json'"
            )
        return None

    def _too_large(self) -> str:
        return (
            f"the request body is larger than this server takes ({self.max_body_bytes} bytes, "
            "DOCKYARD_SERVER_MAX_BODY_BYTES): send less at once, e.g. a batch of records in "
            "several calls"
        )

    async def _read(self, receive: Receive) -> Message | None:
        """The whole body as one message, or None once it grows over the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientLeft()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}


class _ClientLeft(Exception):
    """The client went away before it had sent the whole body."""


def _replay(first: Message, receive: Receive) -> Receive:
    """``receive`` that answers ``first`` once, then whatever comes (a disconnect)."""
    pending = [first]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
