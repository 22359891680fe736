"""``dockyard variable`` against a real server, run as a subprocess."""

from __future__ import annotations

import json

from _support import RunningServer, assert_clean_error


def test_variable_lifecycle(server: RunningServer) -> None:
    set_ = server.cli("variable", "set", "crew", '["zaphod", "arthur"]', "--tag", "ship")
    assert "Set variable 'crew'" in set_.stdout
    assert json.loads(server.cli("variable", "get", "crew").stdout) == ["zaphod", "arthur"]

    [listed] = json.loads(server.cli("variable", "ls", "--json").stdout)
    assert (listed["name"], listed["value"], listed["tags"]) == (
        "crew",
        ["zaphod", "arthur"],
        ["ship"],
    )
    table = server.cli("variable", "ls").stdout
    assert "crew" in table and '["zaphod", "arthur"]' in table and "ship" in table

    again = server.cli("variable", "set", "crew", "[]", check=False)
    assert_clean_error(again, "'crew' already exists", "--overwrite")
    server.cli("variable", "set", "crew", '{"captain": "zaphod"}', "--overwrite")
    shown = json.loads(server.cli("variable", "inspect", "crew", "--json").stdout)
    assert (shown["value"], shown["tags"]) == ({"captain": "zaphod"}, [])
    inspected = server.cli("variable", "inspect", "crew").stdout
    assert '"captain": "zaphod"' in inspected and shown["id"] in inspected

    deleted = server.cli("variable", "unset", "crew")
    assert "Deleted variable 'crew'" in deleted.stdout
    assert_clean_error(server.cli("variable", "get", "crew", check=False), "'crew' not found")
    assert_clean_error(server.cli("variable", "unset", "crew", check=False), "'crew' not found")
    assert "No variables yet" in server.cli("variable", "ls").stdout


def test_values_are_json_when_they_parse_and_text_otherwise(server: RunningServer) -> None:
    given = {
        "number": ("42", 42),
        "decimal": ("2.5", 2.5),
        "flag": ("true", True),
        "nothing": ("null", None),
        "quoted": ('"42"', "42"),
        "words": ("hello world", "hello world"),
        "broken": ('{"a": 1', '{"a": 1'),
        "not-a-number": ("NaN", "NaN"),
        "object": ('{"k": [1, {"x": null}]}', {"k": [1, {"x": None}]}),
    }
    for name, (text, _) in given.items():
        server.cli("variable", "set", name, text)
    for name, (_, value) in given.items():
        assert json.loads(server.cli("variable", "get", name).stdout) == value, name
    negative = server.cli("variable", "set", "negative", "--", "-5")
    assert "to -5" in negative.stdout
    assert json.loads(server.cli("variable", "get", "negative").stdout) == -5


def test_refusals_are_one_clean_line(server: RunningServer) -> None:
    bad_name = server.cli("variable", "set", "My Var", "1", check=False)
    assert_clean_error(bad_name, "invalid name", "lowercase letters")
    too_deep = server.cli("variable", "set", "deep", "[" * 101 + "]" * 101, check=False)
    assert_clean_error(too_deep, "VALUE", "levels deep")
    # a byte that is not UTF-8 (here 0xE9, Latin-1's 'é') reaches Python as a lone surrogate
    not_utf8 = server.cli("variable", "set", "odd", "caf\udce9", check=False)
    assert_clean_error(not_utf8, "invalid value", "surrogate")
    unknown = server.cli("variable", "inspect", "Not-A-Name", check=False)
    assert_clean_error(unknown, "'Not-A-Name' not found", "lowercase")
    assert json.loads(server.cli("variable", "ls", "--json").stdout) == []


def test_ls_filters_by_prefix_and_tag(server: RunningServer) -> None:
    server.cli("variable", "set", "db_host", "db.local", "--tag", "db")
    server.cli("variable", "set", "db_port", "5432", "--tag", "db", "--tag", "net")
    server.cli("variable", "set", "api_url", "http://x", "--tag", "net")

    def names(*args: str) -> list[str]:
        listed = json.loads(server.cli("variable", "ls", "--json", *args).stdout)
        return [v["name"] for v in listed]

    assert names() == ["api_url", "db_host", "db_port"]
    assert names("--prefix", "db_") == ["db_host", "db_port"]
    assert names("--tag", "net") == ["api_url", "db_port"]
    assert names("--tag", "net", "--prefix", "db") == ["db_port"]
