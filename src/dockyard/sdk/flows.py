"""``@flow`` and :class:`Flow`: a function whose calls are tracked as flow runs.

Applying the decorator records a definition and nothing else: no I/O, no server, no heavy
import. The machinery of a run (:mod:`dockyard.sdk.flow_runs`) is imported at the first call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from dockyard.sdk import options as opt
from dockyard.sdk.flow_deployments import DeploymentMethods

if TYPE_CHECKING:
    from pathlib import Path

    from dockyard.sdk.sources import FlowSource

__all__ = ["Flow", "flow"]

P = ParamSpec("P")
R = TypeVar("R")


class Flow(opt.Definition, DeploymentMethods, Generic[P, R]):
    """A function whose every call is a flow run. Made by :func:`flow`.

    Calling it runs the function and returns its return value (an ``async def`` flow returns
    a coroutine to await). The run is recorded on the server when one is reachable.

    Attributes:
        fn: the decorated function.
        name: the flow's name on the server.
        isasync: whether ``fn`` is an ``async def``.
    """

    kind = "flow"

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
        self._define(
            fn,
            name=name,
            description=description,
            version=version,
            retries=retries,
            retry_delay_seconds=retry_delay_seconds,
            timeout_seconds=timeout_seconds,
            log_prints=log_prints,
            tags=tags,
        )
        self.fn = fn
        self.validate_parameters = bool(validate_parameters)
        self._source: FlowSource | None = None

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
        copy = Flow(self.fn, **{**self._options(), **changes})
        copy._source = self._source
        return copy

    # ------------------------------------------------------------ deployments

    @property
    def source(self) -> FlowSource | None:
        """Where deployments find this flow's code, when loaded by ``flow.from_source``."""
        return self._source

    def with_source(self, source: FlowSource) -> Flow[P, R]:
        """Return a copy of this flow whose deployments find its code at ``source``."""
        copy = self.with_options()
        copy._source = source
        return copy

    def _options(self) -> dict[str, Any]:
        return {**super()._options(), "validate_parameters": self.validate_parameters}


class FlowDecorator:
    """``@flow`` or ``@flow(name=..., retries=...)``: make a function a :class:`Flow`.

    ``flow.from_source(source, entrypoint)`` loads a flow from a directory or a git
    repository, for deployments that fetch its code from there.
    """

    @overload
    def __call__(self, fn: Callable[P, R], /) -> Flow[P, R]: ...

    @overload
    def __call__(
        self,
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
    ) -> Callable[[Callable[P, R]], Flow[P, R]]: ...

    def __call__(
        self,
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
            retry_delay_seconds: seconds to wait before each retry; a list gives one delay
                per retry (the last one repeats).
            timeout_seconds: fail a run attempt that takes longer (raises ``TimeoutError``).
            log_prints: send ``print`` output to the run's logs (it still prints); None
                inherits from the enclosing run (off at the top level).
            validate_parameters: validate and coerce arguments from the type hints
                (pydantic) before the function starts; a bad value fails the run and names
                the parameter.
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

    @staticmethod
    def from_source(
        source: str | Path,
        entrypoint: str,
        *,
        branch: str | None = None,
        commit: str | None = None,
    ) -> Flow[..., Any]:
        """Load the flow ``entrypoint`` names in ``source``, for deploying it from there.

        ::

            flow.from_source("https://github.com/org/flows.git", "etl.py:nightly").deploy(
                "nightly", work_pool_name="pool"
            )

        Args:
            source: a local directory, or a git repository: a URL (``https://``,
                ``ssh://``, ``git://``, ``file://``, ``user@host:path``) or a local path
                ending in ``.git``.
            entrypoint: ``path/to/file.py:function`` relative to the source's root, or
                ``module:function``.
            branch: for a git source, the branch (or tag) to run (default: the default
                branch, as it is when each run starts).
            commit: for a git source, the commit to run.

        Returns:
            The flow; its deployments record the source: a directory as their path, a git
            repository as a ``git_clone`` pull step that the engine runs before each run.

        Raises:
            DockyardError: the source cannot be read or cloned, or the entrypoint cannot
                be loaded.
        """
        from dockyard.sdk.sources import load_from_source

        return load_from_source(source, entrypoint, branch=branch, commit=commit)

    def __repr__(self) -> str:
        return "<dockyard.flow>"


flow = FlowDecorator()
