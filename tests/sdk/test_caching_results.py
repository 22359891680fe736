"""Cache policies, persisted results, and reuse of completed tasks when a flow run retries."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sdk_stub import Recorded

from _support import RunningServer
from dockyard import flow, task, task_input_hash
from dockyard.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    NONE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyFnPolicy,
    CachePolicy,
    CompoundCachePolicy,
    Inputs,
)
from dockyard.exceptions import DockyardError
from dockyard.schemas import DeploymentCreate, DeploymentRunCreate
from dockyard.sdk.runtime.persistence import Journal, Record, ResultStore, resolve_storage


def records(folder: Path) -> list[Record]:
    """The result records directly in ``folder``."""
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_file() and not path.name.startswith("."):
            record = Record.unpack(path.read_bytes())
            assert record is not None, path
            found.append(record)
    return found


# ---------------------------------------------------------------- when results are kept


def test_a_plain_task_keeps_nothing(dockyard_home: Path) -> None:
    @task
    def add(x: int) -> int:
        return x + 1

    @flow
    def run() -> int:
        return add(1) + add(1)

    assert run() == 4
    assert not (dockyard_home / "storage").exists()


def test_persist_result_caches_equal_calls_within_one_flow_run(dockyard_home: Path) -> None:
    calls: list[int] = []

    @task(persist_result=True)
    def add(x: int) -> int:
        calls.append(x)
        return x + 1

    @flow
    def run() -> list[int]:
        return [add(1), add(1), add(2)]

    assert run() == [2, 2, 3]
    assert calls == [1, 2]
    assert run() == [2, 2, 3]  # a new flow run: DEFAULT keys on the run's id
    assert calls == [1, 2, 1, 2]
    stored = records(dockyard_home / "storage")
    assert len(stored) == 4
    assert {r.meta["serializer"] for r in stored} == {"pickle"}


def test_the_setting_and_the_flow_turn_persistence_on_for_their_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    @task
    def plain(x: int) -> int:
        calls.append("plain")
        return x

    @task(persist_result=False)
    def never(x: int) -> int:
        calls.append("never")
        return x

    @flow
    def run() -> None:
        for call in (plain, plain, never, never):
            call(1)

    run()
    assert calls.count("plain") == 2
    monkeypatch.setenv("DOCKYARD_RESULTS_PERSIST_BY_DEFAULT", "true")
    calls.clear()
    run()
    assert calls == ["plain", "never", "never"]

    monkeypatch.delenv("DOCKYARD_RESULTS_PERSIST_BY_DEFAULT")
    calls.clear()
    run.with_options(persist_result=True)()
    assert calls == ["plain", "never", "never"]


def test_a_persisted_flow_keeps_its_own_result(dockyard_home: Path) -> None:
    @flow(persist_result=True, result_serializer="json")
    def run() -> dict[str, int]:
        return {"n": 1}

    assert run() == {"n": 1}
    (record,) = records(dockyard_home / "storage" / "flow-runs")
    assert json.loads(record.payload) == {"n": 1}
    uuid.UUID(record.meta["key"])  # the flow run's id


# ---------------------------------------------------------------- policies


def test_inputs_share_results_across_flow_runs_and_leave_out_what_is_taken_away() -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS - "verbose")
    def square(x: int, verbose: bool = False) -> int:
        calls.append(x)
        return x * x

    @flow
    def run(verbose: bool) -> list[int]:
        return [square(2, verbose=verbose), square(3)]

    assert run(False) == [4, 9]
    assert run(True) == [4, 9]
    assert calls == [2, 3]


def test_task_source_keys_on_the_code_only() -> None:
    calls: list[int] = []

    @task(cache_policy=TASK_SOURCE)
    def constant(x: int) -> int:
        calls.append(x)
        return 42

    @flow
    def run() -> list[int]:
        return [constant(1), constant(2)]

    assert run() == [42, 42]
    assert calls == [1]


def test_flow_parameters_key_on_the_flow_runs_parameters() -> None:
    calls: list[str] = []

    @task(cache_policy=FLOW_PARAMETERS)
    def load() -> int:
        calls.append("load")
        return len(calls)

    @flow
    def run(day: str) -> int:
        return load()

    assert run("mon") == 1
    assert run("mon") == 1
    assert run("tue") == 2


def test_run_id_and_no_cache() -> None:
    calls: list[str] = []

    @task(cache_policy=RUN_ID)
    def once_per_run(x: int) -> int:
        calls.append("once")
        return x

    @task(persist_result=True, cache_policy=NO_CACHE)
    def always(x: int) -> int:
        calls.append("always")
        return x

    @flow
    def run() -> list[int]:
        return [once_per_run(1), once_per_run(2), always(1), always(1)]

    assert run() == [1, 1, 1, 1]
    assert calls == ["once", "always", "always"]
    assert NONE is NO_CACHE


def test_cache_key_fn_and_its_policy() -> None:
    calls: list[int] = []

    def by_first_letter(context: Any, parameters: dict[str, Any]) -> str | None:
        return f"letter-{parameters['word'][0]}" if parameters["word"] else None

    @task(cache_key_fn=by_first_letter)
    def upper(word: str) -> str:
        calls.append(1)
        return word.upper()

    policy_task = upper.with_options(
        cache_key_fn=None, cache_policy=CachePolicy.from_cache_key_fn(by_first_letter)
    )
    assert isinstance(policy_task.cache_policy, CacheKeyFnPolicy)

    @flow
    def run() -> list[str]:
        return [upper("apple"), upper("avocado"), policy_task("ant"), upper(""), upper("")]

    assert run() == ["APPLE", "APPLE", "APPLE", "", ""]
    assert len(calls) == 3


def test_task_input_hash_keys_on_the_task_and_its_arguments() -> None:
    calls: list[int] = []

    @task(cache_key_fn=task_input_hash)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    @flow
    def run() -> list[int]:
        return [double(1), double(1), double(2)]

    assert run() == [2, 2, 4]
    assert run() == [2, 2, 4]
    assert calls == [1, 2]


def test_policies_compose() -> None:
    assert DEFAULT == INPUTS + TASK_SOURCE + RUN_ID
    assert isinstance(DEFAULT, CompoundCachePolicy)
    less = DEFAULT - "token"
    inputs = [p for p in less.policies if isinstance(p, Inputs)]  # type: ignore[attr-defined]
    assert [p.exclude for p in inputs] == [["token"]]
    assert (INPUTS - "a" - "b").exclude == ["a", "b"]  # type: ignore[attr-defined]
    assert INPUTS.exclude == []
    with pytest.raises(TypeError, match="argument names"):
        INPUTS - 1  # type: ignore[operator]


def test_refresh_cache_runs_and_replaces_the_stored_result() -> None:
    counter = {"n": 0}

    @task(cache_policy=TASK_SOURCE)
    def count() -> int:
        counter["n"] += 1
        return counter["n"]

    refreshing = count.with_options(refresh_cache=True)

    @flow
    def run() -> list[int]:
        return [count(), refreshing(), count()]

    assert run() == [1, 2, 2]


def test_cached_results_expire() -> None:
    calls: list[int] = []

    @task(cache_policy=TASK_SOURCE, cache_expiration=0.2)
    def stamp() -> int:
        calls.append(1)
        return len(calls)

    @flow
    def run() -> int:
        return stamp()

    assert run() == 1
    assert run() == 1
    time.sleep(0.3)
    assert run() == 2


def test_a_task_outside_any_flow_uses_the_cache_too() -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS)
    def inc(x: int) -> int:
        calls.append(x)
        return x + 1

    assert (inc(1), inc(1)) == (2, 2)
    assert calls == [1]


def test_inputs_that_cannot_be_hashed_run_without_the_cache(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS)
    def use(lock: Any) -> int:
        calls.append(1)
        return 1

    @flow
    def run() -> None:
        lock = threading.Lock()
        use(lock)
        use(lock)

    with caplog.at_level(logging.WARNING):
        run()
    assert len(calls) == 2
    assert "could not be computed, so it runs without the cache" in caplog.text
    assert "cache_policy=NO_CACHE" in caplog.text


def test_a_hit_is_recorded_as_a_cached_completed_run(recorder: Recorded) -> None:
    @task(cache_policy=INPUTS)
    def one(x: int) -> int:
        return x

    @flow
    def run() -> None:
        one(1)
        one(1)

    run()
    first, second = sorted(recorder.task_runs, key=lambda r: r["name"])
    assert first["state"] == second["state"] == "COMPLETED"
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["cache_key"] == second["cache_key"]


# ---------------------------------------------------------------- storage and serializers


def test_result_storage_and_json_serializer(tmp_path: Path, dockyard_home: Path) -> None:
    @task(result_storage=tmp_path / "results", result_serializer="json")
    def data(x: int) -> dict[str, Any]:
        return {"x": x, "items": [1, 2]}

    @flow
    def run() -> dict[str, Any]:
        return data(1)

    assert run() == {"x": 1, "items": [1, 2]}
    (record,) = records(tmp_path / "results")
    assert record.meta["serializer"] == "json"
    assert json.loads(record.payload) == {"x": 1, "items": [1, 2]}
    assert not (dockyard_home / "storage").exists()


def test_a_flows_storage_is_its_tasks_default(tmp_path: Path) -> None:
    @task(persist_result=True)
    def one() -> int:
        return 1

    @flow(result_storage=str(tmp_path / "flow-results"), result_serializer="compressed/pickle")
    def run() -> int:
        return one()

    assert run() == 1
    (record,) = records(tmp_path / "flow-results")
    assert record.meta["serializer"] == "compressed/pickle"


def test_a_storage_object_of_the_users(tmp_path: Path) -> None:
    class Block:
        def __init__(self) -> None:
            self.data: dict[str, bytes] = {}

        def write_path(self, path: str, content: bytes) -> None:
            self.data[path] = content

        def read_path(self, path: str) -> bytes:
            if path not in self.data:
                raise ValueError(f"no {path}")
            return self.data[path]

    block = Block()
    calls: list[int] = []

    @task(cache_policy=INPUTS, result_storage=block)
    def inc(x: int) -> int:
        calls.append(x)
        return x + 1

    @flow
    def run() -> list[int]:
        return [inc(1), inc(1)]

    assert run() == [2, 2]
    assert calls == [1]
    assert len(block.data) == 1


def test_a_url_needs_fsspec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)  # as if it were not installed

    @task(persist_result=True, result_storage="s3://bucket/results")
    def one() -> int:
        return 1

    @flow
    def run() -> int:
        return one()

    with pytest.raises(DockyardError, match="pip install fsspec"):
        run()


def test_unpicklable_results_are_returned_and_not_persisted(
    caplog: pytest.LogCaptureFixture, dockyard_home: Path
) -> None:
    @task(cache_policy=INPUTS)
    def make_lock(x: int) -> Any:
        return threading.Lock()

    @flow
    def run() -> Any:
        return make_lock(1)

    with caplog.at_level(logging.WARNING):
        assert run() is not None
    assert "was not persisted" in caplog.text
    assert records(dockyard_home / "storage") == []


def test_key_storage_keeps_the_cache_records_apart(tmp_path: Path, dockyard_home: Path) -> None:
    policy = INPUTS.configure(key_storage=tmp_path / "keys")
    calls: list[int] = []

    @task(cache_policy=policy)
    def inc(x: int) -> int:
        calls.append(x)
        return x + 1

    @flow
    def run() -> int:
        return inc(1)

    assert run() == 2 and run() == 2
    assert calls == [1]
    assert len(records(tmp_path / "keys")) == 1
    assert not (dockyard_home / "storage").exists()


def test_serializable_runs_of_one_key_run_one_at_a_time(tmp_path: Path) -> None:
    policy = TASK_SOURCE.configure(key_storage=tmp_path, isolation_level="SERIALIZABLE")
    calls: list[int] = []

    @task(cache_policy=policy)
    def slow() -> int:
        calls.append(1)
        time.sleep(0.2)
        return 7

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(slow())) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [7, 7, 7]
    assert calls == [1]


def test_bad_options_are_refused_when_the_task_is_defined() -> None:
    def fn() -> None:
        return None

    with pytest.raises(ValueError, match="cache_policy must be a cache policy"):
        task(cache_policy="inputs")(fn)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="result_serializer 'yaml' is unknown"):
        task(result_serializer="yaml")(fn)
    with pytest.raises(ValueError, match="persist_result must be True, False or None"):
        task(persist_result="yes")(fn)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="result_storage must be"):
        flow(result_storage=42)(fn)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="isolation_level must be"):
        INPUTS.configure(isolation_level="DIRTY")


def test_a_journal_leaves_out_a_partial_last_entry(tmp_path: Path) -> None:
    store = ResultStore(resolve_storage(tmp_path))
    journal = Journal(tmp_path / "j")
    journal.append(store.pack("a", 1))
    journal.append(store.pack("b", 2))
    journal.append(store.pack("a", 3))
    journal.close()
    whole = (tmp_path / "j").read_bytes()
    (tmp_path / "j").write_bytes(whole[:-3])  # a process killed while appending
    found = Journal(tmp_path / "j").read()
    assert {key: store.value(record) for key, record in found.items()} == {"a": 1, "b": 2}


# ---------------------------------------------------------------- across processes

SCRIPT = """
from pathlib import Path
from dockyard import flow, task
from dockyard.cache_policies import INPUTS

COUNT = Path(__file__).with_name("count.txt")

@task(cache_policy=INPUTS)
def expensive(x: int) -> int:
    with COUNT.open("a") as fh:
        fh.write("ran\\n")
    return x * 10

@flow
def run() -> None:
    print("result", expensive(4))

run()
"""


def test_a_cache_hit_across_processes(tmp_path: Path) -> None:
    script = tmp_path / "cached.py"
    script.write_text(SCRIPT)
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert "result 40" in done.stdout
    assert (tmp_path / "count.txt").read_text().splitlines() == ["ran"]


# ---------------------------------------------------------------- retries


def test_a_flow_retry_reuses_the_tasks_completed_in_an_earlier_attempt(
    caplog: pytest.LogCaptureFixture, dockyard_home: Path
) -> None:
    calls: list[str] = []
    attempts: list[int] = []

    @task
    def fetch(x: int) -> int:
        calls.append(f"fetch {x}")
        return x * 2

    @flow(retries=1)
    def run() -> int:
        attempts.append(1)
        a = fetch(1)
        b = fetch(2 if len(attempts) == 1 else 3)  # same place, other arguments: runs again
        if len(attempts) == 1:
            raise RuntimeError("flaky")
        return a + b

    with caplog.at_level(logging.INFO):
        assert run() == 8
    assert calls == ["fetch 1", "fetch 2", "fetch 3"]
    assert "reused the result of fetch-0 from an earlier attempt" in caplog.text
    assert not (dockyard_home / "storage").exists()  # kept in memory only


ENGINE_FLOW = """
import os, signal, time
from pathlib import Path
from dockyard import flow, task

HERE = Path(__file__).parent

@task
def step(x: int) -> int:
    with (HERE / "count.txt").open("a") as fh:
        fh.write("step\\n")
    return x * 2

@task
def finish(y: int) -> int:
    return y + 1

@flow
def crashy(x: int = 3) -> int:
    y = step(x)
    marker = HERE / "killed"
    if not marker.exists():
        marker.write_text("first attempt")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    return finish(y)
"""


def _engine(server: RunningServer, run_id: uuid.UUID, cwd: Path) -> str:
    """Run the engine on ``run_id``; return what it wrote to stderr (for failures)."""
    done = subprocess.run(
        [sys.executable, "-m", "dockyard.engine", str(run_id)],
        env=server.env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stderr


def test_a_crash_retry_reuses_the_results_of_the_killed_attempt(
    server: RunningServer, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "flows.py").write_text(textwrap.dedent(ENGINE_FLOW))
    with server.client() as client:
        deployment = client.upsert_deployment(
            DeploymentCreate(
                flow_name="crashy",
                name="d",
                entrypoint="flows.py:crashy",
                path=str(flows),
                crash_retries=1,
            )
        )
        run = client.create_deployment_run(deployment.id, DeploymentRunCreate())
    output = _engine(server, run.id, tmp_path)
    with server.client() as client:
        killed = client.read_flow_run(run.id)
    assert (killed.state, killed.attempt) == ("SCHEDULED", 2), output

    output = _engine(server, run.id, tmp_path)
    with server.client() as client:
        done = client.read_flow_run(run.id)
        logged = [log.message for log in client.read_logs(flow_run_id=run.id)]
    assert (done.state, done.result) == ("COMPLETED", 7), output
    assert (flows / "count.txt").read_text().splitlines() == ["step"]
    assert "reused the result of step-0 from an earlier attempt" in logged
    home = Path(server.env["DOCKYARD_HOME"])
    assert (home / "storage" / "attempts").is_dir()
    assert list((home / "storage" / "attempts").iterdir()) == []  # dropped once COMPLETED


def test_persist_result_false_on_the_flow_keeps_nothing_for_a_crash_retry(
    server: RunningServer, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    source = ENGINE_FLOW.replace("@flow\ndef crashy", "@flow(persist_result=False)\ndef crashy")
    (flows / "flows.py").write_text(textwrap.dedent(source))
    with server.client() as client:
        deployment = client.upsert_deployment(
            DeploymentCreate(
                flow_name="crashy",
                name="d",
                entrypoint="flows.py:crashy",
                path=str(flows),
                crash_retries=1,
            )
        )
        run = client.create_deployment_run(deployment.id, DeploymentRunCreate())
    _engine(server, run.id, tmp_path)
    output = _engine(server, run.id, tmp_path)
    with server.client() as client:
        assert client.read_flow_run(run.id).state == "COMPLETED", output
    assert (flows / "count.txt").read_text().splitlines() == ["step", "step"]
