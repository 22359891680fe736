"""ui time indexes: runs by their time (all, a deployment's, a state's), a pool's by state

The UI lists, counts and charts runs over a range of their time (``tables.run_time``, an
expression): these indexes let it read that range alone instead of every run, and a pool's
live, scheduled and recently ended runs without its older ones. The indexes on
``deployment_id`` and ``work_pool_id`` alone go: the new ones start with those columns.
A run's subflows are found by ``parent_flow_run_id`` (the run page's task timeline, and the
``SET NULL`` when a parent run is deleted), now indexed too.

SQLite cannot reflect an index on an expression: a later migration that copies ``flow_runs``
in batch mode must create the three ``*_when`` indexes again.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# ``tables.run_time()`` as both SQLite and PostgreSQL write it
RUN_TIME = "coalesce(start_time, end_time, scheduled_start, created)"


def upgrade() -> None:
    op.create_index("ix_flow_runs_when", "flow_runs", [sa.text(RUN_TIME)])
    op.create_index(
        "ix_flow_runs_deployment_when", "flow_runs", ["deployment_id", sa.text(RUN_TIME)]
    )
    op.create_index("ix_flow_runs_state_when", "flow_runs", ["state", sa.text(RUN_TIME)])
    op.create_index("ix_flow_runs_pool_state", "flow_runs", ["work_pool_id", "state", "end_time"])
    op.create_index("ix_flow_runs_parent_flow_run_id", "flow_runs", ["parent_flow_run_id"])
    op.drop_index("ix_flow_runs_deployment_id", table_name="flow_runs")
    op.drop_index("ix_flow_runs_work_pool_id", table_name="flow_runs")


def downgrade() -> None:
    op.create_index("ix_flow_runs_work_pool_id", "flow_runs", ["work_pool_id"])
    op.create_index("ix_flow_runs_deployment_id", "flow_runs", ["deployment_id"])
    op.drop_index("ix_flow_runs_parent_flow_run_id", table_name="flow_runs")
    op.drop_index("ix_flow_runs_pool_state", table_name="flow_runs")
    op.drop_index("ix_flow_runs_state_when", table_name="flow_runs")
    op.drop_index("ix_flow_runs_deployment_when", table_name="flow_runs")
    op.drop_index("ix_flow_runs_when", table_name="flow_runs")
