"""Test support: real parts (PostgreSQL, the server, the CLI) started and stopped for tests."""

from _support.cli import CLI_COMMAND, assert_clean_error, run_cli
from _support.postgres import PostgresCluster, start_postgres_cluster
from _support.require import in_ci, require
from _support.servers import RunningServer, ServerFactory, free_port
from _support.waiting import wait_until

__all__ = [
    "CLI_COMMAND",
    "PostgresCluster",
    "RunningServer",
    "ServerFactory",
    "assert_clean_error",
    "free_port",
    "in_ci",
    "require",
    "run_cli",
    "start_postgres_cluster",
    "wait_until",
]
