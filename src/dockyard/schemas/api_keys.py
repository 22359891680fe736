"""Request and response models of API keys (``/api/api-keys``).

A key has a **scope** that says what it may do (the table is ``dockyard.server.scopes``):
``admin`` everything; ``user`` reads and starts, cancels and resumes runs; ``worker`` claims
and reports on the runs it holds; ``runner`` reports on a run from inside it.
"""

import enum
import uuid
from datetime import datetime

from dockyard.schemas import Model, Name, Response

__all__ = ["ApiKey", "ApiKeyCreate", "ApiKeyCreated", "ApiKeyScope"]


class ApiKeyScope(enum.StrEnum):
    ADMIN = "admin"
    USER = "user"
    WORKER = "worker"
    RUNNER = "runner"


class ApiKeyCreate(Model):
    name: Name
    scope: ApiKeyScope


class ApiKey(Response):
    """A key as listed: never its value (only its hash is stored)."""

    id: uuid.UUID
    name: str
    scope: ApiKeyScope
    created: datetime
    last_used: datetime | None
    revoked: datetime | None


class ApiKeyCreated(ApiKey):
    """The answer to a creation: the only time the key's value is shown."""

    key: str
