"""The security baseline: an optional API key and a Host header allow-list.

Both are plain ASGI middleware, so they guard every route, the UI's included.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/api/health"})
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


async def _reject(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
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
                await _reject(
                    send,
                    400,
                    f"Host '{host}' is not allowed; add it to DOCKYARD_SERVER_ALLOWED_HOSTS",
                )
                return
        await self.app(scope, receive, send)


class ApiKey:
    """Require ``Authorization: Bearer <key>`` on every API route but the health check."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.expected = f"Bearer {key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/api") and path not in OPEN_PATHS:
            given = _header(scope, b"authorization").encode("latin-1")
            if not hmac.compare_digest(given, self.expected):
                await _reject(
                    send,
                    401,
                    "missing or wrong API key: send 'Authorization: Bearer <key>' "
                    "(clients read DOCKYARD_API_KEY)",
                )
                return
        await self.app(scope, receive, send)


def allowed_hosts(bind_host: str, extra: str) -> set[str]:
    hosts = set(LOOPBACK_NAMES)
    if bind_host not in WILDCARDS:
        hosts.add(bind_host.strip("[]"))
    hosts.update(h.strip() for h in extra.split(",") if h.strip())
    return hosts
