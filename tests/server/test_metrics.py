"""GET /metrics over the real server: parsed as Prometheus parses it, figures that move."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from _support.waiting import wait_until

# figures read from the database at every scrape: the test sees its own changes at once
FRESH = {"DOCKYARD_SERVER_METRICS_CACHE_SECONDS": "0.001"}
KEY = "metrics-test-key-0123456789abcdef"


def scrape(server: Any, **headers: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of ``GET /metrics``: (name, labels, value)."""
    answer = httpx.get(
        f"{server.url}/metrics", headers=headers or server.headers, timeout=30, trust_env=False
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    ]


def value(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(
        v for n, got, v in samples if n == name and all(got.get(k) == x for k, x in labels.items())
    )


def _setup(http: httpx.Client, runs: int) -> str:
    assert http.post("/work-pools", json={"name": "pool", "type": "process"}).status_code == 201
    answer = http.post(
        "/deployments", json={"flow_name": "f", "name": "d", "work_pool_name": "pool"}
    )
    assert answer.status_code == 200, answer.text
    deployment = str(answer.json()["id"])
    for _ in range(runs):
        assert http.post(f"/deployments/{deployment}/runs", json={}).status_code == 201
    return deployment


def _claim(http: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    request = {"worker_name": "w1", "work_pool_name": "pool", "limit": 1, **body}
    answer = http.post("/workers/claim", json=request)
    assert answer.status_code == 200, answer.text
    return list(answer.json())


@pytest.mark.parametrize("server", [FRESH], indirect=True)
def test_runs_claims_long_polls_and_http_latency_move(server: Any) -> None:
    before = scrape(server)
    assert value(before, "dockyard_flow_runs", state="SCHEDULED") == 0
    assert value(before, "dockyard_claim_calls_total") == 0
    assert value(before, "dockyard_scheduler_lag_seconds") == 0
    with server.http() as http:
        deployment = _setup(http, runs=3)
        assert len(_claim(http)) == 1
    after = scrape(server)
    assert value(after, "dockyard_flow_runs", state="SCHEDULED") == 2
    assert value(after, "dockyard_flow_runs", state="PENDING") == 1
    assert value(after, "dockyard_flow_runs", state="COMPLETED") == 0  # every state listed
    assert value(after, "dockyard_claim_calls_total") == 1
    assert value(after, "dockyard_claimed_runs_total") == 1
    assert value(after, "dockyard_claim_transaction_seconds_count") == 1
    assert value(after, "dockyard_scheduler_lag_seconds") > 0  # two runs due, unclaimed

    # latency by route template and status class, never by the path asked for
    created = value(
        after,
        "dockyard_http_request_duration_seconds_count",
        method="POST",
        route="/api/deployments/{deployment_id}/runs",
        status="2xx",
    )
    assert created == 3
    routes = {labels.get("route", "") for _, labels, _ in after}
    assert not any(deployment in route for route in routes)
    assert "/metrics" not in routes  # the scrape itself is not timed

    pools = {labels["engine"] for n, labels, _ in after if n.startswith("dockyard_db_pool_")}
    assert pools == ({"write", "read"} if "sqlite" in server.database_url else {"shared"})
    assert value(after, "dockyard_db_pool_size_connections") > 0
    _long_poll_is_counted_while_it_waits(server, deployment)


def _long_poll_is_counted_while_it_waits(server: Any, deployment: str) -> None:
    answers: list[list[dict[str, Any]]] = []

    def long_poll() -> None:
        with server.http(timeout=60) as own:  # a client of its own thread
            answers.append(_claim(own, wait=30))

    with server.http() as http:
        assert len(_claim(http, limit=10)) == 2  # nothing left: the next claim waits
        waiting = threading.Thread(target=long_poll)
        waiting.start()
        try:
            wait_until(
                lambda: value(scrape(server), "dockyard_claim_long_polls_waiting") == 1,
                timeout=30,
                what="the claim to wait in its long-poll",
            )
            assert http.post(f"/deployments/{deployment}/runs", json={}).status_code == 201
        finally:
            waiting.join(timeout=60)
    assert len(answers) == 1 and len(answers[0]) == 1  # woken by the new run
    assert value(scrape(server), "dockyard_claim_long_polls_waiting") == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_key_required_schema_and_lease_expiries(server_factory: Any) -> None:
    server = server_factory(DOCKYARD_SERVER_API_KEY=KEY, DOCKYARD_LEASE_SECONDS="1", **FRESH)
    refused = httpx.get(f"{server.url}/metrics", timeout=30, trust_env=False)
    assert refused.status_code == 401
    wrong = httpx.get(
        f"{server.url}/metrics",
        headers={"Authorization": "Bearer not-the-key"},
        timeout=30,
        trust_env=False,
    )
    assert wrong.status_code == 401
    scrape(server, Authorization=f"Bearer {KEY}")
    with server.http() as http:
        paths = http.get("/openapi.json").json()["paths"]
        assert not any("metrics" in path for path in paths)
        _setup(http, runs=1)
        assert len(_claim(http)) == 1  # and never heartbeats: its lease runs out

    def expired() -> list[tuple[str, dict[str, str], float]] | None:
        samples = scrape(server)
        return samples if value(samples, "dockyard_lease_expiries_total") else None

    samples = wait_until(
        expired,
        timeout=30,
        what="the reaper to declare the claimed run CRASHED",
    )
    assert value(samples, "dockyard_lease_expiries_total") == 1
    assert value(samples, "dockyard_flow_runs", state="CRASHED") == 1
