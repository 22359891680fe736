"""``dockyard.variables.Variable`` against a real server: outside flows, inside sync and async
flows and tasks, and with nothing heavier than the lean transport on a run's path."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from _support import RunningServer
from dockyard import flow, task
from dockyard.exceptions import InvalidInput, ServerUnreachable
from dockyard.sdk import transport
from dockyard.variables import Variable


def test_set_get_unset_outside_a_flow(tracked: RunningServer) -> None:
    assert Variable.get("answer") is None
    assert Variable.get("answer", default=41) == 41

    made = Variable.set("answer", 42, tags=["towel"])
    assert made == Variable(name="answer", value=42, tags=["towel"])
    assert Variable.get("answer") == 42

    with pytest.raises(ValueError, match="already exists; pass overwrite=True"):
        Variable.set("answer", 43)
    assert Variable.get("answer") == 42
    replaced = Variable.set("answer", {"deep": [1, None]}, overwrite=True)
    assert replaced.value == {"deep": [1, None]} and replaced.tags == []
    assert Variable.set("fresh", None, overwrite=True).value is None  # overwrite creates too
    assert Variable.get("fresh", default="missing") is None  # a null value is a value

    assert Variable.unset("answer") is True
    assert Variable.unset("answer") is False
    assert Variable.get("answer", default="gone") == "gone"
    with tracked.client() as client:
        assert [v.name for v in client.list_variables()] == ["fresh"]


def test_names_and_values_are_checked_before_any_request(
    tracked: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    real = transport.LeanTransport.request

    def counted(self: transport.LeanTransport, method: str, path: str, *a: Any, **k: Any) -> Any:
        sent.append(path)
        return real(self, method, path, *a, **k)

    monkeypatch.setattr(transport.LeanTransport, "request", counted)
    for call in (
        lambda: Variable.get("My_Var"),
        lambda: Variable.set("a b", 1),
        lambda: Variable.unset("a/b"),
        lambda: Variable.set("ok", {1, 2}),
        lambda: Variable.set("ok", float("nan")),
        lambda: Variable.set("ok", "x\x00"),
        lambda: Variable.set("ok", "x" * 300_000),
    ):
        with pytest.raises(ValueError) as refused:
            call()
        assert "variable" in str(refused.value)
    assert sent == []
    with pytest.raises(ValueError, match="lowercase, 'my_var'"):
        Variable.get("My_Var")
    with pytest.raises(InvalidInput, match="tags"):
        Variable.set("ok", 1, tags=["x" * 201])


def test_inside_a_flow_and_its_tasks_a_read_is_one_request(
    tracked: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    Variable.set("greeting", {"text": "ahoy", "times": 2})
    sent: list[str] = []
    real = transport.LeanTransport.request

    def counted(self: transport.LeanTransport, method: str, path: str, *a: Any, **k: Any) -> Any:
        if path.startswith("/variables"):
            sent.append(f"{method} {path}")
        return real(self, method, path, *a, **k)

    monkeypatch.setattr(transport.LeanTransport, "request", counted)

    @task
    def shout() -> str:
        found = Variable.get("greeting")
        return str(found["text"]).upper() * found["times"]

    @flow
    def greet() -> tuple[Any, str, Any]:
        value = Variable.get("greeting")
        Variable.set("seen", True)
        return value, shout(), Variable.get("missing", default=[])

    assert greet() == ({"text": "ahoy", "times": 2}, "AHOYAHOY", [])
    assert sent == [
        "GET /variables/name/greeting",
        "POST /variables",
        "GET /variables/name/greeting",
        "GET /variables/name/missing",
    ]
    assert Variable.get("seen") is True


def test_async_twins_and_calls_from_async_code(tracked: RunningServer) -> None:
    @task
    async def read_in_task() -> Any:
        return await Variable.get("count")  # in async code, get is awaited

    @task
    def read_in_sync_task() -> Any:
        return Variable.get("count")

    @flow
    async def counting() -> list[Any]:
        await Variable.aset("count", 1)
        first = await Variable.get("count")
        await Variable.set("count", 2, overwrite=True)
        return [first, await read_in_task(), read_in_sync_task(), await Variable.aget("nope", 0)]

    assert asyncio.run(counting()) == [1, 2, 2, 0]

    async def outside() -> list[Any]:
        await Variable.aset("loop", "x")
        with pytest.raises(ValueError, match="already exists"):
            await Variable.aset("loop", "y")
        got = await Variable.get("loop")
        return [got, await Variable.aunset("loop"), await Variable.unset("loop")]

    assert asyncio.run(outside()) == ["x", True, False]
    assert Variable.get("count") == 2  # no loop in this thread: a plain call


def test_without_a_server_a_read_says_so() -> None:
    with pytest.raises(ServerUnreachable, match="cannot reach the Dockyard server"):
        Variable.get("anything")


RUN_PATH = """
import json, sys
from dockyard import flow
from dockyard.variables import Variable

@flow
def reads() -> object:
    return Variable.get("config")

value = reads()
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("httpx", "pydantic"))
print(json.dumps({"value": value, "heavy": heavy}))
"""


def test_a_flow_reads_a_variable_without_loading_httpx_or_pydantic(
    tracked: RunningServer, tmp_path: Path
) -> None:
    Variable.set("config", {"retries": 3})
    script = tmp_path / "reads.py"
    script.write_text(textwrap.dedent(RUN_PATH))
    done = subprocess.run(
        [sys.executable, str(script)],
        env={**tracked.env, "DOCKYARD_API_URL": tracked.api_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer == {"value": {"retries": 3}, "heavy": []}


def test_the_public_names() -> None:
    import dockyard.variables

    assert dockyard.variables.__all__ == ["Variable"]
    assert Variable("x", 1).tags == []
