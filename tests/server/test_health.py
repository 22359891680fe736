"""The server answers its health and version routes, on SQLite and on PostgreSQL."""

from __future__ import annotations

from _support import RunningServer
from dockyard._version import __version__
from dockyard.schemas import API_VERSION


def test_health(server: RunningServer) -> None:
    with server.http() as http:
        answer = http.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_version(server: RunningServer) -> None:
    with server.http() as http:
        answer = http.get("/version")
    assert answer.status_code == 200
    assert answer.json() == {
        "server_version": __version__,
        "api_version": API_VERSION,
        "lease_seconds": 30.0,  # the engine renews and waits by the server's lease
    }
