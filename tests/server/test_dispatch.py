"""Claims, limits, long-polls, heartbeats and leases over the real API."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest


def _setup(http: httpx.Client, pool_limit: int | None = None, **deployment: object) -> str:
    body = {"name": "pool", "type": "process", "concurrency_limit": pool_limit}
    assert http.post("/work-pools", json=body).status_code == 201
    answer = http.post(
        "/deployments",
        json={"flow_name": "f", "name": "d", "work_pool_name": "pool", **deployment},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def _runs(http: httpx.Client, deployment_id: str, n: int, **body: object) -> list[str]:
    return [
        http.post(f"/deployments/{deployment_id}/runs", json=body).json()["id"] for _ in range(n)
    ]


def _claim(http: httpx.Client, worker: str = "w1", **body: object) -> list[dict]:
    request = {"worker_name": worker, "work_pool_name": "pool", "limit": 10, **body}
    answer = http.post("/workers/claim", json=request)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_claim_renders_job_configuration_and_respects_limits(server) -> None:
    with server.http() as http:
        deployment = _setup(http, pool_limit=3, job_variables={"env": {"A": "1"}})
        http.post("/work-pools/pool/queues", json={"name": "fast", "concurrency_limit": 1})
        _runs(http, deployment, 4, job_variables={"env.B": "2"})
        claimed = _claim(http, limit=10)
        assert len(claimed) == 3  # the pool's limit
        from dockyard.job_templates import configuration

        config = configuration(claimed[0]["base_job_template"], claimed[0]["job_variables"], {})
        assert config["env"] == {"A": "1", "B": "2"}
        assert config["stream_output"] is True
        assert "command" not in config  # no value: the key is removed
        assert {c["flow_run"]["state"] for c in claimed} == {"PENDING"}
        assert _claim(http, worker="w2") == []

        token = claimed[0]["lease_token"]
        run_id = claimed[0]["flow_run"]["id"]
        running = http.post(
            f"/flow-runs/{run_id}/state", json={"state": "RUNNING", "lease_token": token}
        )
        assert running.status_code == 200
        http.post(f"/flow-runs/{run_id}/state", json={"state": "COMPLETED", "lease_token": token})
        assert len(_claim(http, worker="w2")) == 1  # a slot was freed
        for other in claimed[1:]:  # each run of a claim comes with its own lease
            moved = http.post(
                f"/flow-runs/{other['flow_run']['id']}/state",
                json={"state": "RUNNING", "lease_token": other["lease_token"]},
            )
            assert moved.status_code == 200, moved.text

        pool = http.get("/work-pools/pool").json()
        assert pool["status"] == "READY" and pool["last_polled"]
        workers = {w["name"]: w for w in http.get("/work-pools/pool/workers").json()}
        assert set(workers) == {"w1", "w2"} and workers["w1"]["status"] == "ONLINE"


def test_queue_priority_and_queue_limits(server) -> None:
    with server.http() as http:
        _setup(http)
        http.post("/work-pools/pool/queues", json={"name": "urgent", "priority": 1})
        http.post("/work-pools/pool/queues", json={"name": "capped", "concurrency_limit": 1})
        ids = {}
        for queue in ("default", "urgent", "capped"):
            answer = http.post(
                "/deployments",
                json={
                    "flow_name": "f",
                    "name": queue,
                    "work_pool_name": "pool",
                    "work_queue_name": queue,
                },
            ).json()
            ids[queue] = _runs(http, answer["id"], 2)
        order = [c["flow_run"]["work_queue_name"] for c in _claim(http, limit=10)]
        assert order == ["urgent", "urgent", "default", "default", "capped"]


def test_deployment_limit_and_pauses(server) -> None:
    with server.http() as http:
        deployment = _setup(http, concurrency_limit=1)
        _runs(http, deployment, 3)
        assert len(_claim(http)) == 1
        http.patch(f"/deployments/{deployment}", json={"concurrency_limit": 5})
        http.post("/work-pools/pool/pause")
        assert _claim(http) == []
        http.post("/work-pools/pool/resume")
        http.post("/work-pools/pool/queues/default/pause")
        assert _claim(http) == []
        http.post("/work-pools/pool/queues/default/resume")
        http.patch(f"/deployments/{deployment}", json={"paused": True})
        assert _claim(http) == []
        http.patch(f"/deployments/{deployment}", json={"paused": False})
        assert len(_claim(http)) == 2


def test_future_runs_wait_until_due(server) -> None:
    with server.http() as http:
        deployment = _setup(http)
        soon = time.time() + 1.0
        start = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(soon)) + (
            f"{soon % 1:.3f}"[1:] + "Z"
        )
        _runs(http, deployment, 1, scheduled_start=start)
        assert _claim(http, wait=0) == []
        began = time.monotonic()
        assert len(_claim(http, wait=10)) == 1
        assert time.monotonic() - began < 8


def test_long_poll_wakes_when_a_run_is_created(server) -> None:
    with server.http() as http:
        deployment = _setup(http)
        result: list[list[dict]] = []

        def poll() -> None:
            with server.http() as other:
                result.append(_claim(other, wait=20))

        poller = threading.Thread(target=poll)
        began = time.monotonic()
        poller.start()
        time.sleep(0.5)
        _runs(http, deployment, 1)
        poller.join(30)
        assert len(result[0]) == 1
        assert time.monotonic() - began < 15  # woken, not timed out


def test_heartbeat_renews_and_lists_cancels(server) -> None:
    with server.http() as http:
        deployment = _setup(http)
        _runs(http, deployment, 2)
        claimed = _claim(http)
        first, second = (c["flow_run"]["id"] for c in claimed)
        http.post(f"/flow-runs/{first}/cancel")
        stranger = str(uuid.uuid4())
        beat = http.post(
            "/workers/heartbeat",
            json={"name": "w1", "work_pool_name": "pool", "run_ids": [second, stranger]},
        ).json()
        assert beat["cancel"] == [first]
        assert beat["lost"] == [stranger]

        token = claimed[1]["lease_token"]
        renewed = http.post(f"/flow-runs/{second}/lease", json={"lease_token": token})
        assert renewed.status_code == 200
        stale = http.post(f"/flow-runs/{second}/lease", json={"lease_token": stranger})
        assert stale.status_code == 409 and stale.json()["current_state"] == "PENDING"

        back = http.post(
            f"/flow-runs/{second}/state", json={"state": "SCHEDULED", "lease_token": token}
        ).json()
        assert back["state"] == "SCHEDULED" and back["worker_name"] is None
        assert [c["flow_run"]["id"] for c in _claim(http, worker="w2")] == [second]


@pytest.mark.parametrize("server", [{"DOCKYARD_LEASE_SECONDS": "2"}], indirect=True)
def test_expired_leases_crash_and_retry(server) -> None:
    with server.http() as http:
        deployment = _setup(http, crash_retries=1)
        run_id = _runs(http, deployment, 1)[0]
        claimed = _claim(http)
        token = claimed[0]["lease_token"]
        http.post(f"/flow-runs/{run_id}/state", json={"state": "RUNNING", "lease_token": token})

        def state() -> dict:
            return http.get(f"/flow-runs/{run_id}").json()

        deadline = time.monotonic() + 20
        while state()["attempt"] == 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        retried = state()
        assert retried["attempt"] == 2 and retried["state"] == "SCHEDULED"
        history = [s["type"] for s in http.get(f"/flow-runs/{run_id}/states").json()]
        assert history == ["SCHEDULED", "PENDING", "RUNNING", "CRASHED", "SCHEDULED"]
        # the engine of the first attempt is fenced off
        late = http.post(
            f"/flow-runs/{run_id}/state", json={"state": "COMPLETED", "lease_token": token}
        )
        assert late.status_code == 409

        _claim(http)  # the second attempt is claimed, then its worker dies too
        deadline = time.monotonic() + 20
        while state()["state"] != "CRASHED" and time.monotonic() < deadline:
            time.sleep(0.2)
        final = state()
        assert final["state"] == "CRASHED" and "lease expired" in final["state_message"]


def test_ctrl_c_answers_open_long_polls(server) -> None:
    """Stopping the server wakes its long-polls: each gets an answer instead of a cut line."""
    with server.http() as http:
        _setup(http)
    answers: list[int] = []

    def poll() -> None:
        with server.http() as http:
            request = {"worker_name": "w", "work_pool_name": "pool", "wait": 30}
            answers.append(http.post("/workers/claim", json=request).status_code)

    polls = [threading.Thread(target=poll) for _ in range(3)]
    for thread in polls:
        thread.start()
    time.sleep(1.5)
    server.stop()
    for thread in polls:
        thread.join(30)
    assert answers == [200, 200, 200]
    assert not server.killed
