"""Getting a flow's code from a git repository, with the ``git`` command.

Used by ``flow.from_source(url, ...)`` (to load the flow where it is deployed) and by the
engine's ``git_clone`` pull step (to fetch the code on the machine that runs it).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from dockyard._redact import redact_url
from dockyard.exceptions import DockyardError

__all__ = ["clone", "is_git_source", "redact"]

_SCHEMES = ("http://", "https://", "ssh://", "git://", "file://", "git+ssh://")
_SCP_LIKE = re.compile(r"^[\w.\-]+@[\w.\-]+:")
TAIL_LINES = 5


def is_git_source(source: str) -> bool:
    """Whether ``source`` names a git repository rather than a local directory.

    A URL (``https://``, ``ssh://``, ``git://``, ``file://``), ``user@host:path``, or a local
    path ending in ``.git`` (a bare repository).
    """
    text = source.strip()
    if text.startswith(_SCHEMES) or _SCP_LIKE.match(text):
        return True
    return text.rstrip("/").endswith(".git")


def redact(repository: str) -> str:
    """``repository`` without the credentials a URL may carry (for messages)."""
    return redact_url(repository)


def clone(
    repository: str, destination: Path, *, branch: str | None = None, commit: str | None = None
) -> str:
    """Clone ``repository`` into ``destination`` (which must not exist or be empty).

    Args:
        branch: the branch (or tag) to check out; default: the repository's default branch.
        commit: the commit to check out (takes precedence over ``branch``).

    Returns:
        The id of the commit checked out.

    Raises:
        DockyardError: git is missing, or the clone or checkout failed (git's message).
    """
    shallow = commit is None and (repository.startswith(_SCHEMES) or _SCP_LIKE.match(repository))
    command = ["git", "clone", "--quiet"]
    if shallow:
        command += ["--depth", "1"]
    if branch and commit is None:
        command += ["--branch", branch]
    if commit is not None:
        command.append("--no-checkout")
    _git([*command, "--", repository, str(destination)], repository)
    if commit is not None:
        _git(["git", "-C", str(destination), "checkout", "--quiet", "--detach", commit], repository)
    return _git(["git", "-C", str(destination), "rev-parse", "HEAD"], repository).strip()


def _git(command: list[str], repository: str) -> str:
    # never wait for a password prompt: the engine has no one to answer it
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True
        )
    except FileNotFoundError:
        raise DockyardError(
            "the `git` command was not found; install git to run flows from a git repository"
        ) from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        why = redact(" / ".join(lines[-TAIL_LINES:]) or f"exit status {done.returncode}")
        action = "check out" if "checkout" in command else "clone"
        raise DockyardError(f"could not {action} git repository {redact(repository)!r}: {why}")
    return done.stdout
