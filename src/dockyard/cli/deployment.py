"""``dockyard deployment``: look at and remove deployments."""

from __future__ import annotations

from typing import Annotated

import typer

from dockyard.cli._common import JsonFlag, deployment_name, open_client

app = typer.Typer(
    help="Manage deployments: flows registered to run on a work pool or a serve process.",
    no_args_is_help=True,
)

NameArg = Annotated[
    str, typer.Argument(help="Full name of the deployment, FLOW/NAME.", metavar="FLOW/NAME")
]


@app.command("ls")
def ls(
    flow: Annotated[
        str | None, typer.Option("--flow", metavar="NAME", help="Only this flow's.")
    ] = None,
    pool: Annotated[
        str | None, typer.Option("--pool", metavar="POOL", help="Only this work pool's.")
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """List deployments."""
    from dockyard.cli import _output as out

    with open_client() as client:
        deployments = client.list_deployments(flow_name=flow, work_pool_name=pool, limit=1000)
    if json_:
        out.print_json([d.model_dump(mode="json") for d in deployments])
        return
    if not deployments:
        out.say("No deployments yet; create one with flow.deploy(...) or flow.serve(...).")
        return
    rows = [
        (
            f"{d.flow_name}/{d.name}",
            d.id,
            d.work_pool_name or "(served)",
            out.styled(d.status),
            "yes" if d.paused else "no",
            d.updated,
        )
        for d in deployments
    ]
    out.table(["Name", "ID", "Work pool", "Status", "Paused", "Updated"], rows)


@app.command("inspect")
def inspect(name: NameArg, json_: JsonFlag = False) -> None:
    """Show a deployment."""
    from dockyard.cli import _output as out

    with open_client() as client:
        d = client.read_deployment_by_name(deployment_name(name))
    if json_:
        out.print_json(d.model_dump(mode="json"))
        return
    out.fields(
        [
            ("Name", f"{d.flow_name}/{d.name}"),
            ("ID", d.id),
            ("Flow ID", d.flow_id),
            ("Description", d.description),
            ("Version", d.version),
            ("Tags", ", ".join(d.tags) or None),
            ("Status", out.styled(d.status)),
            ("Paused", d.paused),
            ("Entrypoint", d.entrypoint),
            ("Path", d.path),
            ("Work pool", d.work_pool_name),
            ("Work queue", d.work_queue_name),
            ("Image", d.image),
            ("Concurrency limit", d.concurrency_limit),
            ("Crash retries", d.crash_retries),
            ("Parameters", d.parameters),
            ("Job variables", d.job_variables),
            ("Pull steps", d.pull_steps),
            ("Created", d.created),
            ("Updated", d.updated),
        ]
    )


@app.command("delete")
def delete(name: NameArg) -> None:
    """Delete a deployment."""
    from dockyard.cli import _output as out

    with open_client() as client:
        found = client.read_deployment_by_name(deployment_name(name))
        client.delete_deployment(found.id)
    out.say(f"Deleted deployment '{found.flow_name}/{found.name}'.")
