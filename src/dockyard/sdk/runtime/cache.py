"""Task results: persisted, cached, and reused when a flow run tries again.

**Persisted results.** A task run's result is written to a result storage
(:mod:`dockyard.sdk.runtime.persistence`; ``$DOCKYARD_HOME/storage`` by default) when the task says
``persist_result=True``, or sets any of ``cache_policy`` (other than ``NO_CACHE``),
``cache_key_fn``, ``result_storage`` or ``result_serializer``; a task that says nothing
follows its flow's ``persist_result``, and then the setting ``DOCKYARD_RESULTS_PERSIST_BY_
DEFAULT`` (off). ``persist_result=False`` turns persistence and caching off for the task.

**The cache.** A persisted run computes its cache key with its ``cache_policy``
(:mod:`dockyard.sdk.runtime.cache_policies`; ``DEFAULT`` when none is given, ``cache_key_fn`` makes
one). Its result record is kept under that key (the file ``<storage>/<key>`` for a key made of
letters, digits, ``.``, ``_`` and ``-``, else ``<storage>/sha256-<digest of the key>``), in
the policy's key storage if it has one. A later run with the same key, in any flow and any
process that shares the storage, returns the stored value without running, until
``cache_expiration`` has passed; it is recorded COMPLETED with ``cached`` set.
``refresh_cache=True`` runs the task anyway and replaces the stored value. A persisted run
without a key (``NO_CACHE``) is kept under a random key. A plain task, in a flow that
persists nothing, pays for none of this: no key is computed.

**Reuse on retries.** When a flow run tries again, the task calls that completed in an
earlier attempt are not run again: a call is known by its place (the task and how many
calls of it came before in the attempt) and must have the same arguments (by digest). Inside
one process (``@flow(retries=...)``) the values are kept in memory. A run the engine runs
(a deployment's) also keeps each completed call's result in its result storage (see
:class:`Attempts`), so that a crash retry, which runs the same flow run again in a new
process, reuses them; the run's logs say "reused the result of NAME from an earlier
attempt". Results that cannot be serialized are not kept (the call runs again); what was
kept is removed when the run ends other than CRASHED. ``persist_result=False`` on the flow
(or on a task) turns off this keeping for crash retries; reuse within one process, from
memory, always holds.
"""

from __future__ import annotations

import itertools
import json
import logging
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.exceptions import DockyardError
from dockyard.sdk.runtime import logs
from dockyard.sdk.runtime.cache_policies import (
    DEFAULT,
    CachePolicy,
    IsolationLevel,
    TaskResults,
    hash_objects,
)
from dockyard.sdk.runtime.persistence import (
    MISS,
    Journal,
    LocalStorage,
    Record,
    ResultStore,
    Storage,
    default_storage,
    record_name,
    resolve_storage,
)
from dockyard.sdk.runtime.serializers import PICKLE, Serializer, check_serializer

if TYPE_CHECKING:
    from dockyard.sdk.flows import Flow
    from dockyard.sdk.runtime.context import FlowRunContext, TaskRunContext
    from dockyard.sdk.tasks import Task
    from dockyard.settings import Settings

__all__ = [
    "MISS",
    "Attempts",
    "ResultCache",
    "RunResults",
    "TaskPlan",
    "prepare",
    "run_results",
    "store",
    "task_input_hash",
]

_log = logging.getLogger(__name__)


def task_input_hash(context: TaskRunContext, parameters: dict[str, Any]) -> str | None:
    """A ``cache_key_fn``: the task and its arguments (runs with equal inputs share a result).

    Arguments are hashed from their JSON form (their repr when they are not JSON), so use it
    with arguments whose repr is stable.
    """
    import hashlib

    text = json.dumps(parameters, sort_keys=True, default=repr)
    return hashlib.sha256(f"{context.task.task_key}\0{text}".encode()).hexdigest()


class ResultCache:
    """Cache records by key in a storage (a folder, or a :class:`Storage`).

    Args:
        storage: where the records are kept.
        serializer: how values are written.
    """

    def __init__(self, storage: Storage | str | Path, serializer: Serializer = PICKLE) -> None:
        self.store = ResultStore(resolve_storage(storage), serializer)

    def path(self, key: str) -> Path:
        """Return the file of ``key``'s record (for a local folder)."""
        storage = self.store.storage
        assert isinstance(storage, LocalStorage), "only a local folder has files"
        return storage.path(record_name(key))

    def read(self, key: str) -> Any:
        """Return the stored value of ``key``, or :data:`MISS` (none, expired or unreadable)."""
        return self.store.read(key)

    def write(self, key: str, task_key: str, value: Any, expiration: float | None) -> None:
        """Store ``value`` under ``key`` for ``expiration`` seconds (None: forever).

        Raises:
            Exception: the value cannot be serialized, or the storage cannot be written.
        """
        import time

        expires = time.time() + expiration if expiration is not None else None
        self.store.write(key, value, task_key=task_key, expires=expires)


# ---------------------------------------------------------------- a flow run's results


class Attempts:
    """The completed calls of a flow run, kept in its result storage for a crash retry.

    In a local folder they are appended to one file, ``attempts/<flow run id>.journal`` (a
    call costs one write); in other storages each is a record ``attempts/<id>/<place>``.
    What earlier processes kept is read (or listed) once, when the run starts.
    """

    def __init__(self, store: ResultStore, flow_run_id: str) -> None:
        self.store = store
        self.folder = f"attempts/{flow_run_id}"
        storage = store.storage
        self.journal: Journal | None = None
        self._records: dict[str, Record] = {}
        self._names: set[str] | None = set()
        try:
            if isinstance(storage, LocalStorage):
                self.journal = Journal(storage.path(f"{self.folder}.journal"))
                self._records = self.journal.read()
            else:
                self._names = storage.names(self.folder)
        except Exception as exc:
            _log.warning("cannot read the results of earlier attempts: %s", exc)

    def get(self, place: str) -> Record | None:
        """Return the record of the call at ``place`` an earlier attempt kept, or None."""
        if self.journal is not None:
            return self._records.get(place)
        if self._names is not None and place not in self._names:
            return None
        return self.store.read_record(place, folder=self.folder)

    def put(self, place: str, record: bytes) -> None:
        """Keep the record of the call at ``place``."""
        if self.journal is not None:
            self.journal.append(record)
        else:
            self.store.storage.write(f"{self.folder}/{record_name(place)}", record)

    def drop(self) -> None:
        """Remove what was kept (the run has ended)."""
        if self.journal is not None:
            self.journal.close()
            self.store.storage.delete(f"{self.folder}.journal")
        else:
            self.store.storage.delete(self.folder)


class RunResults:
    """What a flow run keeps of its task results; made by :func:`run_results`.

    Attributes:
        persist: whether its tasks persist their results unless they say otherwise.
        store: its result storage and serializer (its tasks' defaults).
        memory: completed calls of this process, by place (None: the flow does not retry).
        attempts: its completed calls kept in ``store`` (None: not kept there).
    """

    __slots__ = ("_counters", "attempts", "memory", "persist", "store")

    def __init__(
        self,
        *,
        flow_run_id: str,
        persist: bool,
        store: ResultStore,
        keep_in_memory: bool,
        keep_attempts: bool,
    ) -> None:
        self.persist = persist
        self.store = store
        self.memory: dict[str, tuple[str | None, str, Any]] | None = {} if keep_in_memory else None
        self.attempts = Attempts(store, flow_run_id) if keep_attempts else None
        self._counters: dict[str, tuple[str, itertools.count[int]]] = {}

    @property
    def tracks_calls(self) -> bool:
        """Whether completed calls are kept for another attempt."""
        return self.memory is not None or self.attempts is not None

    def next_place(self, task: Task[..., Any]) -> str:
        """Return the place of the next call of ``task`` in this attempt."""
        found = self._counters.get(task.task_key)
        if found is None:
            import hashlib

            digest = hashlib.sha256(task.task_key.encode()).hexdigest()[:16]
            found = self._counters.setdefault(task.task_key, (digest, itertools.count()))
        return f"{found[0]}-{next(found[1])}"

    def new_attempt(self) -> None:
        """Start counting calls again: the next attempt's calls match this one's."""
        self._counters = {}

    def earlier(self, place: str, inputs: str | None) -> tuple[str, Any] | None:
        """Return the name and value of the call at ``place`` that completed in an earlier
        attempt with the same inputs, or None."""
        if self.memory:
            found = self.memory.get(place)
            if found is not None:
                return (found[1], found[2]) if found[0] == inputs else None
        if self.attempts is None:
            return None
        try:
            record = self.attempts.get(place)
        except Exception as exc:
            _log.warning("cannot read the results of earlier attempts: %s", exc)
            return None
        if record is None or record.meta.get("inputs") != inputs:
            return None
        value = self.store.value(record)
        if value is MISS:
            return None
        return str(record.meta.get("name") or place), value

    def remember(
        self,
        place: str,
        inputs: str | None,
        name: str,
        value: Any,
        saved: tuple[ResultStore, str] | None,
        *,
        to_storage: bool,
    ) -> None:
        """Keep the completed call at ``place`` for another attempt (``saved``: where its
        value was persisted already)."""
        if self.memory is not None:
            self.memory[place] = (inputs, name, value)
        if self.attempts is None or not to_storage:
            return
        refer_to = saved[1] if saved is not None and saved[0].storage is self.store.storage else ""
        try:
            record = self.store.pack(place, value, refer_to=refer_to, inputs=inputs, name=name)
            self.attempts.put(place, record)
        except Exception as exc:
            # a value that cannot be serialized: that call runs again in another attempt
            _log.debug("the result of %s is not kept for a retry: %s", name, exc)

    def keep_flow_result(self, flow_run_id: str, value: Any) -> None:
        """Persist the flow run's own result as ``flow-runs/<id>`` (when it persists)."""
        if not self.persist:
            return
        try:
            self.store.write(flow_run_id, value, folder="flow-runs")
        except Exception as exc:
            logs.get_logger().warning(
                "the result of the flow run was not persisted: %s: %s", type(exc).__name__, exc
            )

    def end(self, state: str) -> None:
        """Drop the kept calls once the run has ended, unless it CRASHED (it may run again)."""
        if self.attempts is not None and state != "CRASHED":
            try:
                self.attempts.drop()
            except Exception as exc:
                _log.warning("cannot remove the results kept for retries: %s", exc)


def run_results(
    flow: Flow[..., Any],
    parent: FlowRunContext | None,
    settings: Settings,
    flow_run_id: str,
    *,
    engine_run: bool,
) -> RunResults | None:
    """Return what a flow run keeps of its results, or None when it keeps nothing.

    Args:
        engine_run: the engine runs it (it may run again in a new process: a crash retry).
    """
    inherited = parent.results if parent is not None else None
    persist = flow.persist_result
    if persist is None:
        persist = (
            inherited.persist if inherited is not None else settings.results_persist_by_default
        )
    keep_attempts = engine_run and flow.persist_result is not False
    keep_in_memory = flow.retries > 0
    if not (
        persist
        or keep_attempts
        or keep_in_memory
        or inherited is not None
        or flow.result_storage is not None
        or flow.result_serializer is not None
    ):
        return None
    if flow.result_storage is not None:
        storage = resolve_storage(flow.result_storage)
    else:
        storage = inherited.store.storage if inherited is not None else default_storage(settings)
    if flow.result_serializer is not None:
        serializer = check_serializer(flow.result_serializer, f"flow {flow.name!r}")
    else:
        serializer = inherited.store.serializer if inherited is not None else PICKLE
    return RunResults(
        flow_run_id=flow_run_id,
        persist=persist,
        store=ResultStore(storage, serializer),
        keep_in_memory=keep_in_memory,
        keep_attempts=keep_attempts,
    )


# ---------------------------------------------------------------- a task run


class TaskPlan:
    """What a task run that keeps its result does when it completes (see :func:`store`)."""

    __slots__ = (
        "_lock",
        "cache",
        "cache_key",
        "context",
        "inputs",
        "persist",
        "place",
        "run",
        "store",
    )

    def __init__(self, context: TaskRunContext, run: RunResults | None) -> None:
        self.context = context
        self.run = run
        self.persist: bool = False
        self.store: ResultStore | None = None
        self.cache: ResultCache | None = None
        self.cache_key: str | None = None
        self.place: str | None = None
        self.inputs: str | None = None
        self._lock: AbstractContextManager[None] | None = None

    def release(self) -> None:
        """Release the run's cache key (SERIALIZABLE isolation), if it holds it."""
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.__exit__(None, None, None)


def _label(context: TaskRunContext) -> str:
    return f"task run {context.task_run_name!r}"


def _digest(parameters: dict[str, Any]) -> str | None:
    try:
        return hash_objects(parameters)
    except ValueError:
        return None  # the call's place alone decides


def _result_store(
    options: TaskResults | None, run: RunResults | None, flow_run: FlowRunContext | None
) -> ResultStore:
    storage: Storage | None = None
    if options is not None and options.storage is not None:
        storage = resolve_storage(options.storage)
    serializer = options.serializer if options is not None else None
    if run is not None:
        return ResultStore(storage or run.store.storage, serializer or run.store.serializer)
    if storage is None:
        from dockyard import settings as settings_module

        home_settings = flow_run.settings if flow_run is not None else settings_module.load()
        storage = default_storage(home_settings)
    return ResultStore(storage, serializer or PICKLE)


def _cache_key(
    policy: CachePolicy, context: TaskRunContext, parameters: dict[str, Any]
) -> str | None:
    flow_run = context.flow_run
    try:
        key = policy.compute_key(
            context, parameters, flow_run.parameters if flow_run is not None else {}
        )
    except Exception as exc:
        logs.get_logger().warning(
            "the cache key of %s could not be computed, so it runs without the cache: %s: %s",
            _label(context),
            type(exc).__name__,
            exc,
        )
        return None
    if key is not None and not isinstance(key, str):
        raise TypeError(f"a cache key must be a string or None, not {key!r}")
    return key


def prepare(context: TaskRunContext) -> tuple[TaskPlan | None, Any]:
    """Before a task run: return its plan, and the value it reuses or reads from the cache
    (:data:`MISS` when it must run). A reused call has no plan; a cache hit keeps its plan
    (with its key), and releases its key."""
    task = context.task
    options: TaskResults | None = task._results
    flow_run = context.flow_run
    run = flow_run.results if flow_run is not None else None
    persist = options.persist if options is not None else None
    if persist is None:
        persist = run is not None and run.persist
    if not persist and (run is None or not run.tracks_calls):
        return None, MISS
    parameters = context.parameters
    plan = TaskPlan(context, run)
    if run is not None and run.tracks_calls:
        plan.place = run.next_place(task)
        plan.inputs = _digest(parameters)
        found = run.earlier(plan.place, plan.inputs)
        if found is not None:
            name, value = found
            logs.get_logger().info("reused the result of %s from an earlier attempt", name)
            run.remember(plan.place, plan.inputs, name, value, None, to_storage=False)
            return None, value
    if not persist:
        return plan, MISS
    plan.persist = True
    plan.store = _result_store(options, run, flow_run)
    policy = options.policy if options is not None and options.policy is not None else DEFAULT
    key = _cache_key(policy, context, parameters)
    if key is None:
        return plan, MISS
    plan.cache_key = key
    key_storage = plan.store.storage
    if policy.key_storage is not None:
        key_storage = resolve_storage(policy.key_storage)
    plan.cache = ResultCache(key_storage, plan.store.serializer)
    if policy.isolation_level is IsolationLevel.SERIALIZABLE:
        lock = key_storage.lock(record_name(key))
        lock.__enter__()
        plan._lock = lock
    if task.refresh_cache:
        return plan, MISS
    try:
        value = plan.cache.read(key)
    except DockyardError:  # a storage that cannot be used (a package missing): say so
        plan.release()
        raise
    except Exception as exc:
        logs.get_logger().warning(
            "the cache of %s could not be read, so it runs: %s: %s",
            _label(context),
            type(exc).__name__,
            exc,
        )
        value = MISS
    except BaseException:
        plan.release()
        raise
    if value is not MISS:
        plan.release()
        if plan.place is not None and run is not None:
            run.remember(
                plan.place,
                plan.inputs,
                context.task_run_name,
                value,
                (plan.cache.store, key),
                to_storage=True,
            )
    return plan, value


def store(plan: TaskPlan, value: Any) -> None:
    """After a task run completed: persist its result, cache it, keep it for a retry."""
    context = plan.context
    task = context.task
    saved: tuple[ResultStore, str] | None = None
    try:
        if plan.cache is not None and plan.cache_key is not None:
            plan.cache.write(plan.cache_key, task.task_key, value, task.cache_expiration)
            saved = (plan.cache.store, plan.cache_key)
        elif plan.persist and plan.store is not None:
            import uuid

            key = uuid.uuid4().hex
            plan.store.write(key, value, task_key=task.task_key)
            saved = (plan.store, key)
    except Exception as exc:
        logs.get_logger().warning(
            "the result of %s was not persisted: %s: %s", _label(context), type(exc).__name__, exc
        )
    finally:
        plan.release()
    if plan.place is not None and plan.run is not None:
        options: TaskResults | None = task._results
        to_storage = options is None or options.persist is not False
        plan.run.remember(
            plan.place, plan.inputs, context.task_run_name, value, saved, to_storage=to_storage
        )
