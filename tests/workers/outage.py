"""A TCP relay in front of a server, to make it unreachable and reachable again in a test.

Workers and their runs talk to the relay's URL; :meth:`Relay.down` closes every connection
it carries and refuses new ones (each is accepted and closed at once, counted in
``refused``) until :meth:`Relay.up`. The server behind it keeps running on its database, as
it would behind a network that fails.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class Relay:
    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.refused = 0
        self._up = True
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/api"

    def down(self) -> None:
        """Cut every connection, and refuse new ones."""
        self._up = False
        with self._lock:
            cut, self._open = self._open, set()
        for sock in cut:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def up(self) -> None:
        self._up = True

    def close(self) -> None:
        self._closed = True
        self.down()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up:
                self.refused += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, one: socket.socket, other: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([one, other], [], [])
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (other if sock is one else one).sendall(data)
        except OSError:
            return
        finally:
            with self._lock:
                self._open -= {one, other}
            one.close()
            other.close()
