"""API keys (admin only, see ``dockyard.server.scopes``): create, list, revoke."""

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard.schemas.api_keys import ApiKey, ApiKeyCreate, ApiKeyCreated
from dockyard.server.access import Keys
from dockyard.server.api.deps import DB, PARAMETERS, PARAMETERS_REFUSED, Config
from dockyard.server.models import api_keys
from dockyard.server.openapi import answers

router = APIRouter(
    prefix="/api-keys", tags=["api keys"], dependencies=[PARAMETERS], responses=PARAMETERS_REFUSED
)


def _keys(request: Request) -> Keys:
    keys: Keys = request.app.state.api_keys
    return keys


@router.post("", status_code=201, responses=answers(409))
async def create_api_key(
    body: ApiKeyCreate, db: DB, settings: Config, request: Request
) -> ApiKeyCreated:
    """Create a key; the answer holds its value, which is shown this once and stored only
    hashed. 409 when the name is taken, or when a first key would not be an admin key."""
    keys = _keys(request)
    secret = await keys.secret()

    async def work(session: AsyncSession) -> ApiKeyCreated:
        return await api_keys.create_key(
            session, body, secret, bootstrap=bool(settings.server_api_key)
        )

    created = await db.write_retrying(work)
    keys.created()
    return created


@router.get("")
async def list_api_keys(db: DB) -> list[ApiKey]:
    """Every key by name, revoked ones included; never a key's value."""
    async with db.read() as session:
        return await api_keys.list_keys(session)


@router.post("/{name}/revoke", responses=answers(404, 409))
async def revoke_api_key(name: str, db: DB, settings: Config, request: Request) -> ApiKey:
    """Revoke a key: at once on this server, within a few seconds on other replicas (their
    cache of verified keys). 409 for the last admin key when no bootstrap key is set."""

    async def work(session: AsyncSession) -> ApiKey:
        row = await api_keys.revoke_key(session, name, bootstrap=bool(settings.server_api_key))
        return api_keys.key_schema(row)

    revoked = await db.write_retrying(work)
    _keys(request).forget(revoked.id)
    return revoked
