"""Artifacts over the real API, on SQLite and PostgreSQL: versions of a key and its latest,
the filters, progress updated in place, deletes, and every refusal naming its field."""

from __future__ import annotations

import json
from typing import Any

import httpx

from _support import RunningServer
from dockyard.schemas.artifacts import ARTIFACT_DATA_MAX_BYTES


def created(http: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = http.post("/artifacts", json=body)
    assert answer.status_code == 201, answer.text
    artifact: dict[str, Any] = answer.json()
    return artifact


def refused(http: httpx.Client, status: int, field: str, *words: str, **body: Any) -> str:
    """POST ``body``; assert it answers ``status`` naming ``field`` and ``words``."""
    answer = http.post("/artifacts", json=body)
    assert answer.status_code == status, (body, answer.text[:500])
    assert answer.json().get("field") == field, answer.text[:500]
    for word in words:
        assert word in answer.json()["detail"], answer.text[:500]
    return str(answer.json()["detail"])


def test_versions_of_a_key_the_latest_filters_updates_and_deletes(server: RunningServer) -> None:
    with server.http() as http:
        run = http.post("/flow-runs", json={"flow_name": "reporting"}).json()
        other = http.post("/flow-runs", json={"flow_name": "reporting"}).json()
        first = created(
            http,
            type="markdown",
            key="daily-report",
            data="# v1",
            description="first",
            flow_run_id=run["id"],
            task_run_id="6f0c2a1e-5d4b-4c3a-9b8a-7f6e5d4c3b2a",
        )
        assert (first["key"], first["type"], first["data"], first["description"]) == (
            "daily-report",
            "markdown",
            "# v1",
            "first",
        )
        assert first["flow_run_id"] == run["id"] and first["created"] == first["updated"]
        assert first["task_run_id"] == "6f0c2a1e-5d4b-4c3a-9b8a-7f6e5d4c3b2a"
        second = created(http, type="markdown", key="daily-report", data="# v2")
        table = created(
            http, type="table", data=[{"a": 1}, {"b": "x"}], flow_run_id=run["id"]
        )  # no key: stands alone
        bar = created(http, type="progress", key="load", data=0, flow_run_id=other["id"])
        link = created(
            http, type="link", key="docs", data={"link": "s3://bucket/k", "link_text": None}
        )

        assert http.get(f"/artifacts/{first['id']}").json() == first
        history = http.get("/artifacts", params={"key": "daily-report"}).json()
        assert [a["id"] for a in history] == [second["id"], first["id"]]  # newest first
        assert http.get("/artifacts/latest/daily-report").json() == second
        everything = [a["id"] for a in http.get("/artifacts").json()]
        assert everything == [link["id"], bar["id"], table["id"], second["id"], first["id"]]
        by_run = http.get("/artifacts", params={"flow_run_id": run["id"]}).json()
        assert [a["id"] for a in by_run] == [table["id"], first["id"]]
        by_task = http.get("/artifacts", params={"task_run_id": first["task_run_id"]}).json()
        assert [a["id"] for a in by_task] == [first["id"]]
        tables = http.get("/artifacts", params={"type": "table"}).json()
        assert [a["id"] for a in tables] == [table["id"]]
        page = http.get("/artifacts", params={"limit": 2, "offset": 1}).json()
        assert [a["id"] for a in page] == everything[1:3]

        # progress moves in place: no new version, `updated` moves, the bar is the latest
        moved = http.patch(f"/artifacts/{bar['id']}", json={"data": 62.5, "description": "rows"})
        assert moved.status_code == 200, moved.text
        assert (moved.json()["data"], moved.json()["description"]) == (62.5, "rows")
        assert moved.json()["updated"] > bar["updated"]
        assert len(http.get("/artifacts", params={"key": "load"}).json()) == 1
        latest = http.get("/artifacts/latest").json()
        assert [a["key"] for a in latest] == ["load", "docs", "daily-report"]
        assert http.get("/artifacts/latest", params={"key_prefix": "da"}).json() == [second]
        assert [a["key"] for a in http.get("/artifacts/latest?type=link").json()] == ["docs"]
        for body, status, words in [
            ({"data": 101}, 422, "less than or equal to 100"),
            ({"data": None}, 422, "not null"),
            ({"data": True}, 422, "number"),
        ]:
            answer = http.patch(f"/artifacts/{bar['id']}", json=body)
            assert answer.status_code == status and words in answer.text, answer.text
            assert answer.json()["field"] == "data"
        not_progress = http.patch(f"/artifacts/{second['id']}", json={"data": 5})
        assert not_progress.status_code == 409
        assert "only a progress artifact" in not_progress.json()["detail"]
        assert "key 'daily-report'" in not_progress.json()["hint"]

        # a deleted run leaves its artifacts, unlinked
        assert http.delete(f"/flow-runs/{run['id']}").status_code == 204
        assert http.get(f"/artifacts/{table['id']}").json()["flow_run_id"] is None

        assert http.delete(f"/artifacts/{second['id']}").status_code == 204
        assert http.get("/artifacts/latest/daily-report").json()["id"] == first["id"]
        assert http.delete(f"/artifacts/{second['id']}").status_code == 404
        assert http.delete("/artifacts/key/daily-report").status_code == 204
        gone = http.get("/artifacts/latest/daily-report")
        assert gone.status_code == 404 and "'daily-report'" in gone.json()["detail"]
        assert "dockyard artifact ls" in gone.json()["hint"]
        check_the_schema_ids_and_prefixes(http)
        assert http.delete("/artifacts/key/daily-report").status_code == 404
        never = http.get("/artifacts/latest/Daily_Report").json()
        assert "'daily-report'" in never["hint"]  # the key it could have been
        missing = http.get(f"/artifacts/{first['id']}")
        assert missing.status_code == 404 and first["id"] in missing.json()["detail"]
    assert "Traceback" not in server.log()


def test_bad_keys_shapes_links_and_sizes_are_refused_naming_the_field(
    server: RunningServer,
) -> None:
    with server.http() as http:
        for key, words in [
            ("Daily", "write it 'daily'"),
            ("daily_report", "write it 'daily-report'"),
            ("", "must not be empty"),
            ("x" * 256, "more than 255"),
            ("a\x00b", "must not contain '\\x00'"),
        ]:
            refused(http, 422, "key", words, type="markdown", key=key, data="x")
        refused(http, 422, "type", type="pdf", data="x")

        table = {"type": "table"}
        for data, words in [
            ([[1, 2], [3]], "row 1 has 1 cells, but row 0 has 2"),
            ([[1], {"a": 1}], "row 1 is an object, but row 0 is a list"),
            ({"a": [1, 2], "b": [1]}, "the columns differ in length"),
            ({"a": 1}, "column 'a' is a number"),
            ("a,b", "must be a table, not a string"),
            ([1, 2], "row 0 is a number"),
        ]:
            refused(http, 422, "data", words, data=data, **table)
        for data in ([], {}, [[]], [{}], {"a": [], "b": []}, [[1, [2, {"x": None}]]]):
            created(http, type="table", data=data)

        for data, words in [
            (-0.5, "from 0 to 100"),
            (100.5, "from 0 to 100"),
            ("50", "from 0 to 100"),
            (True, "from 0 to 100"),
        ]:
            refused(http, 422, "data", words, type="progress", data=data)
        for data, words in [
            ("javascript:alert(1)", "must be an absolute URL starting with http://"),
            ("data:image/png;base64,AAAA", "http:// or https://"),
            ("//cdn.example/x.png", "absolute URL"),
            (" https://x.example/a.png", "whitespace"),
            ("https://x.example/" + "a" * 2048, "more than 2048"),
            (7, "must be a URL"),
        ]:
            refused(http, 422, "data", words, type="image", data=data)
        for data, words in [
            ("https://x.example", '{"link": URL'),
            ({"link": "https://x.example", "extra": 1}, '{"link": URL'),
            ({"link": ""}, "must be a URL"),
            ({"link": "https://x.example", "link_text": 3}, "link_text"),
        ]:
            refused(http, 422, "data", words, type="link", data=data)
        refused(http, 422, "data", "a string", type="markdown", data=["not", "text"])
        refused(http, 422, "data", "NUL", type="markdown", data="nul \x00 inside")
        refused(
            http, 422, "description", "65536", type="markdown", data="", description="d" * 65_537
        )

        nowhere = "00000000-0000-4000-8000-000000000000"
        detail = refused(
            http, 422, "flow_run_id", "not found", type="markdown", data="x", flow_run_id=nowhere
        )
        assert nowhere in detail

        # 1 MiB of JSON: a string's JSON is the string and its two quotes
        largest = "x" * (ARTIFACT_DATA_MAX_BYTES - 2)
        fits = created(http, type="markdown", key="big", data=largest)
        assert http.get(f"/artifacts/{fits['id']}").json()["data"] == largest
        refused(http, 422, "data", "more than 1048576 (1 MiB)", type="markdown", data=largest + "x")
        wide = [["é" * 1000] * 100] * 6  # bytes, not characters: each 'é' is two
        refused(http, 422, "data", "1 MiB", type="table", data=wide)
        over_body = http.post(
            "/artifacts",
            content=json.dumps({"type": "markdown", "data": "x" * (5 << 20)}),
            headers={"Content-Type": "application/json"},
        )
        assert over_body.status_code == 413
        assert [a["key"] for a in http.get("/artifacts/latest").json()] == ["big"]
    assert "Traceback" not in server.log()


def check_the_schema_ids_and_prefixes(http: httpx.Client) -> None:
    """The schema documents every route, "latest" is never read as an id, and a key prefix
    is text."""
    paths = http.get("/openapi.json").json()["paths"]
    assert set(paths["/api/artifacts"]) == {"get", "post"}
    assert set(paths["/api/artifacts/{artifact_id}"]) == {"get", "patch", "delete"}
    assert set(paths["/api/artifacts/latest"]) == {"get"}
    assert set(paths["/api/artifacts/latest/{key}"]) == {"get"}
    assert set(paths["/api/artifacts/key/{key}"]) == {"delete"}
    post = paths["/api/artifacts"]["post"]["responses"]
    assert {"201", "422"} <= set(post) and "200" not in post
    assert "409" in paths["/api/artifacts/{artifact_id}"]["patch"]["responses"]
    key = paths["/api/artifacts/latest/{key}"]["get"]["parameters"][0]
    assert key["name"] == "key" and key["in"] == "path"

    # "latest" is never taken for an id, and a path that is no id names nothing
    assert http.patch("/artifacts/latest", json={"data": 1}).status_code == 405
    assert http.delete("/artifacts/latest").status_code == 405
    assert http.get("/artifacts/not-an-id").status_code == 404
    prefixed = [created(http, type="markdown", key=k, data=k) for k in ("ab-1", "ab-2", "b")]
    listed = http.get("/artifacts", params={"key_prefix": "ab"}).json()
    assert [a["id"] for a in listed] == [prefixed[1]["id"], prefixed[0]["id"]]
    wild = http.get("/artifacts/latest", params={"key_prefix": "%"}).json()
    assert wild == []  # a prefix is text, not a LIKE pattern


def test_keys_follow_the_published_pattern() -> None:
    import re

    from dockyard import _names

    pattern = re.compile(_names.ARTIFACT_KEY_PATTERN)
    for key in ["a", "daily-report", "0", "-", "x" * 255]:
        assert _names.artifact_key_problem(key) is None and pattern.search(key)
    for key in ["", "A", "a_b", "a.b", "a b", "a/b", "ab\n", "é", "x" * 256]:
        assert _names.artifact_key_problem(key) is not None
        assert not pattern.search(key) or len(key) > _names.MAX_ARTIFACT_KEY
