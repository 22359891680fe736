"""The schema: Alembic's migrations and the tables in code must agree."""

from __future__ import annotations

import asyncio
import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from dockyard.server.db import Database
from dockyard.server.migrations import HEAD_REVISION
from dockyard.server.migrations.runner import config, upgrade
from dockyard.server.tables import Base


def _diff(conn: Connection) -> list[object]:
    # SQLite cannot reflect an index on an expression (ix_flow_runs_when): the comparison
    # leaves those out there, and tests/server/test_ui_charts_unit.py checks them instead
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def test_migrations_build_the_tables_in_code(db_url: str) -> None:
    async def check() -> list[object]:
        db = Database(db_url)
        try:
            async with db.write_engine.begin() as conn:
                await conn.run_sync(upgrade)
            async with db.write_engine.connect() as conn:
                return await conn.run_sync(_diff)
        finally:
            await db.dispose()

    assert asyncio.run(check()) == []


def test_head_revision_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(config()).get_current_head() == HEAD_REVISION


def test_a_new_database_is_created_and_stamped_then_left_alone(db_url: str) -> None:
    async def check() -> tuple[bool, bool, str | None]:
        db = Database(db_url)
        try:
            first = await db.migrate()
            second = await db.migrate()
            async with db.read() as session:
                await session.execute(text("SELECT count(*) FROM flow_runs"))
            return first, second, await db.current_revision()
        finally:
            await db.dispose()

    assert asyncio.run(check()) == (True, False, HEAD_REVISION)
