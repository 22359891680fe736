"""events and automations

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import dockyard.server.tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UTC_TIME = dockyard.server.tables.UTCDateTime(timezone=True)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _status() -> sa.Column[Any]:
    return sa.Column("status", sa.String(length=20), server_default="NOT_READY", nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("work_pools") as batch:
        batch.add_column(_status())
    with op.batch_alter_table("workers") as batch:
        batch.add_column(_status())
    op.create_table(
        "events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("occurred", UTC_TIME, nullable=False),
        sa.Column("event", sa.String(length=256), nullable=False),
        sa.Column("resource_id", sa.String(length=512), nullable=False),
        sa.Column("resource", _json(), nullable=False),
        sa.Column("related", _json(), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
        sa.UniqueConstraint("id", name=op.f("uq_events_id")),
        sa.UniqueConstraint("position", name=op.f("uq_events_position")),
    )
    op.create_index("ix_events_occurred", "events", ["occurred"])
    op.create_index(op.f("ix_events_resource_id"), "events", ["resource_id"])
    op.create_table(
        "automations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("trigger", _json(), nullable=False),
        sa.Column("actions", _json(), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=True),
        sa.Column("created", UTC_TIME, nullable=False),
        sa.Column("updated", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_automations_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automations")),
        sa.UniqueConstraint("name", name=op.f("uq_automations_name")),
    )
    op.create_index(op.f("ix_automations_deployment_id"), "automations", ["deployment_id"])
    op.create_table(
        "automation_buckets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("automation_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("start", UTC_TIME, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("fired", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["automation_id"],
            ["automations.id"],
            name=op.f("fk_automation_buckets_automation_id_automations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_buckets")),
        sa.UniqueConstraint(
            "automation_id", "key", name=op.f("uq_automation_buckets_automation_id")
        ),
    )
    op.create_table(
        "automation_actions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("automation_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("action_index", sa.Integer(), nullable=False),
        sa.Column("action", _json(), nullable=False),
        sa.Column("context", _json(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", UTC_TIME, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created", UTC_TIME, nullable=False),
        sa.Column("updated", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["automation_id"],
            ["automations.id"],
            name=op.f("fk_automation_actions_automation_id_automations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_actions")),
        sa.UniqueConstraint(
            "automation_id",
            "event_id",
            "action_index",
            name=op.f("uq_automation_actions_automation_id"),
        ),
    )
    op.create_index("ix_automation_actions_due", "automation_actions", ["status", "next_attempt"])


def downgrade() -> None:
    op.drop_table("automation_actions")
    op.drop_table("automation_buckets")
    op.drop_index(op.f("ix_automations_deployment_id"), table_name="automations")
    op.drop_table("automations")
    op.drop_table("events")
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("status")
    with op.batch_alter_table("work_pools") as batch:
        batch.drop_column("status")
