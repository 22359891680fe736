"""Work pools, queues and worker types over the real API, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
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


def _template_with(prop: dict, defs: dict | None = None) -> dict:
    variables: dict = {"type": "object", "properties": {"size": prop}}
    if defs is not None:
        variables["$defs"] = defs
    return {"job_configuration": {"command": "run {{ size }}"}, "variables": variables}


@pytest.mark.parametrize(
    ("prop", "defs", "field", "words"),
    [
        (
            {"$ref": "#/$defs/Missing"},
            {"Size": {"type": "integer"}},
            "base_job_template.variables.properties.size.$ref",
            "'#/$defs/Missing' resolves to nothing",
        ),
        (
            {"$ref": "#/$defs/Size"},
            {"Size": {"$ref": "#/$defs/Gone"}},
            "base_job_template.variables.$defs.Size.$ref",
            "'#/$defs/Gone' resolves to nothing",
        ),
        (
            {"$ref": "http://127.0.0.1:9/size.json"},
            None,
            "base_job_template.variables.properties.size.$ref",
            "never fetched",
        ),
        (
            {"$ref": "size.json#/$defs/Size"},
            None,
            "base_job_template.variables.properties.size.$ref",
            "never fetched",
        ),
    ],
)
def test_a_template_whose_refs_resolve_to_nothing_is_refused(
    server, prop, defs, field, words
) -> None:
    bad = _template_with(prop, defs)
    with server.http() as http:
        created = http.post(
            "/work-pools", json={"name": "p", "type": "process", "base_job_template": bad}
        )
        assert created.status_code == 422, created.text
        assert created.json()["field"] == field
        assert words in created.json()["detail"]
        assert http.get("/work-pools").json() == []

        assert http.post("/work-pools", json={"name": "p", "type": "process"}).status_code == 201
        before = http.get("/work-pools/p").json()["base_job_template"]
        updated = http.patch("/work-pools/p", json={"base_job_template": bad})
        assert updated.status_code == 422, updated.text
        assert updated.json()["field"] == field
        assert words in updated.json()["detail"]
        assert http.get("/work-pools/p").json()["base_job_template"] == before


def test_a_local_ref_checks_a_deployments_job_variables(server) -> None:
    template = _template_with({"$ref": "#/$defs/Size"}, {"Size": {"type": "integer", "minimum": 1}})
    with server.http() as http:
        created = http.post(
            "/work-pools", json={"name": "p", "type": "process", "base_job_template": template}
        )
        assert created.status_code == 201, created.text

        def deploy(size: object) -> httpx.Response:
            body = {"flow_name": "f", "name": "d", "work_pool_name": "p"}
            return http.post("/deployments", json=body | {"job_variables": {"size": size}})

        assert deploy(3).status_code == 200
        small = deploy(0)
        assert small.status_code == 422, small.text
        assert small.json()["field"] == "job_variables.size"
        assert deploy("big").status_code == 422


def test_not_found_gives_no_advice_to_create_a_name_that_cannot_exist(server) -> None:
    with server.http() as http:
        assert http.post("/work-pools", json={"name": "pool", "type": "process"}).status_code == 201
        plain = http.get("/work-pools/missing").json()
        assert "dockyard work-pool create missing" in plain["hint"]
        odd = http.get("/work-pools/two words").json()
        assert "create" not in odd["hint"] and "must not contain ' '" in odd["hint"]
        queue = http.get("/work-pools/pool/queues/%20edge").json()
        assert "create" not in queue["hint"] and "whitespace" in queue["hint"]
