"""Schema migrations (Alembic). ``HEAD_REVISION`` must name the newest revision."""

HEAD_REVISION = "0011"
