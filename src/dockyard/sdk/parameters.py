"""A flow's parameters: binding a call, validating values, and their JSON schema.

Validation and the schema use pydantic, imported at their first use; binding a call uses
only :mod:`inspect`.
"""

from __future__ import annotations

import inspect
import types
import typing
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from dockyard.exceptions import ParameterValidationError
from dockyard.sdk.docstrings import docstring_arguments

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["ParameterValidationError", "Signature"]

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class Signature:
    """The parameters of one flow or task function.

    Args:
        fn: the function.
        owner: how messages name it, e.g. ``"flow 'etl'"``.
    """

    def __init__(self, fn: Callable[..., Any], *, owner: str) -> None:
        self.fn = fn
        self.owner = owner
        self.inspected = inspect.signature(fn)
        self.parameters = list(self.inspected.parameters.values())
        self._validator: type[BaseModel] | None = None
        self._hints: dict[str, Any] | None = None

    # ------------------------------------------------------------ binding

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Return the call's arguments by parameter name (without defaults).

        Raises:
            TypeError: the call does not fit the signature, as a plain call would.
        """
        try:
            bound = self.inspected.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.owner}: {exc}") from None
        return dict(bound.arguments)

    def with_defaults(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``values`` completed with the defaults of the parameters not given."""
        result: dict[str, Any] = {}
        for p in self.parameters:
            if p.name in values:
                result[p.name] = values[p.name]
            elif p.default is not inspect.Parameter.empty:
                result[p.name] = p.default
            elif p.kind is inspect.Parameter.VAR_POSITIONAL:
                result[p.name] = ()
            elif p.kind is inspect.Parameter.VAR_KEYWORD:
                result[p.name] = {}
        return result

    def call_args(self, values: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Return the positional and keyword arguments that call the function with ``values``."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        positional = True  # until a positional parameter is missing from ``values``
        for p in self.parameters:
            if p.name not in values:
                positional = positional and p.kind not in _POSITIONAL
                continue
            value = values[p.name]
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                args.extend(value)
            elif p.kind is inspect.Parameter.VAR_KEYWORD:
                kwargs.update(value)
            elif positional and p.kind in _POSITIONAL:
                args.append(value)
            else:
                kwargs[p.name] = value
        return tuple(args), kwargs

    # ------------------------------------------------------------ validation

    def validate(self, values: Mapping[str, Any], given: Iterable[str]) -> dict[str, Any]:
        """Return ``values`` with the ``given`` ones validated and coerced from the type hints.

        Defaults are left as they are, as in a plain call.

        Raises:
            ParameterValidationError: a value does not fit; the message names the parameter.
        """
        given = [name for name in given if name in values]
        if not given or not self.hints() or self._already_valid(values, given):
            return dict(values)
        from pydantic import ValidationError

        model = self._validation_model()
        try:
            checked = model.model_validate({name: values[name] for name in given})
        except ValidationError as exc:
            raise ParameterValidationError(self._describe(exc)) from None
        result = dict(values)
        for index, p in enumerate(self.parameters):
            if p.name in given:
                result[p.name] = getattr(checked, f"p{index}")
        return result

    def _already_valid(self, values: Mapping[str, Any], given: list[str]) -> bool:
        """Return whether every given value is exactly of its plain hint (str, int, ...).

        Validation would return such values unchanged, so pydantic is not even imported:
        a deployed flow with simple parameters starts faster.
        """
        kinds = {p.name: p.kind for p in self.parameters}
        hints = self.hints()
        for name in given:
            hint = hints.get(name, Any)
            if hint is Any:
                continue
            if kinds[name] in _VARIADIC or type(values[name]) not in _plain_types(hint):
                return False
        return True

    def hints(self) -> dict[str, Any]:
        """Return the resolved type hints of the parameters (unresolvable ones left out)."""
        if self._hints is None:
            self._hints = _resolve_hints(self.fn, self.parameters)
        return self._hints

    def _annotation(self, p: inspect.Parameter) -> Any:
        hint = self.hints().get(p.name, Any)
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return tuple[hint, ...]  # type: ignore[valid-type]
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            return dict[str, hint]  # type: ignore[valid-type]
        return hint

    def _validation_model(self) -> type[BaseModel]:
        if self._validator is None:
            annotations = {p.name: self._annotation(p) for p in self.parameters}
            model = _model(annotations)
            if not model.__pydantic_complete__:
                # a hint names something that does not exist: leave that one unchecked
                model = _model({n: a if _usable(a) else Any for n, a in annotations.items()})
            self._validator = model
        return self._validator

    def _describe(self, error: Any) -> str:
        problems = []
        for item in error.errors(include_url=False):
            loc = [str(part) for part in item.get("loc", ())]
            name = loc[0] if loc else "?"
            where = f"parameter {name!r}" + (f" (at {'.'.join(loc[1:])})" if loc[1:] else "")
            got = _short(item.get("input"))
            problems.append(f"{where}: {item.get('msg', 'invalid value')} (got {got})")
        return f"{self.owner} got invalid parameters: " + "; ".join(problems)

    # ------------------------------------------------------------ JSON schema

    def schema(self, title: str = "Parameters") -> dict[str, Any]:
        """Return the JSON schema of the parameters (``*args``/``**kwargs`` left out)."""
        from pydantic import ConfigDict, Field, create_model

        described = docstring_arguments(self.fn)
        fields: dict[str, Any] = {}
        for index, p in enumerate(self.parameters):
            if p.kind in _VARIADIC:
                continue
            default = ... if p.default is inspect.Parameter.empty else p.default
            field = Field(
                default,
                alias=p.name,
                title=p.name.replace("_", " ").title(),
                description=described.get(p.name),
                json_schema_extra={"position": index},
            )
            fields[f"p{index}"] = (_schema_type(self.hints().get(p.name, Any)), field)
        model = create_model(
            "Parameters", __config__=ConfigDict(arbitrary_types_allowed=True), **fields
        )
        with warnings.catch_warnings():
            # a default that is not JSON is left out of the schema, with a warning we skip
            warnings.simplefilter("ignore")
            schema = model.model_json_schema(by_alias=True)
        schema["title"] = title
        schema.setdefault("properties", {})
        return schema


_PLAIN = (str, int, float, bool, type(None))


def _plain_types(hint: Any) -> tuple[type, ...]:
    """Return the plain types a hint is made of (``str | None`` → str, NoneType), else ()."""
    if hint in _PLAIN:
        return (hint,)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = typing.get_args(hint)
        if all(member in _PLAIN for member in members):
            return tuple(members)
    return ()


def _model(annotations: dict[str, Any]) -> type[BaseModel]:
    """Return a model with one optional field per parameter, aliased by its name.

    Fields are named p0, p1, ...: a parameter may be called anything, even ``json``.
    """
    from pydantic import ConfigDict, Field, create_model

    fields: dict[str, Any] = {
        f"p{i}": (annotation, Field(default=None, alias=name))
        for i, (name, annotation) in enumerate(annotations.items())
    }
    config = ConfigDict(arbitrary_types_allowed=True, extra="ignore")
    model: type[BaseModel] = create_model("Parameters", __config__=config, **fields)
    return model


def _usable(hint: Any) -> bool:
    """Return whether pydantic can validate values of ``hint``."""
    from pydantic import ConfigDict, TypeAdapter

    try:
        adapter = TypeAdapter(hint, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:
        return False
    return bool(adapter.pydantic_complete)


def _schema_type(hint: Any) -> Any:
    """Return ``hint`` if pydantic can describe it in JSON schema, else ``Any``."""
    from pydantic import TypeAdapter

    if hint is Any:
        return Any
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            TypeAdapter(hint).json_schema()
    except Exception:
        return Any
    return hint


def _resolve_hints(fn: Callable[..., Any], parameters: list[inspect.Parameter]) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        hints = {}
        namespace = getattr(fn, "__globals__", {})
        for p in parameters:
            if isinstance(p.annotation, str):
                try:
                    hints[p.name] = eval(p.annotation, namespace)
                except Exception:
                    continue
            elif p.annotation is not inspect.Parameter.empty:
                hints[p.name] = p.annotation
    names = {p.name for p in parameters}
    return {name: hint for name, hint in hints.items() if name in names}


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
