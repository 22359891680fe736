"""What a worker type implements: start a run's infrastructure, stop it, read its exit code.

Types subclass :class:`~dockyard.workers.base.BaseWorker`, which inherits this interface;
``tests/workers/test_contract.py`` holds the tests every type must pass.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any, ClassVar, Generic

from dockyard.schemas import ClaimedRun, FlowRun
from dockyard.workers._runs import H


class Infrastructure(Generic[H]):
    """The interface of a worker type; ``H`` is its handle on a run's infrastructure.

    :meth:`launch`, :meth:`kill`, :meth:`exit_code` and :meth:`infrastructure_id` are
    required; :meth:`recover` is optional.
    """

    type: ClassVar[str] = ""
    # How messages name the infrastructure: "its process (pid 42)", "its container (id 3f2a)".
    noun: ClassVar[str] = "infrastructure"
    id_label: ClassVar[str] = "id"
    # Seconds a cancelled run's infrastructure gets to stop before it is forced.
    kill_grace_seconds: float = 10.0

    _output_dir: Path | None = None

    def launch(self, claimed: ClaimedRun, config: dict[str, Any]) -> H:
        """Start the infrastructure of ``claimed`` and return a handle to it.

        ``config`` is the run's job configuration, placeholders filled. The run's stdout and
        stderr go to the file at :meth:`output_path`, never to a pipe. Called in a thread.

        Raises:
            LaunchError: the infrastructure cannot start; the message says why.
        """
        raise NotImplementedError

    def kill(self, handle: H, grace_seconds: float) -> None:
        """Stop the infrastructure: ask it to stop, force it after ``grace_seconds``.

        Called in a thread; may block until the infrastructure is gone.
        """
        raise NotImplementedError

    def exit_code(self, handle: H) -> int | None:
        """The exit code, or None while it runs (negative: killed by that signal)."""
        raise NotImplementedError

    def infrastructure_id(self, handle: H) -> str:
        """The id recorded as the run's ``infrastructure_id`` (a pid, a container id)."""
        raise NotImplementedError

    def recover(self) -> dict[uuid.UUID, tuple[H, uuid.UUID | None]]:
        """Find the infrastructure of runs a worker of this name started before a restart.

        Called in a thread at start. Answers run id → (handle, the lease token the run was
        launched with, or None when it cannot be known); the worker watches these runs as
        its own (e.g. containers found by a label holding the worker's name) and presents
        the token when it ends them: without it the server refuses.
        """
        return {}

    def call_final_hooks(self, handle: H, run: FlowRun, state: str) -> None:
        """Start what calls the ``on_cancellation``/``on_crashed`` hooks of a run that the
        worker itself ended ``state`` (CANCELLED or CRASHED): its process was gone before it
        could call them. A type that can run the flow's code again (where the run ran, with
        its environment) starts ``python -m dockyard.engine --hooks RUN_ID STATE`` there and
        returns; by default nothing is called."""

    def output_path(self, run_id: uuid.UUID) -> Path:
        """The file a run's infrastructure writes its stdout and stderr to."""
        if self._output_dir is None:
            self._output_dir = Path(tempfile.mkdtemp(prefix="dockyard-worker-"))
        return self._output_dir / f"{run_id}.out"
