"""``dockyard config``: view the settings and change the profile file."""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dockyard._redact import redact_url
from dockyard.cli._common import EXIT_USAGE, JsonFlag
from dockyard.exceptions import DockyardError, InvalidSetting

if TYPE_CHECKING:
    from pathlib import Path

app = typer.Typer(
    help="View the effective settings, or set them in the profile file.",
    no_args_is_help=True,
)

MASK = "********"
# The profile lives in the home directory, so the home itself is set by DOCKYARD_HOME only.
NOT_IN_PROFILE = frozenset({"home"})


def _types() -> dict[str, str]:
    """Return each setting's name with its annotation (``int``, ``str | None``, ...)."""
    from dockyard import settings

    return {f.name: str(f.type) for f in dataclasses.fields(settings.Settings)}


def _known() -> list[str]:
    return sorted(set(_types()) - NOT_IN_PROFILE)


def _shown(name: str, value: Any) -> Any:
    """Return a setting's value as shown to people: secrets masked, paths as text."""
    if value is None:
        return None
    if "api_key" in name or "encryption_key" in name:
        return MASK
    if isinstance(value, str):
        return redact_url(value)  # a database URL's password
    return value if isinstance(value, int | float) else str(value)


def _key(raw: str) -> str:
    key = raw.strip().lower().removeprefix("dockyard_")
    if key in NOT_IN_PROFILE:
        raise DockyardError(f"{key} cannot be stored in the profile; set DOCKYARD_HOME instead")
    if key not in _known():
        raise DockyardError(f"unknown setting {raw!r}; known settings: {', '.join(_known())}")
    return key


def _value(key: str, raw: str) -> Any:
    """``raw`` checked as every command will read it (a value none could use is refused
    now, not by every later command); numbers are stored as numbers."""
    from dockyard import settings

    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise DockyardError(
            f"the value of {key} is not valid text (bytes in another encoding than UTF-8); "
            "type it again"
        ) from None
    value = settings.parse(key, raw)
    if value is None or value == "":
        raise DockyardError(
            f"no value given for {key}; remove it with `dockyard config unset {key}`"
        )
    return value if isinstance(value, int | float | bool) else raw


@app.command("view")
def view(json_: JsonFlag = False) -> None:
    """Show the effective settings and where each comes from (keys masked).

    A value no command can use is shown as written, with what is wrong with it (exit 2).
    """
    from dockyard import settings
    from dockyard.cli import _output as out

    home = settings.default_home()
    values, sources, problems = _effective(home)
    if json_:
        out.print_json(values)
    else:
        out.say(f"Profile: {settings.profile_path(home)}", "dim")
        rows = [(name, value, sources[name]) for name, value in values.items()]
        out.table(["Setting", "Value", "Source"], rows)
    for problem in problems:
        out.print_error(problem)
    if problems:
        raise typer.Exit(EXIT_USAGE)  # as every other command exits on a bad setting


def _effective(home: Path) -> tuple[dict[str, Any], dict[str, str], list[InvalidSetting]]:
    """Each setting's value as shown, where it comes from, and what cannot be read.

    Unlike every other command, this reads past what is wrong: a value that does not fit
    is shown as written, and a profile file that cannot be read is left out.
    """
    from dockyard import settings

    problems: list[InvalidSetting] = []
    try:
        profile = settings.read_profile(home)
    except InvalidSetting as exc:
        problems.append(exc)
        profile = {}
    values = {name: getattr(settings.Settings(home=home), name) for name in _types()}
    sources = dict.fromkeys(values, "default")
    sources["home"] = "env DOCKYARD_HOME" if os.environ.get("DOCKYARD_HOME") else "default"
    for name, raw, where in settings.raw_settings(home, profile):
        source = f"env DOCKYARD_{name.upper()}" if where == settings.ENV else "profile"
        try:
            values[name] = settings.parse(name, raw, where)
            sources[name] = source
        except InvalidSetting as exc:
            problems.append(exc)
            values[name] = raw
            sources[name] = f"{source} (refused)"
    return {name: _shown(name, value) for name, value in values.items()}, sources, problems


@app.command("set")
def set_(
    pairs: Annotated[
        list[str], typer.Argument(help="Settings to store, as KEY=VALUE.", metavar="KEY=VALUE")
    ],
) -> None:
    """Store settings in the profile file: `dockyard config set api_url=http://HOST:4200/api`"""
    from dockyard import settings
    from dockyard.cli import _output as out

    updates: dict[str, Any] = {}
    for pair in pairs:
        raw_key, sep, raw_value = pair.partition("=")
        if not sep:
            raise DockyardError(f"expected KEY=VALUE, got {pair!r}")
        key = _key(raw_key)
        updates[key] = _value(key, raw_value.strip())
    home = settings.default_home()
    profile = _read_profile(home)
    path = settings.save_profile({**profile, **updates}, home)
    for key, value in updates.items():
        out.say(f"Set {key} = {_shown(key, value)} in {path}")
        _warn_if_overridden(key)


@app.command("unset")
def unset(
    keys: Annotated[list[str], typer.Argument(help="Settings to remove.", metavar="KEY")],
) -> None:
    """Remove settings from the profile file: they return to their defaults."""
    from dockyard import settings
    from dockyard.cli import _output as out

    names = [_key(raw) for raw in keys]
    home = settings.default_home()
    profile = _read_profile(home)
    for name in names:
        if name not in profile:
            out.say(f"{name} was not set in the profile {settings.profile_path(home)}")
    remaining = {k: v for k, v in profile.items() if k not in names}
    path = settings.save_profile(remaining, home)
    for name in names:
        if name in profile:
            out.say(f"Unset {name} in {path}")
            _warn_if_overridden(name)


def _read_profile(home: Path) -> dict[str, Any]:
    """Return the profile's settings, leaving out (with a note) names no setting has.

    A profile that is not TOML is read line by line, so that ``set`` and ``unset`` repair
    it: each line that cannot be read is named and dropped, and the file as it was is kept
    beside it.
    """
    import shutil

    from dockyard import settings
    from dockyard.cli import _output as out

    profile, problem, broken = settings.salvage_profile(home)
    if problem is not None:
        path = settings.profile_path(home)
        kept = path.with_name(f"{path.name}.broken")
        try:
            shutil.copyfile(path, kept)
        except OSError as exc:
            raise DockyardError(
                f"cannot keep a copy of the broken profile file {path} as {kept} "
                f"({exc.strerror}); fix or delete {path} by hand"
            ) from None
        out.say(f"note: {problem}; rewriting it from the lines that can be read", "yellow")
        for number, line in broken:
            out.say(f"note: dropping line {number}: {line}", "yellow")
        out.say(f"note: the file as it was is kept as {kept}", "yellow")
    for name in sorted(set(profile) - set(_known())):
        out.say(f"note: dropping {name!r} from the profile: no such setting", "yellow")
    return {k: v for k, v in profile.items() if k in _known()}


def _warn_if_overridden(name: str) -> None:
    from dockyard.cli import _output as out

    env = f"DOCKYARD_{name.upper()}"
    if env in os.environ:
        out.say(f"note: {env} is set in the environment and takes precedence", "yellow")
