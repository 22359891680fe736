"""``flow.serve(...)`` and ``dockyard.serve(...)`` in a subprocess, as a user runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from deploy_support import FLOWS, stop, wait_until, write

from _support import RunningServer, free_port, run_cli
from dockyard import flow, serve
from dockyard.exceptions import DockyardError
from dockyard.sdk.deploy.local_server import is_up
from dockyard.settings import load

SERVE_ONE = FLOWS + '\n\nif __name__ == "__main__":\n    get_repo_info.serve("served", limit=2)\n'
SERVE_MANY = (
    FLOWS
    + """

if __name__ == "__main__":
    from dockyard import serve

    serve(get_repo_info.to_deployment("a", parameters={"stars": 7}), failing.to_deployment("b"))
"""
)


class Serving:
    """A serve script running in a subprocess, its output in a file."""

    def __init__(self, script: Path, env: Mapping[str, str]) -> None:
        self.log = script.with_suffix(".log")
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, str(script)],
                env={**env, "PYTHONUNBUFFERED": "1"},
                cwd=script.parent,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str) -> None:
        def printed() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited early:\n{self.output()}", pytrace=False)
            return text in self.output()

        wait_until(printed, 60, f"serve to print {text!r}")


@pytest.fixture
def serving() -> Iterator[list[Serving]]:
    started: list[Serving] = []
    yield started
    for one in started:
        if one.process.poll() is None:
            one.process.kill()
            one.process.wait()


def start(serving: list[Serving], script: Path, env: Mapping[str, str]) -> Serving:
    one = Serving(script, env)
    serving.append(one)
    return one


def test_a_served_deployment_is_ready_runs_and_stops_on_ctrl_c(
    server: RunningServer, serving: list[Serving], tmp_path: Path
) -> None:
    one = start(serving, write(tmp_path / "served.py", SERVE_ONE), server.env)
    one.wait_for("waiting for runs")
    assert "dockyard deployment run 'get-repo-info/served'" in one.output()
    with server.client() as client:
        served = client.read_deployment_by_name("get-repo-info/served")
    assert served.work_pool_name is None and str(served.status) == "READY"
    assert served.path == str(tmp_path.resolve())
    done = server.cli("deployment", "run", "get-repo-info/served", "--param", "stars=3", "--watch")
    assert "PrefectHQ/prefect has 3 stars" in done.stdout
    assert stop(one.process) == 0
    assert "stopped" in one.output().splitlines()[-1]
    assert "Traceback" not in one.output()


def test_serve_many_deployments_from_one_process(
    server: RunningServer, serving: list[Serving], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dockyard.deployments import run_deployment

    one = start(serving, write(tmp_path / "served.py", SERVE_MANY), server.env)
    one.wait_for("waiting for runs")
    monkeypatch.setenv("DOCKYARD_API_URL", server.api_url)
    completed = run_deployment("get_repo_info/a")
    assert (completed.state, completed.result) == ("COMPLETED", "PrefectHQ/prefect")
    assert run_deployment("failing/b").state == "FAILED"
    stop(one.process)


def test_serve_starts_a_server_when_none_answers(serving: list[Serving], tmp_path: Path) -> None:
    home = tmp_path / "home"
    api_url = f"http://127.0.0.1:{free_port()}/api"
    env = {**os.environ, "DOCKYARD_HOME": str(home), "DOCKYARD_API_URL": api_url}
    one = start(serving, write(tmp_path / "served.py", SERVE_ONE), env)
    one.wait_for("waiting for runs")
    output = one.output()
    assert (
        f"Started a Dockyard server for this process (it stops with it): UI {api_url[:-3]}"
        in output
    )
    assert f"DOCKYARD_API_URL={api_url} dockyard deployment run 'get-repo-info/served'" in output
    done = run_cli("deployment", "run", "get-repo-info/served", "--watch", env=env)
    assert done.stdout.splitlines()[-1].endswith("ended COMPLETED.")
    assert (home / "dockyard.db").exists()
    assert stop(one.process) == 0
    assert not is_up(load(api_url=api_url))


def test_a_second_ctrl_c_is_not_needed_and_sigterm_stops_it_too(
    server: RunningServer, serving: list[Serving], tmp_path: Path
) -> None:
    one = start(serving, write(tmp_path / "served.py", SERVE_ONE), server.env)
    one.wait_for("waiting for runs")
    assert stop(one.process, signal.SIGTERM) == 0


def test_serve_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    write(tmp_path / "flows.py", FLOWS)
    loaded = flow.from_source(tmp_path, "flows.py:get_repo_info")
    with pytest.raises(DockyardError, match="at least one deployment"):
        serve()
    with pytest.raises(DockyardError, match="limit must be at least 1"):
        serve(loaded.to_deployment("x"), limit=0)
    from dockyard.sdk.deploy.deployments import Deployment

    pooled = Deployment(loaded, "x", work_pool_name="pool")
    with pytest.raises(DockyardError, match="has one"):
        serve(pooled)


def test_serve_does_not_start_a_server_for_another_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dockyard.exceptions import ServerUnreachable

    write(tmp_path / "flows.py", FLOWS)
    loaded = flow.from_source(tmp_path, "flows.py:get_repo_info")
    monkeypatch.setenv("DOCKYARD_API_URL", "http://192.0.2.1:9/api")
    monkeypatch.setattr("dockyard.sdk.deploy.local_server.is_up", lambda settings: False)
    with pytest.raises(ServerUnreachable):
        serve(loaded.to_deployment("x"))
