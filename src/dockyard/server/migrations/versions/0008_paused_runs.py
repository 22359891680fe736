"""paused and suspended runs: timeout and input

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import dockyard.server.tables

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pause_key", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column(
                "pause_expires",
                dockyard.server.tables.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("suspended", sa.Boolean(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("pause_input_schema", _json(), nullable=True))
        batch_op.add_column(sa.Column("run_inputs", _json(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.drop_column("run_inputs")
        batch_op.drop_column("pause_input_schema")
        batch_op.drop_column("suspended")
        batch_op.drop_column("pause_expires")
        batch_op.drop_column("pause_key")
