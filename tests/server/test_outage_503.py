"""A database outage: the server answers 503 with Retry-After (never a 500), says so in its
health and readiness, and answers again once the database is back.

The server reaches PostgreSQL through a TCP proxy on loopback that the test opens and
closes: closing it drops every connection and refuses new ones, as a lost database host
would, without touching the shared cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout

from _support import wait_until
from dockyard.server.db import unreachable
from dockyard.server.notify import ListenerTimers, Notifier, PostgresListener


class Proxy:
    """Forwards connections on a loopback port to ``upstream``; :meth:`cut` drops them all
    and stops listening, :meth:`restore` listens again on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._acceptor: threading.Thread | None = None
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            listener.close()
        if self._acceptor is not None:
            self._acceptor.join()  # no connection is added after this
            self._acceptor = None
        with self._lock:
            dropped, self._sockets = self._sockets, set()
        for sock in dropped:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        with self._lock:
            pumps, self._threads = self._threads, []
        for thread in pumps:
            thread.join()

    def _pumps(self, client: socket.socket, server: socket.socket) -> None:
        with self._lock:
            self._sockets |= {client, server}
            for source, target in ((client, server), (server, client)):
                thread = threading.Thread(target=self._pump, args=(source, target), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            self._pumps(client, server)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


@pytest.fixture
def proxy(db_url: str):
    url = make_url(db_url)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.restore()
    try:
        yield proxy
    finally:
        proxy.cut()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_database_outage_answers_503_then_recovers(db_url, proxy, server_factory) -> None:
    through_proxy = make_url(db_url).set(port=proxy.port).render_as_string(hide_password=False)
    server = server_factory(database_url=through_proxy)
    with server.http() as http:
        assert http.get("/ready").status_code == 200
        assert http.get("/work-pools").status_code == 200

        proxy.cut()
        ready = http.get("/ready")
        assert ready.status_code == 503, ready.text
        assert ready.headers["retry-after"].isdigit()
        assert "database" in ready.json()["detail"]
        listed = http.get("/work-pools")
        assert listed.status_code == 503, listed.text
        assert listed.headers["retry-after"].isdigit()
        assert "database is unreachable" in listed.json()["detail"]
        made = http.post("/work-pools", json={"name": "pool", "type": "process"})
        assert made.status_code == 503, made.text
        health = http.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["database"] == "unreachable"

        proxy.restore()
        wait_until(lambda: http.get("/ready").status_code == 200, 30, "ready again")
        made = http.post("/work-pools", json={"name": "pool", "type": "process"})
        assert made.status_code == 201, made.text
        assert http.get("/work-pools").status_code == 200

        def listening_again() -> bool:
            state = http.get("/health").json()
            return state["status"] == "ok" and state["listener"]["reconnects"] >= 1

        wait_until(listening_again, 30, "the listener reconnected")


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_listener_wakes_on_its_timer_while_down_and_reconnects(db_url, proxy) -> None:
    url = make_url(db_url).set(drivername="postgresql", port=proxy.port)
    notifier = Notifier()
    timers = ListenerTimers(fallback=0.05, check=1.0, retry_first=0.05, retry_max=0.2)
    listener = PostgresListener(url.render_as_string(hide_password=False), notifier, timers)
    await listener.start()
    try:
        assert listener.state.connected
        await asyncio.to_thread(proxy.cut)
        # nothing notifies while it is down: only the fallback timer can wake these waits
        for _ in range(3):
            armed = notifier.arm()
            await notifier.wait(30, armed)
            assert armed.is_set()
        assert not listener.state.connected
        await asyncio.to_thread(proxy.restore)

        async def reconnected() -> None:
            while not listener.state.connected:
                await notifier.wait(30)

        await asyncio.wait_for(reconnected(), 30)
        assert listener.state.reconnects == 1
    finally:
        await listener.stop()


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)"), True),
        (OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 1)"), True),
        (TimeoutError(), True),
        (SQLAlchemyTimeout("QueuePool limit of size 10 overflow 20 reached"), True),
        (DBAPIError("SELECT 1", None, Exception("gone"), connection_invalidated=True), True),
        (FileNotFoundError(2, "No such file or directory"), False),
        (ValueError("a bug"), False),
        (DBAPIError("SELECT x", None, Exception("column x does not exist")), False),
    ],
)
def test_what_counts_as_an_outage(error: BaseException, outage: bool) -> None:
    assert unreachable(error) is outage
    try:
        try:
            raise error
        except BaseException as inner:
            raise RuntimeError("while answering") from inner
    except RuntimeError as wrapped:
        assert unreachable(wrapped) is outage  # found through what caused it


def test_clients_wait_as_a_503_asks() -> None:
    from dockyard.client._core import Call, RetryPolicy

    policy = RetryPolicy()
    read = Call("GET", "/work-pools", parse=lambda answer: answer)
    assert policy.delay(read, 1, status=503, retry_after="2") == 2.0
    assert policy.delay(read, 1, status=503) == policy.backoff  # no header: the backoff
    create = Call("POST", "/work-pools", parse=lambda answer: answer, idempotent=False)
    assert policy.delay(create, 1, status=503, retry_after="2") is None  # it may have acted
