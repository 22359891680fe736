"""The engine: ``python -m dockyard.engine FLOW_RUN_ID`` runs one flow run of a deployment.

It is what infrastructure (a worker's subprocess or container) starts for each run:

1. read the run; it must be SCHEDULED or PENDING;
2. take it: a SCHEDULED run goes to PENDING (which grants a lease) then RUNNING; a PENDING
   run, claimed by a worker, goes to RUNNING with the lease token the worker hands over in
   the environment variable ``DOCKYARD_LEASE_TOKEN``;
3. read its deployment, run its pull steps, import its entrypoint (``path/to/file.py:fn``
   relative to the deployment's path, or ``module:fn``), and bind the parameters
   (the deployment's, overridden by the run's). Any failure here fails the run with the
   reason, and the engine exits with status 1;
4. run the flow in the context of that run (no new run is created), shipping everything it
   writes to stdout and stderr as logs; exit 0 if it COMPLETED, 1 otherwise.

Steps 1 to 3 use :class:`~dockyard.sdk.transport.LeanTransport` and import only what they
need: they sit between a run's trigger and its first line of code.
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import TYPE_CHECKING, Any

from dockyard import settings as settings_module
from dockyard.exceptions import DockyardError
from dockyard.sdk.transport import LeanTransport

if TYPE_CHECKING:
    from dockyard.sdk.flows import Flow
    from dockyard.sdk.tracking import RunHandle
    from dockyard.settings import Settings

__all__ = ["Engine", "main"]

EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
LEASE_TOKEN_ENV = "DOCKYARD_LEASE_TOKEN"
STARTABLE = ("SCHEDULED", "PENDING")
USAGE = "usage: python -m dockyard.engine FLOW_RUN_ID"


def _say(message: str) -> None:
    print(f"dockyard engine: {message}", file=sys.stderr, flush=True)


class Engine:
    """Runs one flow run of a deployment; see the module's docstring for the steps.

    Args:
        run_id: the run to run.
        settings: the settings (API URL and key).
        lease_token: the lease a worker claimed the run with, if it did.
        api: the transport of the start calls (default: one on ``settings.api_url``).
    """

    def __init__(
        self,
        run_id: uuid.UUID,
        *,
        settings: Settings,
        lease_token: uuid.UUID | None = None,
        api: LeanTransport | None = None,
    ) -> None:
        self.run_id = run_id
        self.settings = settings
        self.lease_token = lease_token
        self.api = api or LeanTransport(settings.api_url, settings.api_key)

    def run(self) -> int:
        """Run the flow run and return the process's exit status."""
        try:
            run = self.api.get(f"/flow-runs/{self.run_id}")
            handle = self.take(run)
        except DockyardError as exc:
            _say(f"cannot start flow run {self.run_id}: {exc}")
            return EXIT_FAILED
        try:
            flow, given = self.prepare(run)
        except Exception as exc:
            self.fail(handle, str(exc))
            return EXIT_FAILED
        return self.execute(flow, given, handle)

    # ------------------------------------------------------------ start

    def take(self, run: dict[str, Any]) -> RunHandle:
        """Move the run to RUNNING and return the handle this process holds it by."""
        from dockyard.sdk.tracking import RunHandle

        state, token = run["state"], self.lease_token
        if state not in STARTABLE:
            raise DockyardError(
                f"it is {state}; the engine starts only {' or '.join(STARTABLE)} runs"
            )
        if state == "SCHEDULED":
            answer = self._transition("PENDING", token)
            token = _uuid(answer.get("lease_token")) or token
        self._transition("RUNNING", token)
        return RunHandle(self.run_id, str(run["name"]), token)

    def _transition(self, state: str, token: uuid.UUID | None, message: str | None = None) -> Any:
        body = {
            "state": state,
            "message": message,
            "idempotency_key": str(uuid.uuid4()),
            "lease_token": str(token) if token else None,
        }
        return self.api.post(f"/flow-runs/{self.run_id}/state", body)

    def prepare(self, run: dict[str, Any]) -> tuple[Flow[..., Any], dict[str, Any]]:
        """Load the deployment's flow and bind the run's parameters.

        Raises:
            DockyardError: no deployment, a broken entrypoint, or parameters that do not fit.
        """
        from dockyard.sdk.entrypoints import load_flow

        if not run.get("deployment_id"):
            raise DockyardError(f"flow run {self.run_id} has no deployment to run")
        deployment = self.api.get(f"/deployments/{run['deployment_id']}")
        if not deployment.get("entrypoint"):
            raise DockyardError(f"deployment {deployment['name']!r} has no entrypoint")
        self.pull(deployment)
        flow = load_flow(deployment["entrypoint"], deployment.get("path"), run["flow_name"])
        parameters = {**(deployment.get("parameters") or {}), **(run.get("parameters") or {})}
        try:
            given = flow.signature.bind((), parameters)
        except TypeError as exc:
            raise DockyardError(f"the run's parameters do not fit the flow: {exc}") from None
        return flow, given

    def pull(self, deployment: dict[str, Any]) -> None:
        """Run the deployment's pull steps (where its code comes from) before the import.

        Raises:
            DockyardError: the deployment has pull steps, which this engine cannot run yet.
        """
        if deployment.get("pull_steps"):
            raise DockyardError(
                f"deployment {deployment['name']!r} has pull steps, which this version of "
                "the engine does not run"
            )

    def fail(self, handle: RunHandle, message: str) -> None:
        """Report the run FAILED before its flow could start."""
        _say(f"flow run {self.run_id} failed: {message}")
        try:
            self._transition("FAILED", handle.lease_token, message)
        except DockyardError as exc:
            _say(f"could not report flow run {self.run_id} as FAILED: {exc}")

    # ------------------------------------------------------------ the flow

    def install_signal_handlers(self, handle: RunHandle) -> None:
        """Decide what a SIGTERM does to the run (nothing special yet: Python's default).

        The place for the process path's cancellation: on SIGTERM the run ends CANCELLED if
        it was asked to cancel, CRASHED ("terminated by signal") otherwise.
        """

    def execute(self, flow: Flow[..., Any], given: dict[str, Any], handle: RunHandle) -> int:
        """Run the flow in the context of the run; return the exit status."""
        from dockyard.sdk import logs
        from dockyard.sdk.flow_runs import run_flow_async, run_flow_sync

        self.install_signal_handlers(handle)
        with logs.capture_output():
            try:
                if flow.isasync:
                    import asyncio

                    asyncio.run(run_flow_async(flow, given, handle=handle, settings=self.settings))
                else:
                    run_flow_sync(flow, given, handle=handle, settings=self.settings)
            except BaseException:
                # the run recorded its failure and the run logger printed it
                return EXIT_FAILED
        return EXIT_COMPLETED


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m dockyard.engine FLOW_RUN_ID``; return the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        _say(USAGE)
        return EXIT_USAGE
    run_id = _uuid(args[0])
    if run_id is None:
        _say(f"{args[0]!r} is not a flow run id\n{USAGE}")
        return EXIT_USAGE
    try:
        settings = settings_module.load()
        engine = Engine(
            run_id, settings=settings, lease_token=_uuid(os.environ.get(LEASE_TOKEN_ENV))
        )
    except DockyardError as exc:
        _say(str(exc))
        return EXIT_FAILED
    return engine.run()
