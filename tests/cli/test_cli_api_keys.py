"""``dockyard api-key`` against a real server, run as a subprocess."""

from __future__ import annotations

import json

import pytest

from _support import RunningServer, assert_clean_error, run_cli

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_api_key_lifecycle(server: RunningServer) -> None:
    assert "No API keys yet" in server.cli("api-key", "ls").stdout
    made = json.loads(server.cli("api-key", "create", "root", "--scope", "admin", "--json").stdout)
    assert made["name"] == "root" and made["scope"] == "admin"
    assert made["key"].startswith("dk_")
    admin_env = {**server.env, "DOCKYARD_API_KEY": made["key"]}

    # a key exists now: the CLI without one is refused, with a word on what to do
    refused = server.cli("api-key", "ls", check=False)
    assert_clean_error(refused, "API key")

    shown = run_cli("api-key", "create", "ops", "--scope", "user", env=admin_env).stdout
    assert "shown only now" in shown
    value = next(line for line in shown.splitlines() if line.startswith("dk_"))
    user_env = {**server.env, "DOCKYARD_API_KEY": value}
    forbidden = run_cli("work-pool", "create", "p", "--type", "process", env=user_env, check=False)
    assert_clean_error(forbidden, "user key may not")

    listed = json.loads(run_cli("api-key", "ls", "--json", env=admin_env).stdout)
    assert [(k["name"], k["scope"], k["revoked"]) for k in listed] == [
        ("ops", "user", None),
        ("root", "admin", None),
    ]
    assert value not in json.dumps(listed) and "key" not in listed[0]
    table = run_cli("api-key", "ls", env=admin_env).stdout
    assert "ops" in table and "Last used" in table and value not in table

    assert "Revoked API key 'ops'" in run_cli("api-key", "revoke", "ops", env=admin_env).stdout
    assert_clean_error(run_cli("work-pool", "ls", env=user_env, check=False), "API key")
