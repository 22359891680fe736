"""global concurrency limits and their slot leases

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.server.tables

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _time() -> dockyard.server.tables.UTCDateTime:
    return dockyard.server.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "concurrency_limits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("slot_decay_per_second", sa.Float(), nullable=False),
        sa.Column("decaying_slots", sa.Float(), nullable=False),
        sa.Column("decayed_at", _time(), nullable=False),
        sa.Column("created", _time(), nullable=False),
        sa.Column("updated", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_concurrency_limits")),
        sa.UniqueConstraint("name", name=op.f("uq_concurrency_limits_name")),
    )
    op.create_table(
        "concurrency_leases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("limit_id", sa.Uuid(), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("created", _time(), nullable=False),
        sa.Column("expires", _time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["limit_id"],
            ["concurrency_limits.id"],
            name=op.f("fk_concurrency_leases_limit_id_concurrency_limits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", "limit_id", name=op.f("pk_concurrency_leases")),
    )
    op.create_index(
        op.f("ix_concurrency_leases_limit_id"), "concurrency_leases", ["limit_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_concurrency_leases_limit_id"), table_name="concurrency_leases")
    op.drop_table("concurrency_leases")
    op.drop_table("concurrency_limits")
