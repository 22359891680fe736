"""Parameters: validation and coercion from type hints, and their JSON schema."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from dockyard import flow
from dockyard.exceptions import ParameterValidationError
from dockyard.sdk.docstrings import docstring_arguments


class Color(Enum):
    RED = "red"
    BLUE = "blue"


class Point(BaseModel):
    x: int
    y: int = 0


def test_values_are_coerced_from_the_type_hints() -> None:
    @flow
    def typed(n: int, when: dt.date, color: Color, point: Point, ratio: float = 1.0) -> Any:
        return n, when, color, point, ratio

    n, when, color, point, ratio = typed("3", "2024-05-01", "red", {"x": "1"})  # type: ignore[arg-type]
    assert (n, when, color, point, ratio) == (3, dt.date(2024, 5, 1), Color.RED, Point(x=1), 1.0)


def test_a_bad_value_fails_before_the_flow_runs_and_names_the_parameter() -> None:
    ran: list[int] = []

    @flow
    def count(n: int, label: str = "x") -> None:
        ran.append(n)

    with pytest.raises(ParameterValidationError) as info:
        count("many")  # type: ignore[arg-type]
    assert ran == []
    message = str(info.value)
    assert "flow 'count'" in message and "parameter 'n'" in message and "'many'" in message


def test_nested_errors_say_where() -> None:
    @flow
    def move(point: Point) -> None: ...

    with pytest.raises(ParameterValidationError, match=r"parameter 'point' \(at y\)"):
        move({"x": 1, "y": "up"})  # type: ignore[arg-type]


def test_defaults_are_not_validated_and_validation_can_be_off() -> None:
    @flow
    def sloppy(name: str = None) -> str | None:  # type: ignore[assignment]  # noqa: RUF013
        return name

    assert sloppy() is None

    @flow(validate_parameters=False)
    def raw(n: int) -> Any:
        return n

    assert raw("7") == "7"  # type: ignore[arg-type]


def test_any_parameter_name_works() -> None:
    @flow
    def odd(json: int, model_config: str, *args: int, **kwargs: float) -> Any:
        return json, model_config, args, kwargs

    assert odd("1", "c", "2", "3", extra="1.5") == (1, "c", (2, 3), {"extra": 1.5})  # type: ignore[arg-type]


def test_unresolvable_hints_are_not_validated() -> None:
    @flow
    def later(thing: "NotDefinedAnywhere", n: int) -> Any:  # type: ignore[name-defined]  # noqa: F821, UP037
        return thing, n

    assert later("anything", "2") == ("anything", 2)  # type: ignore[arg-type]


def test_the_schema_has_types_defaults_descriptions_and_order() -> None:
    @flow
    def get_repo_info(
        repo_name: str = "PrefectHQ/prefect",
        limit: int = 10,
        since: dt.date | None = None,
        mode: Literal["fast", "slow"] = "fast",
        point: Point | None = None,
        *,
        required: float,
        untyped=None,
    ) -> None:
        """Read a repository's statistics.

        Args:
            repo_name: the repository, as owner/name.
            limit (int): at most this many pages,
                fetched one by one.
            required: no default.

        Returns:
            nothing.
        """

    schema = get_repo_info.parameter_schema()
    props = schema["properties"]
    assert schema["title"] == "get-repo-info" and schema["type"] == "object"
    assert list(props) == ["repo_name", "limit", "since", "mode", "point", "required", "untyped"]
    assert props["repo_name"]["type"] == "string"
    assert props["repo_name"]["default"] == "PrefectHQ/prefect"
    assert props["repo_name"]["description"] == "the repository, as owner/name."
    assert props["repo_name"]["title"] == "Repo Name"
    assert props["limit"]["description"] == "at most this many pages, fetched one by one."
    assert props["limit"]["type"] == "integer"
    assert props["mode"]["enum"] == ["fast", "slow"]
    assert [p["position"] for p in props.values()] == list(range(7))
    assert schema["required"] == ["required"]
    assert "Point" in schema["$defs"]
    assert "type" not in props["untyped"]


def test_schema_survives_types_without_a_json_schema() -> None:
    class Opaque:
        pass

    @flow
    def odd(thing: Opaque = Opaque(), when: dt.datetime | None = None) -> None:
        pass

    props = odd.parameter_schema()["properties"]
    assert "default" not in props["thing"]
    assert props["when"]["anyOf"][0]["format"] == "date-time"


def test_docstring_arguments_google_and_rest_styles() -> None:
    def google(a: int, b: int) -> None:
        """Summary.

        Args:
            a: first
                and more.
            b (int, optional): second.
        Raises:
            ValueError: never.
        """

    def rest(a: int) -> None:
        """Summary.

        :param int a: the a.
        """

    assert docstring_arguments(google) == {"a": "first and more.", "b": "second."}
    assert docstring_arguments(rest) == {"a": "the a."}
    assert docstring_arguments(lambda: None) == {}
