"""artifacts: what runs publish (markdown, tables, links, progress, images)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import dockyard.server.tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=True),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("data", _json(), nullable=True),
        sa.Column("flow_run_id", sa.Uuid(), nullable=True),
        sa.Column("task_run_id", sa.Uuid(), nullable=True),
        sa.Column("created", dockyard.server.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated", dockyard.server.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["flow_run_id"],
            ["flow_runs.id"],
            name=op.f("fk_artifacts_flow_run_id_flow_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifacts")),
    )
    op.create_index("ix_artifacts_key_created", "artifacts", ["key", "created"], unique=False)
    op.create_index("ix_artifacts_created", "artifacts", ["created"], unique=False)
    op.create_index(op.f("ix_artifacts_flow_run_id"), "artifacts", ["flow_run_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_artifacts_flow_run_id"), table_name="artifacts")
    op.drop_index("ix_artifacts_created", table_name="artifacts")
    op.drop_index("ix_artifacts_key_created", table_name="artifacts")
    op.drop_table("artifacts")
