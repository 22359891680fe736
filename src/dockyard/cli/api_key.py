"""`dockyard api-key` commands: create, list and revoke API keys (an admin key's work)."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from dockyard.cli._common import JsonFlag, build, open_client

app = typer.Typer(
    help="Manage API keys: each has a scope (admin, user, worker, runner), is shown once, "
    "stored hashed, and can be revoked.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Name of the key.", metavar="NAME")]


class Scope(enum.StrEnum):
    # the CLI's copy of the scope names, so `dockyard --help` needs no pydantic
    ADMIN = "admin"
    USER = "user"
    WORKER = "worker"
    RUNNER = "runner"


@app.command("create")
def create(
    name: NameArg,
    scope: Annotated[
        Scope,
        typer.Option(
            "--scope",
            help="What the key may do: admin (everything), user (read, start and cancel "
            "runs), worker (claim and report on its runs), runner (a flow run's engine).",
        ),
    ],
    json_: JsonFlag = False,
) -> None:
    """Create a key and print its value, this once: the server keeps only its hash."""
    from dockyard.cli import _output as out
    from dockyard.schemas.api_keys import ApiKeyCreate

    request = build(ApiKeyCreate, name=name, scope=scope.value)
    with open_client() as client:
        created = client.create_api_key(request)
    if json_:
        out.print_json(created.model_dump(mode="json"))
        return
    out.say(f"Created {created.scope.value} key '{created.name}'. Its value, shown only now:")
    out.say(created.key, style="bold")
    out.say("Give it to its user as DOCKYARD_API_KEY; the server cannot show it again.")


@app.command("ls")
def ls(json_: JsonFlag = False) -> None:
    """List keys: name, scope, created, last used, revoked (never a key's value)."""
    from dockyard.cli import _output as out

    with open_client() as client:
        keys = client.list_api_keys()
    if json_:
        out.print_json([key.model_dump(mode="json") for key in keys])
        return
    if not keys:
        out.say("No API keys yet; create one with: dockyard api-key create NAME --scope admin")
        return
    rows = [
        (
            key.name,
            key.scope.value,
            out.when(key.created),
            out.ago(key.last_used) if key.last_used else "never",
            out.when(key.revoked) if key.revoked else "-",
        )
        for key in keys
    ]
    out.table(["Name", "Scope", "Created", "Last used", "Revoked"], rows)


@app.command("revoke")
def revoke(name: NameArg) -> None:
    """Revoke a key: refused at once by this server, within seconds by other replicas."""
    from dockyard.cli import _output as out

    with open_client() as client:
        key = client.revoke_api_key(name)
    out.say(f"Revoked API key '{key.name}'")
