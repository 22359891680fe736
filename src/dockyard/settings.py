"""Configuration in one place.

Every setting has an environment variable ``DOCKYARD_<NAME>`` and may also be stored in the
profile file ``$DOCKYARD_HOME/profile.toml`` (``dockyard config set KEY=VALUE``). The
environment wins over the profile, the profile over the defaults. Settings are read once with
:func:`load` and passed down; nothing deep in the code reads the environment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard._redact import redact_url
from dockyard.exceptions import DockyardError, InvalidSetting

__all__ = [
    "PROFILE_FILE",
    "InvalidSetting",
    "Settings",
    "default_home",
    "load",
    "parse",
    "profile_path",
    "raw_settings",
    "read_profile",
    "salvage_profile",
    "save_profile",
]

PROFILE_FILE = "profile.toml"


def default_home() -> Path:
    return Path(os.environ.get("DOCKYARD_HOME") or Path.home() / ".dockyard").expanduser()


@dataclass(frozen=True)
class Settings:
    """All settings, with their defaults. Field ``x`` is read from ``DOCKYARD_X``."""

    home: Path = field(default_factory=default_home)
    # client side
    api_url: str = "http://127.0.0.1:4200/api"
    api_key: str | None = None
    # server side
    server_host: str = "127.0.0.1"
    server_port: int = 4200
    server_api_key: str | None = None
    # the Fernet key secrets are stored under; unset: $DOCKYARD_HOME/encryption.key, made on
    # first use (dockyard.server.encryption)
    server_encryption_key: str | None = None
    server_allowed_hosts: str = ""  # extra Host header values, comma separated
    # the largest request body the server reads (413 beyond): a deployment takes some
    # kilobytes, a batch of 1000 short log lines some hundred; 4 MiB leaves room for large
    # parameters and job variables while no one request makes the server hold much more
    server_max_body_bytes: int = 4 << 20
    # requests a second, on average, one API key may send to one replica, and how many at once
    # (dockyard.server.access); 0 turns the limit off. Requests without a key are not limited.
    server_rate_limit_per_second: float = 100.0
    server_rate_limit_burst: int = 500
    # how long GET /metrics reuses the figures it reads from the database (runs by state,
    # scheduler lag): frequent scrapes, or several Prometheus servers, then cost one query
    server_metrics_cache_seconds: float = 5.0
    database_url: str = ""  # empty: SQLite in home
    # PostgreSQL connections per server process: kept, opened beyond under load, and how long
    # a request waits for one before it is answered 503 (docs/scale-out.md)
    database_pool_size: int = 10
    database_max_overflow: int = 20
    database_pool_timeout_seconds: float = 30.0
    # how long a new connection or one statement may take before the database counts as
    # gone and the request is answered 503 (migrations at start are not bounded)
    database_statement_timeout_seconds: float = 15.0
    # while a replica's LISTEN connection is down, its long-polls look again this often
    server_listen_fallback_seconds: float = 1.0
    # dispatch
    heartbeat_seconds: float = 5.0
    lease_seconds: float = 30.0
    long_poll_seconds: float = 30.0
    worker_offline_seconds: float = 15.0
    late_threshold_seconds: float = 15.0
    # global concurrency limits: how long slots stay held after the holder's last renewal
    # (renewed every third of it while the block runs; dockyard.concurrency)
    concurrency_lease_seconds: float = 60.0
    # scheduler
    scheduler_max_runs: int = 100
    scheduler_horizon_hours: float = 24.0 * 7
    # the shortest gap a schedule may leave between two runs: the API refuses a schedule
    # whose times come closer (422) and the scheduler skips, marked with the error, one
    # stored before. 10 s is the scheduler's own pass; anything finer is a polling loop.
    scheduler_min_interval_seconds: float = 10.0
    # persist every flow's and task's result unless it says otherwise (dockyard.sdk.runtime.cache)
    results_persist_by_default: bool = False
    # events and automations (dockyard.server.automations): how long events and finished
    # actions are kept; the timer of the evaluation and readiness loops (they also wake at
    # once on new events); the retries of a failed action (delay doubling from the first up
    # to the cap, at most so many attempts); a webhook's timeout; and the URL of the UI that
    # links sent out point to (empty: http://SERVER_HOST:SERVER_PORT)
    events_retention_hours: float = 24.0 * 7
    automation_interval_seconds: float = 5.0
    automation_retry_seconds: float = 1.0
    automation_retry_max_seconds: float = 60.0
    automation_attempts: int = 5
    webhook_timeout_seconds: float = 10.0
    # the hosts webhooks may call, comma separated (empty: any); a guard against automations
    # that would make the server reach into networks its users cannot
    webhook_allowed_hosts: str = ""
    server_ui_url: str = ""
    # retention (dockyard.server.retention): final flow runs that ended longer ago than
    # this, with their logs, task runs and states, and events are deleted; 0 keeps all
    retention_days: float = 0.0
    # docker
    base_image: str = ""

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'dockyard.db'}"


def _fields() -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(Settings)}


ENV = "env"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# URL settings: the schemes each accepts and an example (the server's database needs an
# async driver; SQLAlchemy's other drivers would only fail later, at the first query)
_URLS: dict[str, tuple[tuple[str, ...], str]] = {
    "api_url": (("http", "https"), "a URL such as http://127.0.0.1:4200/api"),
    "database_url": (
        ("sqlite+aiosqlite", "postgresql+asyncpg"),
        "a URL such as postgresql+asyncpg://USER:PASSWORD@HOST:5432/dockyard, "
        "or leave it empty for SQLite in DOCKYARD_HOME",
    ),
}
_PORTS = frozenset({"server_port"})
# numbers where 0 means "off" (every other number must be positive)
_ZERO_MEANS_OFF = frozenset({"retention_days", "server_rate_limit_per_second"})
# keys travel in an HTTP header: visible ASCII only (a server's key is also long, see
# dockyard.server.security)
_KEYS = frozenset({"api_key", "server_api_key"})
_VISIBLE_ASCII = re.compile(r"[!-~]+")


class _Refused(Exception):
    """A value that does not fit: what was expected, and an example of what fits."""

    def __init__(self, expected: str, example: str) -> None:
        super().__init__(expected)
        self.expected = expected
        self.example = example


def parse(name: str, raw: Any, source: str = "") -> Any:
    """Return ``raw`` (text, or a TOML value) as the value of setting ``name``.

    Every number is positive (durations and counts); ports run from 1 to 65535. An empty
    value means the default (``None`` where a setting may be unset).

    Args:
        source: where ``raw`` comes from, for the error: ``ENV``, the profile file's path,
            or empty for a value given in code.

    Raises:
        InvalidSetting: naming the variable or profile key, the value and what would fit.
    """
    spec = _fields()[name]
    kind = str(spec.type)
    if isinstance(raw, str) and kind not in ("str", "str | None"):
        raw = raw.strip()
    if raw is None or raw == "":
        if name == "server_api_key" and raw == "" and source:
            # DOCKYARD_SERVER_API_KEY=$KEY with $KEY unset must not open the server to all
            raise InvalidSetting(
                f"{_origin(name, raw, source)} is empty: set a key (make one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or remove "
                "the setting to run without one"
            )
        if kind.endswith("| None"):
            return None
        return raw if kind == "str" else spec.default
    try:
        return _convert(kind.removesuffix(" | None"), name, raw)
    except _Refused as refused:
        raise InvalidSetting(
            f"{_origin(name, raw, source)} is not {refused.expected}: set it to {refused.example}"
        ) from None


def _convert(kind: str, name: str, raw: Any) -> Any:
    if kind == "bool":
        text = str(raw).lower() if isinstance(raw, str | bool) else ""
        if text not in _TRUE | _FALSE:
            raise _Refused("true or false", "true or false (or 1/0, yes/no, on/off)")
        return text in _TRUE
    if kind == "int":
        return _whole(name, raw)
    if kind == "float":
        return _positive(name, raw)
    if kind == "Path":
        return Path(str(raw)).expanduser()
    if isinstance(raw, dict | list):
        raise _Refused("text", "a quoted string")
    if name in _URLS:
        return _check_url(name, str(raw).strip())
    if name in _KEYS and not _VISIBLE_ASCII.fullmatch(str(raw)):
        raise _Refused(
            "made of visible ASCII characters only (no spaces)",
            "a key such as the one `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            " prints",
        )
    return str(raw)


def _positive(name: str, raw: Any) -> float:
    unit = name.rsplit("_", 1)[-1] if name.endswith(("_seconds", "_hours")) else ""
    value = math.nan
    if isinstance(raw, str | int | float) and not isinstance(raw, bool):
        with contextlib.suppress(ValueError):  # refused below, with what would fit
            value = float(raw)
    if not (math.isfinite(value) and (value > 0 or (value == 0 and name in _ZERO_MEANS_OFF))):
        expected = f"a positive number of {unit}" if unit else "a positive number"
        if name in _ZERO_MEANS_OFF:
            raise _Refused(f"0 (off) or {expected}", "0, or a number such as 30")
        raise _Refused(expected, f"a number such as {_example(name, 5)}")
    return value


def _whole(name: str, raw: Any) -> int:
    high = 65535 if name in _PORTS else None
    value = 0
    if isinstance(raw, str | int) and not isinstance(raw, bool):
        with contextlib.suppress(ValueError):  # refused below, with what would fit
            value = int(raw)
    if value < 1 or (high is not None and value > high):
        expected = f"a port number from 1 to {high}" if high else "a whole number of at least 1"
        raise _Refused(expected, f"a whole number such as {_example(name, 1)}")
    return value


def _example(name: str, fallback: float) -> str:
    default = _fields()[name].default
    return f"{default if isinstance(default, int | float) else fallback:g}"


def _check_url(name: str, text: str) -> str:
    from urllib.parse import urlsplit

    schemes, example = _URLS[name]
    scheme, sep, rest = text.partition("://")
    listed = " or ".join(f"{s}://" for s in schemes)
    if not (sep and scheme.lower() in schemes and rest):
        raise _Refused(f"a URL starting with {listed}", example)
    if not text.isprintable() or " " in text:
        raise _Refused(
            f"a URL without spaces or control characters, starting with {listed}", example
        )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - reading it checks it (a bad port raises ValueError)
    except ValueError as exc:
        raise _Refused(f"a URL ({exc})", example) from None
    if scheme.lower() in ("http", "https") and not parts.hostname:
        raise _Refused("a URL with a host", example)
    return text


def _origin(name: str, raw: Any, source: str) -> str:
    """The value as the user wrote it, where they wrote it (a URL's password and a key
    hidden)."""
    if name in _KEYS and raw:
        shown: Any = "<hidden>"  # a key, even a mistyped one, is never echoed
    else:
        shown = redact_url(raw) if isinstance(raw, str) else raw
    if source == ENV:
        return f"DOCKYARD_{name.upper()}={shown!r}"
    if source:
        return f"{name} = {shown!r} in {source}"
    return f"{name}={shown!r}"


def profile_path(home: Path | None = None) -> Path:
    return (home or default_home()) / PROFILE_FILE


_REPAIR = (
    "fix it, or let `dockyard config set KEY=VALUE` or `dockyard config unset KEY` rewrite it "
    "without the lines that cannot be read"
)


def read_profile(home: Path | None = None) -> dict[str, Any]:
    """Return the settings stored in the profile file (none when there is no file).

    Raises:
        InvalidSetting: the file cannot be read or is not TOML (the message names it and
            how to repair it), or the home is not a directory.
    """
    path = profile_path(home)
    values, problem = _parse_profile(_profile_bytes(path))
    if problem is not None:
        raise InvalidSetting(f"the profile file {path} {problem}; {_REPAIR}")
    return values


def salvage_profile(
    home: Path | None = None,
) -> tuple[dict[str, Any], str | None, list[tuple[int, str]]]:
    """Return what can be read of the profile file, what kept it from being read as a
    whole (None when nothing did), and the lines that could not be read, numbered.

    ``dockyard config set`` and ``unset`` read the profile this way, so that they can
    repair a broken one: a file that is not TOML as a whole is read line by line (the
    profile holds one ``key = value`` a line; a later line wins over an earlier one).

    Raises:
        InvalidSetting: the file cannot be read at all, or the home is not a directory.
    """
    path = profile_path(home)
    data = _profile_bytes(path)
    values, problem = _parse_profile(data)
    if problem is None:
        return values, None, []
    broken: list[tuple[int, str]] = []
    for number, raw_line in enumerate(data.splitlines(), start=1):
        found, line_problem = _parse_profile(raw_line)
        if line_problem is None:
            values.update(found)
        else:
            broken.append((number, raw_line.decode("utf-8", errors="backslashreplace")))
    return values, f"the profile file {path} {problem}", broken


def _parse_profile(data: bytes) -> tuple[dict[str, Any], str | None]:
    """The settings in a profile file's content, or what keeps them from being read."""
    try:
        return tomllib.loads(data.decode("utf-8")), None
    except UnicodeDecodeError:
        return {}, "is not UTF-8 text"
    except tomllib.TOMLDecodeError as exc:
        return {}, f"is not valid TOML ({exc})"
    except RecursionError:
        return {}, "is not valid TOML (its values nest too deeply)"


def _profile_bytes(path: Path) -> bytes:
    """The profile file's content (empty when there is none)."""
    _check_home(path.parent)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise InvalidSetting(
            f"cannot read the profile file {path} ({exc.strerror}); make it a file you may "
            "read, or delete it"
        ) from None


def _check_home(home: Path) -> None:
    """Refuse a home that is not a directory (a file, or a path through a file)."""
    try:
        blocked = any(p.exists() and not p.is_dir() for p in (home, *home.parents))
        problem = "is not a directory" if blocked else ""
    except OSError as exc:  # a name too long, a loop of links
        problem = f"cannot be used ({exc.strerror})"
    if problem:
        raise InvalidSetting(
            f"the Dockyard home {home} {problem}: set DOCKYARD_HOME to a directory "
            "(Dockyard keeps its profile and database there), or unset it to use ~/.dockyard"
        )


def save_profile(values: dict[str, Any], home: Path | None = None) -> Path:
    """Write ``values`` (setting name → value) as the profile file and return its path.

    Raises:
        InvalidSetting: the home is not a directory.
        DockyardError: the file cannot be written.
    """
    unknown = sorted(set(values) - set(_fields()))
    if unknown:
        raise KeyError(", ".join(unknown))
    path = profile_path(home)
    _check_home(path.parent)
    lines = [f"{k} = {_toml_value(v)}" for k, v in sorted(values.items())]
    # written aside, then moved over the profile: a write cut short never leaves half a file
    partial = path.with_name(f".{PROFILE_FILE}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        raise DockyardError(
            f"cannot write the profile file {path} ({exc.strerror}); check that you may write "
            f"to {path.parent}, or set DOCKYARD_HOME to a directory you may write to"
        ) from None
    return path


# TOML's escapes in a basic string; any other control character is written as \uXXXX
_TOML_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
_TOML_CONTROL = re.compile('[\\\\"\x00-\x1f\x7f]')


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    escaped = _TOML_CONTROL.sub(
        lambda m: _TOML_ESCAPES.get(m.group(), f"\\u{ord(m.group()):04x}"), str(value)
    )
    return f'"{escaped}"'


def raw_settings(home: Path, profile: dict[str, Any] | None = None) -> list[tuple[str, Any, str]]:
    """Every setting given in the profile file, then every one given in the environment:
    its name, its value as written, and where (the profile's path, or :data:`ENV`). A later
    entry wins over an earlier one of the same name.

    Args:
        profile: the profile's settings, when already read (default: read them from ``home``).

    Raises:
        InvalidSetting: the profile file cannot be read (see :func:`read_profile`).
    """
    found = read_profile(home) if profile is None else profile
    where = str(profile_path(home))
    given = [(name, raw, where) for name, raw in found.items() if name in _fields()]
    for name in _fields():
        env = os.environ.get(f"DOCKYARD_{name.upper()}")
        if env is not None:
            given.append((name, env, ENV))
    return [entry for entry in given if entry[0] != "home"]


def load(**overrides: Any) -> Settings:
    """Read the settings: overrides > environment > profile file > defaults."""
    home = Path(overrides["home"]) if "home" in overrides else default_home()
    values: dict[str, Any] = {"home": home}
    for name, raw, source in raw_settings(home):
        values[name] = parse(name, raw, source)
    values.update({k: parse(k, v) if isinstance(v, str) else v for k, v in overrides.items()})
    return Settings(**values)
