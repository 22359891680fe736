"""Loading a deployment's entrypoint: ``path/to/file.py:function`` or ``module:function``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from dockyard.exceptions import DockyardError
from dockyard.sdk.runtime.results import describe_failure

__all__ = ["load_entrypoint"]


def _is_path(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def load_entrypoint(entrypoint: str, base: str | None = None) -> Any:
    """Import an entrypoint and return the object it names.

    A file path is taken relative to ``base`` (the deployment's path) unless absolute;
    ``base`` is also put first on ``sys.path``, so the flow's own modules import.

    Raises:
        DockyardError: the entrypoint is malformed, its file or module is missing, its import
            failed (the message holds the traceback), or it has no such attribute.
    """
    target, sep, attribute = entrypoint.strip().rpartition(":")
    if not sep or not target or not attribute.isidentifier():
        raise DockyardError(
            f"entrypoint {entrypoint!r} is not valid: use 'path/to/file.py:function' or "
            "'module:function'"
        )
    if base:
        sys.path.insert(0, base)
    module = _import_file(target, base) if _is_path(target) else _import_module(target)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise DockyardError(
            f"entrypoint {entrypoint!r}: {module.__file__ or target} has no attribute {attribute!r}"
        ) from None


def _import_file(target: str, base: str | None) -> ModuleType:
    path = Path(target).expanduser()
    if not path.is_absolute() and base:
        path = Path(base) / path
    if not path.is_file():
        raise DockyardError(f"entrypoint file {str(path)!r} does not exist")
    name = path.stem if path.stem.isidentifier() else "dockyard_entrypoint"
    if name in sys.modules:
        name = f"dockyard_entrypoint_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DockyardError(f"entrypoint file {str(path)!r} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[name]
        raise DockyardError(f"importing {str(path)!r} failed: {describe_failure(exc)}") from exc
    return module


def _import_module(target: str) -> ModuleType:
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and target.startswith(exc.name):
            raise DockyardError(f"entrypoint module {target!r} was not found") from exc
        raise DockyardError(f"importing {target!r} failed: {describe_failure(exc)}") from exc
    except (Exception, SystemExit) as exc:
        raise DockyardError(f"importing {target!r} failed: {describe_failure(exc)}") from exc
