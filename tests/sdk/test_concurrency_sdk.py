"""``dockyard.concurrency`` against a real server: slots held in flows, tasks and plain
code, sync and async; rate limits; the refusals; and slots of a SIGKILLed holder coming
back when its lease expires."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from _support import RunningServer, wait_until
from dockyard import flow, task
from dockyard.concurrency import asyncio as aconcurrency
from dockyard.concurrency.sync import concurrency, rate_limit
from dockyard.exceptions import InvalidInput, NotFound
from dockyard.sdk import transport
from dockyard.sdk.runtime import concurrency as runtime

# what the database does is proven on both by tests/server/test_concurrency_limits.py
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _in_use(server: RunningServer, name: str) -> dict[str, Any]:
    with server.client() as client:
        limit = client.read_concurrency_limit_by_name(name)
    return {"slots": limit.active_slots, "holders": [lease.holder for lease in limit.leases]}


def _create(server: RunningServer, name: str, limit: int, decay: float = 0.0) -> None:
    with server.http() as http:
        body = {"name": name, "limit": limit, "slot_decay_per_second": decay}
        assert http.post("/concurrency-limits", json=body).status_code == 201


@SQLITE_ONLY
def test_flows_and_tasks_hold_slots_for_their_blocks_in_two_requests(
    tracked: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _create(tracked, "db", 3)
    _create(tracked, "api", 5)
    sent: list[str] = []
    real = transport.LeanTransport.request

    def counted(self: transport.LeanTransport, method: str, path: str, *a: Any, **k: Any) -> Any:
        if path.startswith("/concurrency-limits"):
            sent.append(path.rsplit("/", 1)[-1])
        return real(self, method, path, *a, **k)

    monkeypatch.setattr(transport.LeanTransport, "request", counted)

    @task
    def query() -> dict[str, Any]:
        with concurrency(["db", "api"], occupy=2):
            return _in_use(tracked, "db")

    @flow
    def nightly() -> tuple[dict[str, Any], dict[str, Any]]:
        with concurrency("db"):
            in_flow = _in_use(tracked, "db")
        return in_flow, query()

    in_flow, in_task = nightly()
    assert in_flow["slots"] == 1 and in_flow["holders"][0].startswith("flow run '")
    assert in_task["slots"] == 2 and "task run 'query-" in in_task["holders"][0]
    assert f"pid {os.getpid()}" in in_task["holders"][0]
    assert sent == ["acquire", "release", "acquire", "release"]
    assert _in_use(tracked, "db") == {"slots": 0, "holders": []}
    assert _in_use(tracked, "api")["slots"] == 0

    with pytest.raises(RuntimeError, match="boom"), concurrency("db", occupy=3):
        raise RuntimeError("boom")
    assert _in_use(tracked, "db")["slots"] == 0  # given back on an exception too


@SQLITE_ONLY
def test_async_twins_and_rate_limits(tracked: RunningServer) -> None:
    _create(tracked, "db", 2)
    _create(tracked, "calls", 2, decay=0.01)

    @task
    async def fetch() -> int:
        async with aconcurrency.concurrency("db"):
            return int(_in_use(tracked, "db")["slots"])

    @flow
    async def crawl() -> list[int]:
        await aconcurrency.rate_limit("calls")
        async with aconcurrency.concurrency("db"):
            inside = [int(_in_use(tracked, "db")["slots"]), await fetch()]
        return inside

    assert asyncio.run(crawl()) == [1, 2]
    assert _in_use(tracked, "db")["slots"] == 0
    rate_limit("calls")  # the second of two: the limit is full now, and decays slowly
    assert _in_use(tracked, "calls") == {"slots": 2, "holders": []}
    with pytest.raises(TimeoutError, match="'calls'"):
        rate_limit("calls", timeout_seconds=0)

    async def waits_async() -> None:
        async with aconcurrency.concurrency("db", occupy=2):
            with pytest.raises(TimeoutError, match="concurrency limit 'db'"):
                async with aconcurrency.concurrency("db", timeout_seconds=0.2):
                    pass

    asyncio.run(waits_async())
    with pytest.raises(InvalidInput, match="no slot decay"):
        rate_limit("db")


@SQLITE_ONLY
def test_missing_limits_warn_once_and_strict_and_impossible_asks_raise(
    tracked: RunningServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    _create(tracked, "db", 2)
    monkeypatch.setattr(runtime, "_warned", set())
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            with concurrency(["db", "nowhere"]):
                assert _in_use(tracked, "db")["slots"] == 1
    warnings = [r.getMessage() for r in caplog.records if "nowhere" in r.getMessage()]
    assert len(warnings) == 1 and "dockyard gcl create nowhere" in warnings[0]

    with pytest.raises(NotFound, match="'nowhere'"), concurrency("nowhere", strict=True):
        pass
    with pytest.raises(InvalidInput, match="only 2"), concurrency("db", occupy=3):
        pass
    full = pytest.raises(TimeoutError, match="'db' had no room")
    with concurrency("db", occupy=2), full, concurrency("db", timeout_seconds=0.3):
        pass
    for bad, error in [
        ({"names": "a/b"}, ValueError),
        ({"names": []}, ValueError),
        ({"names": [3]}, TypeError),
        ({"names": "db", "occupy": 0}, ValueError),
        ({"names": "db", "occupy": 1.5}, ValueError),
        ({"names": "db", "timeout_seconds": -1}, ValueError),
    ]:
        with pytest.raises(error), concurrency(**bad):
            pass
    assert _in_use(tracked, "db")["slots"] == 0


HOLDER = """
import time
from dockyard.concurrency.sync import concurrency

with concurrency("db"):
    print("held", flush=True)
    time.sleep(600)
"""


@SQLITE_ONLY
def test_slots_of_a_killed_holder_come_back_when_its_lease_expires(
    tracked: RunningServer, tmp_path: Path
) -> None:
    _create(tracked, "db", 1)
    script = tmp_path / "holder.py"
    script.write_text(textwrap.dedent(HOLDER))
    env = {
        **tracked.env,
        "DOCKYARD_API_URL": tracked.api_url,
        "DOCKYARD_CONCURRENCY_LEASE_SECONDS": "1.5",
    }
    holder = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with tracked.client() as client:
            [first] = client.read_concurrency_limit_by_name("db").leases
            assert f"pid {holder.pid}" in (first.holder or "")

            def renewed() -> bool:
                leases = client.read_concurrency_limit_by_name("db").leases
                return bool(leases) and leases[0].expires > first.expires

            # alive, it keeps its slot past the lease's first expiry
            wait_until(renewed, timeout=15, what="the holder to renew its lease")
        with pytest.raises(TimeoutError), concurrency("db", timeout_seconds=0):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    # dead, it renews nothing: the slot is free once the lease runs out
    with concurrency("db", timeout_seconds=30):
        assert _in_use(tracked, "db")["slots"] == 1
        assert f"pid {os.getpid()}" in _in_use(tracked, "db")["holders"][0]
    assert _in_use(tracked, "db")["slots"] == 0


def test_the_public_names() -> None:
    import dockyard.concurrency.asyncio
    import dockyard.concurrency.sync

    assert dockyard.concurrency.sync.__all__ == ["concurrency", "rate_limit"]
    assert dockyard.concurrency.asyncio.__all__ == ["concurrency", "rate_limit"]
    # the SDK repeats the server's lease bounds, so that taking slots never loads pydantic
    from dockyard.schemas import concurrency as cs

    assert (runtime.MIN_LEASE, runtime.MAX_LEASE) == (cs.MIN_LEASE_SECONDS, cs.MAX_LEASE_SECONDS)
