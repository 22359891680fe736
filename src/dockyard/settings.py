"""Configuration in one place.

Every setting has an environment variable ``DOCKYARD_<NAME>`` and may also be stored in the
profile file ``$DOCKYARD_HOME/profile.toml`` (``dockyard config set KEY=VALUE``). The
environment wins over the profile, the profile over the defaults. Settings are read once with
:func:`load` and passed down; nothing deep in the code reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PROFILE_FILE", "Settings", "default_home", "load", "profile_path", "save_profile"]

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
    # docker
    base_image: str = ""

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'dockyard.db'}"


def _fields() -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, raw: Any) -> Any:
    kind = _fields()[name].type
    if raw is None or raw == "":
        return None if "None" in str(kind) else raw
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "Path":
        return Path(str(raw)).expanduser()
    return str(raw)


def profile_path(home: Path | None = None) -> Path:
    return (home or default_home()) / PROFILE_FILE


def read_profile(home: Path | None = None) -> dict[str, Any]:
    path = profile_path(home)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}


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
            values[name] = _coerce(name, raw)
    for name in _fields():
        env = os.environ.get(f"DOCKYARD_{name.upper()}")
        if env is not None and name != "home":
            values[name] = _coerce(name, env)
    values.update({k: _coerce(k, v) if isinstance(v, str) else v for k, v in overrides.items()})
    return Settings(**values)
