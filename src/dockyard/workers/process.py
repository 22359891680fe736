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

A run the worker ends CANCELLED or CRASHED itself (its process was killed, or exited
without reporting) has had no chance to call its flow's ``on_cancellation``/``on_crashed``
hooks: the worker starts ``python -m dockyard.engine --hooks RUN_ID STATE`` in the run's
directory and environment (its lease token left out), which loads the flow and calls them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from dockyard.exceptions import LaunchError
from dockyard.schemas import ClaimedRun, FlowRun
from dockyard.workers.base import BaseWorker

__all__ = ["ProcessWorker"]

log = logging.getLogger("dockyard.worker")

# the longest a hooks process may take before the worker stops it
HOOKS_SECONDS = 600.0


class Process(subprocess.Popen[bytes]):
    """A run's process, with the directory and environment it started in."""

    run_cwd: str = ""
    run_env: dict[str, str] | None = None


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
                process = Process(
                    command,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                process.run_cwd, process.run_env = cwd, env
                return process
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
        api_key = claimed.runner_key or self.settings.api_key  # the run's own, if made
        if api_key:
            env["DOCKYARD_API_KEY"] = api_key
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

    def call_final_hooks(self, handle: Process, run: FlowRun, state: str) -> None:
        """Start ``python -m dockyard.engine --hooks RUN_ID STATE`` where the run ran."""
        if handle.run_env is None:
            return  # not started by this worker process
        env = {k: v for k, v in handle.run_env.items() if k != "DOCKYARD_LEASE_TOKEN"}
        command = [sys.executable, "-m", "dockyard.engine", "--hooks", str(run.id), state]
        task = asyncio.create_task(self._hooks(command, handle.run_cwd, env, run.name))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _hooks(self, command: list[str], cwd: str, env: dict[str, str], name: str) -> None:
        try:
            process = await asyncio.create_subprocess_exec(
                *command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, start_new_session=True
            )
        except OSError as exc:
            log.warning("cannot call the hooks of %s: %s", name, exc)
            return
        try:
            await asyncio.wait_for(process.wait(), HOOKS_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            log.warning("the hooks of %s took over %.0f s and were stopped", name, HOOKS_SECONDS)

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
