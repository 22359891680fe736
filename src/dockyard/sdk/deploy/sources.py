"""Where a deployed flow's code comes from: the file it was defined in, or a source.

A deployment records an ``entrypoint`` (``file.py:function``) and either a ``path`` (the
directory the entrypoint is relative to, on the machine that runs it) or ``pull_steps``
that fetch the code first (a git clone). :func:`locate` finds them for a flow defined in a
file; :func:`read_source` loads what an entrypoint names in a directory or a git
repository, and says where it came from (``Flow.from_source`` makes it a flow).
"""

from __future__ import annotations

import atexit
import inspect
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.exceptions import DockyardError

if TYPE_CHECKING:
    from dockyard.sdk.flows import Flow

__all__ = ["FlowSource", "locate", "read_source"]


@dataclass(frozen=True)
class FlowSource:
    """Where a deployment's runs find the flow's code.

    Attributes:
        entrypoint: ``path/to/file.py:function`` (relative to ``path`` or to where the pull
            steps went) or ``module:function``.
        path: the directory the entrypoint is relative to; None when pull steps fetch it.
        pull_steps: steps the engine runs before importing the entrypoint.
    """

    entrypoint: str
    path: str | None = None
    pull_steps: tuple[dict[str, Any], ...] = field(default=())


def locate(flow: Flow[..., Any]) -> FlowSource:
    """Return where ``flow``'s code is: its file's directory, and ``file.py:name``.

    Raises:
        DockyardError: the flow is not defined at the top level of a Python file.
    """
    fn = flow.fn
    try:
        file = inspect.getsourcefile(fn)
    except TypeError:
        file = None
    if file is None or not Path(file).is_file():
        raise DockyardError(
            f"flow {flow.name!r} is not defined in a Python file, so a deployment cannot "
            "import it; define it in a file, or use flow.from_source(...)"
        )
    attribute = _attribute(flow)
    path = Path(file).resolve()
    return FlowSource(entrypoint=f"{path.name}:{attribute}", path=str(path.parent))


def _attribute(flow: Flow[..., Any]) -> str:
    """The name the flow has at the top level of its module."""
    fn = flow.fn
    module = sys.modules.get(fn.__module__)
    names = vars(module) if module is not None else {}
    for name, value in names.items():
        if value is flow:
            return name
    name = getattr(fn, "__name__", "")
    found = names.get(name)
    same_function = found is fn or getattr(found, "fn", None) is fn
    if "<locals>" in getattr(fn, "__qualname__", "") or not same_function:
        raise DockyardError(
            f"flow {flow.name!r} is not defined at the top level of its module "
            f"({fn.__module__}), so a deployment cannot import it; move it there"
        )
    return name


def read_source(
    source: str | Path,
    entrypoint: str,
    *,
    branch: str | None = None,
    commit: str | None = None,
) -> tuple[Any, FlowSource]:
    """Load what an entrypoint names in a directory or a git repository, and where it is.

    ``Flow.from_source`` makes the first a flow (:func:`dockyard.sdk.flows.as_flow`).

    Its deployments record the source: a directory as their ``path``, a repository as a
    ``git_clone`` pull step (so the machine that runs them needs no checkout).

    Raises:
        DockyardError: the directory does not exist, the clone failed, or the entrypoint
            cannot be loaded.
    """
    from dockyard.sdk.deploy.entrypoints import load_entrypoint
    from dockyard.sdk.deploy.git import clone, is_git_source
    from dockyard.sdk.deploy.pull import git_clone_step

    text = str(source)
    if is_git_source(text):
        repository = _absolute_if_local(text)
        checkout = Path(tempfile.mkdtemp(prefix="dockyard-source-"))
        atexit.register(shutil.rmtree, checkout, True)
        clone(repository, checkout, branch=branch, commit=commit)
        step = git_clone_step(repository, branch=branch, commit=commit)
        target = load_entrypoint(entrypoint, str(checkout))
        return target, FlowSource(entrypoint=entrypoint, pull_steps=(step,))
    if branch is not None or commit is not None:
        raise DockyardError(
            f"branch and commit are for git repositories; {text!r} is a local directory"
        )
    directory = Path(text).expanduser().resolve()
    if not directory.is_dir():
        raise DockyardError(f"flow source {text!r} is not a directory nor a git repository")
    target = load_entrypoint(entrypoint, str(directory))
    return target, FlowSource(entrypoint=entrypoint, path=str(directory))


def _absolute_if_local(repository: str) -> str:
    if "://" in repository or "@" in repository.split("/")[0]:
        return repository
    return str(Path(repository).expanduser().resolve())
