"""Work pools, queues and worker types over the real API, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest


def test_pool_lifecycle(server) -> None:
    with server.http() as http:
        created = http.post("/work-pools", json={"name": "my-pool.1", "type": "process"})
        assert created.status_code == 201, created.text
        pool = created.json()
        assert pool["status"] == "NOT_READY"
        assert pool["last_polled"] is None
        assert "working_dir" in pool["base_job_template"]["variables"]["properties"]

        queues = http.get("/work-pools/my-pool.1/queues").json()
        assert [(q["name"], q["priority"]) for q in queues] == [("default", 1)]

        paused = http.post("/work-pools/my-pool.1/pause").json()
        assert paused["paused"] is True and paused["status"] == "PAUSED"
        resumed = http.post("/work-pools/my-pool.1/resume").json()
        assert resumed["status"] == "NOT_READY"

        limited = http.patch("/work-pools/my-pool.1", json={"concurrency_limit": 3}).json()
        assert limited["concurrency_limit"] == 3
        cleared = http.patch("/work-pools/my-pool.1", json={"clear_concurrency_limit": True}).json()
        assert cleared["concurrency_limit"] is None

        assert [p["name"] for p in http.get("/work-pools").json()] == ["my-pool.1"]
        assert http.delete("/work-pools/my-pool.1").status_code == 204
        gone = http.get("/work-pools/my-pool.1")
        assert gone.status_code == 404
        assert "dockyard work-pool create" in gone.json()["hint"]


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({"name": "bad/name", "type": "process"}, 422, "name", "letters, digits"),
        ({"name": "a b", "type": "process"}, 422, "name", "letters, digits"),
        ({"name": "p", "type": "nope"}, 422, "type", "known types:"),
        ({"name": "p", "type": "process", "concurrency_limit": -1}, 422, "concurrency_limit", ""),
        (
            {
                "name": "p",
                "type": "process",
                "base_job_template": {
                    "job_configuration": {"command": "{{ cmd }} {{ $HOME }}"},
                    "variables": {"type": "object", "properties": {}},
                },
            },
            422,
            "base_job_template.job_configuration",
            "{{ cmd }}",
        ),
        (
            {"name": "p", "type": "process", "base_job_template": {"variables": {}}},
            422,
            "base_job_template.job_configuration",
            "job_configuration",
        ),
    ],
)
def test_bad_pools_are_refused_with_the_field_named(server, body, status, field, words) -> None:
    with server.http() as http:
        answer = http.post("/work-pools", json=body)
        assert answer.status_code == status, answer.text
        assert answer.json()["field"] == field
        assert words in answer.json()["detail"]
        assert http.get("/work-pools").json() == []


def test_duplicate_pool_is_a_conflict(server) -> None:
    with server.http() as http:
        assert http.post("/work-pools", json={"name": "p", "type": "process"}).status_code == 201
        again = http.post("/work-pools", json={"name": "p", "type": "process"})
        assert again.status_code == 409
        assert "already exists" in again.json()["detail"]


def test_env_placeholders_need_no_declaration(server) -> None:
    template = {
        "job_configuration": {"command": "run {{ $HOME }}", "env": "{{ env }}"},
        "variables": {"type": "object", "properties": {"env": {"type": "object"}}},
    }
    with server.http() as http:
        answer = http.post(
            "/work-pools", json={"name": "p", "type": "process", "base_job_template": template}
        )
        assert answer.status_code == 201, answer.text


def test_queue_priorities_stay_unique(server) -> None:
    with server.http() as http:
        http.post("/work-pools", json={"name": "p", "type": "process"})

        def add(name: str, priority: int | None = None) -> dict:
            body = {"name": name} | ({"priority": priority} if priority else {})
            answer = http.post("/work-pools/p/queues", json=body)
            assert answer.status_code == 201, answer.text
            return answer.json()

        assert add("b")["priority"] == 2
        assert add("c")["priority"] == 3
        assert add("urgent", 1)["priority"] == 1
        order = [(q["name"], q["priority"]) for q in http.get("/work-pools/p/queues").json()]
        assert order == [("urgent", 1), ("default", 2), ("b", 3), ("c", 4)]

        moved = http.patch("/work-pools/p/queues/c", json={"priority": 2}).json()
        assert moved["priority"] == 2
        order = [(q["name"], q["priority"]) for q in http.get("/work-pools/p/queues").json()]
        assert order == [("urgent", 1), ("c", 2), ("default", 3), ("b", 4)]

        dup = http.post("/work-pools/p/queues", json={"name": "b"})
        assert dup.status_code == 409
        assert http.post("/work-pools/p/queues/b/pause").json()["paused"] is True
        assert http.delete("/work-pools/p/queues/default").status_code == 409
        assert http.delete("/work-pools/p/queues/b").status_code == 204
        assert http.get("/work-pools/p/queues/b").status_code == 404
        assert http.post("/work-pools/nope/queues", json={"name": "x"}).status_code == 404


def test_worker_types_are_listed_with_their_templates(server) -> None:
    with server.http() as http:
        types = http.get("/worker-types").json()
        assert "process" in [t["type"] for t in types]
        process = http.get("/worker-types/process").json()
        assert "job_configuration" in process["base_job_template"]
        missing = http.get("/worker-types/nope")
        assert missing.status_code == 404
        assert "known types" in missing.json()["detail"]
