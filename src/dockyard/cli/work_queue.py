"""``dockyard work-queue``: manage the queues of a work pool."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dockyard.cli._common import JsonFlag, PoolOption, build, open_client
from dockyard.exceptions import DockyardError

if TYPE_CHECKING:
    from dockyard.schemas import WorkQueue

app = typer.Typer(
    help="Manage work queues: the priority lanes of a work pool.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Name of the work queue.", metavar="NAME")]
PriorityOption = Annotated[
    int | None, typer.Option("--priority", min=1, metavar="N", help="Priority; 1 is claimed first.")
]
LimitOption = Annotated[
    int | None,
    typer.Option("--concurrency-limit", min=0, metavar="N", help="Most runs of the queue at once."),
]


def _show(queue: WorkQueue, action: str) -> None:
    from dockyard.cli import _output as out

    out.say(
        f"{action} work queue '{queue.name}' of pool '{queue.work_pool_name}' "
        f"(priority {queue.priority})."
    )


@app.command("create")
def create(
    name: NameArg,
    pool: PoolOption,
    priority: PriorityOption = None,
    concurrency_limit: LimitOption = None,
) -> None:
    """Create a work queue in a work pool."""
    from dockyard import schemas

    request = build(
        schemas.WorkQueueCreate,
        name=name,
        priority=priority,
        concurrency_limit=concurrency_limit,
    )
    with open_client() as client:
        queue = client.create_work_queue(pool, request)
    _show(queue, "Created")


@app.command("ls")
def ls(pool: PoolOption, json_: JsonFlag = False) -> None:
    """List the queues of a work pool by priority."""
    from dockyard.cli import _output as out

    with open_client() as client:
        queues = client.list_work_queues(pool)
    if json_:
        out.print_json([queue.model_dump(mode="json") for queue in queues])
        return
    rows = [
        (
            queue.name,
            queue.priority,
            "none" if queue.concurrency_limit is None else queue.concurrency_limit,
            out.styled("PAUSED") if queue.paused else "no",
            queue.id,
        )
        for queue in queues
    ]
    out.table(["Name", "Priority", "Concurrency limit", "Paused", "ID"], rows)


@app.command("inspect")
def inspect(name: NameArg, pool: PoolOption, json_: JsonFlag = False) -> None:
    """Show a work queue."""
    from dockyard.cli import _output as out

    with open_client() as client:
        queue = client.read_work_queue(pool, name)
    if json_:
        out.print_json(queue.model_dump(mode="json"))
        return
    out.fields(
        [
            ("Name", queue.name),
            ("ID", queue.id),
            ("Work pool", queue.work_pool_name),
            ("Description", queue.description),
            ("Priority", queue.priority),
            ("Concurrency limit", queue.concurrency_limit),
            ("Paused", queue.paused),
            ("Created", queue.created),
        ]
    )


@app.command("update")
def update(
    name: NameArg,
    pool: PoolOption,
    priority: PriorityOption = None,
    concurrency_limit: LimitOption = None,
) -> None:
    """Change a work queue's priority or concurrency limit."""
    from dockyard import schemas

    values = {"priority": priority, "concurrency_limit": concurrency_limit}
    values = {key: value for key, value in values.items() if value is not None}
    if not values:
        raise DockyardError("nothing to update; pass --priority or --concurrency-limit")
    with open_client() as client:
        queue = client.update_work_queue(pool, name, build(schemas.WorkQueueUpdate, **values))
    _show(queue, "Updated")


@app.command("pause")
def pause(name: NameArg, pool: PoolOption) -> None:
    """Pause a work queue: its runs are not claimed until it is resumed."""
    with open_client() as client:
        queue = client.pause_work_queue(pool, name)
    _show(queue, "Paused")


@app.command("resume")
def resume(name: NameArg, pool: PoolOption) -> None:
    """Resume a paused work queue."""
    with open_client() as client:
        queue = client.resume_work_queue(pool, name)
    _show(queue, "Resumed")


@app.command("delete")
def delete(name: NameArg, pool: PoolOption) -> None:
    """Delete a work queue."""
    from dockyard.cli import _output as out

    with open_client() as client:
        client.delete_work_queue(pool, name)
    out.say(f"Deleted work queue '{name}' of pool '{pool}'.")
