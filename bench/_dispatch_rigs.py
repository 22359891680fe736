"""Each product's pool, deployment, worker and runs, as ``dispatch.py`` drives them over REST."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from _common import DOCKYARD, PREFECT, Product

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
BUSY_RETRIES = 10
PAGE = 1000  # the most runs one list call answers

STANDIN = """\
import json, os, urllib.request

def move(state):
    url = f"{os.environ['DOCKYARD_API_URL']}/flow-runs/{os.environ['DOCKYARD_FLOW_RUN_ID']}/state"
    body = json.dumps({"state": state, "lease_token": os.environ["DOCKYARD_LEASE_TOKEN"]})
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).read()

move("RUNNING")
move("COMPLETED")
"""


def _ts(value: str | None) -> float:
    return datetime.fromisoformat(value).timestamp() if value else float("nan")


class Rig:
    """One product's side of the benchmark."""

    has_standin = False
    worker_ready_line = ""

    def __init__(self, product: Product, http: httpx.Client, tmp: Path, env: dict[str, str]):
        self.product = product
        self.http = http
        self.tmp = tmp
        self.env = env
        self.flows = tmp / "flows"
        self.flows.mkdir()

    def call(self, method: str, url: str, **kwargs: Any) -> Any:
        """Send a request and return its JSON answer.

        A 503 ("busy, try again": Prefect's SQLite server says so when its database is locked)
        is retried after a short, growing pause, as the product's own client would.
        """
        answer = self.http.request(method, url, **kwargs)
        for attempt in range(BUSY_RETRIES):
            if answer.status_code != 503:
                break
            time.sleep(min(0.05 * 2**attempt, 2.0))
            answer = self.http.request(method, url, **kwargs)
        return answer.raise_for_status().json()

    def deploy(self) -> None:
        raise NotImplementedError

    def worker_command(self, limit: int) -> list[str]:
        raise NotImplementedError

    def trigger(self, due: datetime | None = None, *, standin: bool = False) -> str:
        raise NotImplementedError

    def states(self, run_id: str) -> dict[str, float]:
        """The first time the run entered each state."""
        raise NotImplementedError

    def outcomes(self, ids: list[str]) -> dict[str, tuple[str, float]]:
        """Run id -> (state, end time) for the runs among ``ids`` that are final."""
        raise NotImplementedError

    def wait_final(self, ids: list[str], timeout: float) -> dict[str, tuple[str, float]]:
        deadline = time.monotonic() + timeout
        pause = 0.01 if len(ids) == 1 else 0.5
        while True:
            found = self.outcomes(ids)
            if len(found) == len(ids):
                return found
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(found)} of {len(ids)} runs final after {timeout} s")
            time.sleep(pause)


class DockyardRig(Rig):
    has_standin = True
    worker_ready_line = "waiting for runs"

    def deploy(self) -> None:
        (self.flows / "flows.py").write_text(
            "from dockyard import flow\n\n\n@flow(log_prints=True)\n"
            "def my_flow(greeting: str = 'hello'):\n    print(f'{greeting} from the engine')\n"
        )
        (self.flows / "standin.py").write_text(STANDIN)
        self.call("POST", "/work-pools", json={"name": "bench", "type": "process"})
        self.deployment = self._deployment("engine", {})
        command = shlex.join([sys.executable, str(self.flows / "standin.py")])
        self.standin = self._deployment("standin", {"command": command, "stream_output": False})

    def _deployment(self, name: str, job_variables: dict[str, Any]) -> str:
        body = {
            "flow_name": "bench-flow",
            "name": name,
            "entrypoint": "flows.py:my_flow",
            "path": str(self.flows),
            "work_pool_name": "bench",
            "job_variables": job_variables,
        }
        return str(self.call("POST", "/deployments", json=body)["id"])

    def worker_command(self, limit: int) -> list[str]:
        return [*DOCKYARD.cli, "worker", "start", "--pool", "bench", "--limit", str(limit)]

    def trigger(self, due: datetime | None = None, *, standin: bool = False) -> str:
        deployment = self.standin if standin else self.deployment
        body = {"scheduled_start": due.isoformat()} if due else {}
        return str(self.call("POST", f"/deployments/{deployment}/runs", json=body)["id"])

    def states(self, run_id: str) -> dict[str, float]:
        found: dict[str, float] = {}
        for state in self.call("GET", f"/flow-runs/{run_id}/states"):
            found.setdefault(state["type"], _ts(state["timestamp"]))
        return found

    def outcomes(self, ids: list[str]) -> dict[str, tuple[str, float]]:
        if len(ids) == 1:
            runs = [self.call("GET", f"/flow-runs/{ids[0]}")]
        else:
            runs = self._final_runs()
        wanted = set(ids)
        return {
            run["id"]: (run["state"], _ts(run["end_time"]))
            for run in runs
            if run["id"] in wanted and run["state"] in FINAL
        }

    def _final_runs(self) -> list[dict[str, Any]]:
        """Every final run of the pool, page by page: a burst of any size is seen whole."""
        found: list[dict[str, Any]] = []
        while True:
            params = {"work_pool_name": "bench", "state": sorted(FINAL), "limit": PAGE}
            page = self.call("GET", "/flow-runs", params={**params, "offset": len(found)})
            found.extend(page)
            if len(page) < PAGE:
                return found


class PrefectRig(Rig):
    worker_ready_line = "started!"

    def deploy(self) -> None:
        prefect = [str(PREFECT.python.parent / "prefect")]
        create = [*prefect, "work-pool", "create", "bench-pool", "--type", "process"]
        subprocess.run(create, env=self.env, check=True, capture_output=True, timeout=120)
        (self.flows / "flows.py").write_text(
            "from prefect import flow\n\n\n@flow(log_prints=True)\n"
            "def my_flow(greeting: str = 'hello'):\n    print(f'{greeting} from the engine')\n"
        )
        script = (
            "from prefect import flow\n"
            f"source = flow.from_source(source={str(self.flows)!r}, "
            "entrypoint='flows.py:my_flow')\n"
            "print('ID', source.deploy(name='bench', work_pool_name='bench-pool', "
            "print_next_steps=False))\n"
        )
        done = subprocess.run(
            [str(PREFECT.python), "-c", script],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=self.flows,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("ID ")]
        if done.returncode or not lines:
            raise RuntimeError(f"prefect deploy failed:\n{done.stdout}\n{done.stderr}")
        self.deployment = lines[-1].split()[1]

    def worker_command(self, limit: int) -> list[str]:
        prefect = str(PREFECT.python.parent / "prefect")
        return [prefect, "worker", "start", "--pool", "bench-pool", "--type", "process",
                "--limit", str(limit)]  # fmt: skip

    def trigger(self, due: datetime | None = None, *, standin: bool = False) -> str:
        body: dict[str, Any] = {}
        if due:
            details = {"scheduled_time": due.isoformat()}
            body["state"] = {"type": "SCHEDULED", "state_details": details}
        path = f"/deployments/{self.deployment}/create_flow_run"
        return str(self.call("POST", path, json=body)["id"])

    def states(self, run_id: str) -> dict[str, float]:
        answer = self.call("GET", "/flow_run_states/", params={"flow_run_id": run_id})
        found: dict[str, float] = {}
        for state in sorted(answer, key=lambda s: s["timestamp"]):
            found.setdefault(state["type"], _ts(state["timestamp"]))
        return found

    def outcomes(self, ids: list[str]) -> dict[str, tuple[str, float]]:
        found: dict[str, tuple[str, float]] = {}
        for start in range(0, len(ids), 200):
            body = {"flow_runs": {"id": {"any_": ids[start : start + 200]}}, "limit": 200}
            for run in self.call("POST", "/flow_runs/filter", json=body):
                state = (run.get("state") or {}).get("type")
                if state in FINAL:
                    found[run["id"]] = (state, _ts(run.get("end_time")))
        return found
