"""Pull steps: where a deployment's code comes from, run by the engine before the import.

A deployment's ``pull_steps`` is a list of one-key objects, run in order::

    [{"git_clone": {"repository": "https://github.com/org/repo.git", "branch": "main"}}]
    [{"set_working_directory": {"directory": "/srv/flows"}}]

- ``set_working_directory {directory}``: change into that directory;
- ``git_clone {repository, branch?, commit?}``: clone the repository into a temporary
  directory (removed when the engine ends) and change into it.

The entrypoint then resolves relative to the directory the last step went to.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dockyard.exceptions import DockyardError

__all__ = ["STEPS", "PullSteps", "git_clone_step"]

STEPS = ("set_working_directory", "git_clone")


def git_clone_step(
    repository: str, *, branch: str | None = None, commit: str | None = None
) -> dict[str, Any]:
    """The pull step that clones ``repository`` (at ``branch`` or ``commit``)."""
    arguments: dict[str, Any] = {"repository": repository}
    if branch:
        arguments["branch"] = branch
    if commit:
        arguments["commit"] = commit
    return {"git_clone": arguments}


class PullSteps:
    """Runs a deployment's pull steps, and removes what they fetched at :meth:`cleanup`."""

    def __init__(self) -> None:
        self._made: list[Path] = []

    def run(self, steps: list[Any], base: str | None) -> str | None:
        """Run ``steps`` in order; return the directory the entrypoint resolves against.

        ``base`` (the deployment's path) is that directory when no step changes it.

        Raises:
            DockyardError: a step is malformed, unknown, or failed; the message says which.
        """
        directory = base
        for number, step in enumerate(steps, start=1):
            name, arguments = _parse(number, step)
            try:
                if name == "set_working_directory":
                    directory = self.set_working_directory(**arguments)
                else:
                    directory = self.git_clone(**arguments)
            except TypeError as exc:
                raise DockyardError(f"pull step {number} ({name}): bad arguments: {exc}") from None
        return directory

    def set_working_directory(self, directory: str) -> str:
        """Change into ``directory``."""
        path = Path(directory).expanduser()
        if not path.is_dir():
            raise DockyardError(f"pull step set_working_directory: {path} is not a directory")
        os.chdir(path)
        return str(path)

    def git_clone(
        self, repository: str, branch: str | None = None, commit: str | None = None
    ) -> str:
        """Clone ``repository`` into a new temporary directory and change into it."""
        import tempfile

        from dockyard.sdk.deploy.git import clone

        destination = Path(tempfile.mkdtemp(prefix="dockyard-source-"))
        self._made.append(destination)
        clone(repository, destination, branch=branch, commit=commit)
        os.chdir(destination)
        return str(destination)

    def cleanup(self) -> None:
        """Remove the directories the steps made."""
        import shutil

        for path in self._made:
            shutil.rmtree(path, ignore_errors=True)
        self._made.clear()


def _parse(number: int, step: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(step, dict) or len(step) != 1:
        raise DockyardError(
            f"pull step {number} must be an object with one key, the step's name "
            f'(e.g. {{"git_clone": {{"repository": "..."}}}}); got {step!r}'
        )
    ((name, arguments),) = step.items()
    if name not in STEPS:
        raise DockyardError(
            f"pull step {number}: unknown step {name!r}; this engine runs: {', '.join(STEPS)}"
        )
    if not isinstance(arguments, dict):
        raise DockyardError(f"pull step {number} ({name}): its arguments must be an object")
    return name, arguments
