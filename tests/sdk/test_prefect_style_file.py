"""A flow file written for Prefect 3, with only ``prefect`` changed to ``dockyard`` in its
imports, runs as a script against a real server and behaves as documented: logs, futures,
states, runtime, names, tags, hooks, retries with backoff, caching and task runners.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from _support import RunningServer

FLOW_FILE = """
import json
import sys
from datetime import timedelta

from dockyard import flow, task, tags, unmapped
from dockyard.cache_policies import INPUTS, TASK_SOURCE
from dockyard.context import get_run_context
from dockyard.futures import as_completed, wait
from dockyard.logging import get_run_logger
from dockyard.runtime import flow_run, task_run
from dockyard.states import Completed, Failed
from dockyard.task_runners import ThreadPoolTaskRunner
from dockyard.tasks import exponential_backoff, task_input_hash

ATTEMPTS = {}
EVENTS = []


@task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=0.01),
      retry_jitter_factor=0.5, task_run_name="flaky-{n}")
def flaky(n: int) -> int:
    ATTEMPTS[n] = ATTEMPTS.get(n, 0) + 1
    if task_run.run_count < 2:
        raise RuntimeError("not yet")
    return n * 10


@task(cache_policy=INPUTS + TASK_SOURCE, cache_expiration=timedelta(minutes=5))
def expensive(x: int) -> int:
    EVENTS.append(f"computed {x}")
    return x * x


@task(cache_key_fn=task_input_hash)
def keyed(x: int) -> int:
    EVENTS.append(f"keyed {x}")
    return x + 1


@task
def scale(x: int, factor: int) -> int:
    get_run_logger().info("scaling %s by %s", x, factor)
    return x * factor


@task
def check(rows: int):
    if rows == 0:
        return Failed(message="no rows")
    return Completed(message=f"{rows} rows")


def remember(flow, flow_run, state):
    EVENTS.append(f"hook {state.name}")


@flow(name="prefect-style", flow_run_name="report-{day}", log_prints=True,
      task_runner=ThreadPoolTaskRunner(max_workers=4), on_completion=[remember])
def report(day: str, values: list[int]) -> dict:
    logger = get_run_logger()
    logger.info("flow %s of %s", flow_run.name, flow_run.flow_name)
    with tags("nightly"):
        retried = flaky.submit(1)
    scaled = scale.map(values, unmapped(3))
    done, not_done = wait(scaled)
    first = [f.result() for f in as_completed(scaled)]
    twice = [expensive(4), expensive(4)]
    keyed_twice = [keyed(1), keyed(1)]
    empty = check(0, return_state=True)
    full = check(5, return_state=True)
    print("printed from the flow")
    return {
        "run_id": str(flow_run.id),
        "run_name": get_run_context().flow_run.name,
        "retried": retried.result(),
        "retried_state": retried.state.name,
        "attempts": dict(ATTEMPTS),
        "scaled": scaled.result(),
        "done": len(done), "not_done": len(not_done), "as_completed": sorted(first),
        "twice": twice, "keyed": keyed_twice,
        "empty": [empty.type.value, empty.message, empty.is_failed()],
        "full": [full.type.value, full.message, full.result()],
    }


if __name__ == "__main__":
    outcome = report("monday", [1, 2, 3])
    outcome["events"] = EVENTS
    state = report("tuesday", [], return_state=True)
    outcome["second"] = [state.type.value, state.is_completed()]
    print("RESULT " + json.dumps(outcome))
"""


def test_a_prefect_style_flow_file_runs_unchanged_but_for_its_imports(
    tracked: RunningServer, tmp_path: Path
) -> None:
    script = tmp_path / "report.py"
    script.write_text(textwrap.dedent(FLOW_FILE))
    env = {**os.environ, "DOCKYARD_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    outcome = json.loads(line.removeprefix("RESULT "))

    assert outcome["run_name"] == "report-monday"
    assert outcome["retried"] == 10 and outcome["attempts"] == {"1": 2}
    assert outcome["retried_state"] == "Completed"
    assert outcome["scaled"] == [3, 6, 9]
    assert (outcome["done"], outcome["not_done"]) == (3, 0)
    assert outcome["as_completed"] == [3, 6, 9]
    assert outcome["twice"] == [16, 16] and outcome["keyed"] == [2, 2]
    assert outcome["events"].count("computed 4") == 1
    assert outcome["events"].count("keyed 1") == 1
    assert outcome["empty"] == ["FAILED", "no rows", True]
    assert outcome["full"] == ["COMPLETED", "5 rows", None]
    assert outcome["events"].count("hook Completed") == 2
    assert outcome["second"] == ["COMPLETED", True]
    assert "printed from the flow" in done.stdout

    with tracked.client() as client:
        run = client.read_flow_run(uuid.UUID(outcome["run_id"]))
        task_runs = client.list_task_runs(flow_run_id=run.id)
        messages = [log.message for log in client.read_logs(flow_run_id=run.id, limit=1000)]
    assert run.name == "report-monday" and run.flow_name == "prefect-style"
    assert run.state == "COMPLETED"
    by_name = {t.name: t for t in task_runs}
    assert by_name["flaky-1"].state == "COMPLETED" and "nightly" in by_name["flaky-1"].tags
    assert {t.state for t in task_runs if t.name.startswith("check")} == {"FAILED", "COMPLETED"}
    assert "flow report-monday of prefect-style" in messages
    assert "scaling 2 by 3" in messages
    assert "printed from the flow" in messages
