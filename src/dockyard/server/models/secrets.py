"""Secrets: named values stored encrypted under the server's key, looked up by name.

Only :func:`reveal` decrypts; every other function leaves the value out of what it returns
and of every message it raises.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard._names import variable_name_problem
from dockyard.server.errors import Conflict, Invalid, NotFound
from dockyard.server.tables import SecretRow, utcnow

if TYPE_CHECKING:
    from cryptography.fernet import Fernet as Cipher

log = logging.getLogger("dockyard.server")


def secret_schema(row: SecretRow) -> schemas.Secret:
    return schemas.Secret(id=row.id, name=row.name, created=row.created, updated=row.updated)


def _unknown(name: str) -> NotFound:
    problem = variable_name_problem(name)
    return NotFound(
        f"secret '{name}' not found",
        hint=f"{name!r} {problem}" if problem else f"create it with `dockyard secret set {name}`",
    )


def _seal(cipher: Cipher, value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return cipher.encrypt(text.encode()).decode("ascii")


async def find_secret(session: AsyncSession, name: str) -> SecretRow | None:
    return await session.scalar(select(SecretRow).where(SecretRow.name == name))


async def read_secret(session: AsyncSession, name: str) -> SecretRow:
    row = await find_secret(session, name)
    if row is None:
        raise _unknown(name)
    return row


async def create_secret(
    session: AsyncSession, cipher: Cipher, body: schemas.SecretCreate
) -> SecretRow:
    """Add a secret; a second create of one name racing this one fails on the unique name,
    and its retry answers 409."""
    if await find_secret(session, body.name) is not None:
        raise Conflict(
            f"a secret named '{body.name}' already exists",
            field="name",
            hint=f"replace it with `dockyard secret set {body.name} --overwrite`",
        )
    now = utcnow()
    row = SecretRow(name=body.name, ciphertext=_seal(cipher, body.value), created=now, updated=now)
    session.add(row)
    await session.flush()
    return row


async def set_secret(
    session: AsyncSession, cipher: Cipher, name: str, body: schemas.SecretSet
) -> SecretRow:
    """Create the secret ``name``, or replace its value."""
    problem = variable_name_problem(name)
    if problem:
        raise Invalid(f"{name!r} {problem}", field="name")
    row = await find_secret(session, name)
    sealed = _seal(cipher, body.value)
    if row is None:
        now = utcnow()
        row = SecretRow(name=name, ciphertext=sealed, created=now, updated=now)
        session.add(row)
    else:
        row.ciphertext, row.updated = sealed, utcnow()
    await session.flush()
    return row


def reveal(cipher: Cipher, row: SecretRow) -> schemas.SecretWithValue:
    """The secret with its value in clear.

    Raises:
        Conflict: the server's key is not the one the value was stored under.
    """
    from cryptography.fernet import InvalidToken

    try:
        value = json.loads(cipher.decrypt(row.ciphertext.encode("ascii")))
    except InvalidToken:
        log.warning("secret %r cannot be decrypted with the server's encryption key", row.name)
        raise Conflict(
            f"secret '{row.name}' was stored under another encryption key than the server's",
            hint="start the server with the key it was saved under "
            "(DOCKYARD_SERVER_ENCRYPTION_KEY or $DOCKYARD_HOME/encryption.key), or set the "
            f"secret again with `dockyard secret set {row.name} --overwrite`",
        ) from None
    return schemas.SecretWithValue(
        id=row.id, name=row.name, created=row.created, updated=row.updated, value=value
    )


async def delete_secret(session: AsyncSession, name: str) -> None:
    await session.delete(await read_secret(session, name))


async def list_secrets(
    session: AsyncSession, *, limit: int = 200, offset: int = 0
) -> list[SecretRow]:
    """Secrets by name (their values are not decrypted)."""
    query = select(SecretRow).order_by(SecretRow.name).limit(limit).offset(offset)
    return list(await session.scalars(query))
