"""The ``dockyard`` command's entry point."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dockyard.cli import (
    api_key,
    artifact,
    automation,
    config,
    deployment,
    events,
    flow_run,
    gcl,
    secret,
    server,
    variable,
    work_pool,
    work_queue,
    worker,
)
from dockyard.cli._common import EXIT_USAGE
from dockyard.exceptions import DockyardError, InvalidSetting

EXIT_ERROR = 1

app = typer.Typer(
    name="dockyard",
    help="Dockyard: run Python flows on work pools, served or deployed.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(server.app, name="server")
app.add_typer(work_pool.app, name="work-pool")
app.add_typer(work_queue.app, name="work-queue")
app.add_typer(worker.app, name="worker")
app.add_typer(deployment.app, name="deployment")
app.add_typer(flow_run.app, name="flow-run")
app.add_typer(config.app, name="config")
app.add_typer(variable.app, name="variable")
app.add_typer(secret.app, name="secret")
app.add_typer(artifact.app, name="artifact")
app.add_typer(gcl.app, name="gcl")
app.add_typer(events.app, name="events")
app.add_typer(automation.app, name="automation")
app.add_typer(api_key.app, name="api-key")


def _print_version(value: bool) -> None:
    if value:
        from dockyard._version import __version__

        typer.echo(f"dockyard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Dockyard: run Python flows on work pools, served or deployed."""


def _help_defaults(group: typer.Typer) -> dict[str, Any]:
    """Return a default map giving every command's ``--help`` the default False.

    Without a default, typer coerces the unset ``--help`` of each parent group through a
    pydantic adapter, importing pydantic (~0.1 s) even to print a subcommand's help (or to
    answer a shell's completion request). The root's completion options get one too.
    """
    defaults: dict[str, Any] = {"help": False}
    for command in group.registered_commands:
        if command.name:
            defaults[command.name] = {"help": False}
    for sub in group.registered_groups:
        if sub.name and sub.typer_instance:
            defaults[sub.name] = _help_defaults(sub.typer_instance)
    return defaults


def main() -> None:
    """Run the command line; a DockyardError prints a readable message and exits 1, or 2
    (a usage error, like a bad option) when it is a setting's value that does not fit."""
    defaults = {**_help_defaults(app), "install_completion": False, "show_completion": False}
    try:
        # one name however it was started (`python -m dockyard.cli.main` too): the shell
        # completion scripts call `dockyard` and answer to _DOCKYARD_COMPLETE
        app(prog_name="dockyard", default_map=defaults)
    except DockyardError as error:
        from dockyard.cli._output import print_error

        print_error(error)
        raise SystemExit(EXIT_USAGE if isinstance(error, InvalidSetting) else EXIT_ERROR) from None


if __name__ == "__main__":
    main()
