"""Variables over the real API, on SQLite and PostgreSQL: named JSON values, their limits,
and the answers to what cannot be stored."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import httpx
import pytest

from dockyard import _names
from dockyard._values import VARIABLE_VALUE_MAX_BYTES

# every JSON type, and the values databases like to change: big and small numbers, text
# beyond ASCII, an empty string, nested containers
VALUES: list[Any] = [
    "plain text",
    "",
    "ünïcödé 中文 \U0001f600",
    0,
    -42,
    2**62,
    3.25,
    1e-300,
    True,
    False,
    None,
    [],
    {},
    [1, "two", None, [3.5, {"four": False}]],
    {"nested": {"list": [1, 2, 3], "flag": True, "none": None}, "text": 'quotes " and \\'},
]


def test_variable_lifecycle(server) -> None:
    with server.http() as http:
        created = http.post(
            "/variables", json={"name": "crew_1", "value": ["zaphod"], "tags": ["ship"]}
        )
        assert created.status_code == 201, created.text
        variable = created.json()
        assert (variable["name"], variable["value"], variable["tags"]) == (
            "crew_1",
            ["zaphod"],
            ["ship"],
        )
        assert variable["created"] == variable["updated"]

        read = http.get("/variables/name/crew_1")
        assert read.status_code == 200 and read.json() == variable
        assert http.get("/variables").json() == [variable]

        changed = http.patch("/variables/name/crew_1", json={"value": {"captain": "zaphod"}})
        assert changed.status_code == 200, changed.text
        assert changed.json()["value"] == {"captain": "zaphod"}
        assert changed.json()["tags"] == ["ship"]  # not sent: kept
        assert changed.json()["updated"] > variable["updated"]
        retagged = http.patch("/variables/name/crew_1", json={"tags": ["a", "b"]}).json()
        assert (retagged["value"], retagged["tags"]) == ({"captain": "zaphod"}, ["a", "b"])
        nulled = http.patch("/variables/name/crew_1", json={"value": None}).json()
        assert nulled["value"] is None and nulled["tags"] == ["a", "b"]

        replaced = http.put("/variables/name/crew_1", json={"value": 7})
        assert replaced.status_code == 200, replaced.text
        assert (replaced.json()["value"], replaced.json()["tags"]) == (7, [])
        assert replaced.json()["id"] == variable["id"]
        made = http.put("/variables/name/new-one", json={"value": "x", "tags": ["t"]})
        assert made.status_code == 200 and made.json()["tags"] == ["t"]

        assert http.delete("/variables/name/crew_1").status_code == 204
        gone = http.get("/variables/name/crew_1")
        assert gone.status_code == 404
        assert gone.json()["detail"] == "variable 'crew_1' not found"
        assert "dockyard variable set crew_1" in gone.json()["hint"]
        again = http.delete("/variables/name/crew_1")
        assert again.status_code == 404 and "crew_1" in again.json()["detail"]
        unknown = http.patch("/variables/name/crew_1", json={"value": 1})
        assert unknown.status_code == 404
        assert [v["name"] for v in http.get("/variables").json()] == ["new-one"]


def test_every_json_value_comes_back_as_it_was_stored(server) -> None:
    with server.http() as http:
        for index, value in enumerate(VALUES):
            name = f"value-{index}"
            created = http.post("/variables", json={"name": name, "value": value})
            assert created.status_code == 201, (value, created.text)
            assert http.get(f"/variables/name/{name}").json()["value"] == value
            http.put(f"/variables/name/{name}", json={"value": [value]})
            assert http.get(f"/variables/name/{name}").json()["value"] == [value]


def test_duplicates_bad_names_and_unstorable_values_are_refused(server) -> None:
    with server.http() as http:
        assert http.post("/variables", json={"name": "taken", "value": 1}).status_code == 201
        duplicate = http.post("/variables", json={"name": "taken", "value": 2})
        assert duplicate.status_code == 409
        assert duplicate.json()["field"] == "name"
        assert "already exists" in duplicate.json()["detail"]
        assert "--overwrite" in duplicate.json()["hint"]
        assert http.get("/variables/name/taken").json()["value"] == 1

        for name in ["Upper", "with space", "dot.ted", "", "x" * 256, "a\x00b", "ü"]:
            refused = http.post("/variables", json={"name": name, "value": 1})
            assert refused.status_code == 422, (name, refused.text)
            assert refused.json()["field"] == "name"
            assert "lowercase letters" in refused.json()["detail"] or "NUL" in refused.text
        assert "'upper'" in http.post("/variables", json={"name": "Upper", "value": 1}).text
        assert http.post("/variables", json={"name": "x" * 255, "value": 1}).status_code == 201
        bad_path = http.put("/variables/name/Upper", json={"value": 1})
        assert bad_path.status_code == 422 and bad_path.json()["field"] == "name"
        never = http.get("/variables/name/Upper").json()
        assert "lowercase" in never["hint"] and "dockyard variable set" not in never["hint"]

        for value, words in [
            ("nul \x00 inside", "NUL"),
            ({"key\x00": 1}, "NUL"),
            ("\ud800", "surrogate"),
            (_nested(101), "levels deep"),
        ]:
            refused = http.post(
                "/variables",
                content=_json_text({"name": "refused", "value": value}),
                headers={"Content-Type": "application/json"},
            )
            assert refused.status_code == 422, (value, refused.text)
            assert refused.json()["field"] == "value" and words in refused.json()["detail"]
        for body in ({"name": "no-value"}, {"name": "x", "value": 1, "extra": 2}):
            assert http.post("/variables", json=body).status_code == 422
        assert http.patch("/variables/name/taken", json={"tags": ["\x00"]}).status_code == 422
        assert http.get("/variables/name/refused").status_code == 404


def test_values_are_limited_to_256_kib_of_json(server) -> None:
    # a string's JSON text is the string and its two quotes
    largest = "x" * (VARIABLE_VALUE_MAX_BYTES - 2)
    with server.http() as http:
        fits = http.post("/variables", json={"name": "big", "value": largest})
        assert fits.status_code == 201, fits.text[:300]
        assert http.get("/variables/name/big").json()["value"] == largest
        over = http.post("/variables", json={"name": "too-big", "value": largest + "x"})
        assert over.status_code == 422
        assert over.json()["field"] == "value"
        assert f"more than {VARIABLE_VALUE_MAX_BYTES}" in over.json()["detail"]
        # bytes, not characters: each 'é' is two bytes of UTF-8
        wide = "é" * (VARIABLE_VALUE_MAX_BYTES // 2)
        assert http.put("/variables/name/big", json={"value": wide}).status_code == 422
        assert http.patch("/variables/name/big", json={"value": wide}).status_code == 422
        assert http.get("/variables/name/big").json()["value"] == largest


def test_lists_filter_by_name_prefix_and_tag_and_page(server) -> None:
    tagged = {"a_b": ["red"], "axb": ["red", "blue"], "a-c": [], "b": ["blue"], "b_2": ["re"]}
    with server.http() as http:
        for name, tags in tagged.items():
            answer = http.post("/variables", json={"name": name, "value": name, "tags": tags})
            assert answer.status_code == 201, answer.text

        def names(**params: Any) -> list[str]:
            answer = http.get("/variables", params=params)
            assert answer.status_code == 200, answer.text
            return [v["name"] for v in answer.json()]

        assert names() == ["a-c", "a_b", "axb", "b", "b_2"]
        assert names(name_prefix="a") == ["a-c", "a_b", "axb"]
        assert names(name_prefix="a_") == ["a_b"]  # '_' is no wildcard
        assert names(name_prefix="%") == []
        assert names(tag="red") == ["a_b", "axb"]  # 're' is not 'red', nor the reverse
        assert names(tag="re") == ["b_2"]
        assert names(tag="blue", name_prefix="b") == ["b"]
        assert names(tag='"red"') == []
        assert names(limit=2) == ["a-c", "a_b"]
        assert names(limit=2, offset=2) == ["axb", "b"]
        assert names(offset=10) == []
        assert http.get("/variables", params={"limit": 0}).status_code == 422
        assert http.get("/variables", params={"tag": "x\x00"}).status_code == 422
        too_long = http.get("/variables", params={"name_prefix": "x" * 256})
        assert too_long.status_code == 422


def test_concurrent_creates_of_one_name_make_one_variable(server) -> None:
    answers: list[int] = []
    lock = threading.Lock()

    def create(value: int) -> None:
        with server.http() as http:
            status = http.post("/variables", json={"name": "race", "value": value}).status_code
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [201] + [409] * 5
    with server.http() as http:
        assert [v["name"] for v in http.get("/variables").json()] == ["race"]


def test_the_schema_documents_the_routes(server) -> None:
    with server.http() as http:
        paths = http.get("/openapi.json").json()["paths"]
    assert set(paths["/api/variables"]) == {"get", "post"}
    assert set(paths["/api/variables/name/{name}"]) == {"get", "put", "patch", "delete"}
    post = paths["/api/variables"]["post"]["responses"]
    assert {"201", "409", "422"} <= set(post) and "200" not in post
    assert "204" in paths["/api/variables/name/{name}"]["delete"]["responses"]
    assert "404" in paths["/api/variables/name/{name}"]["get"]["responses"]


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _json_text(body: Any) -> bytes:
    """``body`` as JSON text; a lone surrogate is written as its escape, as JSON allows."""
    return json.dumps(body).encode()


def test_names_follow_the_published_pattern() -> None:
    pattern = re.compile(_names.VARIABLE_NAME_PATTERN)
    for name in ["a", "a_b-c", "0", "x" * 255, "-", "_"]:
        assert _names.variable_name_problem(name) is None
        assert pattern.search(name)
    for name in ["", "A", "a.b", "a b", "a/b", "ab\n", "é", "x" * 256]:
        assert _names.variable_name_problem(name) is not None
        assert not pattern.search(name) or len(name) > _names.MAX_VARIABLE_NAME


@pytest.mark.parametrize(
    "server", [{"DOCKYARD_SERVER_API_KEY": "variables-test-key-0123456789"}], indirect=True
)
def test_variables_need_the_api_key(server) -> None:
    with httpx.Client(base_url=server.api_url) as anonymous:
        assert anonymous.get("/variables").status_code == 401
        assert anonymous.get("/variables/name/x").status_code == 401
    with server.http() as http:
        assert http.put("/variables/name/x", json={"value": 1}).status_code == 200
