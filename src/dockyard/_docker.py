"""Connecting to Docker, and the errors of Docker work, shared by the docker worker and image
builds.

The Docker SDK for Python is imported here only inside functions: ``import dockyard`` (and
anything that only names these errors) never loads it. The client reads the usual
``DOCKER_HOST``, ``DOCKER_TLS_VERIFY`` and ``DOCKER_CERT_PATH`` variables, and registry
credentials from ``~/.docker/config.json``, as the ``docker`` command does.

::

    DockyardError
    ├── DockerUnavailable     no Docker daemon answers
    ├── ImageBuildError       an image build failed (a step, the Dockerfile, the context)
    └── ImagePushError        pushing an image to its registry failed
"""

from __future__ import annotations

import os
import socket
from typing import Any

from dockyard.exceptions import DockyardError

__all__ = [
    "DockerUnavailable",
    "ImageBuildError",
    "ImagePushError",
    "connect",
    "docker_host",
    "registry_of",
    "split_reference",
]

DEFAULT_SOCKET = "/var/run/docker.sock"
SOCKET_TIMEOUT = 5.0


class DockerUnavailable(DockyardError):
    """Raised when no Docker daemon answers; the message says where it looked and what to do."""


class ImageBuildError(DockyardError):
    """Raised when an image cannot be built.

    ``step`` is the Dockerfile step that failed (``Step 4/7 : RUN pip install ...``) and
    ``output`` the lines that step printed, when the failure happened in a step.
    """

    def __init__(self, message: str, *, step: str | None = None, output: list[str] | None = None):
        super().__init__(message)
        self.step = step
        self.output = list(output or [])


class ImagePushError(DockyardError):
    """Raised when an image cannot be pushed to its registry."""


def docker_host() -> str:
    """Where the Docker client looks for the daemon, as people write it."""
    host = os.environ.get("DOCKER_HOST", "").strip()
    if not host or host == "unix://":
        return DEFAULT_SOCKET
    return host.removeprefix("unix://")


def connect(fix: str, **options: Any) -> Any:
    """A ``docker.DockerClient`` on the daemon of this environment.

    Args:
        fix: what the user can do when Docker is not running, in a few words
            (``start Docker Desktop or `dockerd```).
        options: passed to ``docker.from_env`` (``timeout``, ``max_pool_size``).

    Raises:
        DockerUnavailable: no daemon answers (one line: where, and ``fix``).
    """
    import docker

    problem = f"Docker is not running (cannot connect to {docker_host()}); {fix}"
    if not _socket_answers(docker_host()):
        raise DockerUnavailable(problem)
    try:
        return docker.from_env(**options)
    except docker.errors.DockerException as exc:
        raise DockerUnavailable(problem) from exc


def _socket_answers(host: str) -> bool:
    """Whether a Unix socket at ``host`` accepts a connection (True for other kinds of host).

    Checked first because the Docker SDK leaves the socket of a failed connection open.
    """
    if "://" in host:
        return True
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(SOCKET_TIMEOUT)
        try:
            sock.connect(host)
        except OSError:
            return False
    return True


def split_reference(reference: str) -> tuple[str, str | None, str | None]:
    """``registry:5000/name:tag@sha256:...`` → (repository, tag, digest)."""
    rest, _, digest = reference.partition("@")
    repository, tag = rest, None
    head, sep, last = rest.rpartition("/")
    if ":" in last:
        name, _, tag = last.rpartition(":")
        repository = f"{head}{sep}{name}"
    return repository, tag or None, digest or None


def registry_of(reference: str) -> str | None:
    """The registry an image reference names (``127.0.0.1:5000``), or None for Docker Hub."""
    first, slash, _ = reference.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None
