"""``dockyard_test_harness()``: a throwaway server that a test session's flows report to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from _support import run_cli
from dockyard import flow
from dockyard.client import Client
from dockyard.exceptions import DockyardError
from dockyard.sdk.deploy.local_server import is_up
from dockyard.settings import Settings
from dockyard.testing import dockyard_test_harness
from dockyard.testing.utilities import dockyard_test_harness as from_utilities


@flow
def doubled(x: int) -> int:
    return 2 * x


def test_runs_in_the_harness_are_recorded_on_its_server_and_the_environment_comes_back(
    no_server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKYARD_API_KEY", "a-key-for-another-server")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("NO_PROXY", "example.com")
    assert doubled(1) == 2  # untracked: the SDK has met the closed port first
    before = dict(os.environ)
    with dockyard_test_harness():
        api_url = os.environ["DOCKYARD_API_URL"]
        home = Path(os.environ["DOCKYARD_HOME"])
        assert api_url != no_server and home.is_dir()
        assert "DOCKYARD_API_KEY" not in os.environ
        assert os.environ["no_proxy"] == os.environ["NO_PROXY"] == "example.com,127.0.0.1"
        assert doubled(21) == 42
        with Client() as client:
            [run] = client.list_flow_runs(flow_name="doubled")
        assert run.state == "COMPLETED" and run.parameters == {"x": 21}
        # a process started in the block reports to the same server
        listed = json.loads(run_cli("flow-run", "ls", "--json").stdout)
        assert [r["id"] for r in listed] == [str(run.id)]
    assert dict(os.environ) == before
    assert not home.exists()
    assert not is_up(Settings(api_url=api_url))
    capsys.readouterr()
    assert doubled(2) == 4  # untracked again, as before the harness
    assert f"no server at {no_server}" in capsys.readouterr().err


def test_the_documented_session_fixture_gives_a_users_tests_one_server(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "conftest.py").write_text(
        textwrap.dedent(
            """
            import pytest
            from dockyard.testing.utilities import dockyard_test_harness

            @pytest.fixture(autouse=True, scope="session")
            def dockyard_server():
                with dockyard_test_harness():
                    yield
            """
        )
    )
    (project / "test_user_flows.py").write_text(
        textwrap.dedent(
            """
            from dockyard import flow
            from dockyard.client import Client

            @flow
            def add(x: int, y: int) -> int:
                return x + y

            def test_add():
                assert add(1, 2) == 3

            def test_the_run_of_the_test_before_is_on_the_same_server():
                with Client() as client:
                    runs = client.list_flow_runs(flow_name="add")
                assert [str(r.state) for r in runs] == ["COMPLETED"]
            """
        )
    )
    temp = tmp_path / "tmp"
    temp.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"],
        cwd=project,
        env={**os.environ, "TMPDIR": str(temp)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    assert list(temp.iterdir()) == []  # the harness's home, database and log are gone


def test_a_server_that_does_not_start_is_reported_and_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKYARD_LEASE_SECONDS", "soon")  # the server refuses to start
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = dict(os.environ)
    refused = pytest.raises(DockyardError, match="exited before it answered")
    with refused as raised, from_utilities():
        pytest.fail("the block ran without a server")
    assert "DOCKYARD_LEASE_SECONDS='soon'" in str(raised.value)  # the server's log says why
    assert dict(os.environ) == before
    assert list(tmp_path.iterdir()) == []
