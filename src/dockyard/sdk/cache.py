"""The task result cache, kept on disk under ``$DOCKYARD_HOME/cache/``.

A task with a ``cache_key_fn`` stores each completed run's result under the key the function
returns; a later run (in any flow, any process on this machine) with the same key returns the
stored result without running, until ``cache_expiration`` has passed. Layout::

    $DOCKYARD_HOME/cache/tasks/<first 2 hex digits>/<sha256 of the key>.pickle

Each file is a pickle of ``{"key", "task_key", "created", "expires", "value"}`` (times in
epoch seconds, ``expires`` None for never), written atomically. Keys are shared by all
tasks: :func:`task_input_hash` includes the task's key, so its entries are per task.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockyard.sdk.context import TaskRunContext

__all__ = ["MISS", "ResultCache", "task_input_hash"]

MISS: Any = object()
"""What :meth:`ResultCache.read` returns when there is no valid entry."""


def task_input_hash(context: TaskRunContext, parameters: dict[str, Any]) -> str | None:
    """A ``cache_key_fn``: the task and its arguments (runs with equal inputs share a result).

    Arguments are hashed from their JSON form (their repr when they are not JSON), so use it
    with arguments whose repr is stable.
    """
    text = json.dumps(parameters, sort_keys=True, default=repr)
    return hashlib.sha256(f"{context.task.task_key}\0{text}".encode()).hexdigest()


class ResultCache:
    """Task results on disk, by cache key.

    Args:
        home: the Dockyard home directory (``settings.home``).
    """

    def __init__(self, home: Path) -> None:
        self.root = Path(home) / "cache" / "tasks"

    def path(self, key: str) -> Path:
        """Return the file of ``key``'s entry."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.root / digest[:2] / f"{digest}.pickle"

    def read(self, key: str) -> Any:
        """Return the stored value of ``key``, or :data:`MISS` (none, expired or unreadable)."""
        path = self.path(key)
        try:
            with path.open("rb") as fh:
                entry = pickle.load(fh)
        except FileNotFoundError:
            return MISS
        except Exception:
            # a file from another version, half-written by a crash, or a class that is gone
            return MISS
        if not isinstance(entry, dict) or entry.get("key") != key:
            return MISS
        expires = entry.get("expires")
        if expires is not None and time.time() >= expires:
            with contextlib.suppress(OSError):
                path.unlink()
            return MISS
        return entry.get("value")

    def write(self, key: str, task_key: str, value: Any, expiration: float | None) -> None:
        """Store ``value`` under ``key`` for ``expiration`` seconds (None: forever).

        Raises:
            pickle.PicklingError, TypeError, AttributeError: the value cannot be pickled.
        """
        now = time.time()
        entry = {
            "key": key,
            "task_key": task_key,
            "created": now,
            "expires": now + expiration if expiration is not None else None,
            "value": value,
        }
        data = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
