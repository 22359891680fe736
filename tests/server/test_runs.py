"""Flows, deployments, runs and the state rules over the real API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import httpx


def _deploy(http: httpx.Client, **extra: object) -> dict:
    http.post("/work-pools", json={"name": "pool", "type": "process"})
    body = {"flow_name": "get_repo_info", "name": "first", "work_pool_name": "pool", **extra}
    answer = http.post("/deployments", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_deployments_upsert_and_match_flow_names_with_either_separator(server) -> None:
    with server.http() as http:
        first = _deploy(http, parameters={"repo": "a/b"})
        again = _deploy(http, parameters={"repo": "c/d"})
        assert again["id"] == first["id"]
        assert again["parameters"] == {"repo": "c/d"}
        assert again["work_queue_name"] == "default"
        assert again["status"] == "NOT_READY"

        by_dash = http.get("/deployments/name/get-repo-info/first")
        assert by_dash.status_code == 200 and by_dash.json()["id"] == first["id"]

        slip = http.get("/deployments/name/get_repo_info/my-deployment")
        assert slip.status_code == 404
        assert slip.json()["suggestions"] == ["get_repo_info/first"]
        assert "did you mean" in slip.json()["hint"]

        listed = http.get("/deployments", params={"flow_name": "get-repo-info"}).json()
        assert [d["name"] for d in listed] == ["first"]
        paused = http.patch(f"/deployments/{first['id']}", json={"paused": True}).json()
        assert paused["paused"] is True and paused["status"] == "PAUSED"
        assert http.delete(f"/deployments/{first['id']}").status_code == 204
        assert http.get(f"/deployments/{first['id']}").status_code == 404


def test_bad_deployments_name_the_problem(server) -> None:
    with server.http() as http:
        missing_pool = http.post(
            "/deployments", json={"flow_name": "f", "name": "d", "work_pool_name": "nope"}
        )
        assert missing_pool.status_code == 422
        assert missing_pool.json()["field"] == "work_pool_name"
        assert "not found" in missing_pool.json()["detail"]
        http.post("/work-pools", json={"name": "pool", "type": "process"})
        bad_var = http.post(
            "/deployments",
            json={
                "flow_name": "f",
                "name": "d",
                "work_pool_name": "pool",
                "job_variables": {"stream_output": "yes please"},
            },
        )
        assert bad_var.status_code == 422
        assert bad_var.json()["field"] == "job_variables.stream_output"
        unknown_var = http.post(
            "/deployments",
            json={
                "flow_name": "f",
                "name": "d",
                "work_pool_name": "pool",
                "job_variables": {"image": "x"},
            },
        )
        assert unknown_var.status_code == 422
        assert "unknown job variable 'image'" in unknown_var.json()["detail"]
        slash = http.post("/deployments", json={"flow_name": "f", "name": "a/b"})
        assert slash.status_code == 422 and slash.json()["field"] == "name"
        assert http.get("/deployments").json() == []


def test_run_lifecycle_with_lease_fencing_and_idempotency(server) -> None:
    with server.http() as http:
        started = http.post("/flow-runs", json={"flow_name": "direct", "parameters": {"x": 1}})
        assert started.status_code == 201, started.text
        run = started.json()
        assert run["state"] == "RUNNING" and run["lease_token"]
        run_id, token = run["id"], run["lease_token"]

        stale = http.post(
            f"/flow-runs/{run_id}/state",
            json={"state": "COMPLETED", "lease_token": str(uuid.uuid4())},
        )
        assert stale.status_code == 409
        assert stale.json()["current_state"] == "RUNNING"

        done = {
            "state": "COMPLETED",
            "lease_token": token,
            "result": [1, 2],
            "idempotency_key": "finish-1",
        }
        first = http.post(f"/flow-runs/{run_id}/state", json=done)
        assert first.status_code == 200, first.text
        assert first.json()["state"] == "COMPLETED" and first.json()["result"] == [1, 2]
        retried = http.post(f"/flow-runs/{run_id}/state", json=done)
        assert retried.status_code == 200 and retried.json()["state"] == "COMPLETED"

        refused = http.post(f"/flow-runs/{run_id}/state", json={"state": "FAILED"})
        assert refused.status_code == 409
        assert refused.json()["current_state"] == "COMPLETED"
        assert "cannot go from COMPLETED to FAILED" in refused.json()["detail"]

        states = http.get(f"/flow-runs/{run_id}/states").json()
        assert [s["type"] for s in states] == ["RUNNING", "COMPLETED"]
        assert states[0]["timestamp"] <= states[1]["timestamp"]
        final = http.get(f"/flow-runs/{run_id}").json()
        assert final["start_time"] and final["end_time"] and final["flow_name"] == "direct"


def test_deployment_runs_are_idempotent_and_cancellable(server) -> None:
    with server.http() as http:
        deployment = _deploy(http, parameters={"a": 1, "b": 2})
        body = {"parameters": {"b": 3}, "idempotency_key": "slot-1"}
        first = http.post(f"/deployments/{deployment['id']}/runs", json=body)
        again = http.post(f"/deployments/{deployment['id']}/runs", json=body)
        assert first.status_code == again.status_code == 201
        run = first.json()
        assert again.json()["id"] == run["id"]
        assert run["state"] == "SCHEDULED" and run["parameters"] == {"a": 1, "b": 3}
        assert run["deployment_name"] == "first" and run["work_pool_name"] == "pool"

        cancelled = http.post(f"/flow-runs/{run['id']}/cancel").json()
        assert cancelled["state"] == "CANCELLED"
        again = http.post(f"/flow-runs/{run['id']}/cancel")
        assert again.status_code == 409 and again.json()["current_state"] == "CANCELLED"

        live = http.post("/flow-runs", json={"flow_name": "direct"}).json()
        assert http.post(f"/flow-runs/{live['id']}/cancel").json()["state"] == "CANCELLING"
        stale = http.post(f"/flow-runs/{live['id']}/state", json={"state": "CANCELLED"})
        assert stale.status_code == 409  # a leased run: only its lease holder ends it
        ended = http.post(
            f"/flow-runs/{live['id']}/state",
            json={"state": "CANCELLED", "lease_token": live["lease_token"]},
        )
        assert ended.json()["state"] == "CANCELLED"


def test_run_filters_and_pagination(server) -> None:
    with server.http() as http:
        deployment = _deploy(http)
        for _ in range(3):
            http.post(f"/deployments/{deployment['id']}/runs", json={})
        http.post("/flow-runs", json={"flow_name": "other"})
        assert len(http.get("/flow-runs").json()) == 4
        scheduled = http.get("/flow-runs", params={"state": "SCHEDULED"}).json()
        assert len(scheduled) == 3
        assert len(http.get("/flow-runs", params={"flow_name": "other"}).json()) == 1
        assert len(http.get("/flow-runs", params={"deployment_name": "first"}).json()) == 3
        page = http.get("/flow-runs", params={"limit": 2, "offset": 2}).json()
        assert len(page) == 2
        newest_first = [r["created"] for r in http.get("/flow-runs").json()]
        assert newest_first == sorted(newest_first, reverse=True)
        bad = http.get("/flow-runs", params={"state": "SLEEPING"})
        assert bad.status_code == 422 and bad.json()["field"].startswith("state")
        assert http.get(f"/flow-runs/{uuid.uuid4()}").status_code == 404
        assert http.get("/flow-runs/not-a-uuid").status_code == 422


def test_task_runs_and_logs_are_batched(server) -> None:
    with server.http() as http:
        run = http.post("/flow-runs", json={"flow_name": "f"}).json()
        records = [
            {
                "id": str(uuid.uuid4()),
                "flow_run_id": run["id"],
                "name": f"t{i}",
                "state": "COMPLETED",
            }
            for i in range(5)
        ]
        assert http.post("/task-runs", json=records).json() == {"count": 5}
        records[0]["state"] = "FAILED"
        http.post("/task-runs", json=records[:1])
        tasks = http.get("/task-runs", params={"flow_run_id": run["id"]}).json()
        assert len(tasks) == 5
        assert {t["state"] for t in tasks} == {"COMPLETED", "FAILED"}

        logs = [{"flow_run_id": run["id"], "message": f"line {i}"} for i in range(500)]
        assert http.post("/logs", json=logs).json() == {"count": 500}
        first = http.get("/logs", params={"flow_run_id": run["id"], "limit": 300}).json()
        rest = http.get(
            "/logs", params={"flow_run_id": run["id"], "after_id": first[-1]["id"]}
        ).json()
        assert [entry["message"] for entry in first + rest] == [f"line {i}" for i in range(500)]

        orphan = http.post("/logs", json=[{"flow_run_id": str(uuid.uuid4()), "message": "x"}])
        assert orphan.status_code == 422 and orphan.json()["field"] == "flow_run_id"


def test_task_runs_and_logs_keep_every_field(server) -> None:
    with server.http() as http:
        run = http.post("/flow-runs", json={"flow_name": "f"}).json()
        task_run = {
            "id": str(uuid.uuid4()),
            "flow_run_id": run["id"],
            "name": "fetch-1",
            "task_key": "flows.fetch",
            "state": "FAILED",
            # given in another zone: stored and answered in UTC
            "start_time": "2026-03-01T13:00:00.000001+01:00",
            "end_time": "2026-03-01T12:00:02Z",
            "cache_key": "abc",
            "cached": True,
            "attempts": 3,
            "error": "ValueError: no",
            "tags": ["etl", "nightly"],
        }
        http.post("/task-runs", json=[task_run]).raise_for_status()
        [stored] = http.get("/task-runs", params={"flow_run_id": run["id"]}).json()
        assert stored == {
            **task_run,
            "start_time": "2026-03-01T12:00:00.000001Z",
            "end_time": "2026-03-01T12:00:02Z",
        }

        log = {
            "flow_run_id": run["id"],
            "task_run_id": task_run["id"],
            "level": 40,
            "name": "dockyard.task",
            "message": "it broke",
            "timestamp": "2026-03-01T12:00:01.5Z",
        }
        http.post("/logs", json=[log]).raise_for_status()
        [entry] = http.get("/logs", params={"flow_run_id": run["id"]}).json()
        assert {k: entry[k] for k in log} == {**log, "timestamp": "2026-03-01T12:00:01.500000Z"}


def test_fifty_concurrent_creates_all_succeed(server) -> None:
    async def create_all() -> list[int]:
        async def one(i: int) -> int:
            async with httpx.AsyncClient(base_url=server.api_url, timeout=60) as http:
                answer = await http.post(
                    "/flow-runs", json={"flow_name": "load", "state": "SCHEDULED"}
                )
                return answer.status_code

        return await asyncio.gather(*(one(i) for i in range(50)))

    assert asyncio.run(create_all()) == [201] * 50
    with server.http() as http:
        assert len(http.get("/flow-runs", params={"flow_name": "load"}).json()) == 50
