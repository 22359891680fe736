"""``dockyard secret`` against a real server, run as a subprocess: values go in on standard
input and never come out."""

from __future__ import annotations

import json
import os
import subprocess

from cryptography.fernet import Fernet

from _support import RunningServer, run_cli

VALUE = "pa55-from-stdin-0042"


def _clean_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, result
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_secret_lifecycle(server: RunningServer) -> None:
    made = server.cli("secret", "set", "db-password", input=VALUE + "\n")
    assert made.stdout.strip() == "Set secret 'db-password'."
    outputs = [made.stdout + made.stderr]
    with server.http() as http:
        # the newline that ends the input is not part of the value
        assert http.get("/secrets/name/db-password/value").json()["value"] == VALUE

    again = server.cli("secret", "set", "db-password", input="other", check=False)
    _clean_error(again, "'db-password' already exists", "--overwrite")
    server.cli("secret", "set", "db-password", "--overwrite", input=VALUE + "-2")
    server.cli("secret", "set", "account", "--json", input='{"user": "u", "pw": "p"}')
    with server.http() as http:
        assert http.get("/secrets/name/db-password/value").json()["value"] == VALUE + "-2"
        assert http.get("/secrets/name/account/value").json()["value"] == {"user": "u", "pw": "p"}

    listed = server.cli("secret", "ls", "--json")
    assert [s["name"] for s in json.loads(listed.stdout)] == ["account", "db-password"]
    assert all(set(s) == {"id", "name", "created", "updated"} for s in json.loads(listed.stdout))
    table = server.cli("secret", "ls")
    assert "db-password" in table.stdout and "account" in table.stdout
    outputs += [listed.stdout, table.stdout, again.stderr]

    deleted = server.cli("secret", "delete", "db-password")
    assert "Deleted secret 'db-password'." in deleted.stdout
    missing = server.cli("secret", "delete", "db-password", check=False)
    _clean_error(missing, "secret 'db-password' not found")
    assert not any(VALUE in output for output in outputs)


def test_values_are_refused_without_being_echoed(server: RunningServer) -> None:
    empty = server.cli("secret", "set", "token", input="", check=False)
    _clean_error(empty, "the secret's value is empty")
    not_json = server.cli("secret", "set", "token", "--json", input=VALUE, check=False)
    _clean_error(not_json, "not JSON")
    number = server.cli("secret", "set", "token", "--json", input="42", check=False)
    _clean_error(number, "must be a string, or a JSON object or array")
    huge = server.cli("secret", "set", "token", input=VALUE * 20_000, check=False)
    _clean_error(huge, "more than")
    bad_name = server.cli("secret", "set", "Bad Name", input=VALUE, check=False)
    _clean_error(bad_name, "invalid name")
    for result in (not_json, huge, bad_name):
        assert VALUE not in result.stdout + result.stderr
    # no command takes the value as an argument, and none prints one
    usage = server.cli("secret", "set", "token", VALUE, input=VALUE, check=False)
    assert usage.returncode == 2
    assert server.cli("secret", "get", "token", check=False).returncode == 2
    assert json.loads(server.cli("secret", "ls", "--json").stdout) == []


def test_config_view_masks_the_encryption_key() -> None:
    key = Fernet.generate_key().decode()
    shown = run_cli("config", "view", env={**os.environ, "DOCKYARD_SERVER_ENCRYPTION_KEY": key})
    assert "server_encryption_key" in shown.stdout and key not in shown.stdout
