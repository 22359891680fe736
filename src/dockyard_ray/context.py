"""``remote_options``: Ray's options for the tasks submitted inside a ``with`` block.

::

    with remote_options(num_cpus=4, memory=2 * 1024**3):
        big = train.submit(data)

Any option of Ray's ``.options()`` for a remote function (``num_cpus``, ``num_gpus``,
``memory``, ``resources``, ``max_retries``, ``scheduling_strategy``, ...). Blocks nest: an
inner one adds to or overrides the outer one's options.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

__all__ = ["current_remote_options", "remote_options"]

# Read when a submitted task's function is sent to Ray: a task run keeps the context of the
# code that submitted it.
_OPTIONS: ContextVar[Mapping[str, Any]] = ContextVar(
    "dockyard_ray_remote_options", default=MappingProxyType({})
)


@contextlib.contextmanager
def remote_options(**options: Any) -> Iterator[None]:
    """Give Ray these options for the tasks submitted inside the block."""
    token = _OPTIONS.set({**_OPTIONS.get(), **options})
    try:
        yield
    finally:
        _OPTIONS.reset(token)


def current_remote_options() -> dict[str, Any]:
    """The options of the innermost :func:`remote_options` block (empty outside any)."""
    return dict(_OPTIONS.get())
