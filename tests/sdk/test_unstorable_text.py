"""What a flow writes that the server cannot store as it is (NUL, lone surrogates, text
longer than a column) is recorded cleaned, never refused: no log line, task run, result or
state is lost to it. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from _support import RunningServer
from dockyard import flow, get_logger, get_run_context, task
from dockyard._values import REPLACEMENT

ODD = "a\x00b\ud800c"


def _run_id() -> uuid.UUID:
    context = get_run_context()
    assert context is not None and hasattr(context, "flow_run_id")
    return context.flow_run_id  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _keep_odd_text_out_of_pytest_reports(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run log records also reach the standard logging tree, where pytest keeps their text
    for its report; a lone surrogate there stops pytest-xdist, which cannot send it between
    its processes. Only pytest's report is spared them: the server still gets every record,
    and that is what these tests check."""
    import logging

    plugin = request.config.pluginmanager.get_plugin("logging-plugin")
    if plugin is None:
        yield
        return
    handler: logging.Handler = plugin.report_handler
    spared = logging.Filter("dockyard")

    def keep(record: logging.LogRecord) -> bool:
        return not spared.filter(record)

    handler.addFilter(keep)
    try:
        yield
    finally:
        handler.removeFilter(keep)


def test_odd_text_from_a_flow_is_recorded_cleaned(tracked: RunningServer) -> None:
    @task(name="odd-task")
    def shout(word: str) -> str:
        get_logger().info("task says %s", word)
        return word

    @flow(log_prints=True)
    def odd(word: str) -> tuple[str, str]:
        print("printed", word)
        shout(word)
        return str(_run_id()), word

    run_id, returned = odd(ODD)
    assert returned == ODD  # the flow itself gets its values untouched
    with tracked.client() as client:
        run = client.read_flow_run(uuid.UUID(run_id))
        messages = [log.message for log in client.read_logs(flow_run_id=run.id)]
        tasks = client.list_task_runs(flow_run_id=run.id)
    assert run.state == "COMPLETED"
    cleaned = f"a{REPLACEMENT}b{REPLACEMENT}c"
    assert run.result == {"type": "builtins.tuple", "repr": run.result["repr"]}
    assert run.parameters["word"]["type"] == "builtins.str"
    assert any(m == f"printed {cleaned}" for m in messages), messages
    assert any(m == f"task says {cleaned}" for m in messages), messages
    assert [t.state for t in tasks] == ["COMPLETED"]


def test_a_failure_with_odd_text_is_recorded(tracked: RunningServer) -> None:
    @flow
    def broken() -> None:
        raise ValueError(ODD * 10)

    with pytest.raises(ValueError):
        broken()
    with tracked.client() as client:
        (run,) = client.list_flow_runs(flow_name="broken")
    assert run.state == "FAILED"
    assert run.state_message is not None and "\x00" not in run.state_message
    assert run.state_message.startswith(f"ValueError: a{REPLACEMENT}b")
