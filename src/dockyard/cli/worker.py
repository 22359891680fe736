"""``dockyard worker``: start a worker that runs the flow runs of a work pool."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dockyard.cli._common import PoolOption, build, open_client
from dockyard.exceptions import DockyardError, NotFound

if TYPE_CHECKING:
    from dockyard.client import Client
    from dockyard.schemas import WorkPool

app = typer.Typer(
    help="Run workers: they claim a work pool's runs and start each on its infrastructure.",
    no_args_is_help=True,
)


@app.command("start")
def start(
    pool: PoolOption,
    work_queues: Annotated[
        list[str] | None,
        typer.Option(
            "--work-queue",
            "-q",
            metavar="QUEUE",
            help="Claim only from this queue of the pool (repeat for more; default: all).",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-l", min=1, metavar="N", help="Most runs at once."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", "-n", metavar="NAME", help="Worker name (default: host-random)."),
    ] = None,
    worker_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            "-t",
            metavar="TYPE",
            help="Worker type; creates the pool with this type if it does not exist.",
        ),
    ] = None,
    run_once: Annotated[
        bool, typer.Option("--run-once", help="Run the runs due now, then exit.")
    ] = False,
) -> None:
    """Start a worker: claim the pool's runs as they come due and run them.

    Ctrl-C stops claiming, hands back claimed runs not yet started, and leaves started runs
    to finish on their own.
    """
    from dockyard._names import name_problem
    from dockyard.workers import worker_class

    problem = name_problem(name) if name is not None else None
    if problem:
        raise DockyardError(f"--name {name!r} {problem}")
    if worker_type is not None:
        worker_class(worker_type)  # a type with no worker here fails before a pool is made
    with open_client() as client:
        client.check_compatible()
        found = _pool(client, pool, worker_type)
        for queue in work_queues or []:
            client.read_work_queue(found.name, queue)
    cls = worker_class(found.type)
    worker = cls(
        pool=found.name, work_queues=work_queues or [], name=name, limit=limit, run_once=run_once
    )
    worker.run()


def _pool(client: Client, name: str, worker_type: str | None) -> WorkPool:
    """The pool to work on; created when missing and ``--type`` was given."""
    from dockyard import schemas
    from dockyard.cli import _output as out

    try:
        pool = client.read_work_pool(name)
    except NotFound:
        if worker_type is None:
            raise DockyardError(
                f"work pool '{name}' not found; create it with "
                f"`dockyard work-pool create {name} --type process`, or pass --type to "
                "`dockyard worker start` to create it"
            ) from None
        request = build(schemas.WorkPoolCreate, name=name, type=worker_type)
        pool = client.create_work_pool(request)
        out.say(f"Created work pool '{pool.name}' of type {pool.type}.")
    if worker_type is not None and pool.type != worker_type:
        raise DockyardError(
            f"work pool '{name}' is of type {pool.type}, not {worker_type}; start the worker "
            f"without --type, or use a pool of type {worker_type}"
        )
    return pool
