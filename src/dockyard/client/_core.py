"""What the sync and async clients share: calls, retries, and turning answers into values.

A :class:`Call` describes one request (method, path, query, body) and how to parse its answer.
The clients only send calls: everything that can be decided without I/O lives here, so
:class:`~dockyard.client.Client` and :class:`~dockyard.client.AsyncClient` stay thin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from dockyard._http_errors import error_for as _error_for
from dockyard._version import __version__
from dockyard.exceptions import (
    ApiError,
    DockyardError,
    IncompatibleServer,
    ServerUnreachable,
)

T = TypeVar("T")

USER_AGENT = f"dockyard-client/{__version__}"


# Errors raised before a single byte of the request left this process: retrying them can
# never make the server act twice.
_BEFORE_SENDING = (httpx.ConnectError, httpx.ConnectTimeout)
# Errors after which the server may or may not have acted on the request.
_MAYBE_SENT = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request to the API and how to read its answer.

    ``idempotent`` says whether sending the call twice has the same effect as sending it once
    (reads, PATCH, DELETE, upserts, creations carrying an idempotency key). ``timeout``
    overrides the client's for this call (a long-poll waits longer than a plain request).
    """

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    body: Any = None
    idempotent: bool = True
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the clients retry transient failures.

    A call is tried at most ``attempts`` times; the wait before the n-th retry is
    ``backoff * 2 ** (n - 1)`` seconds. Only connection failures and the gateway statuses in
    ``statuses`` are retried, never another 4xx or 5xx, but for 429 (too many requests with
    one API key): the server refused it before acting, so any call is retried, after the
    ``Retry-After`` seconds it asked for (at most ``max_retry_after``).
    A 503 (a replica whose database is unreachable) is retried after its ``Retry-After``
    too, when longer than the backoff.
    """

    attempts: int = 4
    backoff: float = 0.1
    statuses: frozenset[int] = frozenset({502, 503, 504})
    max_retry_after: float = 60.0

    def delay(
        self,
        call: Call[Any],
        attempt: int,
        *,
        error: Exception | None = None,
        status: int | None = None,
        retry_after: str | None = None,
    ) -> float | None:
        """Return how long to wait before trying ``call`` again, or None to stop.

        Args:
            call: the call that was just tried.
            attempt: how many times it has been tried so far (1 after the first try).
            error: the transport error it failed with, if any.
            status: the HTTP status it was answered with, if any.
            retry_after: the answer's ``Retry-After`` header, if any.
        """
        backoff = float(self.backoff * 2 ** (attempt - 1))
        if status == 429 and attempt < self.attempts:
            return max(backoff, min(_seconds(retry_after), self.max_retry_after))
        if attempt >= self.attempts or not self._retryable(call, error, status):
            return None
        if status == 503:  # e.g. the server's database is unreachable: wait as it asks
            return max(backoff, min(_seconds(retry_after), self.max_retry_after))
        return backoff

    def _retryable(self, call: Call[Any], error: Exception | None, status: int | None) -> bool:
        if error is not None:
            if isinstance(error, _BEFORE_SENDING):
                return True
            # A POST that creates something may have reached the server before the connection
            # broke or a gateway gave up; sending it again could create it twice. Such calls
            # are retried only when the request surely never left (connection refused).
            return call.idempotent and isinstance(error, _MAYBE_SENT)
        return call.idempotent and status in self.statuses


def _seconds(retry_after: str | None) -> float:
    """The delay of a ``Retry-After`` header in seconds (0 when absent or an HTTP date)."""
    text = (retry_after or "").strip()
    return float(text) if text.isdigit() else 0.0


def check_api_url(api_url: str) -> str:
    """Return ``api_url`` without a trailing slash; raise DockyardError if it is no HTTP URL."""
    url = api_url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise DockyardError(
            f"invalid API URL {api_url!r}: it must start with http:// or https://, "
            "e.g. http://127.0.0.1:4200/api (set DOCKYARD_API_URL)"
        )
    return url


def headers(api_key: str | None) -> dict[str, str]:
    """Return the headers sent with every request."""
    result = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if api_key:
        result["Authorization"] = f"Bearer {api_key}"
    return result


def request_kwargs(call: Call[Any]) -> dict[str, Any]:
    """Return the keyword arguments of ``httpx.Client.request`` for ``call``."""
    kwargs: dict[str, Any] = {}
    if call.params:
        kwargs["params"] = {k: v for k, v in call.params.items() if v is not None}
    if call.body is not None:
        kwargs["json"] = call.body
    elif call.method in _WRITES:
        # the API takes writes as JSON: say so even without a body (``/pause``)
        kwargs["headers"] = {"Content-Type": "application/json"}
    if call.timeout is not None:
        kwargs["timeout"] = call.timeout
    return kwargs


def decode(call: Call[T], response: httpx.Response) -> T:
    """Return the parsed answer to ``call``, or raise the ApiError its status stands for."""
    if response.is_success:
        try:
            return call.parse(response)
        except (ValueError, KeyError, TypeError) as exc:  # bad JSON, or not the schema
            raise IncompatibleServer(
                f"the answer to {call.method} {call.path} does not match what this client "
                f"(dockyard {__version__}) expects; the server may run another version: {exc}"
            ) from exc
    raise error_for(response)


def error_for(response: httpx.Response) -> ApiError:
    """Return the exception for an error answer, carrying its JSON body."""
    request = response.request
    return _error_for(response.status_code, response.content, request.method, request.url.path)


def transport_error(api_url: str, call: Call[Any], error: httpx.RequestError) -> DockyardError:
    """Return the exception for a request that got no answer at all."""
    if isinstance(error, httpx.TimeoutException) and not isinstance(error, httpx.ConnectTimeout):
        return DockyardError(
            f"the Dockyard server at {api_url} did not answer {call.method} {call.path} "
            f"in time ({type(error).__name__})"
        )
    return ServerUnreachable(api_url, str(error) or type(error).__name__)
