"""``dockyard gcl``: create, list, inspect, change and delete global concurrency limits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dockyard.cli._common import JsonFlag, build, open_client

if TYPE_CHECKING:
    from dockyard.schemas.concurrency import ConcurrencyLimit

app = typer.Typer(
    help="Manage global concurrency limits: slots that flows and tasks take with "
    "concurrency(NAME) and rate_limit(NAME).",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Name of the limit.", metavar="NAME")]
DecayOption = Annotated[
    float | None,
    typer.Option(
        "--slot-decay-per-second",
        metavar="X",
        help="Slots that come back per second after rate_limit() took them (0: none).",
    ),
]
PAGE = 1000


@app.command("create")
def create(
    name: NameArg,
    limit: Annotated[
        int, typer.Option("--limit", "-l", metavar="N", help="Slots in use at most at once.")
    ],
    slot_decay_per_second: DecayOption = None,
    disable: Annotated[
        bool, typer.Option("--disable", help="Create it inactive (not enforced).")
    ] = False,
) -> None:
    """Create a limit."""
    from dockyard.cli import _output as out
    from dockyard.exceptions import Conflict, DockyardError
    from dockyard.schemas.concurrency import ConcurrencyLimitCreate

    request = build(
        ConcurrencyLimitCreate,
        name=name,
        limit=limit,
        active=not disable,
        slot_decay_per_second=slot_decay_per_second or 0.0,
    )
    with open_client() as client:
        try:
            made = client.create_concurrency_limit(request)
        except Conflict:
            raise DockyardError(
                f"concurrency limit '{name}' already exists; change it with "
                f"`dockyard gcl update {name} --limit N`"
            ) from None
    state = "" if made.active else " (inactive)"
    out.say(f"Created concurrency limit '{made.name}' with {made.limit} slots{state}.")


@app.command("ls")
def ls(json_: JsonFlag = False) -> None:
    """List limits: slots in use, limit, decay and whether each is active."""
    from dockyard.cli import _output as out

    found: list[ConcurrencyLimit] = []
    with open_client() as client:
        while True:
            page = client.list_concurrency_limits(limit=PAGE, offset=len(found))
            found.extend(page)
            if len(page) < PAGE:
                break
    if json_:
        out.print_json([limit.model_dump(mode="json") for limit in found])
        return
    if not found:
        out.say("No concurrency limits yet; create one with: dockyard gcl create NAME --limit N")
        return
    rows = [
        (
            x.name,
            f"{x.active_slots}/{x.limit}",
            _decay(x.slot_decay_per_second),
            "yes" if x.active else "no",
            out.ago(x.updated),
        )
        for x in found
    ]
    out.table(["Name", "In use", "Decay", "Active", "Updated"], rows)


@app.command("inspect")
def inspect(name: NameArg, json_: JsonFlag = False) -> None:
    """Show a limit: its slots in use and the live leases that hold them."""
    from dockyard.cli import _output as out

    with open_client() as client:
        shown = client.read_concurrency_limit_by_name(name)
    if json_:
        out.print_json(shown.model_dump(mode="json"))
        return
    out.fields(
        [
            ("Name", shown.name),
            ("ID", shown.id),
            ("Active", "yes" if shown.active else "no (not enforced)"),
            ("Limit", shown.limit),
            ("In use", shown.active_slots),
            ("Slot decay", _decay(shown.slot_decay_per_second)),
            ("Created", shown.created),
            ("Updated", shown.updated),
        ]
    )
    if shown.leases:
        rows = [
            (lease.id, lease.slots, lease.holder or "-", out.when(lease.expires))
            for lease in shown.leases
        ]
        out.table(["Lease", "Slots", "Holder", "Expires"], rows, ids="Lease")
    else:
        out.say("No live leases.")


@app.command("update")
def update(
    name: NameArg,
    limit: Annotated[
        int | None, typer.Option("--limit", "-l", metavar="N", help="Slots at most at once.")
    ] = None,
    active: Annotated[
        bool | None,
        typer.Option("--enable/--disable", help="Enforce the limit, or stop enforcing it."),
    ] = None,
    slot_decay_per_second: DecayOption = None,
) -> None:
    """Change a limit: only the options given."""
    from dockyard.cli import _output as out
    from dockyard.exceptions import DockyardError
    from dockyard.schemas.concurrency import ConcurrencyLimitUpdate

    given = {
        key: value
        for key, value in (
            ("limit", limit),
            ("active", active),
            ("slot_decay_per_second", slot_decay_per_second),
        )
        if value is not None
    }
    if not given:
        raise DockyardError(
            "nothing to change; give --limit N, --enable or --disable, or --slot-decay-per-second X"
        )
    request = build(ConcurrencyLimitUpdate, **given)
    with open_client() as client:
        changed = client.update_concurrency_limit(name, request)
    state = "active" if changed.active else "inactive"
    out.say(
        f"Updated concurrency limit '{changed.name}': {changed.limit} slots, {state}, "
        f"decay {_decay(changed.slot_decay_per_second)}."
    )


@app.command("delete")
def delete(name: NameArg) -> None:
    """Delete a limit (slots held of it are dropped)."""
    from dockyard.cli import _output as out

    with open_client() as client:
        client.delete_concurrency_limit(name)
    out.say(f"Deleted concurrency limit '{name}'.")


def _decay(per_second: float) -> str:
    return f"{per_second:g}/s" if per_second else "-"
