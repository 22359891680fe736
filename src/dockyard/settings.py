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

from dockyard.exceptions import InvalidSetting

__all__ = [
    "PROFILE_FILE",
    "InvalidSetting",
    "Settings",
    "default_home",
    "load",
    "parse",
    "profile_path",
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
    server_allowed_hosts: str = ""  # extra Host header values, comma separated
    database_url: str = ""  # empty: SQLite in home
    # dispatch
    heartbeat_seconds: float = 5.0
    lease_seconds: float = 30.0
    long_poll_seconds: float = 30.0
    worker_offline_seconds: float = 15.0
    late_threshold_seconds: float = 15.0
    # scheduler
    scheduler_max_runs: int = 100
    scheduler_horizon_hours: float = 24.0 * 7
    # the shortest gap a schedule may leave between two runs: the API refuses a schedule
    # whose times come closer (422) and the scheduler skips, marked with the error, one
    # stored before. 10 s is the scheduler's own pass; anything finer is a polling loop.
    scheduler_min_interval_seconds: float = 10.0
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
_HIDE_PASSWORD = re.compile(r"(://[^/:@]*:)[^/@]*@")


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
    return str(raw)


def _positive(name: str, raw: Any) -> float:
    unit = name.rsplit("_", 1)[-1] if name.endswith(("_seconds", "_hours")) else ""
    value = math.nan
    if isinstance(raw, str | int | float) and not isinstance(raw, bool):
        with contextlib.suppress(ValueError):  # refused below, with what would fit
            value = float(raw)
    if not (math.isfinite(value) and value > 0):
        expected = f"a positive number of {unit}" if unit else "a positive number"
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
    schemes, example = _URLS[name]
    scheme, sep, rest = text.partition("://")
    if not (sep and scheme.lower() in schemes and rest):
        listed = " or ".join(f"{s}://" for s in schemes)
        raise _Refused(f"a URL starting with {listed}", example)
    return text


def _origin(name: str, raw: Any, source: str) -> str:
    """The value as the user wrote it, where they wrote it (a URL's password hidden)."""
    shown = _HIDE_PASSWORD.sub(r"\1***@", raw) if isinstance(raw, str) else raw
    if source == ENV:
        return f"DOCKYARD_{name.upper()}={shown!r}"
    if source:
        return f"{name} = {shown!r} in {source}"
    return f"{name}={shown!r}"


def profile_path(home: Path | None = None) -> Path:
    return (home or default_home()) / PROFILE_FILE


def read_profile(home: Path | None = None) -> dict[str, Any]:
    path = profile_path(home)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise InvalidSetting(
            f"the profile file {path} is not valid TOML ({exc}); fix it, or delete it and "
            "store settings again with `dockyard config set KEY=VALUE`"
        ) from None


def save_profile(values: dict[str, Any], home: Path | None = None) -> Path:
    """Write ``values`` (setting name → value) as the profile file and return its path."""
    unknown = sorted(set(values) - set(_fields()))
    if unknown:
        raise KeyError(", ".join(unknown))
    path = profile_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{k} = {_toml_value(v)}" for k, v in sorted(values.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def load(**overrides: Any) -> Settings:
    """Read the settings: overrides > environment > profile file > defaults."""
    home = Path(overrides["home"]) if "home" in overrides else default_home()
    values: dict[str, Any] = {"home": home}
    for name, raw in read_profile(home).items():
        if name in _fields() and name != "home":
            values[name] = parse(name, raw, str(profile_path(home)))
    for name in _fields():
        env = os.environ.get(f"DOCKYARD_{name.upper()}")
        if env is not None and name != "home":
            values[name] = parse(name, env, ENV)
    values.update({k: parse(k, v) if isinstance(v, str) else v for k, v in overrides.items()})
    return Settings(**values)
