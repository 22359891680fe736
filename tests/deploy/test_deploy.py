"""``my_flow.deploy(...)``: run as a user runs it, ``python flows.py``, against a real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deploy_support import FLOWS, run_python, write

from _support import RunningServer
from dockyard import flow, schemas
from dockyard.exceptions import DockyardError
from dockyard.sdk.deploy.deployments import Deployment

DEPLOY = (
    FLOWS
    + """

if __name__ == "__main__":
    import json, sys
    options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    print("ID", get_repo_info.deploy(**options))
"""
)


def deploy_script(tmp_path: Path) -> Path:
    return write(tmp_path / "project" / "repo_info.py", DEPLOY)


def deploy(server: RunningServer, script: Path, check: bool = True, **options: object) -> str:
    """Run the deploy script with ``options`` for ``deploy()``; return its output."""
    done = run_python(script, server.env, json.dumps(options), cwd=tmp_cwd(script), check=check)
    return done.stdout + done.stderr


def tmp_cwd(script: Path) -> Path:
    return script.parent.parent


def make_pool(server: RunningServer, name: str = "my-pool") -> None:
    with server.client() as client:
        client.create_work_pool(schemas.WorkPoolCreate(name=name, type="process"))


def test_deploy_records_the_entrypoint_path_and_parameter_schema(
    server: RunningServer, tmp_path: Path
) -> None:
    make_pool(server)
    script = deploy_script(tmp_path)
    output = deploy(
        server,
        script,
        name="my-first-deployment",
        work_pool_name="my-pool",
        parameters={"repo_name": "a/b"},
        tags=["t"],
        crash_retries=2,
    )
    with server.client() as client:
        d = client.read_deployment_by_name("get-repo-info/my-first-deployment")
    assert f"ID {d.id}" in output
    assert d.entrypoint == "repo_info.py:get_repo_info"
    assert d.path == str(script.parent.resolve())
    assert d.work_pool_name == "my-pool" and d.work_queue_name == "default"
    assert d.parameters == {"repo_name": "a/b"}
    assert (d.tags, d.crash_retries) == (["t"], 2)
    assert d.description is not None and d.description.startswith("Look at a repository.")
    properties = d.parameter_schema["properties"]
    assert properties["repo_name"]["default"] == "PrefectHQ/prefect"
    assert properties["repo_name"]["description"] == "owner/name of the repository."
    assert properties["stars"]["type"] == "integer"
    # no worker polls the pool yet: the command that starts one is printed
    assert "dockyard worker start --pool my-pool" in output
    assert "dockyard deployment run 'get-repo-info/my-first-deployment'" in output


def test_deploying_again_updates_the_same_deployment(server: RunningServer, tmp_path: Path) -> None:
    make_pool(server)
    script = deploy_script(tmp_path)
    deploy(server, script, name="d", work_pool_name="my-pool", parameters={"stars": 1})
    deploy(server, script, name="d", work_pool_name="my-pool", parameters={"stars": 2})
    with server.client() as client:
        [only] = client.list_deployments(flow_name="get-repo-info")
    assert only.parameters == {"stars": 2}


def test_a_flow_has_many_deployments(server: RunningServer, tmp_path: Path) -> None:
    make_pool(server)
    make_pool(server, "other-pool")
    script = deploy_script(tmp_path)
    deploy(server, script, name="one", work_pool_name="my-pool")
    deploy(server, script, name="two", work_pool_name="other-pool", job_variables={"env": {}})
    with server.client() as client:
        found = client.list_deployments(flow_name="get_repo_info")
    assert [(d.name, d.work_pool_name) for d in found] == [
        ("one", "my-pool"),
        ("two", "other-pool"),
    ]


def test_no_worker_command_when_a_worker_polls_the_pool(
    server: RunningServer, tmp_path: Path
) -> None:
    make_pool(server)
    with server.client() as client:
        client.heartbeat(schemas.WorkerHeartbeat(name="w", work_pool_name="my-pool"))
    output = deploy(server, deploy_script(tmp_path), name="d", work_pool_name="my-pool")
    assert "dockyard worker start" not in output
    assert "dockyard deployment run 'get-repo-info/d'" in output


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"work_pool_name": "nope"}, "work pool 'nope' not found"),
        ({"work_pool_name": "my-pool", "job_variables": {"stream_output": "x"}}, "stream_output"),
        ({"work_pool_name": "my-pool", "work_queue_name": "q"}, "work queue 'q'"),
    ],
)
def test_what_the_server_refuses_is_said_clearly(
    server: RunningServer, tmp_path: Path, options: dict[str, object], expected: str
) -> None:
    make_pool(server)
    output = deploy(server, deploy_script(tmp_path), check=False, name="d", **options)
    last = output.strip().splitlines()
    assert any(expected in line for line in last[-3:]), output
    assert "dockyard.exceptions.InvalidInput" in output
    assert "httpx" not in output and "_core.py" not in output


def test_a_deployment_of_a_flow_not_in_a_file_is_refused() -> None:
    def inner() -> None: ...

    with pytest.raises(DockyardError, match="top level of its module"):
        Deployment(flow(inner), "d").request()


def test_unknown_or_non_json_parameters_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "flows.py", FLOWS)
    loaded = flow.from_source(tmp_path, "flows.py:get_repo_info")
    with pytest.raises(DockyardError, match="has no parameter 'nope'"):
        Deployment(loaded, "d", parameters={"nope": 1}).request()
    with pytest.raises(DockyardError, match="must be JSON"):
        Deployment(loaded, "d", parameters={"repo_name": object()}).request()


def test_unknown_arguments_are_not_silently_ignored(tmp_path: Path) -> None:
    write(tmp_path / "flows.py", FLOWS)
    loaded = flow.from_source(tmp_path, "flows.py:get_repo_info")
    for extra in ({"imagee": "x:y"}, {"crom": "* * * * *"}):
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            loaded.deploy("d", "pool", **extra)  # type: ignore[call-arg]


def test_the_script_itself_runs_the_flow_when_called(server: RunningServer, tmp_path: Path) -> None:
    script = write(
        tmp_path / "call.py",
        FLOWS + "\nprint('RESULT', get_repo_info('x/y', stars=3))\n",
    )
    done = run_python(script, server.env)
    assert "RESULT x/y" in done.stdout
