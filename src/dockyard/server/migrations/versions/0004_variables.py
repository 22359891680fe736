"""variables: named JSON values

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-09 10:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import dockyard.server.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "variables",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", _json(), nullable=True),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("created", dockyard.server.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated", dockyard.server.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_variables")),
        sa.UniqueConstraint("name", name=op.f("uq_variables_name")),
    )


def downgrade() -> None:
    op.drop_table("variables")
