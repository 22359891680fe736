"""What every route needs: the database and the settings, from the app's state.

The dependencies are coroutines: FastAPI runs a plain function in its thread pool, a hop
that costs more than the whole lookup.
"""

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError

from dockyard import schemas
from dockyard.server.db import Database
from dockyard.server.openapi import answers
from dockyard.settings import Settings


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DB = Annotated[Database, Depends(get_db)]
Config = Annotated[Settings, Depends(get_settings)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[schemas.NonNegativeInt64, Query(strict=False)]


async def check_parameters(request: Request) -> None:
    """Refuse path and query parameters that break the text rule of :mod:`dockyard.schemas`.

    PostgreSQL cannot even compare text holding NUL: a lookup by such a name would fail
    rather than find nothing. Every router takes this as a dependency (:data:`PARAMETERS`).
    """
    found = [("path", request.path_params.items()), ("query", request.query_params.multi_items())]
    for where, items in found:
        for name, value in items:
            if isinstance(value, str) and (problem := schemas.text_problem(value)):
                raise RequestValidationError(
                    [{"type": "value_error", "loc": (where, name), "msg": problem, "input": value}]
                )


PARAMETERS = Depends(check_parameters)
# what every route of a router that takes PARAMETERS may answer, for the OpenAPI schema
PARAMETERS_REFUSED = answers(422)
