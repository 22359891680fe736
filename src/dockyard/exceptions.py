"""Every error Dockyard raises on purpose.

::

    DockyardError                 base of all of them
    ├── ServerUnreachable         the API could not be reached at all
    ├── ApiError                  the API answered with an error status
    │   ├── Unauthorized          401/403: missing or wrong API key
    │   ├── NotFound              404: no such flow, deployment, run, pool, queue, worker
    │   ├── Conflict              409: duplicate name, or a refused state transition
    │   ├── InvalidInput          422: a field's value was refused
    │   └── ServerError           5xx (always a bug in the server)
    ├── IncompatibleServer        the server speaks another API version
    ├── InvalidSetting            a setting's value does not fit its type or range
    ├── FlowRunAborted            the server fenced off this run (its lease is no longer ours)
    ├── ParameterValidationError  a flow's parameter does not fit its type hint (a ValueError)
    ├── LaunchError               a worker could not start a run's infrastructure
    ├── MissingContextError       called outside a flow or task run (also a RuntimeError)
    ├── FlowPauseTimeout          pause_flow_run: nobody resumed the run within its timeout
    ├── MissingResult             State.result(): the state holds no result
    ├── UnfinishedRun             State.result(): the state is not final
    ├── FailedRun                 State.result(): a FAILED state without an exception
    ├── CrashedRun                State.result(): a CRASHED state
    └── CancelledRun              State.result(): a CANCELLED state

    FlowRunTerminated             (a BaseException) the engine running the flow got SIGTERM
    FlowRunSuspended              (a BaseException) suspend_flow_run stops the flow

Messages are meant for people: they say what was wrong and what to do.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "CancelledRun",
    "Conflict",
    "CrashedRun",
    "DockyardError",
    "FailedRun",
    "FlowPauseTimeout",
    "FlowRunAborted",
    "FlowRunSuspended",
    "FlowRunTerminated",
    "IncompatibleServer",
    "InvalidInput",
    "InvalidSetting",
    "LaunchError",
    "MissingContextError",
    "MissingResult",
    "NotFound",
    "ParameterValidationError",
    "ServerError",
    "ServerUnreachable",
    "Unauthorized",
    "UnfinishedRun",
]


class DockyardError(Exception):
    """Raised for every error Dockyard reports on purpose."""


class ServerUnreachable(DockyardError):
    """Raised when no server answers at the configured API URL."""

    def __init__(self, url: str, reason: str = "") -> None:
        self.url = url
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"cannot reach the Dockyard server at {url}{detail}; start one with "
            "`dockyard server start` or set DOCKYARD_API_URL to a running server"
        )


class ApiError(DockyardError):
    """Raised when the API answers with an error status; ``body`` is its JSON body."""

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None) -> None:
        self.status = status
        self.body = body or {}
        super().__init__(message)


class Unauthorized(ApiError):
    """Raised when the server wants an API key (set DOCKYARD_API_KEY) or refused the one sent."""


class NotFound(ApiError):
    """Raised when the named object does not exist."""

    @property
    def suggestions(self) -> list[str]:
        return list(self.body.get("suggestions") or [])


class Conflict(ApiError):
    """Raised on a duplicate, or when the server refused a state transition.

    ``current_state`` is the run's state when the transition was refused.
    """

    @property
    def current_state(self) -> str | None:
        value = self.body.get("current_state")
        return str(value) if value else None


class InvalidInput(ApiError):
    """Raised when the server refused a value; ``field`` names it where known."""

    @property
    def field(self) -> str | None:
        value = self.body.get("field")
        return str(value) if value else None


class ServerError(ApiError):
    """Raised when the server failed (a 5xx is always a server bug)."""


class IncompatibleServer(DockyardError):
    """Raised when the server's API version is not the one this client speaks."""


class InvalidSetting(DockyardError):
    """Raised when a setting's value, from the environment or the profile file, does not fit
    its type or range; the message names the variable (or profile key) and what fits."""


class FlowRunAborted(DockyardError):
    """Raised inside a flow whose run the server no longer lets this process report on.

    The run was declared CRASHED (its lease expired) or cancelled; another attempt may be
    running, so this one stops.
    """


class ParameterValidationError(DockyardError, ValueError):
    """Raised before a flow starts when a parameter's value does not fit its type hint.

    The message names the flow and the parameter, and says what was expected.
    """


class FlowRunTerminated(BaseException):
    """Raised in a flow's main thread when the engine running it is sent SIGTERM.

    It is not an ``Exception``, so that ``except Exception`` in a flow does not swallow it:
    the run ends CANCELLED if it was asked to cancel, CRASHED otherwise.
    """


class LaunchError(DockyardError):
    """Raised by a worker type when a run's infrastructure cannot start.

    The message says why in plain words (a missing command or directory, an image that
    cannot be pulled); the worker records it as the reason the run CRASHED.
    ``retryable=False`` says that starting it again would fail the same way (an image that
    is not there with pull policy ``Never``): no crash retry is spent on it.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class MissingContextError(DockyardError, RuntimeError):
    """Raised when something that needs a running flow or task (``get_run_logger()``) is
    called outside one."""


class MissingResult(DockyardError):
    """Raised by ``State.result()`` when the state holds no result to give back."""


class UnfinishedRun(DockyardError):
    """Raised by ``State.result()`` for a state that is not final: the run has no result
    yet."""


class FailedRun(DockyardError):
    """Raised by ``State.result()`` for a FAILED state that holds no exception of its own
    (one made with ``Failed(message=...)``); the message is the state's."""


class CrashedRun(DockyardError):
    """Raised by ``State.result()`` for a CRASHED state: the run's process or its
    infrastructure ended before the run could report its end."""


class CancelledRun(DockyardError):
    """Raised by ``State.result()`` for a CANCELLED state."""


class FlowPauseTimeout(DockyardError):
    """Raised by ``pause_flow_run`` when nobody resumed the run within its timeout; the run
    ends FAILED with this message."""


class FlowRunSuspended(BaseException):
    """Raised in a flow by ``suspend_flow_run`` to stop it: its process exits and the run
    waits, PAUSED and suspended, for a resume.

    It is not an ``Exception``, so that ``except Exception`` in a flow does not swallow it.
    """
