"""schedules and catch-up

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 14:39:54.200956
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.server.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "deployment_schedules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=True),
        sa.Column("interval", sa.Float(), nullable=True),
        sa.Column("anchor_date", dockyard.server.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rrule", sa.Text(), nullable=True),
        sa.Column("timezone", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created", dockyard.server.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_schedules_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_schedules")),
    )
    with op.batch_alter_table("deployment_schedules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deployment_schedules_deployment_id"), ["deployment_id"], unique=False
        )

    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("catchup", sa.String(length=10), nullable=False, server_default="latest")
        )
        batch_op.add_column(sa.Column("max_lateness_seconds", sa.Float(), nullable=True))

    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("schedule_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_flow_runs_schedule_id"), ["schedule_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_flow_runs_schedule_id_deployment_schedules"),
            "deployment_schedules",
            ["schedule_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:

    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_flow_runs_schedule_id_deployment_schedules"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_flow_runs_schedule_id"))
        batch_op.drop_column("schedule_id")

    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("max_lateness_seconds")
        batch_op.drop_column("catchup")

    with op.batch_alter_table("deployment_schedules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployment_schedules_deployment_id"))

    op.drop_table("deployment_schedules")
