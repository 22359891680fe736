"""Variables: named JSON values, looked up by name."""

from __future__ import annotations

import json

from sqlalchemy import Boolean, ColumnElement, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard._names import variable_name_problem
from dockyard.server.errors import Conflict, Invalid, NotFound
from dockyard.server.tables import VariableRow, utcnow


def variable_schema(row: VariableRow) -> schemas.Variable:
    return schemas.Variable(
        id=row.id,
        name=row.name,
        value=row.value,
        tags=row.tags,
        created=row.created,
        updated=row.updated,
    )


def _unknown(name: str) -> NotFound:
    # a name that could never be created gets no advice to create it
    problem = variable_name_problem(name)
    return NotFound(
        f"variable '{name}' not found",
        hint=f"{name!r} {problem}"
        if problem
        else f"create it with `dockyard variable set {name} VALUE`",
    )


async def find_variable(session: AsyncSession, name: str) -> VariableRow | None:
    return await session.scalar(select(VariableRow).where(VariableRow.name == name))


async def read_variable(session: AsyncSession, name: str) -> VariableRow:
    row = await find_variable(session, name)
    if row is None:
        raise _unknown(name)
    return row


async def create_variable(session: AsyncSession, body: schemas.VariableCreate) -> VariableRow:
    """Add a variable. Two creates of one name racing both find none; the database's unique
    name fails the second, whose retry (``Database.write_retrying``) then answers 409."""
    if await find_variable(session, body.name) is not None:
        raise Conflict(
            f"a variable named '{body.name}' already exists",
            field="name",
            hint=f"replace it with `dockyard variable set {body.name} VALUE --overwrite`",
        )
    row = _new(body.name, body.value, body.tags)
    session.add(row)
    await session.flush()
    return row


def _new(name: str, value: object, tags: list[str]) -> VariableRow:
    now = utcnow()
    return VariableRow(name=name, value=value, tags=list(tags), created=now, updated=now)


async def set_variable(session: AsyncSession, name: str, body: schemas.VariableSet) -> VariableRow:
    """Create the variable ``name``, or replace its value and tags."""
    problem = variable_name_problem(name)
    if problem:
        raise Invalid(f"{name!r} {problem}", field="name")
    row = await find_variable(session, name)
    if row is None:
        row = _new(name, body.value, body.tags)
        session.add(row)
    else:
        row.value, row.tags, row.updated = body.value, list(body.tags), utcnow()
    await session.flush()
    return row


async def update_variable(
    session: AsyncSession, name: str, body: schemas.VariableUpdate
) -> VariableRow:
    """Set the fields sent in ``body`` (a value sent as null is set to null)."""
    row = await read_variable(session, name)
    if "value" in body.model_fields_set:
        row.value = body.value
    if body.tags is not None:
        row.tags = list(body.tags)
    row.updated = utcnow()
    await session.flush()
    return row


async def delete_variable(session: AsyncSession, name: str) -> None:
    await session.delete(await read_variable(session, name))


async def list_variables(
    session: AsyncSession,
    *,
    name_prefix: str | None = None,
    tag: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[VariableRow]:
    """Variables by name; ``name_prefix`` keeps those whose name starts with it, ``tag``
    those that carry it."""
    query = select(VariableRow).order_by(VariableRow.name).limit(limit).offset(offset)
    if name_prefix:
        query = query.where(VariableRow.name.startswith(name_prefix, autoescape=True))
    if tag is not None:
        query = query.where(_has_tag(session.get_bind().dialect.name, tag))
    return list(await session.scalars(query))


def _has_tag(dialect: str, tag: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        contained = cast(literal(json.dumps([tag])), JSONB)
        return VariableRow.tags.op("@>", return_type=Boolean)(contained)
    each = func.json_each(VariableRow.tags).table_valued("value")
    return select(literal(1)).select_from(each).where(each.c.value == tag).exists()
