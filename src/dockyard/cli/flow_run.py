"""``dockyard flow-run``: list flow runs, inspect one, read its logs, cancel or resume one."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Annotated

import typer

from dockyard._states import FINAL_STATES, STATE_NAMES
from dockyard.cli._common import JsonFlag, open_client, parse_id, parse_json
from dockyard.exceptions import DockyardError

if TYPE_CHECKING:
    from dockyard.client import Client
    from dockyard.schemas import FlowRun, State

app = typer.Typer(
    help="Look at flow runs and their logs; cancel them, resume paused ones.", no_args_is_help=True
)

IdArg = Annotated[str, typer.Argument(help="ID of the flow run.", metavar="ID")]

# listing runs checks --state before importing pydantic
STATES = list(STATE_NAMES)
TRACEBACK = "Traceback (most recent call last)"
FOLLOW_SECONDS = 0.5


def _states(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    wanted = [value.strip().upper() for value in values]
    unknown = [value for value in wanted if value not in STATES]
    if unknown:
        raise DockyardError(f"unknown state {unknown[0]!r}; use one of: {', '.join(STATES)}")
    return wanted


@app.command("ls")
def ls(
    flow: Annotated[
        str | None, typer.Option("--flow", metavar="NAME", help="Only runs of this flow.")
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(
            "--deployment", metavar="NAME", help="Only runs of this deployment (NAME or FLOW/NAME)."
        ),
    ] = None,
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state", metavar="STATE", help="Only runs in this state (repeatable, any case)."
        ),
    ] = None,
    late: Annotated[
        bool, typer.Option("--late", help="Only late runs (scheduled, past their start).")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, metavar="N", help="Most runs.")
    ] = 20,
    json_: JsonFlag = False,
) -> None:
    """List flow runs, newest first."""
    from dockyard.cli import _output as out

    if deployment and "/" in deployment:
        flow, _, deployment = deployment.partition("/")
    with open_client() as client:
        runs = client.list_flow_runs(
            flow_name=flow,
            deployment_name=deployment,
            state=_states(state),
            late=True if late else None,
            limit=limit,
        )
    if json_:
        out.print_json([run.model_dump(mode="json") for run in runs])
        return
    if not runs:
        out.say("No flow runs found.")
        return
    rows = [
        (
            run.flow_name,
            run.deployment_name,
            run.name,
            run.id,
            out.styled("LATE" if run.late else run.state),
            run.scheduled_start,
            run.start_time,
            run.end_time,
        )
        for run in runs
    ]
    columns = ["Flow", "Deployment", "Name", "ID", "State", "Scheduled", "Started", "Ended"]
    out.table(columns, rows)


@app.command("inspect")
def inspect(id: IdArg, json_: JsonFlag = False) -> None:
    """Show a flow run with its state history (and its traceback if it failed)."""
    from dockyard.cli import _output as out

    run_id = parse_id(id, "flow run")
    with open_client() as client:
        run = client.read_flow_run(run_id)
        states = client.read_flow_run_states(run_id)
    if json_:
        data = run.model_dump(mode="json")
        data["states"] = [state.model_dump(mode="json") for state in states]
        out.print_json(data)
        return
    _print_run(run)
    out.say("")
    out.say("State history", "bold")
    rows = [(s.timestamp, out.styled(s.type), _first_line(s.message)) for s in states]
    out.table(["Time", "State", "Message"], rows)
    traceback = _traceback(run, states)
    if traceback:
        out.say("")
        out.say(traceback, "red")


def _print_run(run: FlowRun) -> None:
    from dockyard.cli import _output as out

    deployment = f"{run.flow_name}/{run.deployment_name}" if run.deployment_name else None
    out.fields(
        [
            ("Name", run.name),
            ("ID", run.id),
            ("Flow", run.flow_name),
            ("Deployment", deployment),
            ("State", out.styled(run.state)),
            ("Message", _first_line(run.state_message)),
            ("Attempt", run.attempt),
            ("Work pool", run.work_pool_name),
            ("Work queue", run.work_queue_name),
            ("Worker", run.worker_name),
            ("Infrastructure", run.infrastructure_id),
            ("Parent run", run.parent_flow_run_id),
            ("Tags", ", ".join(run.tags) or None),
            ("Parameters", run.parameters),
            ("Job variables", run.job_variables),
            ("Scheduled", run.scheduled_start),
            ("Started", run.start_time),
            ("Ended", run.end_time),
            ("Created", run.created),
        ]
    )


def _first_line(message: str | None) -> str | None:
    return message.strip().splitlines()[0] if message and message.strip() else None


def _traceback(run: FlowRun, states: list[State]) -> str | None:
    messages = [run.state_message, *(state.message for state in reversed(states))]
    return next((m.strip() for m in messages if m and TRACEBACK in m), None)


@app.command("logs")
def logs(
    id: IdArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the run is final.")
    ] = False,
) -> None:
    """Print a flow run's logs: time, level, message."""
    run_id = parse_id(id, "flow run")
    with open_client() as client:
        run = client.read_flow_run(run_id)
        after = _print_logs(client, run_id, None)
        try:
            while follow and run.state not in FINAL_STATES:
                time.sleep(FOLLOW_SECONDS)
                # Read the state before the logs: lines written before the run became final
                # are then printed before we stop.
                run = client.read_flow_run(run_id)
                after = _print_logs(client, run_id, after)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


def _print_logs(client: Client, run_id: uuid.UUID, after: int | None) -> int | None:
    """Print every log after ``after`` (a log id) and return the last id printed."""
    from dockyard.cli._watch import print_log

    page = 1000
    while True:
        batch = client.read_logs(flow_run_id=run_id, after_id=after, limit=page)
        for log in batch:
            print_log(log)
            after = log.id
        if len(batch) < page:
            return after


@app.command("cancel")
def cancel(id: IdArg) -> None:
    """Cancel a flow run: a scheduled one at once, a started one by its worker.

    A SCHEDULED run becomes CANCELLED; a PENDING or RUNNING one becomes CANCELLING, and the
    worker (or serve process) running it stops it, which makes it CANCELLED.
    """
    from dockyard.cli import _output as out

    run_id = parse_id(id, "flow run")
    with open_client() as client:
        run = client.cancel_flow_run(run_id)
    state = str(run.state)
    if state == "CANCELLING":
        out.say(
            f"Flow run '{run.name}' ({run.id}) is CANCELLING: the process running it is being "
            "stopped, then it is CANCELLED."
        )
    else:
        out.say(f"Flow run '{run.name}' ({run.id}) is {state}.")


@app.command("resume")
def resume(
    id: IdArg,
    input_: Annotated[
        str | None,
        typer.Option(
            "--input",
            metavar="JSON",
            help="The input its pause waits for, a JSON object: '{\"approved\": true}' "
            "(for a simple type: '{\"value\": 3}').",
        ),
    ] = None,
) -> None:
    """Resume a PAUSED flow run, with the input its pause waits for.

    A paused run goes on in its process (RUNNING); a suspended one is SCHEDULED and a
    worker runs it again from the top. Input that does not fit the pause's input model is
    refused, naming the field, and the run stays PAUSED.
    """
    from dockyard.cli import _output as out

    run_id = parse_id(id, "flow run")
    run_input = parse_json(input_, "--input") if input_ is not None else None
    if run_input is not None and not isinstance(run_input, dict):
        raise DockyardError(
            "--input must be a JSON object, e.g. '{\"value\": 3}' or '{\"approved\": true}'"
        )
    with open_client() as client:
        run = client.resume_flow_run(run_id, run_input)
    if str(run.state) == "SCHEDULED":
        out.say(
            f"Flow run '{run.name}' ({run.id}) resumed: it is SCHEDULED, and a worker runs it "
            "again from the top."
        )
    else:
        out.say(f"Flow run '{run.name}' ({run.id}) resumed: it is {run.state}.")
