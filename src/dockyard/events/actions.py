"""What an automation does when its trigger fires (``Automation(actions=[...])``).

- :class:`CallWebhook` (``url``, ``headers``, ``body``: JSON with ``{{ placeholders }}``);
- :class:`RunDeployment` (``deployment_id``, None: the event's deployment; ``parameters``);
- :class:`PauseDeployment`, :class:`ResumeDeployment` (``deployment_id`` or the event's);
- :class:`PauseWorkPool`, :class:`ResumeWorkPool` (``work_pool_id`` or ``work_pool_name``,
  or the event's);
- :class:`CancelFlowRun` (the flow run the event is about).

In a YAML or JSON spec each is an object with its ``type``: ``call-webhook``,
``run-deployment``, ``pause-deployment``, ``resume-deployment``, ``pause-work-pool``,
``resume-work-pool``, ``cancel-flow-run``.
"""

from __future__ import annotations

from dockyard.schemas.events import (
    Action,
    CallWebhook,
    CancelFlowRun,
    PauseDeployment,
    PauseWorkPool,
    ResumeDeployment,
    ResumeWorkPool,
    RunDeployment,
)

__all__ = [
    "Action",
    "CallWebhook",
    "CancelFlowRun",
    "PauseDeployment",
    "PauseWorkPool",
    "ResumeDeployment",
    "ResumeWorkPool",
    "RunDeployment",
]
