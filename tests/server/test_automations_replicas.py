"""Two server processes on one PostgreSQL database, both evaluating and delivering: every
event fires each automation once, whichever process it came through."""

from __future__ import annotations

import pytest
from test_automations import FAST, Receiver, emit, results

from _support import wait_until

EVENTS = 10


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_servers_act_once_per_event(server_factory) -> None:
    receiver = Receiver()
    try:
        servers = [server_factory(**FAST), server_factory(**FAST)]
        with servers[0].http() as first, servers[1].http() as second:
            for name in ("hook-a", "hook-b"):
                answer = first.post(
                    "/automations",
                    json={
                        "name": name,
                        "trigger": {"expect": ["acme.*"]},
                        "actions": [
                            {
                                "type": "call-webhook",
                                "url": receiver.url,
                                "body": {"automation": name, "event": "{{ event_id }}"},
                            }
                        ],
                    },
                )
                assert answer.status_code == 201, answer.text
            emitted = [
                emit((first, second)[i % 2], "acme.tick", f"acme.{i}") for i in range(EVENTS)
            ]

            def delivered() -> bool:
                return all(
                    len(found := results(first, name)) == EVENTS
                    and {r["status"] for r in found} == {"SUCCEEDED"}
                    for name in ("hook-a", "hook-b")
                )

            wait_until(delivered, 60, "every action delivered")
            for name in ("hook-a", "hook-b"):
                assert {r["event_id"] for r in results(second, name)} == set(emitted)
        calls = [(c["automation"], c["event"]) for c in receiver.calls]
        assert sorted(calls) == sorted((n, e) for n in ("hook-a", "hook-b") for e in emitted)
    finally:
        receiver.close()
