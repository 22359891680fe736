"""Task runners: ``@flow(task_runner=ThreadPoolTaskRunner(max_workers=4))``.

See :mod:`dockyard.sdk.runtime.task_runners` and :mod:`dockyard.sdk.runtime.process_pool`.
"""

from dockyard.sdk.runtime.process_pool import ProcessPoolTaskRunner
from dockyard.sdk.runtime.task_runners import TaskRunner, ThreadPoolTaskRunner

__all__ = ["ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"]
