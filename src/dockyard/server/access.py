"""Who may call what: API keys checked, their scope applied, their rate limited.

- Keys are required when ``DOCKYARD_SERVER_API_KEY`` (the bootstrap admin key) is set or
  once any key was created; otherwise the API is open, as a server without keys always was.
- A key is verified by one indexed read of its row, then cached here for
  :data:`CACHE_SECONDS`: a request with a known key costs no query. A revoke takes effect at
  once on the replica that revoked it, and within :data:`CACHE_SECONDS` on the others.
- ``last_used`` is written at most once per :data:`TOUCH_SECONDS` per key and replica.
- What a scope may call is the table of :mod:`dockyard.server.scopes`: 401 without a valid
  key, 403 with a key whose scope may not, 429 with ``Retry-After`` past the key's rate.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from starlette.routing import BaseRoute, Match, Mount

from dockyard.schemas.api_keys import ApiKeyScope
from dockyard.server import scopes
from dockyard.server.models import api_keys
from dockyard.server.rate_limits import Buckets
from dockyard.server.security import (
    GUARDED_PATHS,
    WRITES,
    ASGIApp,
    Receive,
    Scope,
    Send,
    reject,
)
from dockyard.server.tables import ApiKeyRow, FlowRunRow, utcnow

if TYPE_CHECKING:
    from dockyard.schemas import ClaimedRun

RUN_KEY_PREFIX = "dkr_"
CACHE_SECONDS = 5.0
TOUCH_SECONDS = 60.0
MAX_SUBFLOW_DEPTH = 20  # how far up a run key looks for its own run among a run's parents
MAX_CACHED = 10_000  # keys verified recently; past it the cache starts over
_CONVERTOR = re.compile(r":\w+}")  # "{artifact_id:uuid}" -> "{artifact_id}", as OpenAPI has it


@dataclass(frozen=True)
class Caller:
    """A verified key: its row's id (None for the bootstrap key and run keys), its scope,
    and the one run it is bound to (a run key's)."""

    key_id: uuid.UUID | None
    scope: ApiKeyScope
    run_id: uuid.UUID | None = None


class Keys:
    """Verifies keys against the database (through ``state.db``), with a short cache."""

    def __init__(self, state: Any, bootstrap: str | None) -> None:
        self._state = state
        self._bootstrap = bootstrap.encode() if bootstrap else None
        self._secret: bytes | None = None
        self._cache: dict[str, tuple[float, Caller]] = {}
        self._touched: dict[uuid.UUID, float] = {}
        self._alive: dict[uuid.UUID, tuple[float, bool]] = {}
        self._within: set[tuple[uuid.UUID, uuid.UUID]] = set()
        self._exist = bool(bootstrap)
        self._exist_checked = -math.inf

    async def secret(self) -> bytes:
        if self._secret is None:
            self._secret = await api_keys.server_secret(self._state.keyring, self._state.settings)
        return self._secret

    async def required(self) -> bool:
        """Whether requests need a key (once true it stays so: keys are never deleted)."""
        now = time.monotonic()
        if not self._exist and now - self._exist_checked >= CACHE_SECONDS:
            async with self._state.db.read() as session:
                self._exist = await api_keys.any_key(session)
            self._exist_checked = now
        return self._exist

    def created(self) -> None:
        self._exist = True

    def forget(self, key_id: uuid.UUID) -> None:
        """Drop a revoked key from this replica's cache."""
        self._cache = {k: v for k, v in self._cache.items() if v[1].key_id != key_id}
        self._alive.pop(key_id, None)

    async def alive(self, key_id: uuid.UUID) -> bool:
        """Whether the key ``key_id`` is not revoked (what a UI session made with it needs)."""
        now = time.monotonic()
        cached = self._alive.get(key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._state.db.read() as session:
            row = await api_keys.find_key(session, key_id)
        live = row is not None and row.revoked is None
        if len(self._alive) >= MAX_CACHED:
            self._alive.clear()
        self._alive[key_id] = (now + CACHE_SECONDS, live)
        return live

    async def within(self, root: uuid.UUID, run_id: uuid.UUID) -> bool:
        """Whether ``run_id`` is ``root`` or a subflow run under it (what a run key of
        ``root`` may act on). Parents never change: a yes is remembered."""
        if run_id == root or (root, run_id) in self._within:
            return True
        current: uuid.UUID | None = run_id
        async with self._state.db.read() as session:
            for _ in range(MAX_SUBFLOW_DEPTH):
                parent = select(FlowRunRow.parent_flow_run_id).where(FlowRunRow.id == current)
                current = await session.scalar(parent)
                if current is None:
                    return False
                if current == root:
                    if len(self._within) >= MAX_CACHED:
                        self._within.clear()
                    self._within.add((root, run_id))
                    return True
        return False

    async def with_runner_keys(self, claimed: list[ClaimedRun]) -> list[ClaimedRun]:
        """``claimed`` with each run's runner key, when the server needs keys.

        A run key is ``dkr_<run id>_<HMAC(server secret, run id)>``: derived, so nothing is
        stored; of scope runner and good for routes of its own run only (:meth:`verify`).
        """
        if not claimed or not await self.required():
            return claimed
        secret = await self.secret()
        return [
            c.model_copy(update={"runner_key": _run_key(secret, c.flow_run.id)}) for c in claimed
        ]

    async def verify(self, given: str) -> Caller | None:
        """The caller ``given`` (a key's value) stands for, or None if it is no live key."""
        if self._bootstrap is not None and hmac.compare_digest(given.encode(), self._bootstrap):
            return Caller(None, ApiKeyScope.ADMIN)
        if given.startswith(RUN_KEY_PREFIX):
            return await self._run_caller(given)
        now = time.monotonic()
        cached = self._cache.get(given)
        if cached is not None and cached[0] > now:
            caller = cached[1]
        else:
            found = await self._look_up(given)
            if found is None:
                return None
            caller = found
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[given] = (now + CACHE_SECONDS, caller)
        assert caller.key_id is not None
        if self._touched.get(caller.key_id, -math.inf) + TOUCH_SECONDS <= now:
            self._touched[caller.key_id] = now
            await self._touch(caller.key_id)
        return caller

    async def _run_caller(self, given: str) -> Caller | None:
        id_part = given[len(RUN_KEY_PREFIX) :].partition("_")[0]
        try:
            run_id = uuid.UUID(hex=id_part)
        except ValueError:
            return None
        expected = _run_key(await self.secret(), run_id)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return None
        return Caller(None, ApiKeyScope.RUNNER, run_id)

    async def _look_up(self, given: str) -> Caller | None:
        parsed = api_keys.parse(given)
        if parsed is None:
            return None
        key_id, secret = parsed
        expected = api_keys.digest(await self.secret(), key_id, secret)
        async with self._state.db.read() as session:
            row = await api_keys.find_key(session, key_id)
        if row is None or row.revoked is not None:
            return None
        if not hmac.compare_digest(row.digest.encode(), expected.encode()):
            return None
        return Caller(row.id, ApiKeyScope(row.scope))

    async def _touch(self, key_id: uuid.UUID) -> None:
        # the WHERE keeps replicas from all writing it in the same minute
        now = utcnow()
        since = now - timedelta(seconds=TOUCH_SECONDS)
        async with self._state.db.write() as session:
            await session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id)
                .where(or_(ApiKeyRow.last_used.is_(None), ApiKeyRow.last_used < since))
                .values(last_used=now)
            )


async def with_runner_keys(state: Any, claimed: list[ClaimedRun]) -> list[ClaimedRun]:
    """:meth:`Keys.with_runner_keys` of the app whose state is ``state``."""
    keys: Keys = state.api_keys
    return await keys.with_runner_keys(claimed)


def _run_key(secret: bytes, run_id: uuid.UUID) -> str:
    mac = hmac.new(secret, f"run|{run_id.hex}".encode(), hashlib.sha256).hexdigest()
    return f"{RUN_KEY_PREFIX}{run_id.hex}_{mac}"


def flatten(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """The routes, with the routers FastAPI includes opened into theirs (in order), but
    mounts (the UI) and the API's fallback: each one has a ``path``, its full template."""
    flat: list[BaseRoute] = []
    for route in routes:
        opened = getattr(route, "effective_route_contexts", None)
        if opened is not None:
            flat.extend(flatten(list(opened())))
        elif not isinstance(route, Mount) and getattr(route, "path", "") != "/api/{rest:path}":
            flat.append(route)
    return flat


def route_of(routes: Sequence[BaseRoute], scope: Scope) -> tuple[str | None, dict[str, Any]]:
    """The template of the API route ``scope`` asks for (method included) and its path
    parameters, or ``(None, {})``; ``routes`` as :func:`flatten` makes them."""
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            template = _CONVERTOR.sub("}", str(getattr(route, "path", "")))
            return template, dict(child.get("path_params", {}))
    return None, {}


async def _other_run(keys: Keys, caller: Caller, params: dict[str, Any]) -> bool:
    """Whether a run key asks about another run than its own or its subflows' (by the
    route's ``run_id``)."""
    if caller.run_id is None or "run_id" not in params:
        return False
    try:
        run_id = uuid.UUID(str(params["run_id"]))
    except ValueError:
        return False  # names no run: the route answers 422
    return not await keys.within(caller.run_id, run_id)


class Access:
    """The middleware: under ``/api``, every path but :data:`scopes.OPEN` needs a key whose
    scope allows the route (when keys are required at all), within the key's rate."""

    def __init__(
        self, app: ASGIApp, *, keys: Keys, routes: Sequence[BaseRoute], buckets: Buckets | None
    ) -> None:
        self.app = app
        self.keys = keys
        self.routes = routes
        self.buckets = buckets
        self.flat: list[BaseRoute] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        guarded = path.startswith("/api") or path in GUARDED_PATHS  # /metrics too
        if scope["type"] != "http" or not guarded or path in scopes.OPEN:
            await self.app(scope, receive, send)
            return
        if not await self.keys.required():
            await self.app(scope, receive, send)
            return
        given = _bearer(scope)
        caller = await self.keys.verify(given) if given else None
        if caller is None:
            await reject(
                send,
                401,
                "missing, wrong or revoked API key: send 'Authorization: Bearer <key>' "
                "(clients read DOCKYARD_API_KEY; make one with `dockyard api-key create`)",
            )
            return
        method = scope["method"]
        if self.flat is None:  # the routes are all there once requests come
            self.flat = flatten(self.routes)
        template, params = route_of(self.flat, scope)
        if not scopes.allows(caller.scope, method, template):
            await reject(send, 403, _forbidden(caller.scope, method, template or path))
            return
        if method in WRITES and await _other_run(self.keys, caller, params):
            await reject(
                send,
                403,
                f"this run key is for flow run {caller.run_id} and its subflow runs only",
            )
            return
        bucket = caller.key_id or caller.run_id
        wait = self.buckets.wait(bucket) if self.buckets is not None else 0.0
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            await reject(
                send,
                429,
                f"too many requests with this API key: retry in {seconds} s (Retry-After); "
                "DOCKYARD_SERVER_RATE_LIMIT_PER_SECOND and _BURST set the rate",
                [(b"retry-after", str(seconds).encode())],
                # in the body too, for clients that read no headers (the engine's transport)
                {"retry_after": seconds},
            )
            return
        scope.setdefault("state", {})["api_key"] = caller
        await self.app(scope, receive, send)


def _bearer(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            text = str(value.decode("latin-1"))
            return text[7:].strip() if text[:7].lower() == "bearer " else ""
    return ""


def _forbidden(scope: ApiKeyScope, method: str, template: str) -> str:
    allowed = sorted(s.value for s in scopes.ROUTES.get((method, template), frozenset()))
    who = ", ".join([*allowed, "admin"])
    return (
        f"a {scope.value} key may not {method} {template}: that takes a key of scope {who} "
        "(see docs/api-keys.md)"
    )
