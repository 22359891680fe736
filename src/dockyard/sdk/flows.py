"""``@flow`` and :class:`Flow`: a function whose calls are tracked as flow runs.

Applying the decorator records a definition and nothing else: no I/O, no server, no heavy
import. The machinery of a run (:mod:`dockyard.sdk.runtime.flow_runs`) is imported at the
first call.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, overload

from dockyard.sdk import options as opt
from dockyard.sdk.flow_deployments import DeploymentMethods

if TYPE_CHECKING:
    from pathlib import Path

    from dockyard.sdk.deploy.sources import FlowSource
    from dockyard.sdk.runtime.persistence import ResultStorage
    from dockyard.sdk.runtime.serializers import ResultSerializer
    from dockyard.sdk.runtime.states import State
    from dockyard.sdk.runtime.task_runners import TaskRunner

__all__ = ["Flow", "as_flow", "flow", "load_flow"]

P = ParamSpec("P")
R = TypeVar("R")
H = TypeVar("H", bound=Callable[..., Any])


class Flow(opt.Definition, DeploymentMethods, Generic[P, R]):
    """A function whose every call is a flow run. Made by :func:`flow`.

    Calling it runs the function and returns its return value (an ``async def`` flow returns
    a coroutine to await). The run is recorded on the server when one is reachable.

    Attributes:
        fn: the decorated function.
        name: the flow's name on the server.
        isasync: whether ``fn`` is an ``async def``.
        task_runner: the runner of the tasks its runs submit (None: the default).
    """

    kind = "flow"
    on_cancellation_hooks: list[opt.StateHook]
    on_crashed_hooks: list[opt.StateHook]

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        version: str | None = None,
        retries: int = 0,
        retry_delay_seconds: opt.RetryDelaySeconds = 0.0,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        validate_parameters: bool = True,
        task_runner: TaskRunner | type[TaskRunner] | None = None,
        persist_result: bool | None = None,
        result_storage: ResultStorage | None = None,
        result_serializer: ResultSerializer | None = None,
        tags: Iterable[str] = (),
        flow_run_name: opt.RunName | None = None,
        on_completion: Iterable[opt.StateHook] | None = None,
        on_failure: Iterable[opt.StateHook] | None = None,
        on_cancellation: Iterable[opt.StateHook] | None = None,
        on_crashed: Iterable[opt.StateHook] | None = None,
        on_running: Iterable[opt.StateHook] | None = None,
    ) -> None:
        self._given = opt.given(locals())  # first: the keywords as given, for with_options
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
        self.task_runner = _check_task_runner(task_runner, self.name)
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        if any(o is not None for o in (persist_result, result_storage, result_serializer)):
            from dockyard.sdk.runtime.cache_policies import check_flow_results

            check_flow_results(
                f"flow {self.name!r}", persist_result, result_storage, result_serializer
            )
        self.flow_run_name = opt.check_run_name(flow_run_name, "flow")
        self._define_hooks(
            on_completion=on_completion,
            on_failure=on_failure,
            on_cancellation=on_cancellation,
            on_crashed=on_crashed,
            on_running=on_running,
        )
        self._source: FlowSource | None = None

    # As for Task.__call__: the call's own keywords are typed by the overloads after the first.
    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    @overload
    def __call__(
        self: Flow[..., Coroutine[Any, Any, Any]],
        *args: Any,
        return_state: Literal[True],
        wait_for: Iterable[Any] | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, State]: ...

    @overload
    def __call__(
        self,
        *args: Any,
        return_state: Literal[True],
        wait_for: Iterable[Any] | None = None,
        **kwargs: Any,
    ) -> State: ...

    @overload
    def __call__(
        self,
        *args: Any,
        return_state: Literal[False] = False,
        wait_for: Iterable[Any],
        **kwargs: Any,
    ) -> R: ...

    def __call__(  # type: ignore[misc]
        self, *args: Any, return_state: bool = False, wait_for: Any = None, **kwargs: Any
    ) -> Any:
        """Run the flow as one flow run and return its value (or raise its exception).

        Args:
            return_state: return the run's final :class:`~dockyard.sdk.runtime.states.State`
                instead; a failure is then not raised (``state.result()`` raises it).
            wait_for: futures (or States) of task runs to wait for first; if one of them
                did not complete, the flow does not run.
        """
        from dockyard.sdk.runtime.flow_runs import call_flow

        return call_flow(self, args, kwargs, return_state=return_state, wait_for=wait_for)

    def parameter_schema(self) -> dict[str, Any]:
        """Return the JSON schema of the flow's parameters.

        Types come from the type hints, defaults from the signature and descriptions from
        the docstring's ``Args:`` section. Deployments store it; the UI builds its form
        from it.
        """
        return self.signature.schema(title=self.name)

    def with_options(self, **changes: Any) -> Flow[P, R]:
        """Return a copy of this flow with some options changed (same keywords as ``@flow``).

        Raises:
            TypeError: a keyword is not an option of ``@flow``.
        """
        copy = Flow(self.fn, **self._changed(changes))
        copy._source = self._source
        return copy

    def on_cancellation(self, fn: H) -> H:
        """Decorator: also call ``fn(flow, flow_run, state)`` when a run ends CANCELLED."""
        self.on_cancellation_hooks.append(opt.check_hooks(fn, "flow", "on_cancellation")[0])
        return fn

    def on_crashed(self, fn: H) -> H:
        """Decorator: also call ``fn(flow, flow_run, state)`` when a run ends CRASHED."""
        self.on_crashed_hooks.append(opt.check_hooks(fn, "flow", "on_crashed")[0])
        return fn

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


def _check_task_runner(runner: Any, flow_name: str) -> TaskRunner | None:
    """The flow's task runner: an instance (a runner class given is instantiated)."""
    if runner is None:
        return None
    from dockyard.sdk.runtime.task_runners import TaskRunner

    if isinstance(runner, type) and issubclass(runner, TaskRunner):
        runner = runner()
    if not isinstance(runner, TaskRunner):
        raise TypeError(
            f"flow {flow_name!r}: task_runner must be a task runner, such as "
            f"ThreadPoolTaskRunner(max_workers=4) from dockyard.task_runners, not {runner!r}"
        )
    return runner


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
        retry_delay_seconds: opt.RetryDelaySeconds = 0.0,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        validate_parameters: bool = True,
        task_runner: TaskRunner | type[TaskRunner] | None = None,
        persist_result: bool | None = None,
        result_storage: ResultStorage | None = None,
        result_serializer: ResultSerializer | None = None,
        tags: Iterable[str] = (),
        flow_run_name: opt.RunName | None = None,
        on_completion: Iterable[opt.StateHook] | None = None,
        on_failure: Iterable[opt.StateHook] | None = None,
        on_cancellation: Iterable[opt.StateHook] | None = None,
        on_crashed: Iterable[opt.StateHook] | None = None,
        on_running: Iterable[opt.StateHook] | None = None,
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
        retry_delay_seconds: opt.RetryDelaySeconds = 0.0,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        validate_parameters: bool = True,
        task_runner: TaskRunner | type[TaskRunner] | None = None,
        persist_result: bool | None = None,
        result_storage: ResultStorage | None = None,
        result_serializer: ResultSerializer | None = None,
        tags: Iterable[str] = (),
        flow_run_name: opt.RunName | None = None,
        on_completion: Iterable[opt.StateHook] | None = None,
        on_failure: Iterable[opt.StateHook] | None = None,
        on_cancellation: Iterable[opt.StateHook] | None = None,
        on_crashed: Iterable[opt.StateHook] | None = None,
        on_running: Iterable[opt.StateHook] | None = None,
    ) -> Flow[P, R] | Callable[[Callable[P, R]], Flow[P, R]]:
        """Make a function a flow: ``@flow`` or ``@flow(name=..., retries=...)``.

        Args:
            name: the flow's name (default: the function's, with ``_`` turned into ``-``).
            description: shown with the flow (default: the docstring).
            version: a version label recorded with the flow's deployments.
            retries: how many times a failed run is tried again.
            retry_delay_seconds: seconds to wait before each retry; a list gives one delay
                per retry (the last one repeats); a function of the number of retries
                returns that list (``exponential_backoff(10)``).
            timeout_seconds: fail a run attempt that takes longer (raises ``TimeoutError``).
            log_prints: send ``print`` output to the run's logs (it still prints); None
                inherits from the enclosing run (off at the top level).
            validate_parameters: validate and coerce arguments from the type hints
                (pydantic) before the function starts; a bad value fails the run and names
                the parameter.
            task_runner: where the tasks a run submits (``.submit``, ``.map``) run: a
                :class:`~dockyard.task_runners.TaskRunner` such as
                ``ThreadPoolTaskRunner(max_workers=4)`` or ``ProcessPoolTaskRunner()``
                (default: ``ThreadPoolTaskRunner()``); each run uses its own copy.
            persist_result: write the run's result, and by default its tasks' results, to
                the result storage (None: as the enclosing flow says, else the setting
                ``DOCKYARD_RESULTS_PERSIST_BY_DEFAULT``). False also stops a deployment's
                run from keeping its tasks' results for a crash retry.
            result_storage: where the run and its tasks write results: a folder path, an
                fsspec URL (with ``fsspec`` installed) or a storage object (default:
                ``$DOCKYARD_HOME/storage``).
            result_serializer: how results are written: ``"pickle"`` (default),
                ``"json"``, ``"compressed/pickle"``, ``"compressed/json"`` or an object with
                ``dumps``/``loads``.
            tags: labels recorded with each run (with those of enclosing ``tags(...)``
                blocks).
            flow_run_name: each run's name: a template over the parameters
                (``"{name}-on-{date:%A}"``), or a function returning it (default: a name
                the server makes up).
            on_completion, on_failure, on_cancellation, on_crashed: lists of
                ``hook(flow, flow_run, state)`` called once a run ends in that state.
            on_running: hooks called when a run starts, and at each retry.
        """
        options = opt.given(locals())  # first: every keyword above, as given
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
        from dockyard.sdk.deploy.sources import read_source

        target, where = read_source(source, entrypoint, branch=branch, commit=commit)
        return as_flow(target, entrypoint).with_source(where)

    def __repr__(self) -> str:
        return "<dockyard.flow>"


flow = FlowDecorator()


def as_flow(target: Any, entrypoint: str, name: str | None = None) -> Flow[..., Any]:
    """The flow an entrypoint named: a flow as it is, a plain function made a flow (named
    ``name``, default: after the function).

    Raises:
        DockyardError: the entrypoint names something else (a class, a task, a value).
    """
    from dockyard.exceptions import DockyardError
    from dockyard.sdk.tasks import Task

    if isinstance(target, Flow):
        return target
    if callable(target) and not isinstance(target, type | Task):
        return Flow(target, name=name) if name else Flow(target)
    raise DockyardError(
        f"entrypoint {entrypoint!r} names a {type(target).__name__}, not a flow or a function"
    )


def load_flow(entrypoint: str, base: str | None, flow_name: str) -> Flow[..., Any]:
    """Import the flow a deployment's entrypoint names (a plain function becomes a flow
    named ``flow_name``).

    Raises:
        DockyardError: the entrypoint cannot be imported, or names no flow nor function.
    """
    from dockyard.sdk.deploy.entrypoints import load_entrypoint

    return as_flow(load_entrypoint(entrypoint, base), entrypoint, flow_name)
