"""The request models declare the bounds of the columns they are stored in.

Read from the models' JSON schema, which is what the OpenAPI schema shows: a string field
has its column's length (a Text column's: ``TEXT_MAX_LENGTH``), an integer field fits its
column's integer type on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import BigInteger, Integer, String, Text

from dockyard import schemas
from dockyard.schemas import INT32_MAX, INT64_MAX, TEXT_MAX_LENGTH
from dockyard.server import tables

STORED_IN: list[tuple[type[schemas.Model], type[tables.Base]]] = [
    (schemas.FlowCreate, tables.FlowRow),
    (schemas.DeploymentCreate, tables.DeploymentRow),
    (schemas.DeploymentUpdate, tables.DeploymentRow),
    (schemas.ScheduleCreate, tables.ScheduleRow),
    (schemas.FlowRunCreate, tables.FlowRunRow),
    (schemas.DeploymentRunCreate, tables.FlowRunRow),
    (schemas.FlowRunUpdate, tables.FlowRunRow),
    (schemas.StateTransition, tables.FlowRunStateRow),
    (schemas.TaskRunRecord, tables.TaskRunRow),
    (schemas.LogCreate, tables.LogRow),
    (schemas.WorkPoolCreate, tables.WorkPoolRow),
    (schemas.WorkPoolUpdate, tables.WorkPoolRow),
    (schemas.WorkQueueCreate, tables.WorkQueueRow),
    (schemas.WorkQueueUpdate, tables.WorkQueueRow),
    (schemas.WorkerHeartbeat, tables.WorkerRow),
]

PAIRS = [
    pytest.param(model, table, name, id=f"{model.__name__}.{name}")
    for model, table in STORED_IN
    for name in model.model_fields
    if name in table.__table__.columns
]


def _declared(model: type[schemas.Model], name: str) -> dict[str, Any]:
    """The field's JSON schema, with the ``null`` of an optional field left out and an
    enumeration's values in ``maxLength``."""
    whole = model.model_json_schema()
    field = whole["properties"][name]
    options = [o for o in field.get("anyOf", [field]) if o.get("type") != "null"]
    assert len(options) == 1, field
    declared = options[0]
    if "$ref" in declared:
        values = whole["$defs"][declared["$ref"].rpartition("/")[2]]["enum"]
        return {"maxLength": max(len(value) for value in values)}
    return declared


@pytest.mark.parametrize(("model", "table", "name"), PAIRS)
def test_a_field_holds_no_more_than_its_column(
    model: type[schemas.Model], table: type[tables.Base], name: str
) -> None:
    column = table.__table__.columns[name].type
    declared = _declared(model, name)
    if isinstance(column, Text):
        assert declared["maxLength"] <= TEXT_MAX_LENGTH
    elif isinstance(column, String):
        assert declared["maxLength"] <= column.length
    elif isinstance(column, Integer):
        largest = INT64_MAX if isinstance(column, BigInteger) else INT32_MAX
        assert declared.get("maximum", INT64_MAX + 1) <= largest
        assert declared.get("minimum", -INT64_MAX - 2) >= -largest - 1
