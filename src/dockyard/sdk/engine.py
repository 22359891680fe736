"""The engine: ``python -m dockyard.engine FLOW_RUN_ID`` runs one flow run of a deployment.

It is what infrastructure (a worker's subprocess or container) starts for each run:

1. check that the server speaks this engine's API version, and read the run; it must be
   SCHEDULED or PENDING;
2. take it: a SCHEDULED run goes to PENDING (which grants a lease) then RUNNING; a PENDING
   run, claimed by a worker, goes to RUNNING with the lease token the worker hands over in
   the environment variable ``DOCKYARD_LEASE_TOKEN``;
3. read its deployment, run its pull steps (:mod:`dockyard.sdk.deploy.pull`), import its entrypoint
   (``path/to/file.py:fn`` relative to the deployment's path or to where the pull steps
   went, or ``module:fn``), and bind the parameters (the deployment's, overridden by the
   run's). Any failure here fails the run with the reason, and the engine exits with
   status 1;
4. run the flow in the context of that run (no new run is created), shipping everything it
   writes to stdout and stderr as logs; exit 0 if it COMPLETED, 1 otherwise.

On SIGTERM the flow stops at once and the run ends CANCELLED if it was asked to cancel,
CRASHED otherwise (:mod:`dockyard.sdk.runtime.termination`), and the flow's ``on_cancellation`` or
``on_crashed`` hooks run; the process then exits. A run whose process is gone before it
could call them (SIGKILL, out of memory) gets them from ``python -m dockyard.engine --hooks
FLOW_RUN_ID`` (:func:`run_hooks`), started once the run is CANCELLED or CRASHED.

**A final state is never lost.** The engine waits for a server that does not answer while
the run's lease allows (:func:`dockyard.sdk.runtime.tracking.report_final`). A final state it could
still not report is handed to the infrastructure: one line on the process's standard error,
``::dockyard-final-state::`` followed by JSON (``flow_run_id``, ``state``, ``message``,
``result``, ``lease_token``), which the worker finds in the run's output (a file, or the
container's logs) and reports once the server answers, if the lease token is the run's.
The engine then exits with status 3: it never claims a success the server was not told of.

Every call goes through :class:`~dockyard.sdk.transport.LeanTransport`, and only what a run
needs is imported: the engine's start sits between a run's trigger and its first line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dockyard import settings as settings_module
from dockyard.exceptions import DockyardError, FlowRunTerminated
from dockyard.sdk.api import ServerApi
from dockyard.sdk.deploy.pull import PullSteps
from dockyard.sdk.runtime.termination import Termination

if TYPE_CHECKING:
    from dockyard.sdk.flows import Flow
    from dockyard.sdk.runtime.context import RunRecord
    from dockyard.sdk.runtime.tracking import RunHandle
    from dockyard.settings import Settings

__all__ = ["FINAL_STATE_MARKER", "Engine", "hand_over", "main", "run_hooks"]

EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, EXIT_UNREPORTED = 0, 1, 2, 3
# Starts the line that hands a final state to the worker; the worker's reader
# (dockyard.workers._output) knows it too, and a test keeps the two in step.
FINAL_STATE_MARKER = "::dockyard-final-state::"
LEASE_TOKEN_ENV = "DOCKYARD_LEASE_TOKEN"
STARTABLE = ("SCHEDULED", "PENDING")
USAGE = "usage: python -m dockyard.engine FLOW_RUN_ID"
HOOKS_USAGE = "usage: python -m dockyard.engine --hooks FLOW_RUN_ID [CANCELLED|CRASHED]"
# The final states whose hooks `--hooks` calls: those a run can be given once its process
# is gone (its worker saw it killed, or cancelled it).
HOOKED_STATES = ("CANCELLED", "CRASHED")


def _say(message: str) -> None:
    print(f"dockyard engine: {message}", file=sys.stderr, flush=True)


class Engine:
    """Runs one flow run of a deployment; see the module's docstring for the steps.

    Args:
        run_id: the run to run.
        settings: the settings (API URL and key).
        lease_token: the lease a worker claimed the run with, if it did.
        api: the server calls (default: on ``settings.api_url``).
    """

    def __init__(
        self,
        run_id: uuid.UUID,
        *,
        settings: Settings,
        lease_token: uuid.UUID | None = None,
        api: ServerApi | None = None,
    ) -> None:
        self.run_id = run_id
        self.settings = settings
        self.lease_token = lease_token
        self.api = api or ServerApi(settings.api_url, settings.api_key)
        self.termination = Termination()
        self.pull_steps = PullSteps()
        # what the server said of the run and its deployment, for the flow's run context
        self.record: RunRecord | None = None

    @property
    def terminated(self) -> bool:
        """Whether a signal stopped the run."""
        return self.termination.signal_name is not None

    def run(self) -> int:
        """Run the flow run and return the process's exit status."""
        self.termination.install()
        try:
            return self._run()
        except FlowRunTerminated:
            return EXIT_FAILED  # before the run was taken: nothing of it is this process's
        finally:
            self.termination.uninstall()
            self.pull_steps.cleanup()

    def _run(self) -> int:
        try:
            self._follow_the_lease(self.api.check_version())
            run = self.api.read_flow_run(self.run_id)
            handle = self.take(run)
        except DockyardError as exc:
            _say(f"cannot start flow run {self.run_id}: {exc}")
            return EXIT_FAILED
        self.termination.hold(handle)
        try:
            with self._leased(handle):
                flow, given = self.prepare(run, handle)
        except FlowRunTerminated:
            return self.end_before_flow(handle)
        except Exception as exc:
            return self.fail(handle, str(exc))
        status = self.execute(flow, given, handle)
        if handle.unreported is not None:
            hand_over(handle)
            return EXIT_UNREPORTED
        return status

    # ------------------------------------------------------------ start

    def take(self, run: dict[str, Any]) -> RunHandle:
        """Move the run to RUNNING and return the handle this process holds it by."""
        from dockyard.sdk.runtime.tracking import RunHandle

        state, token = run["state"], self.lease_token
        if state not in STARTABLE:
            raise DockyardError(
                f"it is {state}; the engine starts only {' or '.join(STARTABLE)} runs"
            )
        if state == "SCHEDULED":
            answer = self._transition("PENDING", token)
            token = _uuid(answer.get("lease_token")) or token
        asked = time.monotonic()  # the lease runs from the moment the server was asked
        self._transition("RUNNING", token)
        return RunHandle(self.run_id, str(run["name"]), token, renewed_at=asked)

    def _follow_the_lease(self, server: dict[str, Any]) -> None:
        """Renew and wait by the shorter of the server's lease and this machine's setting:
        a container does not get the worker's environment, so only the server can say that
        its leases are shorter than the default."""
        lease = server.get("lease_seconds")
        if isinstance(lease, int | float) and lease > 0:
            shortest = min(float(lease), self.settings.lease_seconds)
            self.settings = dataclasses.replace(
                self.settings,
                lease_seconds=shortest,
                heartbeat_seconds=min(self.settings.heartbeat_seconds, shortest / 3),
            )

    @contextlib.contextmanager
    def _leased(self, handle: RunHandle) -> Iterator[None]:
        """Keep the run's lease while the flow is prepared: pull steps (a git clone) and
        importing its code may take longer than a lease (the flow's own keeper starts with
        the flow)."""
        from dockyard.sdk.runtime.tracking import LeaseRenewer

        renewer = LeaseRenewer(self.api, self.settings.heartbeat_seconds)
        renewer.start(handle)
        try:
            yield
        finally:
            renewer.close()

    def _transition(
        self, state: str, token: uuid.UUID | None, message: str | None = None
    ) -> dict[str, Any]:
        return self.api.set_state(self.run_id, state, lease_token=token, message=message)

    def prepare(
        self, run: dict[str, Any], handle: RunHandle
    ) -> tuple[Flow[..., Any], dict[str, Any]]:
        """Run the pull steps, load the deployment's flow and bind the run's parameters.

        Raises:
            DockyardError: no deployment, a failed pull step, a broken entrypoint, or
                parameters that do not fit.
        """
        from dockyard.sdk.flows import load_flow

        if not run.get("deployment_id"):
            raise DockyardError(f"flow run {self.run_id} has no deployment to run")
        # read with the lease: the deployment in clear (a git URL's credentials)
        deployment = self.api.read_run_deployment(self.run_id, handle.lease_token)
        if not deployment.get("entrypoint"):
            raise DockyardError(f"deployment {deployment['name']!r} has no entrypoint")
        base = self.pull_steps.run(deployment.get("pull_steps") or [], deployment.get("path"))
        flow = load_flow(deployment["entrypoint"], base, run["flow_name"])
        parameters = {**(deployment.get("parameters") or {}), **(run.get("parameters") or {})}
        try:
            given = flow.signature.bind((), parameters)
        except TypeError as exc:
            raise DockyardError(f"the run's parameters do not fit the flow: {exc}") from None
        from dockyard.sdk.runtime.context import RunRecord

        self.record = RunRecord.from_server(run, deployment, parameters)
        return flow, given

    def fail(self, handle: RunHandle, message: str) -> int:
        """Report the run FAILED before its flow could start; return the exit status."""
        _say(f"flow run {self.run_id} failed: {message}")
        return self._report(handle, "FAILED", message)

    def end_before_flow(self, handle: RunHandle) -> int:
        """Report a run stopped by a signal before its flow started; return the exit status."""
        how = f"terminated by signal {self.termination.signal_name}"
        try:
            cancelling = self.api.read_flow_run(self.run_id)["state"] == "CANCELLING"
        except DockyardError:
            cancelling = False
        if cancelling:
            return self._report(handle, "CANCELLED", f"cancelled ({how})")
        return self._report(handle, "CRASHED", f"{how} before the flow started")

    def _report(self, handle: RunHandle, state: str, message: str) -> int:
        from dockyard.sdk.runtime.tracking import report_final

        try:
            reported = report_final(
                self.api, handle, state, lease_seconds=self.settings.lease_seconds, message=message
            )
        except DockyardError as exc:  # refused: the run is no longer this process's
            _say(f"could not report flow run {self.run_id} as {state}: {exc}")
            return EXIT_FAILED
        if not reported:
            hand_over(handle)
            return EXIT_UNREPORTED
        return EXIT_FAILED

    # ------------------------------------------------------------ the flow

    def execute(self, flow: Flow[..., Any], given: dict[str, Any], handle: RunHandle) -> int:
        """Run the flow in the context of the run; return the exit status."""
        from dockyard.sdk.runtime import logs
        from dockyard.sdk.runtime.flow_runs import run_flow_sync

        with logs.capture_output():
            try:
                if flow.isasync:
                    import asyncio

                    asyncio.run(self._run_async(flow, given, handle))
                else:
                    run_flow_sync(
                        flow, given, handle=handle, settings=self.settings, record=self.record
                    )
            except BaseException:
                # the run recorded how it ended and the run logger printed it
                return EXIT_FAILED
        return EXIT_COMPLETED

    async def _run_async(
        self, flow: Flow[..., Any], given: dict[str, Any], handle: RunHandle
    ) -> Any:
        import asyncio

        from dockyard.sdk.runtime.flow_runs import run_flow_async

        task = asyncio.current_task()
        assert task is not None
        self.termination.cancel_on_signal(task)
        try:
            return await run_flow_async(
                flow, given, handle=handle, settings=self.settings, record=self.record
            )
        finally:
            self.termination.restore()


def hand_over(handle: RunHandle) -> None:
    """Write the final state the server was not told as one line for the worker to report.

    It goes to the real standard error (never to the run's logs, which could not be sent
    either) and starts on a line of its own. The lease token in it is what the worker checks
    the line against; it is worthless once the run is final.
    """
    assert handle.unreported is not None
    state, message, result = handle.unreported
    record = {
        "flow_run_id": handle.id_text,
        "state": state,
        "message": message,
        "result": result,
        "lease_token": str(handle.lease_token) if handle.lease_token else None,
    }
    line = FINAL_STATE_MARKER + json.dumps(record, separators=(",", ":"))
    stream = getattr(sys.stderr, "dockyard_original", sys.stderr)
    stream.write(f"\n{line}\n")
    stream.flush()
    _say(
        f"the server was not told that flow run {handle.id} ended {state}: the line above "
        "hands it to the worker that runs it"
    )


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def run_hooks(
    run_id: uuid.UUID,
    settings: Settings,
    api: ServerApi | None = None,
    state_name: str | None = None,
) -> int:
    """Call the ``on_cancellation`` or ``on_crashed`` hooks of a run whose process is gone.

    A run killed (SIGKILL, out of memory) or cancelled by its worker ends CANCELLED or
    CRASHED without its engine calling its hooks; ``python -m dockyard.engine --hooks
    FLOW_RUN_ID`` loads its deployment's flow as the engine does (pull steps, entrypoint)
    and calls them, with what they log added to the run's logs. ``state_name`` is the final
    state the worker gave the run (a crashed run may be scheduled again by now); without
    it, the run's current state. Returns the exit status.
    """
    from dockyard.sdk.flows import load_flow
    from dockyard.sdk.runtime import hooks
    from dockyard.sdk.runtime.context import FLOW_RUN, FlowRunContext, RunRecord
    from dockyard.sdk.runtime.states import from_server
    from dockyard.sdk.runtime.tracking import RunHandle, Tracker

    api = api or ServerApi(settings.api_url, settings.api_key)
    pull_steps = PullSteps()
    try:
        run = api.read_flow_run(run_id)
        ended = state_name or run["state"]
        if ended not in HOOKED_STATES:
            raise DockyardError(f"it is {ended}, not {' or '.join(HOOKED_STATES)}")
        if not run.get("deployment_id"):
            raise DockyardError("it has no deployment to load its flow from")
        # read masked: the run is final, so no lease reveals its pull steps' credentials
        deployment: dict[str, Any] = api.transport.get(f"/deployments/{run['deployment_id']}")
        if not deployment.get("entrypoint"):
            return EXIT_COMPLETED  # its runs start a command of their own: no flow, no hooks
        base = pull_steps.run(deployment.get("pull_steps") or [], deployment.get("path"))
        flow = load_flow(deployment["entrypoint"], base, run["flow_name"])
        parameters = {**(deployment.get("parameters") or {}), **(run.get("parameters") or {})}
        message = run.get("state_message") if run["state"] == ended else None
        state = from_server(ended, message)
        if not hooks.flow_hooks_for(flow, state.type):
            return EXIT_COMPLETED
        tracker = Tracker(api, lease_seconds=settings.lease_seconds)
        context = FlowRunContext(
            flow=flow,
            handle=RunHandle(run_id, str(run["name"])),
            parameters=parameters,
            parent=None,
            tracker=tracker,
            settings=settings,
            log_prints=False,
            record=RunRecord.from_server(run, deployment, parameters),
        )
        token = FLOW_RUN.set(context)
        try:
            hooks.run_flow_hooks(context, state)
        finally:
            FLOW_RUN.reset(token)
            tracker.close()
    except DockyardError as exc:
        _say(f"cannot call the hooks of flow run {run_id}: {exc}")
        return EXIT_FAILED
    finally:
        pull_steps.cleanup()
    return EXIT_COMPLETED


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m dockyard.engine [--hooks] FLOW_RUN_ID``; return the exit status."""
    args = sys.argv[1:] if argv is None else argv
    called_hooks = bool(args) and args[0] == "--hooks"
    if called_hooks:
        args = args[1:]
    usage = HOOKS_USAGE if called_hooks else USAGE
    most = 2 if called_hooks else 1
    if not 1 <= len(args) <= most or args[0] in ("-h", "--help"):
        _say(usage)
        return EXIT_USAGE
    if called_hooks and len(args) == 2 and args[1] not in HOOKED_STATES:
        _say(f"{args[1]!r} is not a state whose hooks can be called\n{usage}")
        return EXIT_USAGE
    run_id = _uuid(args[0])
    if run_id is None:
        _say(f"{args[0]!r} is not a flow run id\n{usage}")
        return EXIT_USAGE
    if called_hooks:
        try:
            state_name = args[1] if len(args) == 2 else None
            return run_hooks(run_id, settings_module.load(), state_name=state_name)
        except DockyardError as exc:
            _say(str(exc))
            return EXIT_FAILED
    try:
        settings = settings_module.load()
        engine = Engine(
            run_id, settings=settings, lease_token=_uuid(os.environ.get(LEASE_TOKEN_ENV))
        )
    except DockyardError as exc:
        _say(str(exc))
        return EXIT_FAILED
    status = engine.run()
    if engine.terminated:
        # The run has reported how it ended; threads of tasks it was running must not hold
        # the process up.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status
