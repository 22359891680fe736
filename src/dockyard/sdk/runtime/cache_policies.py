"""Cache policies: how a task run's cache key is computed (``@task(cache_policy=...)``).

A policy's :meth:`CachePolicy.compute_key` returns a key, or None for "do not cache this
run". Runs of tasks whose results are persisted and whose keys are equal share one result:
a later run with the key of a stored, unexpired result returns it without running.

The policies:

- :data:`INPUTS`: the task's arguments (defaults included); ``INPUTS - "name"`` leaves an
  argument out;
- :data:`TASK_SOURCE`: the source code of the task's function;
- :data:`FLOW_PARAMETERS`: the parameters of the flow run the task runs in;
- :data:`RUN_ID`: the id of the flow run (of the task run, outside any flow);
- :data:`DEFAULT` = ``INPUTS + TASK_SOURCE + RUN_ID``: equal calls within one flow run;
- :data:`NO_CACHE`: never a key (``NONE`` is the same policy);
- :class:`CacheKeyFnPolicy`: a ``cache_key_fn(context, parameters)`` of the user's.

``a + b`` combines policies (the key changes when either part does). ``policy.configure(
key_storage=PATH, isolation_level="SERIALIZABLE")`` returns a copy whose cache records are
kept in the folder ``PATH`` (or URL, or storage object) instead of the result storage, and
whose runs with one key run one at a time (a file lock in the key storage, which must then be
a local folder). The default, ``READ_COMMITTED``, lets runs with one key run side by side.

Arguments are hashed from their JSON form, else from their pickle; a run whose arguments
are neither runs without caching, after a warning.

The module also checks the result keywords of ``@task`` and ``@flow`` when they are applied
(:func:`task_results`, :func:`check_flow_results`); :mod:`dockyard.sdk.runtime.cache` says what
they do.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import json
import logging
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from dockyard.sdk.runtime.persistence import check_storage
from dockyard.sdk.runtime.serializers import Serializer, check_serializer

if TYPE_CHECKING:
    from dockyard.sdk.runtime.context import TaskRunContext

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NONE",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
    "FlowParameters",
    "Inputs",
    "IsolationLevel",
    "NoCache",
    "RunId",
    "TaskResults",
    "TaskSource",
    "check_flow_results",
    "hash_objects",
    "task_results",
]

P = TypeVar("P", bound="CachePolicy")
_log = logging.getLogger(__name__)


class IsolationLevel(enum.StrEnum):
    """How runs with one cache key may overlap."""

    READ_COMMITTED = "READ_COMMITTED"
    """Side by side: each that misses the cache runs (the default)."""
    SERIALIZABLE = "SERIALIZABLE"
    """One at a time: the next one reads the result the first one stored."""


def hash_objects(*values: Any) -> str:
    """Return a hex digest of ``values``: of their JSON form, else of their pickle.

    Raises:
        ValueError: they are neither JSON nor picklable.
    """
    import hashlib
    import pickle

    try:
        data = json.dumps(values, sort_keys=True, separators=(",", ":")).encode()
    except (TypeError, ValueError, RecursionError):
        try:
            data = pickle.dumps(values, protocol=4)
        except Exception as exc:
            raise ValueError(
                f"cannot hash {_kinds(values)} ({type(exc).__name__}: {exc}); leave the "
                "argument out of the key (cache_policy=INPUTS - 'name', or a cache_key_fn), "
                "or turn caching off for this task (cache_policy=NO_CACHE)"
            ) from None
    return hashlib.sha256(data).hexdigest()


def _kinds(values: tuple[Any, ...]) -> str:
    kinds: list[str] = []
    for value in values:
        items = value.values() if isinstance(value, dict) else [value]
        kinds.extend(type(v).__name__ for v in items)
    return "values of types " + ", ".join(sorted(set(kinds)))


def _check_name(name: object) -> None:
    if not isinstance(name, str):
        raise TypeError(
            f"only argument names (strings) can be taken from a cache policy, not {name!r}"
        )


class CachePolicy:
    """A recipe for a task run's cache key; subclasses implement :meth:`compute_key`.

    Attributes:
        key_storage: where the cache records are kept (None: with the results).
        isolation_level: ``"READ_COMMITTED"`` (default) or ``"SERIALIZABLE"``.
    """

    key_storage: Any = None
    isolation_level: IsolationLevel | None = None

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        """Return the key of the run ``task_ctx`` with arguments ``inputs``, or None."""
        raise NotImplementedError

    def configure(
        self: P,
        key_storage: Any = None,
        lock_manager: Any = None,
        isolation_level: IsolationLevel | str | None = None,
    ) -> P:
        """Return a copy with its cache records in ``key_storage`` and its isolation level.

        Args:
            key_storage: a folder path, an fsspec URL or a storage object (None: keep).
            lock_manager: not used; SERIALIZABLE runs lock a file in the key storage.
            isolation_level: ``"READ_COMMITTED"`` or ``"SERIALIZABLE"`` (None: keep).

        Raises:
            ValueError: an unknown isolation level, or an unusable key storage.
        """
        new = copy.copy(self)
        if key_storage is not None:
            check_storage(key_storage, "cache policy")
            new.key_storage = key_storage
        if isolation_level is not None:
            try:
                new.isolation_level = IsolationLevel(
                    isolation_level.value
                    if isinstance(isolation_level, IsolationLevel)
                    else str(isolation_level).upper()
                )
            except ValueError:
                raise ValueError(
                    f"isolation_level must be 'READ_COMMITTED' or 'SERIALIZABLE', "
                    f"not {isolation_level!r}"
                ) from None
        return new

    @classmethod
    def from_cache_key_fn(
        cls, cache_key_fn: Callable[[TaskRunContext, dict[str, Any]], str | None]
    ) -> CacheKeyFnPolicy:
        """Return the policy whose keys ``cache_key_fn(context, parameters)`` returns."""
        return CacheKeyFnPolicy(cache_key_fn)

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        return CompoundCachePolicy([self, other])

    def __sub__(self, name: str) -> CachePolicy:
        """Return this policy with the argument ``name`` left out of its key."""
        _check_name(name)
        return CompoundCachePolicy([self, Inputs(exclude=[name])])

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NoCache(CachePolicy):
    """Never a key: every run runs."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        return None

    def __sub__(self, name: str) -> CachePolicy:
        return self


class Inputs(CachePolicy):
    """The task's arguments, but those named in ``exclude``."""

    def __init__(self, exclude: Iterable[str] = ()) -> None:
        self.exclude = list(exclude)

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        kept = {k: v for k, v in inputs.items() if k not in self.exclude}
        return hash_objects(kept)

    def __sub__(self, name: str) -> CachePolicy:
        _check_name(name)
        new = copy.copy(self)
        new.exclude = [*self.exclude, name]
        return new

    def __repr__(self) -> str:
        return f"Inputs(exclude={self.exclude!r})"


_SOURCES: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def source_hash(fn: Any) -> str:
    """Return a digest of ``fn``'s source code (of its bytecode where there is no source)."""
    try:
        return _SOURCES[fn]
    except (KeyError, TypeError):
        pass
    import hashlib
    import inspect

    try:
        text = inspect.getsource(fn).encode()
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        text = code.co_code + repr(code.co_consts).encode() if code else repr(fn).encode()
    digest = hashlib.sha256(text).hexdigest()
    with contextlib.suppress(TypeError):  # not weakly referable: computed again next time
        _SOURCES[fn] = digest
    return digest


class TaskSource(CachePolicy):
    """The source code of the task's function: a changed function does not share keys."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        return source_hash(task_ctx.task.fn)


class FlowParameters(CachePolicy):
    """The parameters of the flow run the task runs in (no key without any)."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        if not flow_parameters:
            return None
        return hash_objects(flow_parameters)


class RunId(CachePolicy):
    """The id of the flow run, or of the task run outside any flow."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        flow_run = task_ctx.flow_run
        return str(flow_run.flow_run_id if flow_run is not None else task_ctx.task_run_id)


class CacheKeyFnPolicy(CachePolicy):
    """The key ``cache_key_fn(context, parameters)`` returns (None: do not cache)."""

    def __init__(
        self, cache_key_fn: Callable[[TaskRunContext, dict[str, Any]], str | None]
    ) -> None:
        if not callable(cache_key_fn):
            raise ValueError(f"cache_key_fn must be callable, not {cache_key_fn!r}")
        self.cache_key_fn = cache_key_fn

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        return self.cache_key_fn(task_ctx, inputs)

    def __repr__(self) -> str:
        return f"CacheKeyFnPolicy({getattr(self.cache_key_fn, '__qualname__', self.cache_key_fn)})"


class CompoundCachePolicy(CachePolicy):
    """Several policies at once: the key of their keys (None when none of them has one)."""

    def __init__(self, policies: Iterable[CachePolicy]) -> None:
        flat: list[CachePolicy] = []
        for policy in policies:
            if not isinstance(policy, CachePolicy):
                raise TypeError(f"a cache policy combines cache policies, not {policy!r}")
            if isinstance(policy, CompoundCachePolicy) and policy._plain():
                flat.extend(policy.policies)
            else:
                flat.append(policy)
        self.policies: list[CachePolicy] = flat

    def _plain(self) -> bool:
        return self.key_storage is None and self.isolation_level is None

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        keys = [p.compute_key(task_ctx, inputs, flow_parameters, **kwargs) for p in self.policies]
        present = [k for k in keys if k is not None]
        if not present:
            return None
        import hashlib

        return hashlib.sha256("\0".join(present).encode()).hexdigest()

    def __sub__(self, name: str) -> CachePolicy:
        _check_name(name)
        found = any(isinstance(p, Inputs) for p in self.policies)
        new = copy.copy(self)
        new.policies = [p - name if isinstance(p, Inputs) else p for p in self.policies]
        if not found:
            new.policies.append(Inputs(exclude=[name]))
        return new

    def __repr__(self) -> str:
        return " + ".join(repr(p) for p in self.policies)


NO_CACHE = NoCache()
NONE = NO_CACHE
INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID


# ---------------------------------------------------------------- a task's and a flow's options


class TaskResults:
    """A task's result options, checked when it is defined (see :mod:`dockyard.sdk.runtime.cache`).

    Attributes:
        persist: whether its results are persisted (None: as its flow says).
        policy: its cache policy (None: ``DEFAULT``).
        storage: its result storage, as given (None: its flow's).
        serializer: its serializer (None: its flow's).
    """

    __slots__ = ("persist", "policy", "serializer", "storage")

    def __init__(
        self,
        *,
        persist: bool | None,
        policy: CachePolicy | None,
        storage: Any,
        serializer: Serializer | None,
    ) -> None:
        self.persist = persist
        self.policy = policy
        self.storage = storage
        self.serializer = serializer


def _check_persist(owner: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{owner} persist_result must be True, False or None, not {value!r}")


def task_results(
    owner: str,
    *,
    cache_policy: CachePolicy | None,
    cache_key_fn: Any,
    persist_result: bool | None,
    result_storage: Any,
    result_serializer: Any,
) -> TaskResults:
    """Return a task's result options from its keywords.

    Raises:
        ValueError: a keyword's value does not fit.
    """
    if cache_policy is not None and not isinstance(cache_policy, CachePolicy):
        raise ValueError(f"{owner} cache_policy must be a cache policy, not {cache_policy!r}")
    policy = cache_policy
    if cache_key_fn is not None:
        if cache_policy is not None:
            _log.warning("%s sets both cache_policy and cache_key_fn: cache_key_fn is used", owner)
        policy = CacheKeyFnPolicy(cache_key_fn)
    _check_persist(owner, persist_result)
    persist = persist_result
    if persist is None and (
        (policy is not None and policy != NO_CACHE)
        or result_storage is not None
        or result_serializer is not None
    ):
        persist = True
    if persist is False:
        if policy is not None and policy != NO_CACHE:
            _log.warning("%s sets persist_result=False: its cache_policy is not used", owner)
        policy = NO_CACHE
    if result_storage is not None:
        check_storage(result_storage, owner)
    serializer = None
    if result_serializer is not None:
        serializer = check_serializer(result_serializer, owner)
    return TaskResults(
        persist=persist, policy=policy, storage=result_storage, serializer=serializer
    )


def check_flow_results(
    owner: str, persist_result: Any, result_storage: Any, result_serializer: Any
) -> None:
    """Check a flow's result keywords when it is defined.

    Raises:
        ValueError: a keyword's value does not fit.
    """
    _check_persist(owner, persist_result)
    if result_storage is not None:
        check_storage(result_storage, owner)
    if result_serializer is not None:
        check_serializer(result_serializer, owner)
