"""A tiny HTTP/1.1 server in a thread, answering what a test tells it, for transport tests.

It speaks keep-alive, counts connections and records requests, and can close a connection
after an answer without saying so (as a server does with an idle connection). Given a server
``tls`` context it speaks HTTPS.
"""

from __future__ import annotations

import json
import socketserver
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    chunked: bool = False
    close_after: bool = False  # close the connection after answering, without a header
    raw: bytes | None = None  # sent as is instead of an answer


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeServer:
    answer: Callable[[Request], Answer] = lambda request: Answer(200, {"ok": True})
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    tls: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                fake.connections += 1
                while self._one():
                    pass

            def _one(self) -> bool:
                line = self.rfile.readline()
                if not line:
                    return False
                method, path, _ = line.decode().split(" ", 2)
                headers = {}
                while (header := self.rfile.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                data = self.rfile.read(int(headers.get("content-length", "0")))
                request = Request(method, path, headers, json.loads(data) if data else None)
                fake.requests.append(request)
                answer = fake.answer(request)
                self.wfile.write(answer.raw if answer.raw is not None else _encode(answer))
                self.wfile.flush()
                return not answer.close_after

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{port}/api"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _encode(answer: Answer) -> bytes:
    body = b"" if answer.body is None else json.dumps(answer.body).encode()
    head = [f"HTTP/1.1 {answer.status} X", "Content-Type: application/json"]
    if answer.chunked:
        head.append("Transfer-Encoding: chunked")
        half = len(body) // 2
        chunks = [body[:half], body[half:]]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c) + b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload
