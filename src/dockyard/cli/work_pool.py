"""``dockyard work-pool``: create and manage work pools."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dockyard.cli._common import (
    JsonFlag,
    build,
    deployment_name,
    open_client,
    read_json_object,
)
from dockyard.exceptions import DockyardError

if TYPE_CHECKING:
    from dockyard.schemas import WorkPool

app = typer.Typer(
    help="Manage work pools: where deployments send their runs and workers claim them.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Name of the work pool.", metavar="NAME")]
TemplateOption = Annotated[
    Path | None,
    typer.Option(
        "--base-job-template",
        metavar="FILE",
        help="JSON file with the base job template (default: the worker type's).",
    ),
]
LimitOption = Annotated[
    int | None,
    typer.Option("--concurrency-limit", min=0, metavar="N", help="Most runs of the pool at once."),
]


def _show(pool: WorkPool, action: str) -> None:
    from dockyard.cli import _output as out

    out.say(f"{action} work pool '{pool.name}' (status {pool.status}).")


@app.command("create")
def create(
    name: NameArg,
    pool_type: Annotated[
        str,
        typer.Option("--type", "-t", metavar="TYPE", help="Worker type, e.g. process or docker."),
    ],
    base_job_template: TemplateOption = None,
    concurrency_limit: LimitOption = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
) -> None:
    """Create a work pool of a worker type."""
    from dockyard import schemas
    from dockyard.cli import _output as out

    template = (
        read_json_object(base_job_template, "base job template") if base_job_template else None
    )
    request = build(
        schemas.WorkPoolCreate,
        name=name,
        type=pool_type,
        base_job_template=template,
        concurrency_limit=concurrency_limit,
        paused=paused,
    )
    with open_client() as client:
        pool = client.create_work_pool(request)
    out.say(f"Created work pool '{pool.name}' of type {pool.type} (status {pool.status}).")
    out.say(f"Start a worker to run its flows: dockyard worker start --pool {pool.name}", "dim")


@app.command("ls")
def ls(json_: JsonFlag = False) -> None:
    """List work pools with their status and when a worker last polled them."""
    from dockyard.cli import _output as out

    with open_client() as client:
        pools = client.list_work_pools(limit=1000)
    if json_:
        out.print_json([pool.model_dump(mode="json") for pool in pools])
        return
    if not pools:
        out.say("No work pools yet; create one with: dockyard work-pool create NAME --type process")
        return
    rows = [
        (
            pool.name,
            pool.type,
            out.styled(pool.status),
            "none" if pool.concurrency_limit is None else pool.concurrency_limit,
            out.ago(pool.last_polled),
        )
        for pool in pools
    ]
    out.table(["Name", "Type", "Status", "Concurrency limit", "Last polled"], rows)


@app.command("inspect")
def inspect(name: NameArg, json_: JsonFlag = False) -> None:
    """Show a work pool, its base job template included."""
    from dockyard.cli import _output as out

    with open_client() as client:
        pool = client.read_work_pool(name)
    if json_:
        out.print_json(pool.model_dump(mode="json"))
        return
    out.fields(
        [
            ("Name", pool.name),
            ("ID", pool.id),
            ("Type", pool.type),
            ("Description", pool.description),
            ("Status", out.styled(pool.status)),
            ("Paused", pool.paused),
            ("Concurrency limit", pool.concurrency_limit),
            ("Last polled", out.ago(pool.last_polled)),
            ("Created", pool.created),
            ("Base job template", pool.base_job_template),
        ]
    )


@app.command("update")
def update(
    name: NameArg,
    base_job_template: TemplateOption = None,
    concurrency_limit: LimitOption = None,
    description: Annotated[
        str | None, typer.Option(metavar="TEXT", help="New description.")
    ] = None,
) -> None:
    """Change a work pool's base job template, concurrency limit or description."""
    from dockyard import schemas

    values: dict[str, object] = {}
    if base_job_template is not None:
        values["base_job_template"] = read_json_object(base_job_template, "base job template")
    if concurrency_limit is not None:
        values["concurrency_limit"] = concurrency_limit
    if description is not None:
        values["description"] = description
    if not values:
        raise DockyardError(
            "nothing to update; pass --base-job-template, --concurrency-limit or --description"
        )
    with open_client() as client:
        pool = client.update_work_pool(name, build(schemas.WorkPoolUpdate, **values))
    _show(pool, "Updated")


@app.command("set-concurrency-limit")
def set_concurrency_limit(
    name: NameArg,
    limit: Annotated[
        int, typer.Argument(min=0, metavar="N", help="Most runs of the pool at once.")
    ],
) -> None:
    """Limit how many runs of a work pool may run at once."""
    from dockyard import schemas

    request = build(schemas.WorkPoolUpdate, concurrency_limit=limit)
    with open_client() as client:
        pool = client.update_work_pool(name, request)
    _show(pool, f"Set the concurrency limit to {limit} on")


@app.command("clear-concurrency-limit")
def clear_concurrency_limit(name: NameArg) -> None:
    """Remove a work pool's concurrency limit."""
    from dockyard import schemas

    with open_client() as client:
        update = schemas.WorkPoolUpdate(clear_concurrency_limit=True)
        pool = client.update_work_pool(name, update)
    _show(pool, "Cleared the concurrency limit of")


@app.command("pause")
def pause(name: NameArg) -> None:
    """Pause a work pool: workers claim no run from it until it is resumed."""
    with open_client() as client:
        pool = client.pause_work_pool(name)
    _show(pool, "Paused")


@app.command("resume")
def resume(name: NameArg) -> None:
    """Resume a paused work pool."""
    with open_client() as client:
        pool = client.resume_work_pool(name)
    _show(pool, "Resumed")


@app.command("delete")
def delete(name: NameArg) -> None:
    """Delete a work pool and its queues."""
    from dockyard.cli import _output as out

    with open_client() as client:
        client.delete_work_pool(name)
    out.say(f"Deleted work pool '{name}'.")


@app.command("get-default-base-job-template")
def get_default_base_job_template(
    worker_type: Annotated[str, typer.Option("--type", "-t", metavar="TYPE", help="Worker type.")],
) -> None:
    """Print a worker type's default base job template as JSON (a start for your own)."""
    from dockyard.cli import _output as out

    with open_client() as client:
        found = client.read_worker_type(worker_type)
    out.print_json(found.base_job_template)


@app.command("preview")
def preview(
    name: NameArg,
    deployment: Annotated[
        str | None,
        typer.Option(
            "--deployment",
            "-d",
            metavar="FLOW/NAME",
            help="Add this deployment's job variables to the pool's defaults.",
        ),
    ] = None,
) -> None:
    """Print the job configuration a worker of the pool would get, as JSON.

    ``{{ $NAME }}`` placeholders stay: each worker fills them from its own environment.
    """
    from dockyard.cli import _output as out

    if deployment is not None:
        deployment_name(deployment)
    with open_client() as client:
        config = client.preview_job_configuration(name, deployment)
    out.print_json(config)
