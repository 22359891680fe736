"""What a worker remembers about each run it launched, and how it words what happened."""

from __future__ import annotations

import signal
import uuid
from dataclasses import dataclass
from typing import Generic, TypeVar

from dockyard.schemas import FlowRun
from dockyard.workers._output import OutputFile

H = TypeVar("H")


@dataclass(eq=False)
class Launched(Generic[H]):
    """A run whose infrastructure this worker started, watched until it exits.

    ``lease_token``: the token of the claim (for a run found again by ``recover()``, the one
    its infrastructure was launched with; None when that cannot be known).
    ``stream``: echo its output on the worker's terminal. ``cancelling``: it was asked to
    cancel and is being killed. ``lost_since``: when the server said the run is no longer
    this worker's. ``retry_at``: when to try again to report its end after the server
    could not be reached.
    """

    run: FlowRun
    lease_token: uuid.UUID | None
    handle: H
    output: OutputFile
    stream: bool
    exit_code: int | None = None
    # the final state the worker itself gave the run (CANCELLED, CRASHED): its engine was
    # gone before it could call the flow's hooks for it
    ended_unheard: str | None = None
    cancelling: bool = False
    lost_since: float | None = None
    retry_at: float = 0.0
    failures: int = 0

    @property
    def label(self) -> str:
        return label(self.run)


def label(run: FlowRun) -> str:
    """How log lines name a run: its name, and its id to search for."""
    return f"flow run '{run.name}' ({run.id})"


def how_it_exited(code: int) -> str:
    """``exited with code 3``, or ``was killed by SIGKILL (code -9)`` for a signal."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name} (code {code})"
    return f"exited with code {code}"
