"""API keys: made, stored hashed, found by id, revoked.

A key reads ``dk_<id>_<secret>`` (``id``: the row's UUID in hex; ``secret``: 32 random
bytes, URL-safe base64). Only ``HMAC-SHA256(server secret, id | secret)`` is stored; the
server secret is derived from the server's encryption key (``server/encryption.py``), which
every replica shares already (it decrypts the same secrets). Losing or changing that key
invalidates every API key, as it does every stored secret.

Rules that keep a server reachable:

- Keys are required once any key row exists (revoked ones count: revoking every key does
  not open the API again). With none and no ``DOCKYARD_SERVER_API_KEY`` the API is open.
- The first key of a server without ``DOCKYARD_SERVER_API_KEY`` must be an admin key, and
  the last admin key of such a server cannot be revoked: nobody could manage keys after.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard.schemas.api_keys import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyScope
from dockyard.server.encryption import KEY_FILE, Keyring
from dockyard.server.errors import Conflict, NotFound
from dockyard.server.tables import ApiKeyRow, utcnow
from dockyard.settings import Settings

PREFIX = "dk_"


async def server_secret(keyring: Keyring, settings: Settings) -> bytes:
    """The HMAC key of API keys, derived from the server's encryption key (made, in
    ``$DOCKYARD_HOME``, if there is none yet)."""
    await keyring.acipher()  # checks the key, and writes the key file if there is none
    raw = settings.server_encryption_key or (settings.home / KEY_FILE).read_text("ascii")
    return hmac.new(raw.strip().encode(), b"dockyard api keys", hashlib.sha256).digest()


def digest(secret_key: bytes, key_id: uuid.UUID, secret: str) -> str:
    return hmac.new(secret_key, f"{key_id.hex}|{secret}".encode(), hashlib.sha256).hexdigest()


def parse(key: str) -> tuple[uuid.UUID, str] | None:
    """``(id, secret)`` of a key of ours, or None if ``key`` does not look like one."""
    if not key.startswith(PREFIX):
        return None
    id_part, _, secret = key[len(PREFIX) :].partition("_")
    if len(id_part) != 32 or not secret:
        return None
    try:
        return uuid.UUID(hex=id_part), secret
    except ValueError:
        return None


def key_schema(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        scope=ApiKeyScope(row.scope),
        created=row.created,
        last_used=row.last_used,
        revoked=row.revoked,
    )


async def any_key(session: AsyncSession) -> bool:
    return await session.scalar(select(ApiKeyRow.id).limit(1)) is not None


async def _admins(session: AsyncSession) -> int:
    live_admins = select(func.count()).where(
        ApiKeyRow.scope == ApiKeyScope.ADMIN.value, ApiKeyRow.revoked.is_(None)
    )
    return int(await session.scalar(live_admins) or 0)


async def create_key(
    session: AsyncSession, body: ApiKeyCreate, secret_key: bytes, *, bootstrap: bool
) -> ApiKeyCreated:
    """Add a key; its value is in the answer, and nowhere else ever after."""
    if await session.scalar(select(ApiKeyRow.id).where(ApiKeyRow.name == body.name)):
        raise Conflict(
            f"an API key named '{body.name}' already exists",
            field="name",
            hint="pick another name, or revoke it first with "
            f"`dockyard api-key revoke {body.name}` (names stay taken after a revoke)",
        )
    if body.scope is not ApiKeyScope.ADMIN and not bootstrap and not await _admins(session):
        raise Conflict(
            f"cannot create a {body.scope.value} key before an admin key: once a key exists "
            "the API needs one, and nobody could manage keys",
            field="scope",
            hint="create an admin key first (`dockyard api-key create NAME --scope admin`), "
            "or set DOCKYARD_SERVER_API_KEY",
        )
    key_id, secret = uuid.uuid4(), secrets.token_urlsafe(32)
    row = ApiKeyRow(
        id=key_id,
        name=body.name,
        scope=body.scope.value,
        digest=digest(secret_key, key_id, secret),
        created=utcnow(),
    )
    session.add(row)
    await session.flush()
    return ApiKeyCreated(**key_schema(row).model_dump(), key=f"{PREFIX}{key_id.hex}_{secret}")


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    rows = await session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.name))
    return [key_schema(row) for row in rows]


async def revoke_key(session: AsyncSession, name: str, *, bootstrap: bool) -> ApiKeyRow:
    """Revoke the key ``name`` (a second revoke changes nothing)."""
    row = await session.scalar(select(ApiKeyRow).where(ApiKeyRow.name == name))
    if row is None:
        raise NotFound(f"API key '{name}' not found", hint="list them with `dockyard api-key ls`")
    if row.revoked is None:
        if row.scope == ApiKeyScope.ADMIN.value and not bootstrap and await _admins(session) < 2:
            raise Conflict(
                f"'{name}' is the last admin key: without it nobody could manage keys",
                hint="create another admin key first, or set DOCKYARD_SERVER_API_KEY",
            )
        row.revoked = utcnow()
        await session.flush()
    return row


async def find_key(session: AsyncSession, key_id: uuid.UUID) -> ApiKeyRow | None:
    return await session.get(ApiKeyRow, key_id)
