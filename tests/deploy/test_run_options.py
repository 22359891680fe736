"""Reading ``deployment run``'s ``--param``, ``--params``, ``--job-variable``, ``--start-in``."""

from __future__ import annotations

import pytest

from dockyard.cli._run_options import parse_duration, parse_pairs, parse_params
from dockyard.exceptions import DockyardError


def test_values_are_json_when_they_parse_else_text() -> None:
    pairs = ["n=3", "on=true", "xs=[1, 2]", "name=a/b", 'quoted="7"', "empty=", "eq=a=b"]
    assert parse_pairs(pairs, "--param") == {
        "n": 3,
        "on": True,
        "xs": [1, 2],
        "name": "a/b",
        "quoted": "7",
        "empty": "",
        "eq": "a=b",
    }


def test_params_json_then_each_param_over_it() -> None:
    assert parse_params('{"a": 1, "b": 2}', ["b=3"]) == {"a": 1, "b": 3}
    assert parse_params(None, None) == {}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("2h", 7200),
        ("1d", 86400),
        ("90", 90),
        ("1.5m", 90),
        ("2H", 7200),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-1m", "10 minutes", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(DockyardError, match="--start-in takes a duration"):
        parse_duration(text)


def test_bad_pairs_and_params() -> None:
    with pytest.raises(DockyardError, match="--param takes KEY=VALUE"):
        parse_pairs(["=1"], "--param")
    with pytest.raises(DockyardError, match="not valid JSON"):
        parse_params("{", None)
