"""Cache policies for ``@task(cache_policy=...)``: ``from dockyard.cache_policies import INPUTS``.

See :mod:`dockyard.sdk.runtime.cache_policies` for what each policy keys on, and
:mod:`dockyard.sdk.runtime.cache` for when results are persisted and cached.
"""

from __future__ import annotations

from dockyard.sdk.runtime.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    NONE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyFnPolicy,
    CachePolicy,
    CompoundCachePolicy,
    FlowParameters,
    Inputs,
    IsolationLevel,
    NoCache,
    RunId,
    TaskSource,
)

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
    "TaskSource",
]
