"""``dockyard events``: follow events as they happen, or list the latest."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from dockyard.cli._common import JsonFlag, open_client

if TYPE_CHECKING:
    from dockyard.schemas.events import Event

app = typer.Typer(
    help="Events: what happened to flow runs, work pools and workers, and what you emitted.",
    no_args_is_help=True,
)

PrefixOption = Annotated[
    str | None,
    typer.Option(
        "--event",
        "-e",
        metavar="PREFIX",
        help="Only events whose name starts with PREFIX, e.g. dockyard.flow-run.",
    ),
]
ResourceOption = Annotated[
    str | None,
    typer.Option(
        "--resource-id",
        metavar="ID",
        help="Only events about this resource, e.g. dockyard.flow-run.<uuid>.",
    ),
]
# how long one request waits for the next event (the server may answer sooner)
WAIT = 30.0


@app.command("stream")
def stream(
    event: PrefixOption = None, resource_id: ResourceOption = None, json_: JsonFlag = False
) -> None:
    """Print events as they happen, until Ctrl-C (one JSON object a line with --json)."""
    with open_client() as client:
        cursor = client.read_events(limit=1).cursor
        print("Streaming events; stop with Ctrl-C.", file=sys.stderr, flush=True)
        try:
            while True:
                page = client.read_events(
                    after=cursor, event=event, resource_id=resource_id, wait=WAIT
                )
                for found in page.events:
                    _print(found, json_)
                cursor = page.cursor
        except KeyboardInterrupt:
            return


@app.command("ls")
def ls(
    event: PrefixOption = None,
    resource_id: ResourceOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
    json_: JsonFlag = False,
) -> None:
    """List the latest events, oldest first."""
    with open_client() as client:
        page = client.read_events(event=event, resource_id=resource_id, limit=limit)
    if json_:
        from dockyard.cli import _output as out

        out.print_json([e.model_dump(mode="json") for e in reversed(page.events)])
        return
    for found in reversed(page.events):
        _print(found, False)


def _print(event: Event, as_json: bool) -> None:
    from dockyard._printable import printable

    if as_json:
        print(json.dumps(event.model_dump(mode="json"), ensure_ascii=False), flush=True)
        return
    resource = event.resource
    name = resource.get("dockyard.resource.name")
    what = resource.get("dockyard.resource.id", "")
    shown = f"{name} ({what})" if name else what
    when = event.occurred.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    print(printable(f"{when}  {event.event}  {shown}"), flush=True)
