"""``--watch``: print a run's states and logs as they come, until the run is final."""

from __future__ import annotations

import logging
import sys
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.client import Client
    from dockyard.schemas import FlowRun, Log, State

__all__ = ["print_log", "watch"]


def print_log(log: Log) -> None:
    """``2024-05-01 12:00:01.123 INFO     message`` on stdout (a message may span lines;
    its control characters are shown escaped)."""
    from dockyard._printable import printable
    from dockyard.cli._output import when

    message = printable(log.message, lines=True)
    level = logging.getLevelName(log.level)
    sys.stdout.write(f"{when(log.timestamp, millis=True)} {level:<8} {message}\n")
    sys.stdout.flush()


def _print_state(state: State) -> None:
    from dockyard.cli import _output as out

    message = (state.message or "").strip().splitlines()
    text = f"{out.when(state.timestamp, millis=True)} state    {state.type}"
    text += f": {message[0]}" if message else ""
    out.say(text, out.STATE_STYLES.get(str(state.type)))


def _print_events(events: list[State | Log]) -> None:
    from dockyard.schemas import Log

    for event in events:
        if isinstance(event, Log):
            print_log(event)
        else:
            _print_state(event)


def watch(client: Client, run_id: uuid.UUID) -> FlowRun:
    """Print the run's states and logs until it is final (crash retries followed); return it."""
    from dockyard.sdk.deploy.waiting import wait_for_run

    return wait_for_run(client, run_id, follow=_print_events)
