"""``dockyard.blocks.system.Secret`` against a real server: save, load and get, in and out of
flows; and the values loaded in a run hidden from every log line it ships."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from _support import RunningServer
from dockyard import flow, get_run_context, get_run_logger, task
from dockyard.blocks import Secret as Exported
from dockyard.blocks.system import Secret
from dockyard.sdk.runtime import redaction

VALUE = "s3cr3t-pa55w0rd-0042"


@pytest.fixture(autouse=True)
def forget_loaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no value to hide (the set lives as long as the process)."""
    monkeypatch.setattr(redaction, "LOADED", [])
    yield


def _logs(server: RunningServer, run_id: uuid.UUID) -> list[str]:
    with server.client() as client:
        return [log.message for log in client.read_logs(flow_run_id=run_id, limit=1000)]


def _run_id() -> str:
    context = get_run_context()
    assert context is not None and hasattr(context, "flow_run_id")
    return str(context.flow_run_id)


def test_save_load_get(tracked: RunningServer) -> None:
    assert Exported is Secret
    Secret(value=VALUE).save("db-password")
    loaded = Secret.load("db-password")
    assert loaded.get() == VALUE
    assert VALUE not in repr(loaded) and loaded == Secret(VALUE)

    with pytest.raises(ValueError, match="already exists; pass overwrite=True"):
        Secret(value="other").save("db-password")
    Secret(value={"user": "u", "password": "p"}).save("db-password", overwrite=True)
    assert Secret.load("db-password").get() == {"user": "u", "password": "p"}
    Secret(value=["a", "b"]).save("fresh", overwrite=True)  # overwrite creates too
    assert Secret.load("fresh").get() == ["a", "b"]

    with pytest.raises(ValueError, match="no secret named 'missing'"):
        Secret.load("missing")
    with pytest.raises(ValueError, match="is not a secret's name"):
        Secret.load("Not A Name")
    with pytest.raises(ValueError, match="must be a str, or a dict or list"):
        Secret(value=42)  # type: ignore[arg-type]
    with tracked.client() as client:
        assert [s.name for s in client.list_secrets()] == ["db-password", "fresh"]


def test_async_twins(tracked: RunningServer) -> None:
    async def main() -> Any:
        await Secret(value=VALUE).asave("token")
        outside = (await Secret.aload("token")).get()

        @flow
        async def reader() -> Any:
            secret = await Secret.load("token")  # called in async code: awaited
            return secret.get()

        return outside, await reader()

    assert asyncio.run(main()) == (VALUE, VALUE)


def test_a_loaded_value_is_hidden_from_shipped_logs(tracked: RunningServer) -> None:
    Secret(value=VALUE).save("db-password")
    Secret(value={"user": "bot", "token": "tok-xyzzy-0042"}).save("account")

    @task
    def connect() -> None:
        token = Secret.load("account").get()
        assert isinstance(token, dict)
        get_run_logger().info("connecting with %s", token["token"])
        raise RuntimeError(f"refused token {token['token']}")

    @flow(log_prints=True)
    def uses_secret() -> str:
        password = Secret.load("db-password").get()
        get_run_logger().info("password is %s", password)
        print(f"printed {password} twice {password}")
        get_run_logger().warning(f"in an f-string: {password}")
        connect.submit().wait()
        return _run_id()

    run_id = uuid.UUID(uses_secret())
    messages = _logs(tracked, run_id)
    text = "\n".join(messages)
    assert VALUE not in text and "tok-xyzzy-0042" not in text
    assert "password is ********" in messages
    assert "printed ******** twice ********" in messages
    assert "in an f-string: ********" in messages
    assert "connecting with ********" in messages
    with tracked.client() as client:
        [task_run] = client.list_task_runs(flow_run_id=run_id)
    assert task_run.error is not None and "tok-xyzzy-0042" not in task_run.error
    assert "refused token ********" in task_run.error


def test_a_loaded_value_is_hidden_from_the_runs_failure(tracked: RunningServer) -> None:
    """The flow run's own state message (its exception and traceback) hides it too."""
    Secret(value=VALUE).save("db-password")

    @flow(retries=1)
    def fails_with_it() -> None:
        password = Secret.load("db-password").get()
        raise ValueError(f"login refused for {password}")

    with pytest.raises(ValueError):
        fails_with_it()
    with tracked.client() as client:
        [run] = client.list_flow_runs(flow_name="fails-with-it")
        messages = [s.message or "" for s in client.read_flow_run_states(run.id)]
    assert run.state == "FAILED"
    assert run.state_message is not None
    assert run.state_message.startswith("ValueError: login refused for ********")
    assert not any(VALUE in message for message in messages)  # AWAITING_RETRY's too


def test_nothing_is_replaced_before_a_secret_is_loaded(tracked: RunningServer) -> None:
    Secret(value=VALUE).save("unused")

    @flow
    def plain() -> str:
        get_run_logger().info(f"not loaded: {VALUE}")
        return _run_id()

    assert redaction.LOADED == []
    assert f"not loaded: {VALUE}" in _logs(tracked, uuid.UUID(plain()))
