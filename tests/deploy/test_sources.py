"""``flow.from_source(...)`` and the engine's pull steps, with local directories and bare
git repositories (no network)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from deploy_support import FLOWS, bare_repository, commit, run_engine, run_python, write

from _support import RunningServer
from dockyard import flow, schemas
from dockyard.exceptions import DockyardError

DEPLOY_FROM = """
import sys
from dockyard import flow

source, entrypoint, name = sys.argv[1:4]
options = dict(arg.split("=", 1) for arg in sys.argv[4:])
print("ID", flow.from_source(source, entrypoint, **options).deploy(name, work_pool_name="pool"))
"""


@pytest.fixture
def pool(server: RunningServer) -> str:
    with server.client() as client:
        client.create_work_pool(schemas.WorkPoolCreate(name="pool", type="process"))
    return "pool"


def deploy_from(
    server: RunningServer, tmp_path: Path, source: str, entrypoint: str, *options: str
) -> schemas.Deployment:
    script = write(tmp_path / "deployer" / "deploy.py", DEPLOY_FROM)
    name = f"d-{uuid.uuid4().hex[:6]}"
    done = run_python(script, server.env, source, entrypoint, name, *options, cwd=script.parent)
    assert "ID " in done.stdout
    with server.client() as client:
        found: schemas.Deployment = client.read_deployment_by_name(f"get-repo-info/{name}")
    return found


def run_it(server: RunningServer, deployment_id: uuid.UUID, cwd: Path, **params: Any) -> Any:
    """Create a run, run the engine by hand in ``cwd``, return the run and the process."""
    with server.client() as client:
        run = client.create_deployment_run(
            deployment_id, schemas.DeploymentRunCreate(parameters=params)
        )
    process = run_engine(server.env, run.id, cwd)
    with server.client() as client:
        return client.read_flow_run(run.id), process


def test_from_a_local_directory(server: RunningServer, pool: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(project / "flows.py", FLOWS)
    deployment = deploy_from(server, tmp_path, str(project), "flows.py:get_repo_info")
    assert deployment.path == str(project.resolve())
    assert deployment.entrypoint == "flows.py:get_repo_info"
    assert deployment.pull_steps == []
    run, process = run_it(server, deployment.id, tmp_path, repo_name="local/dir")
    assert run.state == "COMPLETED", process.stderr
    assert run.result == "local/dir"


def test_from_a_bare_git_repository_the_engine_clones_it(
    server: RunningServer, pool: str, tmp_path: Path, git: str
) -> None:
    bare, _ = bare_repository(git, tmp_path / "git", {"flows/repo_info.py": FLOWS})
    deployment = deploy_from(server, tmp_path, str(bare), "flows/repo_info.py:get_repo_info")
    assert deployment.path is None
    assert deployment.pull_steps == [{"git_clone": {"repository": str(bare)}}]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run, process = run_it(server, deployment.id, elsewhere, repo_name="from/git")
    assert run.state == "COMPLETED", (run.state_message, process.stderr)
    assert run.result == "from/git"
    assert "from/git has 0 stars" in process.stdout
    assert list(elsewhere.iterdir()) == []


def test_a_git_source_follows_its_branch_or_stays_on_its_commit(
    server: RunningServer, pool: str, tmp_path: Path, git: str
) -> None:
    bare, work = bare_repository(git, tmp_path / "git", {"flows.py": FLOWS})
    v2 = commit(git, work, {"flows.py": FLOWS.replace("{repo_name} has", "v2: {repo_name}")}, "2")
    subprocess.run([git, "-C", str(work), "push", "-q", "origin", "main:feature"], check=True)
    url = f"file://{bare}"
    expected = {
        (): "PrefectHQ/prefect has 0 stars",
        ("branch=feature",): "v2: PrefectHQ/prefect",
        (f"commit={v2}",): "v2: PrefectHQ/prefect",
    }
    for options, printed in expected.items():
        deployment = deploy_from(server, tmp_path, url, "flows.py:get_repo_info", *options)
        step = dict(option.split("=", 1) for option in options)
        assert deployment.pull_steps == [{"git_clone": {"repository": url, **step}}]
        _, process = run_it(server, deployment.id, tmp_path)
        assert printed in process.stdout, process.stderr


@pytest.mark.parametrize(
    ("pull_steps", "expected"),
    [
        ([{"git_clone": {"repository": "/no/such/repo.git"}}], "could not clone git repository"),
        ([{"fetch_it": {}}], "unknown step 'fetch_it'"),
        ([{"git_clone": {}, "more": {}}], "must be an object with one key"),
        ([{"set_working_directory": {"directory": "/no/such/dir"}}], "is not a directory"),
        ([{"set_working_directory": {"dir": "/tmp"}}], "bad arguments"),
    ],
)
def test_a_failing_pull_step_fails_the_run(
    server: RunningServer, tmp_path: Path, pull_steps: list[Any], expected: str
) -> None:
    with server.client() as client:
        deployment = client.upsert_deployment(
            schemas.DeploymentCreate(
                flow_name="f", name="d", entrypoint="flows.py:f", pull_steps=pull_steps
            )
        )
    run, process = run_it(server, deployment.id, tmp_path)
    assert run.state == "FAILED"
    assert run.state_message is not None and expected in run.state_message
    assert process.returncode == 1


def test_set_working_directory_is_where_the_entrypoint_resolves(
    server: RunningServer, tmp_path: Path
) -> None:
    code = tmp_path / "code"
    write(code / "flows.py", FLOWS)
    step = {"set_working_directory": {"directory": str(code)}}
    with server.client() as client:
        deployment = client.upsert_deployment(
            schemas.DeploymentCreate(
                flow_name="get-repo-info",
                name="d",
                entrypoint="flows.py:get_repo_info",
                pull_steps=[step],
            )
        )
    run, process = run_it(server, deployment.id, tmp_path, repo_name="wd")
    assert run.state == "COMPLETED", process.stderr
    assert run.result == "wd"


def test_from_source_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(DockyardError, match="not a directory nor a git repository"):
        flow.from_source(tmp_path / "missing", "flows.py:f")
    write(tmp_path / "flows.py", FLOWS)
    with pytest.raises(DockyardError, match="branch and commit are for git"):
        flow.from_source(tmp_path, "flows.py:get_repo_info", branch="main")
    with pytest.raises(DockyardError, match="has no attribute 'nope'"):
        flow.from_source(tmp_path, "flows.py:nope")
    with pytest.raises(DockyardError, match="could not clone"):
        flow.from_source(tmp_path / "missing.git", "flows.py:f")


def test_from_source_loads_the_flow_for_a_direct_call(tmp_path: Path) -> None:
    write(tmp_path / "flows.py", FLOWS)
    loaded = flow.from_source(str(tmp_path), "flows.py:get_repo_info")
    assert loaded.name == "get-repo-info"
    assert loaded.source is not None and loaded.source.path == str(tmp_path.resolve())
    assert loaded.with_options(retries=1).source == loaded.source
    done = run_python(
        "from dockyard import flow\n"
        f"print(flow.from_source({str(tmp_path)!r}, 'flows.py:get_repo_info')('x/y'))\n",
        os.environ,
    )
    assert done.stdout.strip().endswith("x/y")
