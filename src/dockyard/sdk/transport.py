"""A lean JSON-over-HTTP transport: every call a flow run makes to the server.

The engine starts a process per run, and what it imports sits between a run's trigger and
its first line of code. This transport needs only :mod:`socket` and :mod:`json` (and
:mod:`ssl` for ``https``): HTTP/1.1 with keep-alive connections shared by the threads of a
process (the flow's, the lease keeper's, the shipper's). Errors map to the same exceptions
as :class:`dockyard.client.Client`, and retries follow the same rules: a call is tried again
after a connection failure only when sending it twice does no harm, or when it surely never
reached the server.

Proxies from the environment follow the rules of the HTTP client the CLI and workers use
(:func:`proxy_for`), so that a run reaches the server wherever its worker does: plain
``http`` goes through the proxy with absolute request targets, ``https`` through a
``CONNECT`` tunnel.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from dockyard._http_errors import error_for
from dockyard._version import __version__
from dockyard.exceptions import DockyardError, ServerUnreachable

__all__ = ["ATTEMPTS", "LeanTransport", "Proxy", "proxy_for"]

ATTEMPTS = 4
BACKOFF = 0.1
RETRY_STATUSES = frozenset({502, 503, 504})
# The server closes a connection idle for 5 s; one idle for longer than this is not reused,
# so that a request never races the server's close.
IDLE_SECONDS = 2.0
MAX_IDLE = 4


class _Stale(Exception):
    """A reused connection failed before any byte of the answer: the server had closed it."""


class ProxyRefused(ConnectionError):
    """The proxy would not open a tunnel to the server (or cannot be used): nothing was sent."""


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
        environ: where ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` are
            read (upper or lower case), once (default: the process's environment).
    """

    def __init__(
        self,
        api_url: str,
        api_key: str | None,
        *,
        timeout: float = 30.0,
        attempts: int = ATTEMPTS,
        environ: Mapping[str, str] | None = None,
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
        env = os.environ if environ is None else environ
        proxy = proxy_for(parts.scheme, self._host, parts.port, env)
        self.proxy = Proxy.parse(proxy) if proxy else None
        # plain HTTP through a proxy names the whole URL; a tunnel carries the usual path
        self._prefix = f"http://{self._netloc}" if self.proxy and not self._tls else ""

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
        timeout: float | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON answer (None for an empty one).

        Args:
            idempotent: sending the call twice does no harm (reads, transitions carrying an
                idempotency key, upserts); only such calls are retried once they may have
                reached the server.
            attempts: overrides the transport's ``attempts`` for this call.
            timeout: overrides the transport's ``timeout`` for this call's waits.

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
        wait = self._timeout if timeout is None else max(0.01, timeout)
        for attempt in range(1, tries + 1):
            try:
                status, data = self._send(request, wait)
            except OSError as exc:
                sent = not isinstance(exc, ConnectionRefusedError | socket.gaierror | ProxyRefused)
                if attempt == tries or (sent and not idempotent):
                    raise ServerUnreachable(self.api_url, _reason(exc)) from exc
            else:
                if 200 <= status < 300:
                    return json.loads(data) if data.strip() else None
                if status == 429 and attempt < tries:
                    # refused by the rate limit before the server acted: any call may retry
                    time.sleep(max(BACKOFF * 2 ** (attempt - 1), _retry_after(data)))
                    continue
                if attempt == tries or not idempotent or status not in RETRY_STATUSES:
                    raise error_for(status, data, method, path)
                if status == 503:  # the server's database is unreachable: wait as asked
                    time.sleep(max(BACKOFF * 2 ** (attempt - 1), _retry_after(data)))
                    continue
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
            f"{method} {self._prefix}{self._base}{path} HTTP/1.1",
            f"Host: {self._netloc}",
            "Accept: application/json",
            f"User-Agent: dockyard-sdk/{__version__}",
        ]
        if length or method != "GET":
            lines += ["Content-Type: application/json", f"Content-Length: {length}"]
        if self._api_key:
            lines.append(f"Authorization: Bearer {self._api_key}")
        if self._prefix and self.proxy is not None and self.proxy.authorization:
            lines.append(f"Proxy-Authorization: {self.proxy.authorization}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _send(self, request: bytes, timeout: float) -> tuple[int, bytes]:
        connection = self._take_idle()
        if connection is not None:
            try:
                connection.sock.settimeout(timeout)
                return self._exchange(connection, request)
            except _Stale:
                pass  # the request never reached a live server: send it on a new connection
        try:
            return self._exchange(self._connect(timeout), request)
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

    def _connect(self, timeout: float) -> _Connection:
        proxy = self.proxy
        if proxy is None:
            sock = socket.create_connection((self._host, self._port), timeout)
        else:
            if proxy.problem:
                raise ProxyRefused(proxy.problem)
            sock = socket.create_connection((proxy.host, proxy.port), timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls:
                if proxy is not None:
                    self._tunnel(sock, proxy)
                import ssl

                context = ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _tunnel(self, sock: socket.socket, proxy: Proxy) -> None:
        """Ask the proxy for a tunnel to the server (``CONNECT``); TLS then runs inside it."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        target = f"{host}:{self._port}"
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if proxy.authorization:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        # Read byte by byte up to the blank line: what follows is the server's TLS, which
        # must be left on the socket for the TLS layer.
        head = b""
        while not head.endswith(b"\r\n\r\n") and not head.endswith(b"\n\n"):
            byte = sock.recv(1)
            if not byte or len(head) > 65536:
                raise ProxyRefused(f"the proxy at {proxy.address} closed the tunnel to {target}")
            head += byte
        status_line = head.split(b"\n", 1)[0].decode("latin-1").strip()
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[1].startswith("2"):
            raise ProxyRefused(
                f"the proxy at {proxy.address} refused a tunnel to {target}: {status_line!r}"
            )

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


def _retry_after(data: bytes) -> float:
    """The ``retry_after`` seconds of a 429 or 503 answer's body (at most a minute), else 0."""
    try:
        seconds = json.loads(data).get("retry_after", 0)
    except (ValueError, AttributeError):
        return 0.0
    return min(float(seconds), 60.0) if isinstance(seconds, int | float) else 0.0


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


# ---------------------------------------------------------------- proxies


class Proxy:
    """An HTTP proxy the transport goes through: ``http://[user:password@]host[:port]``.

    ``problem`` says why it cannot be used (another scheme): connecting then fails with that
    reason rather than going around the proxy the environment asks for.
    """

    def __init__(self, url: str, host: str, port: int, authorization: str | None) -> None:
        self.url = url
        self.host = host
        self.port = port
        self.authorization = authorization
        self.problem: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, url: str) -> Proxy:
        """Read a proxy URL as the environment gives it (no scheme means ``http://``)."""
        if "://" not in url:
            url = f"http://{url}"
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        proxy = cls(shown, parts.hostname or "", port or 80, None)
        if parts.username is not None:
            import binascii

            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            proxy.authorization = "Basic " + binascii.b2a_base64(pair, newline=False).decode()
        if parts.scheme.lower() != "http" or not parts.hostname:
            proxy.problem = (
                f"the proxy {shown} cannot be used by a flow run: it reaches the server "
                "through http:// proxies only (set HTTP_PROXY/HTTPS_PROXY to an http:// "
                "proxy, or add the server's host to NO_PROXY)"
            )
        return proxy


def _setting(environ: Mapping[str, str], name: str) -> str:
    """``name_proxy`` from the environment: the lower-case variable wins, even when empty."""
    lower = environ.get(f"{name}_proxy")
    if lower is not None:
        return lower.strip()
    if name == "http" and "REQUEST_METHOD" in environ:
        # in a CGI process HTTP_PROXY may come from a request's "Proxy:" header
        return ""
    return environ.get(f"{name.upper()}_PROXY", "").strip()


# A rule: scheme ("" for any), host pattern ("" for any; "*x" for x and its subdomains,
# "*.x" for its subdomains only), port (None for any), and the proxy (None: go direct).
_Rule = tuple[str, str, int | None, str | None]


def _is_ip(text: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
        except (OSError, ValueError):
            continue
        return True
    return False


def _no_proxy_rule(entry: str) -> _Rule | None:
    """The rule a ``NO_PROXY`` entry stands for (None: an entry that cannot be read)."""
    address = entry.split("/", 1)[0]
    if "://" in entry:
        pattern = entry
    elif _is_ip(address):
        # an address matches itself only; a /prefix (a network) is not expanded
        host = address.strip("[]")
        return ("", host.lower(), None, None)
    elif entry.lower() == "localhost":
        pattern = f"all://{entry}"
    else:
        pattern = f"all://*{entry}"
    parts = urlsplit(pattern)
    try:
        port = parts.port
    except ValueError:
        return None
    scheme = "" if parts.scheme == "all" else parts.scheme
    host = "" if parts.hostname in (None, "*") else str(parts.hostname)
    return (scheme, host, port, None)


def _matches(rule: _Rule, scheme: str, host: str, port: int | None) -> bool:
    rule_scheme, pattern, rule_port, _ = rule
    if rule_scheme and rule_scheme != scheme:
        return False
    if rule_port is not None and rule_port != port:
        return False
    if not pattern:
        return True
    if pattern.startswith("*."):
        domain = pattern[1:]
        return host.endswith(domain) and len(host) > len(domain)
    if pattern.startswith("*"):
        domain = pattern[1:]
        return host == domain or host.endswith(f".{domain}")
    return host == pattern


def proxy_for(scheme: str, host: str, port: int | None, environ: Mapping[str, str]) -> str | None:
    """The proxy URL for requests to ``scheme://host:port``, or None to go direct.

    The rules of the HTTP client the CLI and workers use: ``http_proxy``, ``https_proxy``
    and ``all_proxy`` (upper or lower case; lower case wins) name the proxy for a scheme or
    for both; ``no_proxy`` lists what goes direct: ``*`` (everything), a host or domain
    (``example.com`` is it and its subdomains, ``.example.com`` its subdomains only,
    optionally with ``:port``), an IP address, ``localhost``, or a URL (``http://host``).
    The most specific rule wins: one with a port, then the longest host, then a scheme.
    """
    rules: dict[str, _Rule] = {}
    for name in ("http", "https", "all"):
        value = _setting(environ, name)
        if value:
            rules[f"{name}://"] = ("" if name == "all" else name, "", None, value)
    if not rules:
        return None
    for entry in _setting(environ, "no").split(","):
        entry = entry.strip()
        if entry == "*":
            return None
        rule = _no_proxy_rule(entry) if entry else None
        if rule is not None:
            key = entry if "://" in entry else f"all://{entry}"
            rules[key] = rule
    default = {"http": 80, "https": 443}.get(scheme)
    wanted = None if port == default else port
    host = host.lower()
    ordered = sorted(rules.values(), key=lambda r: (r[2] is None, -len(r[1]), -len(r[0])))
    for rule in ordered:
        if _matches(rule, scheme, host, wanted):
            return rule[3]
    return None
