"""From job configuration to container, and the docker type's template (no daemon needed)."""

from __future__ import annotations

import json
import uuid
from importlib import resources
from typing import Any

import pytest
from test_contract import claimed_run

from dockyard._docker import registry_of, split_reference
from dockyard.exceptions import LaunchError
from dockyard.workers._docker_spec import container_spec, pull_policy, reach_server

API = "http://127.0.0.1:4200/api"


def spec(config: dict[str, Any], api_url: str = API, api_key: str | None = None) -> Any:
    return container_spec(
        claimed_run(), {"image": "img:1", **config}, api_url=api_url, api_key=api_key, worker="w"
    )


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("python", ("python", None, None)),
        ("python:3.11-slim", ("python", "3.11-slim", None)),
        ("127.0.0.1:5000/team/img", ("127.0.0.1:5000/team/img", None, None)),
        ("127.0.0.1:5000/team/img:v2", ("127.0.0.1:5000/team/img", "v2", None)),
        ("img@sha256:abc", ("img", None, "sha256:abc")),
    ],
)
def test_split_reference(reference: str, expected: tuple[Any, ...]) -> None:
    assert split_reference(reference) == expected


def test_registry_of() -> None:
    assert registry_of("127.0.0.1:5000/img:1") == "127.0.0.1:5000"
    assert registry_of("registry.example.com/team/img") == "registry.example.com"
    assert registry_of("localhost/img") == "localhost"
    assert registry_of("team/img:1") is None
    assert registry_of("img") is None


@pytest.mark.parametrize(
    ("image", "configured", "expected"),
    [
        ("img:1.0", None, "IfNotPresent"),
        ("img", None, "Always"),
        ("img:latest", None, "Always"),
        ("127.0.0.1:5000/img", None, "Always"),
        ("img@sha256:abc", None, "IfNotPresent"),
        ("img:latest", "Never", "Never"),
        ("img:1.0", "Always", "Always"),
    ],
)
def test_pull_policy(image: str, configured: str | None, expected: str) -> None:
    assert pull_policy(image, configured) == expected


def test_unknown_pull_policy_is_refused() -> None:
    with pytest.raises(LaunchError, match="unknown image_pull_policy 'Sometimes'"):
        pull_policy("img:1", "Sometimes")


@pytest.mark.parametrize(
    ("url", "mode", "networks", "expected"),
    [
        (API, None, [], (API, "host", {})),
        ("http://localhost:4200/api", None, [], ("http://localhost:4200/api", "host", {})),
        (API, "host", [], (API, "host", {})),
        (
            API,
            "bridge",
            [],
            (
                "http://host.docker.internal:4200/api",
                "bridge",
                {"host.docker.internal": "host-gateway"},
            ),
        ),
        (
            "http://[::1]:4200/api",
            None,
            ["net-a"],
            (
                "http://host.docker.internal:4200/api",
                None,
                {"host.docker.internal": "host-gateway"},
            ),
        ),
        ("http://10.0.0.5:4200/api", None, [], ("http://10.0.0.5:4200/api", None, {})),
        (
            "https://dockyard.example.com/api",
            "bridge",
            [],
            ("https://dockyard.example.com/api", "bridge", {}),
        ),
    ],
)
def test_reaching_the_server(
    url: str, mode: str | None, networks: list[str], expected: tuple[Any, ...]
) -> None:
    assert reach_server(url, mode, networks) == expected


def test_default_container() -> None:
    made = spec({}, api_key="k")
    run_id = made.labels["dockyard.flow-run-id"]
    assert made.command == ["python", "-m", "dockyard.engine", run_id]
    assert made.network_mode == "host"
    assert made.pull_policy == "IfNotPresent"
    assert made.auto_remove is True
    assert made.environment["DOCKYARD_API_URL"] == API
    assert made.environment["DOCKYARD_API_KEY"] == "k"
    assert made.environment["DOCKYARD_FLOW_RUN_ID"] == run_id
    assert uuid.UUID(made.environment["DOCKYARD_LEASE_TOKEN"])
    assert made.environment["PYTHONUNBUFFERED"] == "1"
    assert made.labels["dockyard.worker-name"] == "w"
    assert made.labels["dockyard.flow-run-attempt"] == "1"
    assert made.labels["dockyard.api-url"] == API
    assert made.name == f"dockyard-contract-run-{uuid.UUID(run_id).hex[:8]}-1"
    kwargs = made.create_kwargs()
    assert kwargs["init"] is True and kwargs["detach"] is True
    assert "privileged" not in kwargs and "network" not in kwargs


def test_job_variables_reach_the_container() -> None:
    made = spec(
        {
            "command": "python -c 'print(1)'",
            "env": {"A": "1", "GONE": None, "DOCKYARD_FLOW_RUN_ID": "not this"},
            "labels": {"team": "data", "dockyard.worker-name": "not this"},
            "name": "nightly job",
            "networks": ["net-a", "net-b"],
            "volumes": ["/data:/data:ro"],
            "mem_limit": "512m",
            "memswap_limit": -1,
            "privileged": True,
            "auto_remove": False,
        }
    )
    assert made.command == ["python", "-c", "print(1)"]
    assert made.environment["A"] == "1" and "GONE" not in made.environment
    assert made.environment["DOCKYARD_FLOW_RUN_ID"] != "not this"
    assert made.labels["team"] == "data" and made.labels["dockyard.worker-name"] == "w"
    assert made.labels["dockyard.auto-remove"] == "false"
    assert made.name.startswith("nightly-job-")
    kwargs = made.create_kwargs()
    assert kwargs["network"] == "net-a" and "network_mode" not in kwargs
    assert made.networks == ["net-a", "net-b"]
    assert kwargs["extra_hosts"] == {"host.docker.internal": "host-gateway"}
    assert made.environment["DOCKYARD_API_URL"] == "http://host.docker.internal:4200/api"
    assert kwargs["volumes"] == ["/data:/data:ro"]
    assert (kwargs["mem_limit"], kwargs["memswap_limit"], kwargs["privileged"]) == (
        "512m",
        -1,
        True,
    )


def test_each_attempt_has_a_container_name_of_its_own() -> None:
    claimed = claimed_run()
    first = container_spec(claimed, {"image": "img:1"}, api_url=API, api_key=None, worker="w")
    retried = claimed.model_copy(
        update={"flow_run": claimed.flow_run.model_copy(update={"attempt": 2})}
    )
    second = container_spec(retried, {"image": "img:1"}, api_url=API, api_key=None, worker="w")
    assert first.name.removesuffix("-1") == second.name.removesuffix("-2") != first.name
    assert second.labels["dockyard.flow-run-attempt"] == "2"


def test_network_mode_and_networks_together_are_refused() -> None:
    with pytest.raises(LaunchError, match="network_mode or networks, not both"):
        spec({"network_mode": "bridge", "networks": ["a"]})


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"image": ""}, "names no image"),
        ({"network_mode": "bridge", "networks": ["a"]}, "not both"),
        ({"image_pull_policy": "Sometimes"}, "unknown image_pull_policy 'Sometimes'"),
        ({"command": "python -c 'print(1)"}, "cannot split the command job variable"),
    ],
)
def test_a_bad_configuration_is_not_retried(config: dict[str, Any], reason: str) -> None:
    with pytest.raises(LaunchError, match=reason) as raised:
        spec(config)
    assert raised.value.retryable is False


def docker_template() -> dict[str, Any]:
    text = resources.files("dockyard.workers.templates").joinpath("docker.json").read_text()
    return dict(json.loads(text))


def test_template_declares_every_variable() -> None:
    from dockyard.server.templates import validate_template

    template = validate_template(docker_template()["base_job_template"])
    properties = template["variables"]["properties"]
    assert sorted(properties) == sorted(
        [
            "image", "image_pull_policy", "command", "env", "labels", "name", "network_mode",
            "networks", "volumes", "mem_limit", "memswap_limit", "privileged", "auto_remove",
            "stream_output", "registry_credentials",
        ]
    )  # fmt: skip
    assert properties["image_pull_policy"]["enum"] == ["Always", "IfNotPresent", "Never"]
    assert properties["privileged"]["default"] is False
    assert properties["registry_credentials"]["properties"]["password"]["format"] == "password"
    assert all(spec.get("description") for spec in properties.values())


def test_the_server_knows_the_docker_type() -> None:
    from dockyard.server import worker_types

    assert "docker" in worker_types.known()
    registered = worker_types.get("docker")
    assert registered is not None
    assert registered["base_job_template"] == docker_template()["base_job_template"]
