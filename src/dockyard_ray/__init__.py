"""Ray for Dockyard: the tasks a flow run submits run on a Ray cluster.

::

    from dockyard import flow, task
    from dockyard_ray import RayTaskRunner, remote_options

    @task
    def count_words(text: str) -> int:
        return len(text.split())

    @flow(task_runner=RayTaskRunner())  # or RayTaskRunner(address="ray://head:10001")
    def crunch(texts: list[str]) -> int:
        with remote_options(num_cpus=2):
            counts = count_words.map(texts)
        return sum(counts.result())

Installed with ``pip install dockyard[ray]``. See ``docs/task-runners.md``.
"""

from __future__ import annotations

from dockyard_ray.context import remote_options
from dockyard_ray.task_runners import RayTaskRunner

__all__ = ["RayTaskRunner", "remote_options"]
