"""The ``dockyard`` command under hostile or clumsy input.

Every bad invocation fails with a short message naming what is wrong and how to fix it, never
a traceback; a bad value is refused where it is given, not stored; and no text stored on the
server reaches the terminal as a control sequence.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from _support import RunningServer, free_port
from dockyard import schemas
from dockyard._printable import printable

Cli = Callable[..., subprocess.CompletedProcess[str]]

DEEP_JSON = '{"a": ' * 5000 + "1" + "}" * 5000
DEEP_LIST = "[" * 5000 + "]" * 5000


def assert_refused(
    result: subprocess.CompletedProcess[str], status: int, *words: str, lines: int = 2
) -> None:
    """The command exited with ``status``, no traceback, and said ``words`` in a few lines."""
    shown = f"`{' '.join(map(str, result.args[3:]))[:200]}`\n{result.stdout}\n{result.stderr}"
    assert result.returncode == status, shown
    assert "Traceback" not in result.stdout + result.stderr, shown
    for word in words:
        assert word in result.stderr, (word, shown)
    assert 0 < len(result.stderr.strip().splitlines()) <= lines, shown


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the CLI at a port nothing listens on: a refusal must come before any request."""
    monkeypatch.setenv("DOCKYARD_API_URL", f"http://127.0.0.1:{free_port()}/api")


# (arguments, expected exit status, words the message must hold)
BAD_INVOCATIONS = [
    pytest.param(
        ["deployment", "run", "f/d", "--params", DEEP_JSON],
        1,
        ["--params", "nests more than"],
        id="params-nested-deep",
    ),
    pytest.param(
        ["deployment", "run", "f/d", "--param", f"x={DEEP_LIST}"],
        1,
        ["--param x", "nests more than"],
        id="param-nested-deep",
    ),
    pytest.param(
        ["deployment", "run", "f/d", "--params", '{"x": NaN}'],
        1,
        ["--params", "NaN"],
        id="params-nan",
    ),
    pytest.param(
        ["deployment", "run", "f/d", "--job-variable", f"env={DEEP_JSON}"],
        1,
        ["--job-variable env", "nests more than"],
        id="job-variable-nested-deep",
    ),
    pytest.param(
        ["deployment", "run", "f/d", "--start-in", "99999999999d"],
        1,
        ["--start-in", "year 9999"],
        id="start-in-overflow",
    ),
    pytest.param(
        ["deployment", "run", "f/d", "--start-in", "9" * 400],
        1,
        ["--start-in", "year 9999"],
        id="start-in-huge-number",
    ),
    pytest.param(
        ["deployment", "run", "f/d", "--start-in", "NaN"],
        1,
        ["--start-in takes a duration"],
        id="start-in-nan",
    ),
    pytest.param(
        ["worker", "start", "--pool", "p", "--name", "\x1b[2J"],
        1,
        ["--name", "control character"],
        id="worker-name-control",
    ),
    pytest.param(
        ["worker", "start", "--pool", "p", "--name", " "],
        1,
        ["--name", "whitespace"],
        id="worker-name-blank",
    ),
    pytest.param(
        ["work-pool", "create", "p", "--type", "process", "--base-job-template", "{dir}"],
        1,
        ["base job template", "Is a directory"],
        id="template-directory",
    ),
    pytest.param(
        ["work-pool", "update", "p", "--base-job-template", "{missing}"],
        1,
        ["base job template", "No such file"],
        id="template-missing",
    ),
    pytest.param(
        ["work-pool", "create", "p", "--type", "process", "--base-job-template", "{deep}"],
        1,
        ["base job template", "nests more than"],
        id="template-nested-deep",
    ),
    pytest.param(
        ["work-pool", "update", "p", "--base-job-template", "{binary}"],
        1,
        ["base job template", "not UTF-8"],
        id="template-not-text",
    ),
    pytest.param(
        ["work-pool", "set-concurrency-limit", "p", "9" * 30],
        1,
        ["concurrency_limit", "2147483647"],
        id="limit-huge",
    ),
    # click's own usage errors: usage, a hint, a blank line and the error
    pytest.param(
        ["server", "start", "--port", "70000"], 2, ["--port", "65535"], id="port-too-high"
    ),
    pytest.param(["server", "start", "--port", "-1"], 2, ["--port"], id="port-negative"),
    pytest.param(["server", "start", "--port", "0"], 2, ["--port"], id="port-zero"),
    pytest.param(["server", "start", "--port", "9" * 30], 2, ["--port", "65535"], id="port-huge"),
    pytest.param(
        ["config", "set", "lease_seconds=-5"], 2, ["lease_seconds", "positive"], id="negative"
    ),
    pytest.param(
        ["config", "set", "heartbeat_seconds=1e400"],
        2,
        ["heartbeat_seconds", "positive number"],
        id="infinite",
    ),
    pytest.param(
        ["config", "set", "lease_seconds=NaN"], 2, ["lease_seconds", "positive"], id="nan"
    ),
    pytest.param(
        ["config", "set", "server_port=99999999"], 2, ["server_port", "65535"], id="port-set"
    ),
    pytest.param(["config", "set", "api_url=not a url"], 2, ["api_url", "http://"], id="not-a-url"),
    pytest.param(
        ["config", "set", "scheduler_max_runs=99999999999999999999999999999999x"],
        2,
        ["scheduler_max_runs", "whole number"],
        id="not-a-whole-number",
    ),
]


@pytest.mark.parametrize(("args", "status", "words"), BAD_INVOCATIONS)
@pytest.mark.usefixtures("offline")
def test_a_bad_invocation_says_what_is_wrong(
    cli: Cli,
    tmp_path: Path,
    dockyard_home: Path,
    args: list[str],
    status: int,
    words: list[str],
) -> None:
    (tmp_path / "deep.json").write_text('{"a": ' + DEEP_LIST + "}")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe{}")
    files = {
        "{dir}": str(tmp_path),
        "{missing}": str(tmp_path / "missing.json"),
        "{deep}": str(tmp_path / "deep.json"),
        "{binary}": str(tmp_path / "binary.json"),
    }
    result = cli(*(files.get(arg, arg) for arg in args), check=False)
    assert_refused(result, status, *words, lines=4 if status == 2 and "--port" in args else 2)
    assert "cannot reach" not in result.stderr  # refused before any request
    assert not (dockyard_home / "profile.toml").exists()  # nothing bad was stored


# ------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("name", "value"), [("LEASE_SECONDS", "half a minute"), ("SERVER_PORT", "http")]
)
def test_config_view_shows_a_bad_setting_and_what_is_wrong(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"DOCKYARD_{name}", value)
    table = cli("config", "view", check=2)
    row = next(line for line in table.stdout.splitlines() if line.startswith(name.lower()))
    assert value in row
    assert f"env DOCKYARD_{name} (refused)" in row
    assert "api_url" in table.stdout  # the other settings are shown too
    assert_refused(table, 2, f"DOCKYARD_{name}={value!r} is not a", lines=1)

    shown = cli("config", "view", "--json", check=2)
    assert json.loads(shown.stdout)[name.lower()] == value

    # the commands that repair the profile still run
    cli("config", "set", "heartbeat_seconds=2")
    cli("config", "unset", "heartbeat_seconds")
    # every other command refuses to run, in one line
    assert_refused(cli("work-pool", "ls", check=False), 2, f"DOCKYARD_{name}=", lines=1)


def test_a_bad_value_in_the_profile_is_shown_and_can_be_unset(
    cli: Cli, dockyard_home: Path
) -> None:
    profile = dockyard_home / "profile.toml"
    profile.write_text(
        'lease_seconds = -5\nheartbeat_seconds = inf\napi_url = "not a url"\n'
        "server_port = 99999999\n"
    )
    view = cli("config", "view", check=2)
    refused = ["lease_seconds = -5", "heartbeat_seconds = inf", "'not a url'", "99999999"]
    assert_refused(view, 2, *refused, lines=4)
    assert view.stdout.count("profile (refused)") == 4
    assert_refused(cli("work-pool", "ls", check=False), 2, str(profile), lines=1)

    cli("config", "unset", "lease_seconds", "heartbeat_seconds", "server_port")
    cli("config", "set", "api_url=http://127.0.0.1:4200/api")
    cli("config", "view")
    assert tomllib.loads(profile.read_text()) == {"api_url": "http://127.0.0.1:4200/api"}


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"lease_seconds = [\nserver_port = 4300\n", id="not-toml"),
        pytest.param(b"\xff\xfe = 1\nserver_port = 4300\n", id="not-utf8"),
        pytest.param(b"x = " + b"[" * 5000 + b"\nserver_port = 4300\n", id="nested-deep"),
        pytest.param(b"server_port = 1\nserver_port = 4300\n", id="key-twice"),
    ],
)
@pytest.mark.parametrize(
    "repair", [["config", "unset", "lease_seconds"], ["config", "set", "lease_seconds=9"]]
)
def test_a_corrupt_profile_can_be_seen_and_repaired(
    cli: Cli, dockyard_home: Path, content: bytes, repair: list[str]
) -> None:
    profile = dockyard_home / "profile.toml"
    profile.write_bytes(content)
    assert_refused(cli("work-pool", "ls", check=False), 2, str(profile), lines=1)
    view = cli("config", "view", check=2)
    assert "api_url" in view.stdout
    assert_refused(view, 2, str(profile), lines=1)

    fixed = cli(*repair)
    assert "line" in fixed.stdout and f"{profile}.broken" in fixed.stdout
    assert (dockyard_home / "profile.toml.broken").read_bytes() == content  # nothing lost
    stored = tomllib.loads(profile.read_text())
    assert stored["server_port"] == 4300  # the lines that read are kept
    assert json.loads(cli("config", "view", "--json").stdout)["server_port"] == 4300


def test_a_home_that_is_a_file_is_named(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home-file"
    home.write_text("not a directory")
    monkeypatch.setenv("DOCKYARD_HOME", str(home))
    for args in (
        ["work-pool", "ls"],
        ["config", "set", "lease_seconds=5"],
        ["config", "unset", "lease_seconds"],
    ):
        assert_refused(cli(*args, check=False), 2, str(home), "DOCKYARD_HOME", lines=1)
    view = cli("config", "view", check=2)
    assert "api_url" in view.stdout
    assert_refused(view, 2, "not a directory", lines=1)
    monkeypatch.setenv("DOCKYARD_HOME", str(home / "below"))
    assert_refused(cli("work-pool", "ls", check=False), 2, "not a directory", lines=1)
    monkeypatch.setenv("DOCKYARD_HOME", str(tmp_path / ("x" * 5000)))
    assert_refused(cli("work-pool", "ls", check=False), 2, "cannot be used", lines=1)


def test_text_with_control_characters_round_trips_through_the_profile(
    cli: Cli, dockyard_home: Path
) -> None:
    value = 'img\x1b[2J"quoted"\\path\ttab\x7f'
    cli("config", "set", f"base_image={value}")
    assert tomllib.loads((dockyard_home / "profile.toml").read_text())["base_image"] == value
    shown = cli("config", "view").stdout
    assert "\x1b" not in shown and "img\\x1b[2J" in shown
    assert json.loads(cli("config", "view", "--json").stdout)["base_image"] == value


# ------------------------------------------------------------------ stored text


# terminal title, clear screen, C1 CSI, carriage return, backspace, DEL, right-to-left override
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x9b31m\r\x08\x7f\u202eevil"
# what a terminal may act on: C0 controls but newline and tab, DEL, C1, bidi overrides
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def assert_inert(result: subprocess.CompletedProcess[str]) -> None:
    for stream in (result.stdout, result.stderr):
        found = CONTROL.search(stream)
        assert found is None, f"`{result.args[3:]}` printed {found.group()!a}:\n{stream!a}"
    assert "\\x1b]0;pwned\\x07" in result.stdout  # shown, escaped, not hidden


def test_stored_text_never_reaches_the_terminal_as_control_sequences(
    server: RunningServer,
) -> None:
    with server.client() as client:
        client.create_work_pool(
            schemas.WorkPoolCreate(name="p", type="process", description=HOSTILE)
        )
        deployment = client.upsert_deployment(
            schemas.DeploymentCreate(
                flow_name="etl",
                name="d",
                work_pool_name="p",
                description=HOSTILE,
                version=HOSTILE,
                entrypoint=HOSTILE,
                image=HOSTILE,
                tags=[HOSTILE],
                parameters={"x": HOSTILE},
            )
        )
        client.create_deployment_run(deployment.id, schemas.DeploymentRunCreate(tags=[HOSTILE]))
        run = client.create_flow_run(
            schemas.FlowRunCreate(flow_name="etl", name="run-\u202e-evil", tags=[HOSTILE])
        )
        message = f"Traceback (most recent call last):\n  {HOSTILE}\nValueError: {HOSTILE}"
        client.create_logs(
            [schemas.LogCreate(flow_run_id=run.id, message=f"first {HOSTILE}\n\tsecond line")]
        )
        transition = schemas.StateTransition(
            state=schemas.StateType.FAILED, message=message, lease_token=run.lease_token
        )
        client.set_flow_run_state(run.id, transition)

    for args in (
        ["flow-run", "ls"],
        ["flow-run", "inspect", str(run.id)],
        ["flow-run", "logs", str(run.id)],
        ["deployment", "ls"],
        ["deployment", "inspect", "etl/d"],
        ["work-pool", "ls"],
        ["work-pool", "inspect", "p"],
    ):
        result = server.cli(*args)
        if args[1] in ("inspect", "logs"):
            assert_inert(result)
        else:
            assert CONTROL.search(result.stdout + result.stderr) is None, result.stdout
    logs = server.cli("flow-run", "logs", str(run.id)).stdout.splitlines()
    assert logs[1] == "\tsecond line"  # a log message keeps its lines and tabs
    assert "run-\\u202e-evil" in server.cli("flow-run", "ls").stdout


def test_printable_escapes_what_a_terminal_acts_on() -> None:
    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert printable("one\ntwo\tthree") == "one\\x0atwo\\x09three"
    assert printable("one\r\ntwo\tthree\r", lines=True) == "one\ntwo\tthree\\x0d"
    assert printable("\x9b\x7f\u202e\ud800") == "\\x9b\\x7f\\u202e\\ud800"
    assert printable("naïve ✓ 日本") == "naïve ✓ 日本"
