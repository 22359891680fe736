"""guarded run writes, per-deployment idempotency keys, schedule errors, no queueless runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Runs and deployments of a pool that lost their queue (it was deleted) go to the pool's
# default queue, else to its first queue: a run of a pool without a queue is never claimed.
_QUEUE_OF_POOL = """
(SELECT q.id FROM work_queues q WHERE q.work_pool_id = {table}.work_pool_id
 ORDER BY CASE WHEN q.name = 'default' THEN 0 ELSE 1 END, q.priority LIMIT 1)
"""


def upgrade() -> None:
    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_scope", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.drop_constraint("uq_flow_runs_flow_id", type_="unique")
    op.execute(
        "UPDATE flow_runs SET idempotency_scope = COALESCE(deployment_id, flow_id) "
        "WHERE idempotency_key IS NOT NULL"
    )
    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f("uq_flow_runs_idempotency_scope"), ["idempotency_scope", "idempotency_key"]
        )
    with op.batch_alter_table("deployment_schedules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
    for table in ("deployments", "flow_runs"):
        op.execute(
            f"UPDATE {table} SET work_queue_id = {_QUEUE_OF_POOL.format(table=table)} "
            "WHERE work_pool_id IS NOT NULL AND work_queue_id IS NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("deployment_schedules", schema=None) as batch_op:
        batch_op.drop_column("error")
    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.drop_constraint("uq_flow_runs_idempotency_scope", type_="unique")
        batch_op.drop_column("version")
        batch_op.drop_column("idempotency_scope")
        batch_op.create_unique_constraint(
            batch_op.f("uq_flow_runs_flow_id"), ["flow_id", "idempotency_key"]
        )
