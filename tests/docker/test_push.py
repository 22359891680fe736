"""Pushing to a real registry (Debian's ``docker-registry`` on 127.0.0.1) and pulling back."""

from __future__ import annotations

import io
from typing import Any

import pytest
from docker_support import Registry, tiny_image
from rich.console import Console
from test_contract import claimed_run

from _support import free_port
from dockyard.sdk.deploy.images import ImagePushError, push_image
from dockyard.workers._docker_spec import container_spec
from dockyard.workers.docker import ensure_image


def quiet() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, force_terminal=False), out


def test_push_then_the_worker_pulls_it_back(docker_client: Any, registry: Registry) -> None:
    reference = f"{registry.address}/dockyard-test/tiny:1"
    image_id = tiny_image(docker_client, reference)
    console, shown = quiet()
    push_image(reference, console=console)
    assert f"Pushed image {reference}" in shown.getvalue()

    docker_client.images.remove(reference)
    config = {"image": reference, "image_pull_policy": "IfNotPresent"}
    spec = container_spec(claimed_run(), config, api_url="http://127.0.0.1:9/api", api_key=None,
                          worker="w")  # fmt: skip
    ensure_image(docker_client, spec, None)
    assert docker_client.images.get(reference).id == image_id
    docker_client.images.remove(reference)


def test_push_to_a_registry_that_is_not_there_says_so(docker_client: Any, base_image: str) -> None:
    registry = f"127.0.0.1:{free_port()}"
    reference = f"{registry}/dockyard-test/tiny:1"
    tiny_image(docker_client, reference)
    try:
        with pytest.raises(ImagePushError) as raised:
            push_image(reference, console=quiet()[0])
    finally:
        docker_client.images.remove(reference)
    message = str(raised.value)
    assert message.startswith(f"pushing image {reference} failed: ")
    assert message.endswith(
        f"; is the registry {registry} running and reachable from this machine?"
    )
