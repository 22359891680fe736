"""Fixtures of the server's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dockyard.server.db import Database


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """The database of ``db_url``, migrated (no LISTEN connection: see ``Database.start``)."""
    database = Database(db_url)
    await database.migrate()
    try:
        yield database
    finally:
        await database.dispose()
