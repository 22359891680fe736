"""Dask for Dockyard: the tasks a flow run submits run on a ``dask.distributed`` cluster.

::

    from dockyard import flow, task
    from dockyard_dask import DaskTaskRunner

    @task
    def count_words(text: str) -> int:
        return len(text.split())

    @flow(task_runner=DaskTaskRunner())  # or DaskTaskRunner(address="tcp://scheduler:8786")
    def crunch(texts: list[str]) -> int:
        return sum(count_words.map(texts).result())

Installed with ``pip install dockyard[dask]``. See ``docs/task-runners.md``.
"""

from __future__ import annotations

from dockyard_dask.task_runners import DaskTaskRunner
from dockyard_dask.utils import get_async_dask_client, get_dask_client

__all__ = ["DaskTaskRunner", "get_async_dask_client", "get_dask_client"]
