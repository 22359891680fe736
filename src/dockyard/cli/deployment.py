"""``dockyard deployment``: run deployments, look at them, remove them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dockyard.cli import schedule
from dockyard.cli._common import JsonFlag, deployment_name, open_client

if TYPE_CHECKING:
    from dockyard.client import Client
    from dockyard.schemas import Deployment, FlowRun

app = typer.Typer(
    help="Manage deployments: flows registered to run on a work pool or a serve process.",
    no_args_is_help=True,
)
app.add_typer(schedule.app, name="schedule")

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
    from dockyard.cli import _waiting

    with open_client() as client:
        facts = _waiting.gather(client, deployments)
    rows = [
        (
            f"{d.flow_name}/{d.name}",
            d.id,
            d.work_pool_name or "(served)",
            out.styled(d.status),
            _waiting.waiting(d, facts) or "-",
        )
        for d in deployments
    ]
    out.table(["Name", "ID", "Work pool", "Status", "Runs waiting"], rows)


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
            ("Schedules", _schedules(d) or None),
            ("Catch-up", d.catchup),
            ("Max lateness (s)", d.max_lateness_seconds),
            ("Parameters", d.parameters),
            ("Job variables", d.job_variables),
            ("Pull steps", d.pull_steps),
            ("Created", d.created),
            ("Updated", d.updated),
        ]
    )


def _schedules(d: Deployment) -> str:
    from dockyard.cli.schedule import describe

    return "; ".join(f"{describe(s)}{'' if s.active else ' [paused]'}" for s in d.schedules)


def _set_paused(name: str, paused: bool) -> None:
    from dockyard import schemas
    from dockyard.cli import _output as out

    with open_client() as client:
        found = client.read_deployment_by_name(deployment_name(name))
        client.update_deployment(found.id, schemas.DeploymentUpdate(paused=paused))
    state = "paused: it gets no new runs and its waiting runs wait" if paused else "resumed"
    out.say(f"Deployment '{found.flow_name}/{found.name}' {state}.")


@app.command("pause")
def pause(name: NameArg) -> None:
    """Pause a deployment: no new scheduled runs, and its waiting runs are not started."""
    _set_paused(name, True)


@app.command("resume")
def resume(name: NameArg) -> None:
    """Resume a paused deployment; its scheduled runs are made at once."""
    _set_paused(name, False)


@app.command("delete")
def delete(name: NameArg) -> None:
    """Delete a deployment."""
    from dockyard.cli import _output as out

    with open_client() as client:
        found = client.read_deployment_by_name(deployment_name(name))
        client.delete_deployment(found.id)
    out.say(f"Deleted deployment '{found.flow_name}/{found.name}'.")


@app.command("run")
def run(
    name: NameArg,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="KEY=VALUE",
            help="A parameter of the run (repeatable); VALUE is read as JSON when it parses.",
        ),
    ] = None,
    params: Annotated[
        str | None,
        typer.Option("--params", metavar="JSON", help="The run's parameters as a JSON object."),
    ] = None,
    job_variable: Annotated[
        list[str] | None,
        typer.Option(
            "--job-variable",
            "-jv",
            metavar="KEY=VALUE",
            help="A job variable of the run (repeatable; env.NAME=value sets one variable).",
        ),
    ] = None,
    start_in: Annotated[
        str | None,
        typer.Option("--start-in", metavar="DURATION", help="Start later: 30s, 10m, 2h, 1d."),
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", help="Print states and logs until the run ends; fail unless it completes."
        ),
    ] = False,
) -> None:
    """Create a run of a deployment; print its name and id."""
    import uuid

    from dockyard import schemas
    from dockyard.cli._common import build
    from dockyard.cli._run_options import parse_pairs, parse_params, start_time

    values = parse_params(params, param)
    variables = parse_pairs(job_variable, "--job-variable")
    start = start_time(start_in) if start_in is not None else None
    request = build(
        schemas.DeploymentRunCreate,
        parameters=values,
        job_variables=variables,
        scheduled_start=start,
        idempotency_key=str(uuid.uuid4()),
    )
    with open_client() as client:
        found = client.read_deployment_by_name(deployment_name(name))
        created = client.create_deployment_run(found.id, request)
        _print_created(client, found, created)
        if watch:
            _watch(client, created)


def _print_created(client: Client, deployment: Deployment, run: FlowRun) -> None:
    from datetime import UTC, datetime

    from dockyard.cli import _output as out
    from dockyard.sdk.deploy.local_server import ui_url

    out.say(f"Created flow run '{run.name}' ({run.id}).")
    out.say(f"  UI: {ui_url(client.api_url)}runs/{run.id}")
    start = run.scheduled_start
    if start is not None and start > datetime.now(UTC):
        out.say(f"  Scheduled to start at {out.when(start)} ({out.ago(start)}).")
    if str(deployment.status) != "READY":
        from dockyard.cli import _waiting

        facts = _waiting.gather(client, [deployment], every=True)
        out.say(f"  It will wait: {_waiting.why(deployment, facts)}.", "yellow")


def _watch(client: Client, run: FlowRun) -> None:
    from dockyard.cli import _output as out
    from dockyard.cli._watch import watch

    try:
        final = watch(client, run.id)
    except KeyboardInterrupt:
        out.say(f"Stopped watching; flow run '{run.name}' goes on.")
        raise typer.Exit(130) from None
    out.say(f"Flow run '{final.name}' ended {final.state}.", out.STATE_STYLES.get(str(final.state)))
    if str(final.state) != "COMPLETED":
        raise typer.Exit(1)
