"""The task result cache: hits, misses, expiry, and its layout under DOCKYARD_HOME."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dockyard import flow, task, task_input_hash
from dockyard.sdk.runtime.cache import MISS, ResultCache


def test_a_second_run_with_the_same_key_is_a_hit(dockyard_home: Path) -> None:
    calls: list[int] = []

    @task(cache_key_fn=task_input_hash)
    def expensive(x: int) -> dict[str, int]:
        calls.append(x)
        return {"value": x * 2}

    @flow
    def run(x: int) -> dict[str, int]:
        return expensive(x)

    assert run(1) == {"value": 2}
    assert run(1) == {"value": 2}
    assert run(2) == {"value": 4}
    assert calls == [1, 2]
    # one result file per key, in the default result storage
    entries = [p for p in (dockyard_home / "storage").iterdir() if p.is_file()]
    assert len(entries) == 2


def test_entries_expire() -> None:
    calls: list[int] = []

    @task(cache_key_fn=lambda context, parameters: "fixed", cache_expiration=0.2)
    def stamp() -> int:
        calls.append(1)
        return len(calls)

    @flow
    def run() -> int:
        return stamp()

    assert run() == 1
    assert run() == 1
    time.sleep(0.3)
    assert run() == 2


def test_a_key_of_none_skips_the_cache() -> None:
    calls: list[int] = []

    @task(cache_key_fn=lambda context, parameters: None)
    def work() -> int:
        calls.append(1)
        return 1

    @flow
    def run() -> None:
        work()
        work()

    run()
    assert len(calls) == 2


def test_failures_are_not_cached() -> None:
    calls: list[int] = []

    @task(cache_key_fn=lambda context, parameters: "k")
    def fails_once() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first")
        return 7

    @flow
    def run() -> int:
        return fails_once()

    with pytest.raises(RuntimeError):
        run()
    assert run() == 7
    assert run() == 7
    assert len(calls) == 2


def test_the_key_function_gets_the_context_and_all_parameters() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def key(context: Any, parameters: dict[str, Any]) -> str:
        seen.append((context.task.name, parameters))
        return "k"

    @task(cache_key_fn=key)
    def work(x: int, y: int = 5) -> int:
        return x + y

    @flow
    def run() -> int:
        return work(1)

    run()
    assert seen == [("work", {"x": 1, "y": 5})]


def test_an_unpicklable_result_is_returned_but_not_cached() -> None:
    @task(cache_key_fn=lambda context, parameters: "lock")
    def make_lock() -> Any:
        return threading.Lock()

    @flow
    def run() -> Any:
        return make_lock()

    assert run() is not None
    assert run() is not None


def test_the_cache_ignores_broken_entries(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    cache.write("k", "t", [1, 2], None)
    assert cache.read("k") == [1, 2]
    cache.path("k").write_bytes(b"not a pickle")
    assert cache.read("k") is MISS
    assert cache.read("other") is MISS
