"""Schedules the scheduler cannot use never stop or hang the server.

They are stored straight into the database, as a server from before the API refused them
would have stored them. The server still starts and answers, every other schedule keeps
making runs, each bad one shows its error (API, CLI, UI) and can be deleted, and an error
clears once its schedule works again.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from _support import RunningServer, wait_until

BASE = {"DOCKYARD_SCHEDULER_MAX_RUNS": "5"}
# what each bad definition says once the scheduler has met it (with a 60 s minimum)
BAD = {
    "tiny": ({"interval": 1e-7}, "shorter than the server's minimum interval of 60 s"),
    "secondly": ({"rrule": "FREQ=SECONDLY"}, "fires every 1 s"),
    "february": ({"cron": "0 0 30 2 *"}, "no start time in the next 10 years"),
    "never": ({"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"}, "no start time in the next"),
    "half-minute": ({"interval": 30}, "minimum interval of 60 s"),
}
WAIT = 30.0


def _store(database_url: str, schedule_id: str, **columns: Any) -> None:
    """Write a schedule's columns directly, bypassing the API's checks."""
    from dockyard.server.db import Database
    from dockyard.server.tables import ScheduleRow

    async def write() -> None:
        db = Database(database_url)
        try:
            async with db.write() as session:
                await session.execute(
                    update(ScheduleRow)
                    .where(ScheduleRow.id == uuid.UUID(schedule_id))
                    .values(**columns)
                )
        finally:
            await db.dispose()

    asyncio.run(write())


def _deploy(http: httpx.Client, name: str, schedules: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"flow_name": "f", "name": name, "work_pool_name": "pool", "schedules": schedules}
    answer = http.post("/deployments", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _schedules(http: httpx.Client, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return http.get(f"/deployments/{deployment['id']}/schedules").json()


def _waiting_runs(http: httpx.Client, deployment: dict[str, Any]) -> int:
    params = {"deployment_id": deployment["id"], "state": "SCHEDULED", "limit": 1000}
    return len(http.get("/flow-runs", params=params).json())


def _store_bad_schedules(server: RunningServer) -> tuple[dict[str, Any], dict[str, str]]:
    """A deployment with one good schedule and, stored behind the API's back, the bad ones."""
    with server.http() as http:
        http.post("/work-pools", json={"name": "pool", "type": "process"})
        # placeholders, paused so that they make no runs before they are rewritten
        placeholders = [{"interval": 3600 + n, "active": False} for n in range(len(BAD))]
        deployment = _deploy(http, "bad", [{"cron": "0 * * * *"}, *placeholders])
        stored = {s["interval"]: s["id"] for s in _schedules(http, deployment)}
    server.stop()
    ids = {}
    for n, (name, (definition, _)) in enumerate(BAD.items()):
        ids[name] = stored[3600 + n]
        columns = {"interval": None, "active": True, **definition}
        _store(server.database_url, ids[name], **columns)
    return deployment, ids


@pytest.mark.parametrize("server", [BASE], indirect=True)
def test_bad_stored_schedules_are_marked_and_skipped(server, server_factory) -> None:
    bad, ids = _store_bad_schedules(server)
    strict = server_factory(
        database_url=server.database_url, DOCKYARD_SCHEDULER_MIN_INTERVAL_SECONDS="60", **BASE
    )  # it answers /api/health, or the factory fails the test
    with strict.http() as http:
        good = _deploy(http, "good", [{"interval": 3600}])
        wait_until(lambda: _waiting_runs(http, good) == 5, WAIT, "runs of the good deployment")

        def errors() -> dict[str, str | None]:
            return {s["id"]: s["error"] for s in _schedules(http, bad)}

        wait_until(lambda: all(errors()[i] for i in ids.values()), WAIT, "every bad one marked")
        shown = errors()
        for name, (_, says) in BAD.items():
            assert says in (shown[ids[name]] or ""), (name, shown[ids[name]])
        # the good schedule of the same deployment goes on, and has no error
        assert [e for i, e in shown.items() if i not in ids.values()] == [None]
        wait_until(lambda: _waiting_runs(http, bad) == 5, WAIT, "runs of the good schedule")

    listed = strict.cli("deployment", "schedule", "ls", "f/bad").stdout
    assert "Error" in listed and listed.count("error") >= len(BAD)
    assert "no start time in the next 10 years" in listed
    as_json = json.loads(strict.cli("deployment", "schedule", "ls", "f/bad", "--json").stdout)
    assert {s["id"]: s["error"] for s in as_json} == shown

    with httpx.Client(base_url=strict.url, timeout=30.0, trust_env=False) as browser:
        page = browser.get(f"/deployments/{bad['id']}")
        assert page.status_code == 200
        assert "shorter than the server&#39;s minimum interval of 60 s" in page.text
        assert page.text.count('class="field-error schedule-error"') == len(BAD)

    with strict.http() as http:
        for name in ("tiny", "secondly", "february", "never"):
            answer = http.delete(f"/deployments/{bad['id']}/schedules/{ids[name]}")
            assert answer.status_code == 204
        assert http.get("/health").status_code == 200
        assert set(errors()) == {ids["half-minute"], *(i for i in shown if i not in ids.values())}
    strict.stop()

    # with the server's usual minimum, the 30 s schedule works: its error goes, runs come
    usual = server_factory(database_url=server.database_url, **BASE)
    with usual.http() as http:
        half_minute = ids["half-minute"]
        wait_until(
            lambda: {s["id"]: s["error"] for s in _schedules(http, bad)}[half_minute] is None,
            WAIT,
            "the error of the 30 s schedule to clear",
        )
        wait_until(lambda: _waiting_runs(http, bad) == 10, WAIT, "runs of both schedules")
