"""Secrets: named values the server stores encrypted, for flows to read by name.

Only ``GET /secrets/name/{name}/value`` answers a value in clear; every other answer, and
every error, leaves it out. Like every route, it requires the API key when the server has
one (``DOCKYARD_SERVER_API_KEY``).
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.server.api.deps import DB, PARAMETERS, PARAMETERS_REFUSED, Limit, Offset
from dockyard.server.encryption import Keyring
from dockyard.server.models import secrets
from dockyard.server.openapi import answers

router = APIRouter(
    prefix="/secrets", tags=["secrets"], dependencies=[PARAMETERS], responses=PARAMETERS_REFUSED
)


async def get_keyring(request: Request) -> Keyring:
    """The server's keyring, its key loaded."""
    keyring: Keyring = request.app.state.keyring
    await keyring.acipher()
    return keyring


Keys = Annotated[Keyring, Depends(get_keyring)]


@router.post("", status_code=201, responses=answers(409))
async def create_secret(body: schemas.SecretCreate, db: DB, keys: Keys) -> schemas.Secret:
    """Create a secret; 409 when one has its name (``PUT`` replaces it). The answer leaves
    the value out."""

    async def work(session: AsyncSession) -> schemas.Secret:
        return secrets.secret_schema(await secrets.create_secret(session, keys.cipher(), body))

    return await db.write_retrying(work)


@router.get("")
async def list_secrets(db: DB, limit: Limit = 200, offset: Offset = 0) -> list[schemas.Secret]:
    """Secrets ordered by name: names and times, never values."""
    async with db.read() as session:
        rows = await secrets.list_secrets(session, limit=limit, offset=offset)
        return [secrets.secret_schema(row) for row in rows]


@router.get("/name/{name}")
async def read_secret(name: str, db: DB) -> schemas.Secret:
    """A secret's name and times, without its value."""
    async with db.read() as session:
        return secrets.secret_schema(await secrets.read_secret(session, name))


@router.get("/name/{name}/value", responses=answers(409))
async def read_secret_value(name: str, db: DB, keys: Keys) -> schemas.SecretWithValue:
    """The secret with its value in clear: the one route that answers it. 409 when the
    server's encryption key is not the one the value was stored under."""
    async with db.read() as session:
        row = await secrets.read_secret(session, name)
    return secrets.reveal(keys.cipher(), row)


@router.put("/name/{name}")
async def set_secret(name: str, body: schemas.SecretSet, db: DB, keys: Keys) -> schemas.Secret:
    """Create the secret, or replace its value."""

    async def work(session: AsyncSession) -> schemas.Secret:
        row = await secrets.set_secret(session, keys.cipher(), name, body)
        return secrets.secret_schema(row)

    return await db.write_retrying(work)


@router.delete("/name/{name}", status_code=204)
async def delete_secret(name: str, db: DB) -> Response:
    await db.write_retrying(lambda session: secrets.delete_secret(session, name))
    return Response(status_code=204)
