"""What each scope of API key may do: one table, keyed by method and route template.

The rule:

- ``admin`` may do everything, and is the only scope that may call a route missing from
  :data:`ROUTES` (fail closed: a new route is admin-only until it is listed here; a test
  fails while a route of the OpenAPI schema is missing from the table).
- ``user`` reads everything but secret values, and starts, cancels and resumes runs.
- ``worker`` claims, heartbeats, renews leases and reports on the runs it holds (state,
  logs, infrastructure id), and reads the pool, flows and deployments it launches runs of.
- ``runner`` (a flow run's engine) reports on its run (state, logs, task runs, artifacts,
  events, concurrency slots) and reads variables and secrets.

"Runs it holds" is enforced by the run's lease token, which every report on a run carries:
a worker or runner key without the token of a run cannot change that run.
Paths in :data:`OPEN` need no key at all.
"""

from __future__ import annotations

from dockyard.schemas.api_keys import ApiKeyScope
from dockyard.server.security import OPEN_PATHS

__all__ = ["OPEN", "ROUTES", "allows"]

U, W, R = ApiKeyScope.USER, ApiKeyScope.WORKER, ApiKeyScope.RUNNER

OPEN = OPEN_PATHS

# (method, route template) -> the scopes besides admin that may call it
ROUTES: dict[tuple[str, str], frozenset[ApiKeyScope]] = {
    ("GET", "/api/health"): frozenset({U, W, R}),
    ("GET", "/api/ready"): frozenset({U, W, R}),
    ("GET", "/api/version"): frozenset({U, W, R}),
    ("GET", "/api/openapi.json"): frozenset({U, W, R}),  # not in the schema it serves
    ("GET", "/metrics"): frozenset({U}),  # Prometheus scrapes with a user key
    # flows: a flow called directly registers its flow, then its run
    ("POST", "/api/flows"): frozenset({U, R}),
    ("GET", "/api/flows"): frozenset({U, W, R}),
    ("GET", "/api/flows/name/{name}"): frozenset({U, W, R}),
    ("GET", "/api/flows/{flow_id}"): frozenset({U, W, R}),
    ("DELETE", "/api/flows/{flow_id}"): frozenset(),
    # deployments
    ("POST", "/api/deployments"): frozenset(),
    ("GET", "/api/deployments"): frozenset({U, W}),
    ("GET", "/api/deployments/name/{flow_name}/{name}"): frozenset({U, W, R}),
    ("GET", "/api/deployments/{deployment_id}"): frozenset({U, W, R}),
    ("PATCH", "/api/deployments/{deployment_id}"): frozenset(),
    ("DELETE", "/api/deployments/{deployment_id}"): frozenset(),
    ("POST", "/api/deployments/{deployment_id}/runs"): frozenset({U, R}),  # run_deployment
    ("GET", "/api/deployments/{deployment_id}/schedules"): frozenset({U}),
    ("POST", "/api/deployments/{deployment_id}/schedules"): frozenset(),
    ("PATCH", "/api/deployments/{deployment_id}/schedules/{schedule_id}"): frozenset(),
    ("DELETE", "/api/deployments/{deployment_id}/schedules/{schedule_id}"): frozenset(),
    ("PUT", "/api/deployments/{deployment_id}/automations"): frozenset(),
    # flow runs
    ("POST", "/api/flow-runs"): frozenset({U, R}),
    ("GET", "/api/flow-runs"): frozenset({U, W, R}),
    ("GET", "/api/flow-runs/{run_id}"): frozenset({U, W, R}),
    ("PATCH", "/api/flow-runs/{run_id}"): frozenset({W, R}),  # needs the lease token
    ("DELETE", "/api/flow-runs/{run_id}"): frozenset(),
    ("POST", "/api/flow-runs/{run_id}/state"): frozenset({W, R}),
    ("GET", "/api/flow-runs/{run_id}/states"): frozenset({U, W, R}),
    ("POST", "/api/flow-runs/{run_id}/cancel"): frozenset({U}),
    ("POST", "/api/flow-runs/{run_id}/pause"): frozenset({R}),
    ("GET", "/api/flow-runs/{run_id}/pause"): frozenset({U, R}),
    ("POST", "/api/flow-runs/{run_id}/resume"): frozenset({U}),
    # dispatch
    ("POST", "/api/workers/heartbeat"): frozenset({W}),
    ("POST", "/api/workers/claim"): frozenset({W}),
    ("POST", "/api/flow-runs/{run_id}/lease"): frozenset({W, R}),
    ("POST", "/api/flow-runs/{run_id}/deployment"): frozenset({W, R}),
    # task runs, logs, events, artifacts
    ("POST", "/api/task-runs"): frozenset({R}),
    ("GET", "/api/task-runs"): frozenset({U, R}),
    ("GET", "/api/task-runs/{task_run_id}"): frozenset({U, R}),
    ("POST", "/api/logs"): frozenset({W, R}),
    ("GET", "/api/logs"): frozenset({U, W, R}),
    ("POST", "/api/events"): frozenset({W, R}),
    ("GET", "/api/events"): frozenset({U}),
    ("POST", "/api/artifacts"): frozenset({R}),
    ("GET", "/api/artifacts"): frozenset({U, R}),
    ("GET", "/api/artifacts/latest"): frozenset({U, R}),
    ("GET", "/api/artifacts/latest/{key}"): frozenset({U, R}),
    ("GET", "/api/artifacts/{artifact_id}"): frozenset({U, R}),
    ("PATCH", "/api/artifacts/{artifact_id}"): frozenset({R}),
    ("DELETE", "/api/artifacts/{artifact_id}"): frozenset(),
    ("DELETE", "/api/artifacts/key/{key}"): frozenset(),
    # variables and secrets: runs read them; only admin writes; a secret's value is for runs
    ("POST", "/api/variables"): frozenset(),
    ("GET", "/api/variables"): frozenset({U, R}),
    ("GET", "/api/variables/name/{name}"): frozenset({U, R}),
    ("PUT", "/api/variables/name/{name}"): frozenset(),
    ("PATCH", "/api/variables/name/{name}"): frozenset(),
    ("DELETE", "/api/variables/name/{name}"): frozenset(),
    ("POST", "/api/secrets"): frozenset(),
    ("GET", "/api/secrets"): frozenset({U, R}),
    ("GET", "/api/secrets/name/{name}"): frozenset({U, R}),
    ("GET", "/api/secrets/name/{name}/value"): frozenset({R}),
    ("PUT", "/api/secrets/name/{name}"): frozenset(),
    ("DELETE", "/api/secrets/name/{name}"): frozenset(),
    # global concurrency limits: runs take and give back slots
    ("POST", "/api/concurrency-limits"): frozenset(),
    ("GET", "/api/concurrency-limits"): frozenset({U, R}),
    ("GET", "/api/concurrency-limits/name/{name}"): frozenset({U, R}),
    ("PATCH", "/api/concurrency-limits/name/{name}"): frozenset(),
    ("DELETE", "/api/concurrency-limits/name/{name}"): frozenset(),
    ("POST", "/api/concurrency-limits/acquire"): frozenset({R}),
    ("POST", "/api/concurrency-limits/leases/{lease_id}/renew"): frozenset({R}),
    ("POST", "/api/concurrency-limits/leases/{lease_id}/release"): frozenset({R}),
    # automations
    ("POST", "/api/automations"): frozenset(),
    ("GET", "/api/automations"): frozenset({U}),
    ("GET", "/api/automations/{name}"): frozenset({U}),
    ("PUT", "/api/automations/{name}"): frozenset(),
    ("PATCH", "/api/automations/{name}"): frozenset(),
    ("DELETE", "/api/automations/{name}"): frozenset(),
    # work pools, queues, workers
    ("GET", "/api/worker-types"): frozenset({U, W}),
    ("GET", "/api/worker-types/{type_name}"): frozenset({U, W}),
    ("POST", "/api/work-pools"): frozenset(),
    ("GET", "/api/work-pools"): frozenset({U}),
    ("GET", "/api/work-pools/{name}"): frozenset({U, W}),
    ("PATCH", "/api/work-pools/{name}"): frozenset(),
    ("DELETE", "/api/work-pools/{name}"): frozenset(),
    ("POST", "/api/work-pools/{name}/pause"): frozenset(),
    ("POST", "/api/work-pools/{name}/resume"): frozenset(),
    ("GET", "/api/work-pools/{name}/preview"): frozenset({U}),
    ("POST", "/api/work-pools/{pool_name}/queues"): frozenset(),
    ("GET", "/api/work-pools/{pool_name}/queues"): frozenset({U, W}),
    ("GET", "/api/work-pools/{pool_name}/queues/{name}"): frozenset({U, W}),
    ("PATCH", "/api/work-pools/{pool_name}/queues/{name}"): frozenset(),
    ("DELETE", "/api/work-pools/{pool_name}/queues/{name}"): frozenset(),
    ("POST", "/api/work-pools/{pool_name}/queues/{name}/pause"): frozenset(),
    ("POST", "/api/work-pools/{pool_name}/queues/{name}/resume"): frozenset(),
    ("GET", "/api/work-pools/{pool_name}/workers"): frozenset({U}),
    ("DELETE", "/api/work-pools/{pool_name}/workers/{name}"): frozenset(),
    # API keys: admin only (listed for the record: an unlisted route is admin-only anyway)
    ("POST", "/api/api-keys"): frozenset(),
    ("GET", "/api/api-keys"): frozenset(),
    ("POST", "/api/api-keys/{name}/revoke"): frozenset(),
}


def allows(scope: ApiKeyScope, method: str, template: str | None) -> bool:
    """Whether a key of ``scope`` may call ``method`` on the route ``template`` (None: a
    path no route has, which only admin may even ask about)."""
    if scope is ApiKeyScope.ADMIN:
        return True
    if template is None:
        return False
    return scope in ROUTES.get((method, template), frozenset())
