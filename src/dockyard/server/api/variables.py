"""Variables: named JSON values that flows read at run time, by name."""

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import _names, schemas
from dockyard.server.api.deps import DB, PARAMETERS, PARAMETERS_REFUSED, Limit, Offset
from dockyard.server.models import variables
from dockyard.server.openapi import answers

router = APIRouter(
    prefix="/variables", tags=["variables"], dependencies=[PARAMETERS], responses=PARAMETERS_REFUSED
)

NamePrefix = Annotated[
    str | None,
    Query(max_length=_names.MAX_VARIABLE_NAME, description="Only names that start with this."),
]
TagFilter = Annotated[
    str | None,
    Query(max_length=schemas.TAG_MAX_LENGTH, description="Only variables with this tag."),
]


@router.post("", status_code=201, responses=answers(409))
async def create_variable(body: schemas.VariableCreate, db: DB) -> schemas.Variable:
    """Create a variable; 409 when one has its name (``PUT`` replaces it)."""

    async def work(session: AsyncSession) -> schemas.Variable:
        return variables.variable_schema(await variables.create_variable(session, body))

    # two first creates of one name race to insert: the loser's retry answers 409
    return await db.write_retrying(work)


@router.get("")
async def list_variables(
    db: DB,
    name_prefix: NamePrefix = None,
    tag: TagFilter = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> list[schemas.Variable]:
    """Variables ordered by name."""
    async with db.read() as session:
        rows = await variables.list_variables(
            session, name_prefix=name_prefix, tag=tag, limit=limit, offset=offset
        )
        return [variables.variable_schema(row) for row in rows]


@router.get("/name/{name}")
async def read_variable(name: str, db: DB) -> schemas.Variable:
    async with db.read() as session:
        return variables.variable_schema(await variables.read_variable(session, name))


@router.put("/name/{name}")
async def set_variable(name: str, body: schemas.VariableSet, db: DB) -> schemas.Variable:
    """Create the variable, or replace its value and tags."""

    async def work(session: AsyncSession) -> schemas.Variable:
        return variables.variable_schema(await variables.set_variable(session, name, body))

    return await db.write_retrying(work)


@router.patch("/name/{name}")
async def update_variable(name: str, body: schemas.VariableUpdate, db: DB) -> schemas.Variable:
    """Change the value, the tags, or both: only the fields sent."""

    async def work(session: AsyncSession) -> schemas.Variable:
        return variables.variable_schema(await variables.update_variable(session, name, body))

    return await db.write_retrying(work)


@router.delete("/name/{name}", status_code=204)
async def delete_variable(name: str, db: DB) -> Response:
    await db.write_retrying(lambda session: variables.delete_variable(session, name))
    return Response(status_code=204)
