"""The ``dockyard`` command where no server is needed: help, settings, errors, output."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from _support import free_port
from dockyard import schemas, settings
from dockyard.cli import _output, flow_run

Cli = Callable[..., subprocess.CompletedProcess[str]]

# What a command group's module may not import when the command line is parsed.
HEAVY = ["httpx", "pydantic", "rich", "dockyard.client", "dockyard.schemas", "dockyard.server"]


def imported(*args: str) -> list[str]:
    """Modules a fresh interpreter imports to run ``dockyard *args``."""
    command = [sys.executable, "-X", "importtime", "-m", "dockyard.cli.main", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]


@pytest.mark.parametrize(
    "args",
    [("--help",), ("work-pool", "--help"), ("work-pool", "create", "--help"), ("config", "--help")],
)
def test_help_imports_nothing_heavy(args: tuple[str, ...]) -> None:
    modules = imported(*args)
    heavy = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert not heavy, f"`dockyard {' '.join(args)}` imports {heavy}"


def test_every_group_has_help(cli: Cli) -> None:
    top = cli("--help").stdout
    for group in ("server", "work-pool", "work-queue", "flow-run", "deployment", "config"):
        assert group in top
        assert "Usage:" in cli(group, "--help").stdout
    assert "--insecure" in cli("server", "start", "--help").stdout


def test_version(cli: Cli) -> None:
    assert cli("--version").stdout.startswith("dockyard ")


def test_unreachable_server_is_a_clean_error(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("DOCKYARD_API_URL", url)
    result = cli("work-pool", "ls", check=1)
    assert "Traceback" not in result.stderr
    assert url in result.stderr
    assert "dockyard server start" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_bad_arguments_fail_before_any_request(cli: Cli) -> None:
    for args in (
        ("flow-run", "inspect", "not-an-id"),
        ("flow-run", "ls", "--state", "sleepy"),
        ("deployment", "inspect", "no-slash"),
        ("work-pool", "update", "pool"),
    ):
        result = cli(*args, check=1)
        assert "Traceback" not in result.stderr
        assert "cannot reach" not in result.stderr, args


def test_config_set_view_unset(cli: Cli, dockyard_home: Path) -> None:
    cli("config", "set", "api_url=http://10.1.2.3:4200/api", "DOCKYARD_API_KEY=s3cret")
    profile = tomllib.loads((dockyard_home / "profile.toml").read_text())
    assert profile == {"api_url": "http://10.1.2.3:4200/api", "api_key": "s3cret"}

    cli("config", "set", "SERVER_PORT=5000")  # merges with what is there
    profile = tomllib.loads((dockyard_home / "profile.toml").read_text())
    assert profile["server_port"] == 5000
    assert profile["api_url"] == "http://10.1.2.3:4200/api"

    view = json.loads(cli("config", "view", "--json").stdout)
    assert view["api_url"] == "http://10.1.2.3:4200/api"
    assert view["api_key"] == "********"
    assert view["server_port"] == 5000
    table = cli("config", "view").stdout
    assert "s3cret" not in table
    assert "********" in table
    assert "profile" in table

    cli("config", "unset", "api_key")
    assert "api_key" not in tomllib.loads((dockyard_home / "profile.toml").read_text())
    assert json.loads(cli("config", "view", "--json").stdout)["api_key"] is None


def test_config_view_hides_a_database_password(cli: Cli, dockyard_home: Path) -> None:
    cli("config", "set", "database_url=postgresql+asyncpg://me:hunter2@db:5432/dockyard")
    view = json.loads(cli("config", "view", "--json").stdout)
    assert view["database_url"] == "postgresql+asyncpg://***@db:5432/dockyard"
    assert "hunter2" not in cli("config", "view").stdout


def test_config_refuses_unknown_keys_and_bad_values(cli: Cli, dockyard_home: Path) -> None:
    unknown = cli("config", "set", "colour=blue", check=1)
    assert "colour" in unknown.stderr
    assert "api_url" in unknown.stderr  # lists the known ones
    # a value no command could read is refused now, as every command would refuse it (2)
    assert "server_port" in cli("config", "set", "server_port=many", check=2).stderr
    assert "65535" in cli("config", "set", "server_port=70000", check=2).stderr
    assert "config unset api_key" in cli("config", "set", "api_key=", check=1).stderr
    assert "KEY=VALUE" in cli("config", "set", "api_url", check=1).stderr
    assert "Traceback" not in unknown.stderr
    assert not (dockyard_home / "profile.toml").exists()


def test_state_names_match_the_schema() -> None:
    assert [state.value for state in schemas.StateType] == flow_run.STATES


def test_relative_times() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert _output.ago(None) == "never"
    assert _output.ago(now - timedelta(seconds=3), now) == "3s ago"
    assert _output.ago(now - timedelta(minutes=5, seconds=2), now) == "5m ago"
    assert _output.ago(now - timedelta(hours=2), now) == "2h ago"
    assert _output.ago(now - timedelta(days=3), now) == "3d ago"
    assert _output.ago(now + timedelta(minutes=1), now) == "in 1m"


def test_server_start_refuses_an_open_bind_without_a_key(cli: Cli) -> None:
    result = cli("server", "start", "--host", "0.0.0.0", "--port", str(free_port()), check=1)
    assert "Traceback" not in result.stderr
    assert "--insecure" in result.stderr


# One bad value of each kind of setting, and words its error must hold.
BAD_SETTINGS = [
    pytest.param("HEARTBEAT_SECONDS", "abc", "positive number of seconds", id="seconds"),
    pytest.param("LEASE_SECONDS", "-1", "such as 30", id="negative-seconds"),
    pytest.param("SCHEDULER_HORIZON_HOURS", "inf", "positive number of hours", id="hours"),
    pytest.param("SCHEDULER_MAX_RUNS", "2.5", "whole number", id="integer"),
    pytest.param("SERVER_PORT", "70000", "from 1 to 65535", id="port"),
    pytest.param("API_URL", "127.0.0.1:4200/api", "http://", id="url"),
    pytest.param("DATABASE_URL", "mysql://me:hunter2@db/x", "postgresql+asyncpg://", id="db-url"),
    pytest.param("API_URL", "http://[::1/api", "a URL (", id="url-bracket"),
    pytest.param("API_URL", "http://127.0.0.1:99999/api", "a URL (", id="url-port"),
    pytest.param("API_URL", "http://my host:4200/api", "without spaces", id="url-space"),
    pytest.param("API_URL", "http:///api", "with a host", id="url-no-host"),
    pytest.param(
        "DATABASE_URL",
        "postgresql+asyncpg://me:hunter2@db:port/x",
        "a URL (",
        id="db-url-port",
    ),
    pytest.param("API_KEY", "clé-secrète-hunter2", "visible ASCII", id="key-ascii"),
    pytest.param("SERVER_API_KEY", "two words hunter2", "visible ASCII", id="server-key-space"),
    pytest.param("SERVER_API_KEY", "", "is empty", id="server-key-empty"),
]
COMMANDS = [("work-pool", "ls"), ("server", "start"), ("worker", "start", "--pool", "p")]


@pytest.mark.parametrize(("name", "value", "words"), BAD_SETTINGS)
@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: "-".join(args[:2]))
def test_a_bad_setting_is_one_line_naming_the_variable(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], name, value, words
) -> None:
    monkeypatch.setenv(f"DOCKYARD_{name}", value)
    result = cli(*args, check=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"DOCKYARD_{name}=" in lines[0]
    assert words in lines[0]
    assert "hunter2" not in result.stderr  # a database password is never echoed


def test_a_bad_profile_entry_names_the_key_and_the_file(cli: Cli, dockyard_home: Path) -> None:
    profile = dockyard_home / "profile.toml"
    profile.write_text('heartbeat_seconds = "soon"\n')
    line = cli("work-pool", "ls", check=2).stderr.strip()
    assert line == (
        f"Error: heartbeat_seconds = 'soon' in {profile} is not a positive number of seconds: "
        "set it to a number such as 5"
    )
    profile.write_text("heartbeat_seconds = [5\n")
    broken = cli("work-pool", "ls", check=2).stderr.strip().splitlines()
    assert len(broken) == 1 and f"{profile} is not valid TOML" in broken[0]


def test_the_engine_reports_a_bad_setting_in_one_line() -> None:
    env = {**os.environ, "DOCKYARD_LEASE_SECONDS": "half a minute"}
    command = [sys.executable, "-m", "dockyard.engine", str(uuid.uuid4())]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DOCKYARD_LEASE_SECONDS='half a minute' is not a positive number" in lines[0]


@dataclasses.dataclass(frozen=True)
class _WithFlag(settings.Settings):
    verbose: bool = False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("yes", True), ("TRUE", True), ("1", True), ("off", False), ("0", False), ("", False)],
)
def test_boolean_settings_read_the_usual_words(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool
) -> None:
    monkeypatch.setattr(settings, "Settings", _WithFlag)
    monkeypatch.setenv("DOCKYARD_VERBOSE", raw)
    assert settings.load().verbose is expected  # type: ignore[attr-defined]


def test_a_bad_boolean_setting_says_what_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "Settings", _WithFlag)
    monkeypatch.setenv("DOCKYARD_VERBOSE", "maybe")
    with pytest.raises(settings.InvalidSetting, match="DOCKYARD_VERBOSE='maybe' is not true"):
        settings.load()
    with pytest.raises(settings.InvalidSetting, match=r"verbose = 2 in profile\.toml"):
        settings.parse("verbose", 2, "profile.toml")


def test_good_settings_still_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_HEARTBEAT_SECONDS", " 2.5 ")
    monkeypatch.setenv("DOCKYARD_SERVER_PORT", "4300")
    monkeypatch.setenv("DOCKYARD_LEASE_SECONDS", "")  # empty: the default
    monkeypatch.setenv("DOCKYARD_API_URL", "https://dockyard.example/api")
    loaded = settings.load()
    assert loaded.heartbeat_seconds == 2.5
    assert loaded.server_port == 4300
    assert loaded.lease_seconds == settings.Settings().lease_seconds
    assert loaded.api_url == "https://dockyard.example/api"
