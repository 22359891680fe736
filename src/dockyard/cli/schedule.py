"""``dockyard deployment schedule``: the schedules of a deployment."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from dockyard.cli._common import JsonFlag, build, deployment_name, open_client, parse_id
from dockyard.exceptions import DockyardError

if TYPE_CHECKING:
    from rich.text import Text

    from dockyard.client import Client
    from dockyard.schemas import Schedule

app = typer.Typer(help="Manage the schedules of a deployment.", no_args_is_help=True)

DeploymentArg = Annotated[
    str, typer.Argument(help="The deployment, FLOW/NAME.", metavar="FLOW/DEPLOYMENT")
]
ScheduleArg = Annotated[str, typer.Argument(help="The schedule's id.", metavar="SCHEDULE_ID")]


def _deployment_id(client: Client, name: str) -> str:
    return str(client.read_deployment_by_name(deployment_name(name)).id)


def describe(schedule: Schedule) -> str:
    """A schedule in one phrase: ``cron '0 9 * * *' (Europe/Paris)``."""
    if schedule.cron is not None:
        what = f"cron '{schedule.cron}'"
    elif schedule.interval is not None:
        what = f"every {schedule.interval:g} s"
    else:
        what = f"rrule '{schedule.rrule}'"
    return f"{what} ({schedule.timezone})"


@app.command("ls")
def ls(deployment: DeploymentArg, json_: JsonFlag = False) -> None:
    """List a deployment's schedules; one the scheduler cannot use shows why."""
    from dockyard.cli import _output as out

    with open_client() as client:
        schedules = client.list_schedules(_deployment_id(client, deployment))
    if json_:
        out.print_json([s.model_dump(mode="json") for s in schedules])
        return
    columns = ["Schedule", "Status", "ID"]
    rows: list[list[object]] = [[describe(s), _status(s), s.id] for s in schedules]
    if any(s.error for s in schedules):
        # the scheduler skips a schedule with an error: say why, beside it
        columns.append("Error")
        for row, schedule in zip(rows, schedules, strict=True):
            row.append(schedule.error)
    out.table(columns, rows)


def _status(schedule: Schedule) -> Text:
    from rich.text import Text

    if not schedule.active:
        return Text("paused")
    return Text("error", style="red") if schedule.error else Text("active")


@app.command("create")
def create(
    deployment: DeploymentArg,
    cron: Annotated[str | None, typer.Option(help="A cron expression, e.g. '0 9 * * 1-5'.")] = None,
    interval: Annotated[
        float | None, typer.Option(help="Seconds between runs (10 or more by default).", min=0.001)
    ] = None,
    rrule: Annotated[str | None, typer.Option(help="An RRULE, e.g. 'FREQ=DAILY'.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA timezone of the times.")] = "UTC",
    anchor_date: Annotated[
        datetime | None, typer.Option(help="Start of intervals and rrules (ISO time).")
    ] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
) -> None:
    """Add a schedule (exactly one of --cron, --interval, --rrule) to a deployment."""
    from dockyard import schemas
    from dockyard.cli import _output as out

    if sum(v is not None for v in (cron, interval, rrule)) != 1:
        raise DockyardError("give exactly one of --cron, --interval or --rrule")
    if anchor_date is not None and anchor_date.tzinfo is None:
        from zoneinfo import ZoneInfo

        anchor_date = anchor_date.replace(tzinfo=ZoneInfo(timezone))
    body = build(
        schemas.ScheduleCreate,
        cron=cron,
        interval=interval,
        rrule=rrule,
        timezone=timezone,
        anchor_date=anchor_date,
        active=not paused,
    )
    with open_client() as client:
        schedule = client.create_schedule(_deployment_id(client, deployment), body)
    out.say(f"Added schedule {describe(schedule)} to {deployment}: {schedule.id}")


def _set_active(deployment: str, schedule_id: str, active: bool) -> None:
    from dockyard import schemas
    from dockyard.cli import _output as out

    sid = parse_id(schedule_id, "schedule")
    with open_client() as client:
        schedule = client.update_schedule(
            _deployment_id(client, deployment), sid, schemas.ScheduleUpdate(active=active)
        )
    out.say(f"Schedule {describe(schedule)} of {deployment} is {'active' if active else 'paused'}.")


@app.command("pause")
def pause(deployment: DeploymentArg, schedule_id: ScheduleArg) -> None:
    """Pause a schedule: it makes no runs, and its waiting runs are removed."""
    _set_active(deployment, schedule_id, False)


@app.command("resume")
def resume(deployment: DeploymentArg, schedule_id: ScheduleArg) -> None:
    """Resume a paused schedule; its runs are made at once."""
    _set_active(deployment, schedule_id, True)


@app.command("delete")
def delete(deployment: DeploymentArg, schedule_id: ScheduleArg) -> None:
    """Delete a schedule and its runs that have not started."""
    from dockyard.cli import _output as out

    sid = parse_id(schedule_id, "schedule")
    with open_client() as client:
        client.delete_schedule(_deployment_id(client, deployment), sid)
    out.say(f"Deleted schedule {sid} of {deployment}.")
