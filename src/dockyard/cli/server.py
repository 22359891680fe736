"""``dockyard server``: run the API and UI."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Run the Dockyard server (API and UI).", no_args_is_help=True)


@app.command("start")
def start(
    host: Annotated[
        str | None,
        typer.Option(
            metavar="HOST",
            help="Address to listen on [default: the server_host setting, 127.0.0.1].",
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            metavar="PORT",
            help="Port to listen on [default: the server_port setting, 4200].",
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Allow listening on a non-loopback address without an API key.",
        ),
    ] = False,
) -> None:
    """Start the server; it runs until Ctrl-C."""
    from dockyard import settings
    from dockyard.server import run

    loaded = settings.load()
    run(
        host=host or loaded.server_host,
        port=port if port is not None else loaded.server_port,
        insecure=insecure,
        settings=loaded,
    )
