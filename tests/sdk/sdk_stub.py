"""A stub of the SDK's server calls that records what the SDK sends (see ``recorder``)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Recorded:
    """What the SDK sent, in order: ``events`` holds ("create"|"state"|"task_runs"|"logs", ...)."""

    events: list[tuple[str, Any]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # states (or "renew") answered with 409
    renew_answer: str = "RUNNING"  # the run's state answered to a lease renewal
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, value: Any) -> None:
        with self.lock:
            self.events.append((kind, value))

    def of(self, kind: str) -> list[Any]:
        return [value for k, value in self.events if k == kind]

    @property
    def runs(self) -> list[dict[str, Any]]:
        return self.of("create")

    def states(self, run_id: uuid.UUID | None = None) -> list[str]:
        return [s["state"] for s in self.of("state") if run_id is None or s["run_id"] == run_id]

    @property
    def task_runs(self) -> list[dict[str, Any]]:
        return [record for batch in self.of("task_runs") for record in batch]

    @property
    def logs(self) -> list[dict[str, Any]]:
        return [log for batch in self.of("logs") for log in batch]
