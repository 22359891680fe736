"""The process worker type: each run in a subprocess on the worker's machine.

The job configuration (the pool's template, see ``templates/process.json``) may set:

- ``command``: what to run (default ``python -m dockyard.engine RUN_ID`` with the worker's
  interpreter); a string is split like a shell would split it;
- ``working_dir``: where it runs (default: the deployment's path, else the worker's
  current directory);
- ``env``: variables added to the worker's environment (a null value removes one);
- ``stream_output``: also echo the run's output on the worker's terminal (default true).

The template offers these four and nothing else: a subprocess has no labels or name of its
own, and a variable the worker would ignore must not look like it does something.

Each run starts in its own session (so a Ctrl-C in the worker's terminal does not reach it)
with stdin closed and stdout and stderr in the run's output file. Besides ``env`` it gets
``DOCKYARD_API_URL`` and ``DOCKYARD_API_KEY`` (the worker's), ``DOCKYARD_FLOW_RUN_ID``, and
``DOCKYARD_LEASE_TOKEN``: the claim's lease, which the engine presents when it moves the run
to RUNNING (it is never put on the command line, where other users could read it).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from dockyard.exceptions import LaunchError
from dockyard.schemas import ClaimedRun
from dockyard.workers.base import BaseWorker

__all__ = ["ProcessWorker"]

Process = subprocess.Popen[bytes]


class ProcessWorker(BaseWorker[Process]):
    """Runs each flow run as a subprocess (``type = "process"``); see the module's docstring.

    Takes the arguments of :class:`~dockyard.workers.base.BaseWorker`.
    """

    type = "process"
    noun = "process"
    id_label = "pid"

    def launch(self, claimed: ClaimedRun, config: dict[str, Any]) -> Process:
        """Start the run's process; raise LaunchError when it cannot start."""
        run_id = claimed.flow_run.id
        command = _command(config.get("command"), str(run_id))
        if not command:
            raise LaunchError("its command is empty")
        cwd = config.get("working_dir") or claimed.deployment_path or os.getcwd()
        if not Path(cwd).is_dir():
            raise LaunchError(f"its working directory {cwd} does not exist")
        env = self.environment(claimed, config.get("env") or {})
        try:
            with self.output_path(run_id).open("ab") as output:
                return subprocess.Popen(
                    command,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except FileNotFoundError:
            raise LaunchError(f"command not found: {command[0]}") from None
        except PermissionError:
            raise LaunchError(f"command not executable: {command[0]}") from None
        except OSError as exc:
            raise LaunchError(f"cannot run {shlex.join(command)}: {exc}") from None

    def environment(self, claimed: ClaimedRun, extra: dict[str, str | None]) -> dict[str, str]:
        """The run's environment: the worker's, ``extra`` (None removes), then Dockyard's."""
        env = dict(os.environ)
        for name, value in extra.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = str(value)
        env["DOCKYARD_API_URL"] = self.settings.api_url
        if self.settings.api_key:
            env["DOCKYARD_API_KEY"] = self.settings.api_key
        env["DOCKYARD_FLOW_RUN_ID"] = str(claimed.flow_run.id)
        env["DOCKYARD_LEASE_TOKEN"] = str(claimed.lease_token)
        # output lands in a file: without this, Python would hold it back until exit
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def kill(self, handle: Process, grace_seconds: float) -> None:
        """SIGTERM the run's process group, SIGKILL it if still alive after the grace."""
        _signal_group(handle, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            handle.wait(grace_seconds)
        # whatever the run started in its session goes too, even when its leader obeyed
        _signal_group(handle, signal.SIGKILL)
        handle.wait()

    def exit_code(self, handle: Process) -> int | None:
        return handle.poll()

    def infrastructure_id(self, handle: Process) -> str:
        return str(handle.pid)


def _command(value: Any, run_id: str) -> list[str]:
    if not value:
        return [sys.executable, "-m", "dockyard.engine", run_id]
    if isinstance(value, str):
        return shlex.split(value)
    return [str(part) for part in value]


def _signal_group(handle: Process, number: signal.Signals) -> None:
    # the run leads its own session, so its process group id is its pid
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(handle.pid, number)
