"""The UI's login session and CSRF tokens.

- While the API needs keys (``DOCKYARD_SERVER_API_KEY`` is set, or a key was made with
  ``dockyard api-key create``), a person logs in once with a user or admin key; worker and
  runner keys are refused. The UI then sets a session cookie
  ``<scope>~<key id>~<nonce>.<expiry>.<signature>``, signed (HMAC-SHA256) with a key derived
  from the bootstrap API key, or else from the server secret of API keys. Changing the
  bootstrap key ends every session; revoking a key ends the sessions made with it (within the
  key cache's few seconds).
- A user session sees no create, edit or delete forms but those of runs, and may post only
  the forms of :data:`USER_POSTS` (start, cancel, resume a run); an admin session may do all.
- Every form carries a CSRF token checked on each POST against the browser's CSRF cookie (a
  random nonce). With a login the token is the nonce signed with the derived key, so a
  cookie planted by another site cannot be paired with a token of the attacker's choosing;
  without one it is the nonce itself (a double-submit cookie).

Cookies are HttpOnly and SameSite=Lax, and Secure when the page came over HTTPS.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.server.access import Caller, Keys

SESSION_COOKIE = "dockyard_session"
CSRF_COOKIE = "dockyard_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_SECONDS = 7 * 24 * 3600
ADMIN, USER = "admin", "user"
UI_SCOPES = frozenset({ADMIN, USER})
NO_KEY = "0"  # the key id part of a session made with the bootstrap key
# the forms a user session may post: a run's start, cancel, resume (and logging out)
USER_POSTS = re.compile(
    r"^/(logout|deployments/[^/]+/(run|quick-run)|runs/[^/]+/(cancel|again|resume))$"
)


def _mac(key: bytes, purpose: str, value: str) -> str:
    return hmac.new(key, f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


def _derive(key: bytes) -> bytes:
    return hmac.new(key, b"dockyard ui cookies", hashlib.sha256).digest()


def may_post(scope: str, path: str) -> bool:
    """Whether a session of ``scope`` may post the form at ``path``."""
    return scope == ADMIN or (scope == USER and USER_POSTS.match(path) is not None)


@dataclass
class Guard:
    """Checks keys at login, and signs and checks the UI's cookies and tokens."""

    api_key: str | None
    secret: bytes | None
    keys: Keys | None = None

    @classmethod
    def from_api_key(cls, api_key: str | None, keys: Keys | None = None) -> Guard:
        secret = _derive(api_key.encode()) if api_key else None
        return cls(api_key=api_key or None, secret=secret, keys=keys)

    async def prepare(self) -> None:
        """Once keys are required without a bootstrap key, sign with the server's secret."""
        if self.secret is None and self.keys is not None and await self.keys.required():
            self.secret = _derive(await self.keys.secret())

    @property
    def login_required(self) -> bool:
        return self.secret is not None

    def key_matches(self, given: str) -> bool:
        return self.api_key is not None and hmac.compare_digest(
            given.strip().encode(), self.api_key.encode()
        )

    async def caller(self, given: str) -> Caller | None:
        """Who the key ``given`` stands for (bootstrap or made), or None."""
        from dockyard.schemas.api_keys import ApiKeyScope
        from dockyard.server.access import Caller

        if self.keys is not None:
            return await self.keys.verify(given.strip())
        return Caller(None, ApiKeyScope.ADMIN) if self.key_matches(given) else None

    # ------------------------------------------------------------ sessions

    def new_session(
        self, now: float | None = None, *, scope: str = ADMIN, key_id: uuid.UUID | None = None
    ) -> str:
        assert self.secret is not None
        expires = int((now or time.time()) + SESSION_SECONDS)
        who = f"{scope}~{key_id.hex if key_id else NO_KEY}~{secrets.token_urlsafe(16)}"
        payload = f"{who}.{expires}"
        return f"{payload}.{_mac(self.secret, 'session', payload)}"

    def session_valid(self, cookie: str | None, now: float | None = None) -> bool:
        return self._session(cookie, now) is not None

    def _session(self, cookie: str | None, now: float | None) -> tuple[str, str] | None:
        """``(scope, key id)`` of a signed, unexpired session cookie, else None."""
        if self.secret is None:
            return ADMIN, NO_KEY
        if not cookie or cookie.count(".") != 2:
            return None
        payload, _, signature = cookie.rpartition(".")
        expected = _mac(self.secret, "session", payload)
        if not hmac.compare_digest(signature, expected):
            return None
        who, _, expires = payload.rpartition(".")
        if not expires.isdigit() or int(expires) <= (now or time.time()):
            return None
        scope, key_hex, _ = (*who.split("~", 2), "", "")[:3]
        # a session of before scoped keys (``<nonce>.<expiry>``) came from the bootstrap key
        return (scope, key_hex) if scope in UI_SCOPES else (ADMIN, NO_KEY)

    async def session_scope(self, cookie: str | None) -> str | None:
        """The scope of a valid session whose key is not revoked, else None."""
        found = self._session(cookie, None)
        if found is None:
            return None
        scope, key_hex = found
        if key_hex != NO_KEY and self.keys is not None:
            try:
                key_id = uuid.UUID(hex=key_hex)
            except ValueError:
                return None
            if not await self.keys.alive(key_id):
                return None
        return scope

    # ------------------------------------------------------------ CSRF

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    def csrf_token(self, nonce: str) -> str:
        """The token forms carry for the browser whose CSRF cookie is ``nonce``."""
        return _mac(self.secret, "csrf", nonce) if self.secret is not None else nonce

    def csrf_valid(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token(nonce).encode())
