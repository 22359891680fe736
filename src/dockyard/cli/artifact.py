"""``dockyard artifact``: list, inspect and delete artifacts (what runs publish for people)."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dockyard.cli._common import JsonFlag, open_client

if TYPE_CHECKING:
    from dockyard.client import Client
    from dockyard.schemas.artifacts import Artifact

app = typer.Typer(
    help="Inspect artifacts: what runs publish with create_markdown_artifact(...) and the like.",
    no_args_is_help=True,
)

PAGE = 1000
SHOWN_TEXT = 60  # characters of a description or of data in a table's cell


@app.command("ls")
def ls(
    all_versions: Annotated[
        bool,
        typer.Option(
            "--all-versions", help="List every artifact, each version of a key and keyless ones."
        ),
    ] = False,
    key_prefix: Annotated[
        str | None,
        typer.Option("--prefix", metavar="TEXT", help="Only keys that start with TEXT."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, metavar="N", help="At most N artifacts (default: all)."),
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """List the latest version of each key, most recently updated first."""
    from dockyard.cli import _output as out

    with open_client() as client:
        found = _all(client, all_versions, key_prefix, limit)
    if json_:
        out.print_json([artifact.model_dump(mode="json") for artifact in found])
        return
    if not found:
        out.say(
            "No artifacts yet; flows publish them with create_markdown_artifact(...) and the "
            "like (see docs/artifacts.md)"
        )
        return
    rows = [
        (
            a.key or "-",
            a.type.value,
            _brief(a.description or "", SHOWN_TEXT) or "-",
            a.flow_run_id,
            out.ago(a.updated),
            a.id,
        )
        for a in found
    ]
    out.table(["Key", "Type", "Description", "Flow run", "Updated", "ID"], rows)


def _all(
    client: Client, all_versions: bool, key_prefix: str | None, limit: int | None
) -> list[Artifact]:
    found: list[Artifact] = []
    while limit is None or len(found) < limit:
        size = PAGE if limit is None else min(PAGE, limit - len(found))
        if all_versions:
            page = client.list_artifacts(key_prefix=key_prefix, limit=size, offset=len(found))
        else:
            page = client.list_latest_artifacts(
                key_prefix=key_prefix, limit=size, offset=len(found)
            )
        found.extend(page)
        if len(page) < size:
            break
    return found


@app.command("inspect")
def inspect(
    key: Annotated[str, typer.Argument(help="The artifact's key.", metavar="KEY")],
    json_: JsonFlag = False,
) -> None:
    """Show the latest version of a key in full, then its history (newest first). With
    --json: every version, newest (the latest) first."""
    from dockyard.cli import _output as out

    with open_client() as client:
        latest = client.read_latest_artifact(key)
        versions: list[Artifact] = []
        while True:
            page = client.list_artifacts(key=key, limit=PAGE, offset=len(versions))
            versions.extend(page)
            if len(page) < PAGE:
                break
    if json_:
        out.print_json([artifact.model_dump(mode="json") for artifact in versions])
        return
    out.fields(
        [
            ("Key", latest.key),
            ("ID", latest.id),
            ("Type", latest.type.value),
            ("Description", latest.description),
            ("Flow run", latest.flow_run_id),
            ("Task run", latest.task_run_id),
            ("Created", latest.created),
            ("Updated", latest.updated),
            ("Data", _shown(latest)),
        ]
    )
    out.say("")
    out.say(f"History ({len(versions)} version{'s' if len(versions) != 1 else ''}):")
    rows = [
        (len(versions) - index, out.when(v.created), v.flow_run_id, v.id)
        for index, v in enumerate(versions)
    ]
    out.table(["Version", "Created", "Flow run", "ID"], rows)


@app.command("delete")
def delete(
    target: Annotated[
        str,
        typer.Argument(
            help="A key (every version of it is deleted) or one artifact's id.",
            metavar="KEY|ID",
        ),
    ],
) -> None:
    """Delete every version of a key, or one artifact by id."""
    from dockyard.cli import _output as out

    artifact_id = _id(target)
    with open_client() as client:
        if artifact_id is None:
            client.delete_artifact_key(target)
            out.say(f"Deleted every version of artifact '{target}'.")
        else:
            client.delete_artifact(artifact_id)
            out.say(f"Deleted artifact {artifact_id}.")


def _id(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _shown(artifact: Artifact) -> str:
    """The artifact's data as text for a terminal."""
    data: Any = artifact.data
    kind = artifact.type.value
    if kind in ("markdown", "image") and isinstance(data, str):
        return data
    if kind == "progress":
        return f"{data:g}%" if isinstance(data, int | float) else str(data)
    if kind == "link" and isinstance(data, dict):
        text, link = data.get("link_text"), data.get("link")
        return f"{text} <{link}>" if text else str(link)
    return json.dumps(data, indent=2, ensure_ascii=False)


def _brief(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
