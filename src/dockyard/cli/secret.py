"""``dockyard secret``: set, list and delete secrets (named values the server stores
encrypted). No command prints a value: flows read them with ``Secret.load(NAME).get()``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dockyard.cli._common import JsonFlag, M, open_client
from dockyard.exceptions import Conflict, DockyardError

if TYPE_CHECKING:
    from dockyard.schemas import Secret

app = typer.Typer(
    help="Manage secrets: values stored encrypted that flows read with Secret.load(NAME).",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Name of the secret.", metavar="NAME")]
PAGE = 1000


@app.command("set")
def set_(
    name: NameArg,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the secret's value if it exists.")
    ] = False,
    json_value: Annotated[
        bool,
        typer.Option("--json", help="Read the value as a JSON object or array, not as text."),
    ] = False,
) -> None:
    """Create a secret, or replace it with --overwrite. The value is typed at a hidden
    prompt, or read from standard input (`dockyard secret set NAME < file`); never from an
    argument, which other users can see in the process list."""
    from dockyard import schemas
    from dockyard.cli import _output as out

    request = _request(schemas.SecretCreate, name=name, value=_read_value(name, json_value))
    with open_client() as client:
        if overwrite:
            secret = client.set_secret(name, schemas.SecretSet(value=request.value))
        else:
            try:
                secret = client.create_secret(request)
            except Conflict:
                raise DockyardError(
                    f"secret '{name}' already exists; pass --overwrite to replace it"
                ) from None
    out.say(f"Set secret '{secret.name}'.")


@app.command("ls")
def ls(json_: JsonFlag = False) -> None:
    """List secrets by name, with their times (never their values)."""
    from dockyard.cli import _output as out

    found: list[Secret] = []
    with open_client() as client:
        while True:
            page = client.list_secrets(limit=PAGE, offset=len(found))
            found.extend(page)
            if len(page) < PAGE:
                break
    if json_:
        out.print_json([secret.model_dump(mode="json") for secret in found])
        return
    if not found:
        out.say("No secrets yet; create one with: dockyard secret set NAME")
        return
    rows = [(s.name, out.ago(s.created), out.ago(s.updated)) for s in found]
    out.table(["Name", "Created", "Updated"], rows)


@app.command("delete")
def delete(name: NameArg) -> None:
    """Delete a secret."""
    from dockyard.cli import _output as out

    with open_client() as client:
        client.delete_secret(name)
    out.say(f"Deleted secret '{name}'.")


def _read_value(name: str, json_value: bool) -> Any:
    if sys.stdin.isatty():
        text = typer.prompt(f"Value of secret '{name}'", hide_input=True, confirmation_prompt=True)
    else:
        text = sys.stdin.read()
        # the newline that ends a file or an `echo` is not part of the value
        text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise DockyardError(
            "the secret's value is empty: type it at the prompt, or pipe it on standard input"
        )
    if not json_value:
        return text
    import json

    try:
        return json.loads(text)
    except ValueError:
        # the parser's message quotes the text around the error: not shown
        raise DockyardError("the value is not JSON; send a JSON object or array") from None


def _request(model: type[M], **values: Any) -> M:
    """``model(**values)``; a refusal names the field but never quotes the value."""
    from pydantic import ValidationError

    try:
        return model(**values)
    except ValidationError as exc:
        problems = [
            f"invalid {'.'.join(map(str, e['loc'])) or 'value'}: "
            + str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
        ]
        raise DockyardError("; ".join(problems)) from None
