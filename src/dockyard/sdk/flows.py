"""``@flow`` and :class:`Flow`: a function whose calls are tracked as flow runs.

Applying the decorator records a definition and nothing else: no I/O, no server, no heavy
import. The machinery of a run (:mod:`dockyard.sdk.flow_runs`) is imported at the first call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from dockyard.sdk import options as opt

if TYPE_CHECKING:
    from dockyard.sdk.parameters import Signature

__all__ = ["Flow", "flow"]

P = ParamSpec("P")
R = TypeVar("R")


class Flow(Generic[P, R]):
    """A function whose every call is a flow run. Made by :func:`flow`.

    Calling it runs the function and returns its return value (an ``async def`` flow returns
    a coroutine to await). The run is recorded on the server when one is reachable.

    Attributes:
        fn: the decorated function.
        name: the flow's name on the server.
        isasync: whether ``fn`` is an ``async def``.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        version: str | None = None,
        retries: int = 0,
        retry_delay_seconds: float | Iterable[float] = 0.0,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        validate_parameters: bool = True,
        tags: Iterable[str] = (),
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@flow decorates a function, not {fn!r}")
        self.fn = fn
        self.isasync = opt.is_async(fn)
        self.name = opt.check_name(name if name is not None else opt.default_name(fn), "flow")
        self._description = description
        self.version = version
        self.retries = opt.check_retries(retries, "flow")
        self.retry_delay_seconds = opt.retry_delays(retry_delay_seconds, "flow")
        self.timeout_seconds = opt.check_timeout(timeout_seconds, "flow")
        self.log_prints = log_prints
        self.validate_parameters = bool(validate_parameters)
        self.tags = opt.check_tags(tags, "flow")
        self._signature: Signature | None = None
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn

    @property
    def description(self) -> str | None:
        """The description given to the decorator, else the function's docstring."""
        if self._description is not None:
            return self._description
        from dockyard.sdk.docstrings import clean_docstring

        return clean_docstring(self.fn)

    @property
    def signature(self) -> Signature:
        """The function's parameters: binding, validation and JSON schema (built once)."""
        if self._signature is None:
            from dockyard.sdk.parameters import Signature

            self._signature = Signature(self.fn, owner=f"flow {self.name!r}")
        return self._signature

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        from dockyard.sdk.flow_runs import call_flow

        result: R = call_flow(self, args, kwargs)
        return result

    def parameter_schema(self) -> dict[str, Any]:
        """Return the JSON schema of the flow's parameters.

        Types come from the type hints, defaults from the signature and descriptions from
        the docstring's ``Args:`` section. Deployments store it; the UI builds its form
        from it.
        """
        return self.signature.schema(title=self.name)

    def with_options(self, **changes: Any) -> Flow[P, R]:
        """Return a copy of this flow with some options changed (same keywords as ``@flow``)."""
        return Flow(self.fn, **{**self._options(), **changes})

    def _options(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self._description,
            "version": self.version,
            "retries": self.retries,
            "retry_delay_seconds": self.retry_delay_seconds,
            "timeout_seconds": self.timeout_seconds,
            "log_prints": self.log_prints,
            "validate_parameters": self.validate_parameters,
            "tags": self.tags,
        }

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r}, fn={self.__qualname__})"


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(
    *,
    name: str | None = None,
    description: str | None = None,
    version: str | None = None,
    retries: int = 0,
    retry_delay_seconds: float | Iterable[float] = 0.0,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    validate_parameters: bool = True,
    tags: Iterable[str] = (),
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    version: str | None = None,
    retries: int = 0,
    retry_delay_seconds: float | Iterable[float] = 0.0,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    validate_parameters: bool = True,
    tags: Iterable[str] = (),
) -> Flow[P, R] | Callable[[Callable[P, R]], Flow[P, R]]:
    """Make a function a flow: ``@flow`` or ``@flow(name=..., retries=...)``.

    Args:
        name: the flow's name (default: the function's, with ``_`` turned into ``-``).
        description: shown with the flow (default: the docstring).
        version: a version label recorded with the flow's deployments.
        retries: how many times a failed run is tried again.
        retry_delay_seconds: seconds to wait before each retry; a list gives one delay per
            retry (the last one repeats).
        timeout_seconds: fail a run attempt that takes longer (raises ``TimeoutError``).
        log_prints: send ``print`` output to the run's logs (it still prints); None
            inherits from the enclosing run (off at the top level).
        validate_parameters: validate and coerce arguments from the type hints (pydantic)
            before the function starts; a bad value fails the run and names the parameter.
        tags: labels recorded with each run.
    """
    options: dict[str, Any] = {
        "name": name,
        "description": description,
        "version": version,
        "retries": retries,
        "retry_delay_seconds": retry_delay_seconds,
        "timeout_seconds": timeout_seconds,
        "log_prints": log_prints,
        "validate_parameters": validate_parameters,
        "tags": tags,
    }
    if fn is None:

        def decorate(fn: Callable[P, R]) -> Flow[P, R]:
            return Flow(fn, **options)

        return decorate
    return Flow(fn, **options)
