"""Deployments from Python: run them, describe them in code.

::

    from dockyard.deployments import run_deployment

    run = run_deployment("get-repo-info/my-first-deployment", parameters={"repo_name": "a/b"})
    print(run.state)

:func:`run_deployment` creates a run of a deployment and, by default, waits until it is
final. :class:`Deployment` is what ``flow.to_deployment(...)`` returns, for
:func:`dockyard.serve`.
"""

from __future__ import annotations

from dockyard.sdk.deploy.deployment_runs import run_deployment
from dockyard.sdk.deploy.deployments import Deployment
from dockyard.sdk.deploy.images import DeploymentImage

__all__ = ["Deployment", "DeploymentImage", "run_deployment"]
