"""Other hosts, made on this one: network namespaces joined to the test's namespace by veths.

Every namespace gets a veth pair on its own /30 from 198.18.0.0/15 (the range set aside for
network tests): the host side holds ``.1``, the namespace side ``.2`` with a default route
through ``.1``. Names carry a random tag, so runs of the tests never meet, and
:meth:`Network.close` removes every namespace and veth it made, even after a failure.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import secrets
import subprocess
from dataclasses import dataclass

NETWORK = ipaddress.ip_network("198.18.0.0/15")
BLOCK = 4  # addresses in a /30


def ip(*args: str) -> None:
    """Run ``ip ARGS``; raise with its message if it fails."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


@dataclass(frozen=True)
class Namespace:
    """A namespace and its link to the test's own namespace."""

    name: str
    host_if: str
    ns_if: str
    host_ip: str
    ns_ip: str

    @property
    def prefix(self) -> tuple[str, ...]:
        """The command prefix that runs a program inside this namespace."""
        return ("ip", "netns", "exec", self.name)

    def cut(self) -> None:
        """Take the namespace's side of the link down: nothing gets in or out."""
        ip("-n", self.name, "link", "set", self.ns_if, "down")

    def black_hole(self) -> None:
        """Drop, without a word, everything the namespace sends to the test's namespace: the
        other side's packets get in but no answer comes out, so its connections neither
        fail nor get refused; they wait (a host that vanished, a split network). With the
        link down instead, the host side loses its carrier and fails at once."""
        ip("-n", self.name, "route", "add", "blackhole", f"{self.host_ip}/32")

    def lift_black_hole(self) -> None:
        ip("-n", self.name, "route", "del", "blackhole", f"{self.host_ip}/32")

    def restore(self) -> None:
        ip("-n", self.name, "link", "set", self.ns_if, "up")
        # taking the link down dropped the route through it
        ip("-n", self.name, "route", "replace", "default", "via", self.host_ip)


class Network:
    """Namespaces for one test; use as a context manager (everything is removed on exit)."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        # a random run of /30 blocks: two runs of the test on one machine pick different ones
        blocks = NETWORK.num_addresses // BLOCK
        self._first = random.SystemRandom().randrange(0, blocks - 16)
        self.namespaces: list[Namespace] = []

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self) -> Namespace:
        """A new namespace linked to this one (its loopback up, its default route set)."""
        number = len(self.namespaces)
        base = NETWORK.network_address + (self._first + number) * BLOCK
        name = f"dy{self.tag}{number}"
        ns = Namespace(name, f"{name}h", f"{name}n", str(base + 1), str(base + 2))
        # recorded first, so that close() removes whatever part of it was made
        self.namespaces.append(ns)
        ip("netns", "add", ns.name)
        ip("link", "add", ns.host_if, "type", "veth", "peer", "name", ns.ns_if, "netns", ns.name)
        ip("addr", "add", f"{ns.host_ip}/30", "dev", ns.host_if)
        ip("link", "set", ns.host_if, "up")
        ip("-n", ns.name, "addr", "add", f"{ns.ns_ip}/30", "dev", ns.ns_if)
        ip("-n", ns.name, "link", "set", "lo", "up")
        ip("-n", ns.name, "link", "set", ns.ns_if, "up")
        ip("-n", ns.name, "route", "add", "default", "via", ns.host_ip)
        return ns

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            with contextlib.suppress(RuntimeError, OSError, subprocess.SubprocessError):
                ip("netns", "del", ns.name)
            # the host side goes with its peer, but not always at once: remove it now
            with contextlib.suppress(RuntimeError, OSError, subprocess.SubprocessError):
                ip("link", "del", ns.host_if)
        self.namespaces.clear()
