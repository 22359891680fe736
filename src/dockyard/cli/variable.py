"""``dockyard variable``: set, read, list and delete variables (named JSON values)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dockyard.cli._common import JsonFlag, build, open_client, parse_json
from dockyard.exceptions import Conflict, DockyardError

if TYPE_CHECKING:
    from dockyard.schemas import Variable

app = typer.Typer(
    help="Manage variables: named JSON values that flows read with Variable.get(NAME).",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Name of the variable.", metavar="NAME")]
PAGE = 1000
SHOWN_VALUE = 60  # characters of a value in `ls`


@app.command("set")
def set_(
    name: NameArg,
    value: Annotated[
        str,
        typer.Argument(
            metavar="VALUE",
            help="The value, read as JSON when it is valid JSON (42, true, null, "
            '\'"42"\', \'["a", "b"]\', \'{"k": 1}\'), else taken as a string.',
        ),
    ],
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace the variable (value and tags) if it exists."),
    ] = False,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", "-t", metavar="TAG", help="A tag (repeat for several)."),
    ] = None,
) -> None:
    """Create a variable, or replace it with --overwrite."""
    from dockyard import schemas
    from dockyard.cli import _output as out

    parsed = parse_json(value, "VALUE", or_text=True)
    request = build(schemas.VariableCreate, name=name, value=parsed, tags=tag or [])
    with open_client() as client:
        if overwrite:
            whole = schemas.VariableSet(value=request.value, tags=request.tags)
            variable = client.set_variable(name, whole)
        else:
            try:
                variable = client.create_variable(request)
            except Conflict:
                raise DockyardError(
                    f"variable '{name}' already exists; pass --overwrite to replace it"
                ) from None
    out.say(f"Set variable '{variable.name}' to {_brief(variable.value, SHOWN_VALUE)}")


@app.command("get")
def get(name: NameArg) -> None:
    """Print a variable's value as JSON."""
    from dockyard.cli import _output as out

    with open_client() as client:
        variable = client.read_variable_by_name(name)
    out.print_json(variable.value)


@app.command("ls")
def ls(
    json_: JsonFlag = False,
    name_prefix: Annotated[
        str | None,
        typer.Option("--prefix", metavar="TEXT", help="Only names that start with TEXT."),
    ] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", "-t", metavar="TAG", help="Only variables with TAG.")
    ] = None,
) -> None:
    """List variables by name, with their values (cut short) and tags."""
    from dockyard.cli import _output as out

    found: list[Variable] = []
    with open_client() as client:
        while True:
            page = client.list_variables(
                name_prefix=name_prefix, tag=tag, limit=PAGE, offset=len(found)
            )
            found.extend(page)
            if len(page) < PAGE:
                break
    if json_:
        out.print_json([variable.model_dump(mode="json") for variable in found])
        return
    if not found:
        out.say("No variables yet; create one with: dockyard variable set NAME VALUE")
        return
    rows = [
        (v.name, _brief(v.value, SHOWN_VALUE), ", ".join(v.tags) or "-", out.ago(v.updated))
        for v in found
    ]
    out.table(["Name", "Value", "Tags", "Updated"], rows)


@app.command("inspect")
def inspect(name: NameArg, json_: JsonFlag = False) -> None:
    """Show a variable: its value in full, tags and times."""
    from dockyard.cli import _output as out

    with open_client() as client:
        variable = client.read_variable_by_name(name)
    if json_:
        out.print_json(variable.model_dump(mode="json"))
        return
    out.fields(
        [
            ("Name", variable.name),
            ("ID", variable.id),
            ("Value", json.dumps(variable.value, indent=2, ensure_ascii=False)),
            ("Tags", ", ".join(variable.tags) or None),
            ("Created", variable.created),
            ("Updated", variable.updated),
        ]
    )


@app.command("unset")
def unset(name: NameArg) -> None:
    """Delete a variable."""
    from dockyard.cli import _output as out

    with open_client() as client:
        client.delete_variable(name)
    out.say(f"Deleted variable '{name}'.")


def _brief(value: Any, limit: int) -> str:
    """``value`` as one line of JSON, cut to ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"
