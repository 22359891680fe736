"""A tiny HTTP proxy on 127.0.0.1 for tests: it relays, records what it relayed, and can drop.

It takes plain HTTP requests in absolute form (``GET http://host:port/path HTTP/1.1``) and
``CONNECT host:port`` tunnels, like any forward proxy. While ``dropping`` is set it reads
each request and closes the connection without an answer (a proxy whose upstream is gone),
recording the request in ``dropped``.
"""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import socketserver
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Relayed:
    """One request the proxy took: ``target`` is the absolute URL, or ``host:port``."""

    method: str
    target: str
    headers: dict[str, str]


@dataclass
class HttpProxy:
    relayed: list[Relayed] = field(default_factory=list)
    dropped: list[Relayed] = field(default_factory=list)
    dropping: bool = False

    def __post_init__(self) -> None:
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(OSError):
                    while proxy._one(self.rfile, self.connection):
                        pass

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def requests_to(self, path_part: str, *, dropped: bool = False) -> list[Relayed]:
        seen = self.dropped if dropped else self.relayed
        return [r for r in list(seen) if path_part in r.target]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------ relaying

    def _one(self, rfile: object, client: socket.socket) -> bool:
        """Relay one request from ``client``; False when the connection is done."""
        line = rfile.readline()  # type: ignore[attr-defined]
        if not line:
            return False
        method, target, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (header := rfile.readline()) not in (b"\r\n", b"\n", b""):  # type: ignore[attr-defined]
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = rfile.read(int(headers.get("content-length", "0")))  # type: ignore[attr-defined]
        request = Relayed(method, target, headers)
        if self.dropping:
            self.dropped.append(request)
            return False
        self.relayed.append(request)
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            tunnel = socket.create_connection((host.strip("[]"), int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _pipe(client, tunnel)
            return False
        parts = urlsplit(target)
        upstream = http.client.HTTPConnection(str(parts.hostname), parts.port or 80, timeout=60)
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            kept = {k: v for k, v in headers.items() if not k.startswith(("connection", "proxy-"))}
            upstream.request(method, path, body or None, kept)
            answer = upstream.getresponse()
            data = answer.read()
            head = [f"HTTP/1.1 {answer.status} {answer.reason}"]
            head += [
                f"{name}: {value}"
                for name, value in answer.getheaders()
                if name.lower() not in ("content-length", "transfer-encoding", "connection")
            ]
            head.append(f"Content-Length: {len(data)}")
        finally:
            upstream.close()
        client.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
        return True


def _pipe(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    try:
        while True:
            ready, _, _ = select.select([one, other], [], [], 30)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                (other if sock is one else one).sendall(data)
    finally:
        other.close()
