"""Task runners: ``@flow(task_runner=ThreadPoolTaskRunner(max_workers=4))``.

See :mod:`dockyard.sdk.task_runners` and :mod:`dockyard.sdk.process_pool`.
"""

from dockyard.sdk.process_pool import ProcessPoolTaskRunner
from dockyard.sdk.task_runners import TaskRunner, ThreadPoolTaskRunner

__all__ = ["ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"]
