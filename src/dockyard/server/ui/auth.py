"""The UI's login session and CSRF tokens.

- With an API key configured, a person logs in once with that key; the UI then sets a session
  cookie ``<nonce>.<expiry>.<signature>``, signed (HMAC-SHA256) with a key derived from the
  API key. Changing the API key ends every session.
- Every form carries a CSRF token checked on each POST against the browser's CSRF cookie (a
  random nonce). With an API key the token is the nonce signed with the derived key, so a
  cookie planted by another site cannot be paired with a token of the attacker's choosing;
  without one it is the nonce itself (a double-submit cookie).

Cookies are HttpOnly and SameSite=Lax, and Secure when the page came over HTTPS.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

SESSION_COOKIE = "dockyard_session"
CSRF_COOKIE = "dockyard_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_SECONDS = 7 * 24 * 3600


def _mac(key: bytes, purpose: str, value: str) -> str:
    return hmac.new(key, f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Guard:
    """Checks the API key at login, and signs and checks the UI's cookies and tokens."""

    api_key: str | None
    secret: bytes | None

    @classmethod
    def from_api_key(cls, api_key: str | None) -> Guard:
        if not api_key:
            return cls(api_key=None, secret=None)
        derived = hmac.new(api_key.encode(), b"dockyard ui cookies", hashlib.sha256).digest()
        return cls(api_key=api_key, secret=derived)

    @property
    def login_required(self) -> bool:
        return self.api_key is not None

    def key_matches(self, given: str) -> bool:
        return self.api_key is not None and hmac.compare_digest(
            given.strip().encode(), self.api_key.encode()
        )

    # ------------------------------------------------------------ sessions

    def new_session(self, now: float | None = None) -> str:
        assert self.secret is not None
        expires = int((now or time.time()) + SESSION_SECONDS)
        payload = f"{secrets.token_urlsafe(16)}.{expires}"
        return f"{payload}.{_mac(self.secret, 'session', payload)}"

    def session_valid(self, cookie: str | None, now: float | None = None) -> bool:
        if self.secret is None:
            return True
        if not cookie or cookie.count(".") != 2:
            return False
        payload, _, signature = cookie.rpartition(".")
        expected = _mac(self.secret, "session", payload)
        if not hmac.compare_digest(signature, expected):
            return False
        expires = payload.rpartition(".")[2]
        return expires.isdigit() and int(expires) > (now or time.time())

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
