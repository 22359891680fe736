"""From a run's job configuration to the container the docker worker creates for it.

Pure functions, no Docker calls: what image and pull policy, what command and environment,
which labels and name, and how the container reaches the Dockyard server.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dockyard._docker import split_reference
from dockyard.exceptions import LaunchError
from dockyard.schemas import ClaimedRun

__all__ = [
    "HOST_ALIAS",
    "LABEL_API_URL",
    "LABEL_ATTEMPT",
    "LABEL_AUTO_REMOVE",
    "LABEL_RUN_ID",
    "LABEL_WORKER",
    "PULL_POLICIES",
    "ContainerSpec",
    "container_name",
    "container_spec",
    "is_loopback_url",
    "pull_policy",
]

LABEL_RUN_ID = "dockyard.flow-run-id"
LABEL_RUN_NAME = "dockyard.flow-run-name"
LABEL_ATTEMPT = "dockyard.flow-run-attempt"
LABEL_WORKER = "dockyard.worker-name"
LABEL_AUTO_REMOVE = "dockyard.auto-remove"
LABEL_API_URL = "dockyard.api-url"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
HOST_ALIAS = "host.docker.internal"
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")


@dataclass(frozen=True)
class ContainerSpec:
    """What to create: ``create_kwargs()`` for ``containers.create``, then ``networks``."""

    image: str
    pull_policy: str
    command: list[str]
    environment: dict[str, str]
    labels: dict[str, str]
    name: str
    network_mode: str | None = None
    networks: list[str] = field(default_factory=list)
    extra_hosts: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    auto_remove: bool = True

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``DockerClient.containers.create``."""
        kwargs: dict[str, Any] = {
            "image": self.image,
            "command": self.command,
            "environment": self.environment,
            "labels": self.labels,
            "name": self.name,
            "detach": True,
            "stdin_open": False,
            "tty": False,
            # a small init as PID 1 passes SIGTERM on to the run (Python as PID 1 ignores it)
            "init": True,
            **self.options,
        }
        if self.network_mode:
            kwargs["network_mode"] = self.network_mode
        elif self.networks:
            kwargs["network"] = self.networks[0]
        if self.extra_hosts:
            kwargs["extra_hosts"] = self.extra_hosts
        return kwargs


def container_spec(
    claimed: ClaimedRun, config: dict[str, Any], *, api_url: str, api_key: str | None, worker: str
) -> ContainerSpec:
    """The container of ``claimed`` under job configuration ``config``.

    Raises:
        LaunchError: the configuration cannot make a container (no image, a bad value);
            never retryable, as the same configuration fails the same way.
    """
    run = claimed.flow_run
    image = str(config.get("image") or "").strip()
    if not image:
        raise LaunchError(
            "its job configuration names no image; deploy the flow with `image=` or set the "
            "`image` job variable of the deployment or the work pool",
            retryable=False,
        )
    network_mode = config.get("network_mode") or None
    networks = [str(n) for n in config.get("networks") or []]
    if network_mode and networks:
        raise LaunchError(
            "set the job variable network_mode or networks, not both", retryable=False
        )
    url, network_mode, extra_hosts = reach_server(api_url, network_mode, networks)
    auto_remove = config.get("auto_remove", True) is not False
    return ContainerSpec(
        image=image,
        pull_policy=pull_policy(image, config.get("image_pull_policy")),
        command=_command(config.get("command"), str(run.id)),
        environment=_environment(config.get("env") or {}, claimed, url, api_key),
        labels=_labels(config.get("labels") or {}, claimed, worker, auto_remove, api_url),
        name=container_name(config.get("name"), run.name, run.id, run.attempt),
        network_mode=network_mode,
        networks=networks,
        extra_hosts=extra_hosts,
        options=_options(config),
        auto_remove=auto_remove,
    )


def pull_policy(image: str, configured: Any) -> str:
    """The configured policy, else ``Always`` for a ``latest`` or missing tag, else
    ``IfNotPresent``.

    Raises:
        LaunchError: an unknown policy.
    """
    if configured:
        if configured not in PULL_POLICIES:
            raise LaunchError(
                f"unknown image_pull_policy {configured!r}; use one of {', '.join(PULL_POLICIES)}",
                retryable=False,
            )
        return str(configured)
    _, tag, digest = split_reference(image)
    return "Always" if not digest and tag in (None, "latest") else "IfNotPresent"


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` names this machine's loopback (``localhost``, ``127.x``, ``::1``)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def reach_server(
    api_url: str, network_mode: str | None, networks: list[str]
) -> tuple[str, str | None, dict[str, str]]:
    """How the container reaches the server: (API URL, network mode, extra hosts).

    A loopback URL with no network chosen: host networking, the URL unchanged (on Linux the
    only way to reach a server bound to 127.0.0.1). A loopback URL with a network chosen:
    the URL names ``host.docker.internal``, mapped to the host's gateway. Any other URL is
    left as it is.
    """
    if not is_loopback_url(api_url):
        return api_url, network_mode, {}
    if not network_mode and not networks:
        return api_url, "host", {}
    if network_mode == "host":
        return api_url, network_mode, {}
    parts = urlsplit(api_url)
    netloc = HOST_ALIAS + (f":{parts.port}" if parts.port else "")
    if parts.username:
        netloc = f"{parts.username}{':' + parts.password if parts.password else ''}@{netloc}"
    url = urlunsplit(parts._replace(netloc=netloc))
    return url, network_mode, {HOST_ALIAS: "host-gateway"}


def _command(value: Any, run_id: str) -> list[str]:
    if not value:
        return ["python", "-m", "dockyard.engine", run_id]
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise LaunchError(
                f"cannot split the command job variable {value!r} like a shell would: {exc}; "
                "close its quotes, or give the command as a list",
                retryable=False,
            ) from None
    return [str(part) for part in value]


def _environment(
    extra: dict[str, Any], claimed: ClaimedRun, api_url: str, api_key: str | None
) -> dict[str, str]:
    # a container does not inherit the worker's environment: only what is asked for
    env = {name: str(value) for name, value in extra.items() if value is not None}
    env["DOCKYARD_API_URL"] = api_url
    api_key = claimed.runner_key or api_key  # the run's own key, if the server made one
    if api_key:
        env["DOCKYARD_API_KEY"] = api_key
    env["DOCKYARD_FLOW_RUN_ID"] = str(claimed.flow_run.id)
    env["DOCKYARD_LEASE_TOKEN"] = str(claimed.lease_token)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _labels(
    extra: dict[str, Any], claimed: ClaimedRun, worker: str, auto_remove: bool, api_url: str
) -> dict[str, str]:
    run = claimed.flow_run
    labels = {str(key): str(value) for key, value in extra.items()}
    labels.update(
        {
            LABEL_RUN_ID: str(run.id),
            LABEL_RUN_NAME: run.name,
            LABEL_ATTEMPT: str(run.attempt),
            LABEL_WORKER: worker,
            LABEL_AUTO_REMOVE: "true" if auto_remove else "false",
            # the worker's own URL (not the container's): whose server the run belongs to
            LABEL_API_URL: api_url,
        }
    )
    return labels


def container_name(given: Any, run_name: str, run_id: uuid.UUID, attempt: int) -> str:
    """``dockyard-RUN_NAME-XXXXXXXX-ATTEMPT`` (``given`` replaces ``dockyard-RUN_NAME``).

    The run's id keeps names unique when a deployment's runs overlap; the attempt, when a
    crash retry starts while the earlier attempt's container is still there (kept with
    ``auto_remove: false``, or left by a worker that died).
    """
    base = _NAME_UNSAFE.sub("-", str(given or f"dockyard-{run_name}")).strip("-.") or "dockyard"
    return f"{base}-{run_id.hex[:8]}-{attempt}"


def _options(config: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key in ("mem_limit", "memswap_limit"):
        if config.get(key) not in (None, ""):
            options[key] = config[key]
    if config.get("volumes"):
        options["volumes"] = [str(volume) for volume in config["volumes"]]
    if config.get("privileged"):
        options["privileged"] = True
    return options
