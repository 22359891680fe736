"""The docker worker type: each run in its own Docker container.

The job configuration (the pool's template, see ``templates/docker.json``) names the image
and how to run it; :mod:`dockyard.workers._docker_spec` turns it into a container. Each run's
container:

- runs ``python -m dockyard.engine RUN_ID`` (or the ``command`` job variable) with the
  ``env`` job variable, ``DOCKYARD_API_URL`` and ``DOCKYARD_API_KEY`` (the worker's),
  ``DOCKYARD_FLOW_RUN_ID`` and ``DOCKYARD_LEASE_TOKEN``; not the worker's environment;
- is named after the run and its attempt (a crash retry never meets the name of an earlier
  attempt's container) and labelled ``dockyard.flow-run-id=<id>`` and
  ``dockyard.worker-name=<worker>``, so that a worker restarted under the same name finds
  it again (:meth:`DockerWorker.recover`);
- uses host networking when the API URL is on loopback and no network is chosen; with a
  network chosen, a loopback URL is rewritten to ``host.docker.internal``;
- writes its output to the run's output file through the Docker API (a thread follows
  ``container.logs``), never through a pipe the container depends on;
- is removed once it has ended and its output is saved, unless ``auto_remove`` is false.

Cancelling stops the container (SIGTERM, then SIGKILL after the grace period). A container
that cannot start raises LaunchError, not retryable when starting again would fail the same
way (see :meth:`DockerWorker.launch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard._docker import DockerUnavailable, connect, split_reference
from dockyard.exceptions import LaunchError
from dockyard.schemas import ClaimedRun, FlowRun
from dockyard.workers import _docker_spec as spec_module
from dockyard.workers._docker_recover import (
    find_containers,
    lease_token_of,
    remove_earlier_attempts,
)
from dockyard.workers._docker_spec import ContainerSpec, container_spec
from dockyard.workers.base import BaseWorker

__all__ = ["Container", "DockerWorker"]

log = logging.getLogger("dockyard.worker")

FIX = "start Docker Desktop or `dockerd` on the worker's machine"
# Exit code when a container vanished (removed by someone else) before it could be read.
VANISHED = 255
# Containers followed at once share the client's connections: one log stream each.
MAX_POOL_SIZE = 256
STOP_WAIT = 60.0
# the longest the container calling a run's hooks may take before it is stopped
HOOKS_SECONDS = 600.0


@dataclass(eq=False)
class Container:
    """The docker worker's handle on a run's container."""

    id: str
    name: str
    auto_remove: bool
    exit_code: int | None = None
    done: threading.Event = field(default_factory=threading.Event)
    # what it was made from (None for a container found again after a restart)
    spec: ContainerSpec | None = None

    @property
    def short_id(self) -> str:
        return self.id[:12]


class DockerWorker(BaseWorker[Container]):
    """Runs each flow run in a Docker container (``type = "docker"``); see the module's
    docstring. Takes the arguments of :class:`~dockyard.workers.base.BaseWorker`.
    """

    type = "docker"
    noun = "container"
    id_label = "id"

    _docker_client: Any = None
    _connecting = threading.Lock()  # launches, kills and recover() run in threads

    def docker(self) -> Any:
        """The worker's Docker client, connected at first use.

        Raises:
            DockerUnavailable: no Docker daemon answers.
        """
        with self._connecting:
            if self._docker_client is None:
                self._docker_client = connect(FIX, max_pool_size=MAX_POOL_SIZE)
            return self._docker_client

    def close(self) -> None:
        """Close the worker's connections to Docker (a later call connects again)."""
        if self._docker_client is not None:
            self._docker_client.close()
            self._docker_client = None

    def launch(self, claimed: ClaimedRun, config: dict[str, Any]) -> Container:
        """Create and start the run's container; raise LaunchError when it cannot start.

        The error is not retryable when starting again would fail the same way: a bad job
        configuration, an image missing under pull policy ``Never``, a request the daemon
        calls bad. Docker not answering, or a failed pull, may pass: those are retryable.
        """
        spec = container_spec(
            claimed,
            config,
            api_url=self.settings.api_url,
            api_key=self.settings.api_key,
            worker=self.name,
        )
        try:
            client = self.docker()
        except DockerUnavailable as exc:
            raise LaunchError(str(exc)) from None
        try:
            ensure_image(client, spec, config.get("registry_credentials"))
            if claimed.flow_run.attempt > 1:
                remove_earlier_attempts(client, claimed.flow_run)
            container = _start(client, spec)
        except OSError as exc:  # the Docker SDK's transport errors (timeouts, a lost socket)
            raise LaunchError(
                f"Docker did not answer ({exc}); check that `dockerd` runs and is not "
                "overloaded on the worker's machine"
            ) from None
        handle = Container(container.id, spec.name, spec.auto_remove, spec=spec)
        self._follow(container, handle, self.output_path(claimed.flow_run.id))
        return handle

    def call_final_hooks(self, handle: Container, run: FlowRun, state: str) -> None:
        """Call the run's hooks in a container like its own: the same image, environment
        (without the lease token) and network, running ``python -m dockyard.engine --hooks
        RUN_ID STATE``; it carries no run label, so no worker takes it for a run."""
        if handle.spec is None:
            return  # found again after a restart: what it was made from is not known
        spec = dataclasses.replace(
            handle.spec,
            command=["python", "-m", "dockyard.engine", "--hooks", str(run.id), state],
            environment={
                k: v for k, v in handle.spec.environment.items() if k != "DOCKYARD_LEASE_TOKEN"
            },
            labels={"dockyard.hooks-of": str(run.id)},
            name=f"{handle.spec.name}-hooks",
        )
        task = asyncio.create_task(asyncio.to_thread(self._run_hooks, spec, run.name))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _run_hooks(self, spec: ContainerSpec, name: str) -> None:
        import docker

        try:
            container = _start(self.docker(), spec)
        except (LaunchError, DockerUnavailable, OSError) as exc:
            log.warning("cannot call the hooks of %s: %s", name, exc)
            return
        try:
            container.wait(timeout=HOOKS_SECONDS)
        except Exception:  # the SDK's read timeout: the hooks took too long
            log.warning("the hooks of %s took over %.0f s and were stopped", name, HOOKS_SECONDS)
        finally:
            with contextlib.suppress(docker.errors.APIError, OSError):
                container.remove(force=True)

    def kill(self, handle: Container, grace_seconds: float) -> None:
        """Stop the container: SIGTERM, SIGKILL after the grace; wait until it is gone."""
        import docker

        if not handle.done.is_set():
            # gone already, or no longer running: nothing to stop
            with contextlib.suppress(docker.errors.APIError):
                # the API counts whole seconds; a fraction would be refused
                self.docker().api.stop(handle.id, timeout=math.ceil(max(0.0, grace_seconds)))
            with contextlib.suppress(docker.errors.APIError):
                self.docker().api.kill(handle.id)
        handle.done.wait(STOP_WAIT)

    def exit_code(self, handle: Container) -> int | None:
        return handle.exit_code

    def infrastructure_id(self, handle: Container) -> str:
        return handle.short_id

    def recover(self) -> dict[uuid.UUID, tuple[Container, uuid.UUID | None]]:
        """Find this worker's containers (by the worker-name label) and follow them again.

        Each comes with the lease token it was started with (its ``DOCKYARD_LEASE_TOKEN``),
        which the worker presents to end its run.
        """
        try:
            client = self.docker()
        except DockerUnavailable as exc:
            log.warning("cannot look for containers started before a restart: %s", exc)
            return {}
        found: dict[uuid.UUID, tuple[Container, uuid.UUID | None]] = {}
        for run_id, container in find_containers(client, self.name, self.settings).items():
            labels = container.labels or {}
            auto_remove = labels.get(spec_module.LABEL_AUTO_REMOVE) != "false"
            handle = Container(container.id, container.name, auto_remove)
            self._follow(container, handle, self.output_path(run_id))
            found[run_id] = (handle, lease_token_of(container))
        return found

    def _follow(self, container: Any, handle: Container, output: Path) -> None:
        thread = threading.Thread(
            target=follow,
            args=(container, handle, output),
            name=f"dockyard-container-{handle.short_id}",
            daemon=True,
        )
        thread.start()


def ensure_image(client: Any, spec: ContainerSpec, credentials: Any) -> None:
    """Make ``spec.image`` present as its pull policy says.

    Raises:
        LaunchError: missing with policy Never, or the pull failed (the daemon's reason).
    """
    import docker

    if spec.pull_policy != "Always":
        try:
            client.images.get(spec.image)
            return
        except docker.errors.ImageNotFound:
            if spec.pull_policy == "Never":
                raise LaunchError(
                    f"image '{spec.image}' is not on this machine and its image_pull_policy is "
                    "Never; build it here (flow.deploy(image=...) on this machine does), or "
                    "push it to a registry and allow pulling with IfNotPresent",
                    retryable=False,
                ) from None
        except docker.errors.APIError as exc:
            raise LaunchError(
                f"cannot look up image '{spec.image}': {_why(exc)}", retryable=not _bad(exc)
            ) from None
    repository, tag, digest = split_reference(spec.image)
    try:
        client.images.pull(
            repository, tag=digest or tag or "latest", auth_config=_auth(credentials)
        )
    except docker.errors.APIError as exc:
        # a pull that failed may pass later (a registry back, an image pushed): retried
        raise LaunchError(
            f"cannot pull image '{spec.image}': {_why(exc)} (image_pull_policy "
            f"{spec.pull_policy}; use Never for an image built on this machine)",
            retryable=not _bad(exc),
        ) from None


def _start(client: Any, spec: ContainerSpec) -> Any:
    import docker

    try:
        container = client.containers.create(**spec.create_kwargs())
    except docker.errors.APIError as exc:
        raise LaunchError(
            f"Docker refused to create its container: {_why(exc)}", retryable=not _bad(exc)
        ) from None
    except docker.errors.DockerException as exc:  # the SDK's own checks, before any request
        raise LaunchError(
            f"its job configuration is not valid for Docker: {exc}", retryable=False
        ) from None
    try:
        for network in spec.networks[1:]:
            client.networks.get(network).connect(container)
        container.start()
    except docker.errors.APIError as exc:
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
        raise LaunchError(
            f"Docker could not start its container: {_why(exc)}", retryable=not _bad(exc)
        ) from None
    return container


def follow(container: Any, handle: Container, output: Path) -> None:
    """Copy the container's output to ``output`` until it exits, read its exit code, and
    remove it unless kept. Runs in a thread of its own; the exit code is set last, once all
    of this is done, and ``handle.done`` with it.
    """
    import docker

    code = VANISHED
    try:
        with output.open("ab") as file:
            _copy_logs(container, file)
            code = _wait(container, file)
        if handle.auto_remove:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
    except Exception:
        log.exception("following container %s failed", handle.short_id)
    finally:
        handle.exit_code = code
        handle.done.set()


def _copy_logs(container: Any, file: Any) -> None:
    import docker

    with contextlib.suppress(docker.errors.APIError, OSError):
        stream = container.logs(stream=True, follow=True)
        with contextlib.closing(stream):
            for chunk in stream:
                file.write(chunk)
                file.flush()


def _wait(container: Any, file: Any) -> int:
    import docker

    try:
        return int(container.wait()["StatusCode"])
    except docker.errors.NotFound:
        file.write(b"dockyard: the container was removed before its exit code could be read\n")
        return VANISHED


def _auth(credentials: Any) -> dict[str, str] | None:
    if not isinstance(credentials, dict) or not credentials.get("username"):
        return None
    auth = {
        "username": str(credentials["username"]),
        "password": str(credentials.get("password") or ""),
    }
    if credentials.get("registry"):
        auth["serveraddress"] = str(credentials["registry"])
    return auth


def _bad(exc: Any) -> bool:
    """Whether the daemon called the request itself wrong (400 Bad Request: an invalid image
    reference, volume or limit): sent again, it fails the same way. Anything else may pass.
    """
    return getattr(exc, "status_code", None) == 400


def _why(exc: Any) -> str:
    """The daemon's own words for an API error, without the HTTP status around them."""
    return str(getattr(exc, "explanation", None) or exc)
