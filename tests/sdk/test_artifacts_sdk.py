"""``dockyard.artifacts`` against a real server: linked to the flow and task runs that make
them, unlinked outside runs, skipped in untracked runs, the same from async code, and with
nothing heavier than the lean transport on a run's path.

The server's own tests cover both databases; these run on SQLite only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from _support import RunningServer
from dockyard import flow, get_run_context, task
from dockyard.artifacts import (
    Artifact,
    acreate_link_artifact,
    acreate_markdown_artifact,
    aupdate_progress_artifact,
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from dockyard.exceptions import Conflict, InvalidInput, NotFound, ServerUnreachable
from dockyard.sdk import transport


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'dockyard.db'}"


def stored(server: RunningServer, **filters: Any) -> list[Any]:
    with server.client() as client:
        return list(client.list_artifacts(**filters))


def test_artifacts_are_linked_to_the_runs_that_make_them(tracked: RunningServer) -> None:
    @task
    def load() -> tuple[uuid.UUID, uuid.UUID]:
        table = {
            "n": [1, float("nan")],
            "when": [datetime(2030, 1, 2, tzinfo=UTC), (1, "two")],
        }
        return create_table_artifact(table, key="rows"), get_run_context().task_run.id  # type: ignore[union-attr]

    @flow
    def report() -> dict[str, Any]:
        ids = {
            "markdown": create_markdown_artifact("# Done", key="report", description="*v1*"),
            "link": create_link_artifact("https://example.com/x", "the data"),
            "progress": create_progress_artifact(10, key="load"),
            "image": create_image_artifact("https://example.com/a.png", key="chart"),
        }
        ids["table"], ids["task_run"] = load()
        update_progress_artifact(ids["progress"], 55.5, description="halfway")
        ids["run"] = get_run_context().flow_run.id  # type: ignore[union-attr]
        return ids

    ids = report()
    found = {a.type.value: a for a in stored(tracked, flow_run_id=ids["run"])}
    assert sorted(found) == ["image", "link", "markdown", "progress", "table"]
    assert all(found[kind].id == ids[kind] for kind in found)
    assert found["markdown"].data == "# Done" and found["markdown"].description == "*v1*"
    assert found["link"].data == {"link": "https://example.com/x", "link_text": "the data"}
    assert (found["progress"].data, found["progress"].description) == (55.5, "halfway")
    assert found["image"].data == "https://example.com/a.png"
    # cells as a person reads them: NaN empty, a time as its text, a tuple as a list
    assert found["table"].data == {
        "n": [1, None],
        "when": ["2030-01-02 00:00:00+00:00", [1, "two"]],
    }
    assert found["table"].task_run_id == ids["task_run"]
    assert {found[k].task_run_id for k in found if k != "table"} == {None}

    # outside a run: stored unlinked, a new version of the key
    second = create_markdown_artifact("# Again", key="report")
    latest = Artifact.get("report")
    assert latest is not None and latest.id == second and latest.data == "# Again"
    assert latest.flow_run_id is None and latest.type == "markdown"
    assert latest.created.tzinfo is not None
    assert [a.id for a in stored(tracked, key="report")] == [second, ids["markdown"]]
    assert Artifact.get("nothing-here") is None


def test_bad_input_is_refused_before_sending_or_by_the_server(
    tracked: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    real = transport.LeanTransport.request

    def counted(self: transport.LeanTransport, method: str, path: str, *a: Any, **k: Any) -> Any:
        sent.append(f"{method} {path}")
        return real(self, method, path, *a, **k)

    monkeypatch.setattr(transport.LeanTransport, "request", counted)
    with pytest.raises(ValueError, match="write it 'my-report'"):
        create_markdown_artifact("x", key="My_Report")
    with pytest.raises(ValueError, match="not an artifact's key"):
        Artifact.get("a/b")
    with pytest.raises(TypeError, match="markdown must be a str"):
        create_markdown_artifact(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="progress must be a number"):
        create_progress_artifact(float("nan"))
    with pytest.raises(TypeError, match="progress must be a number"):
        create_progress_artifact("50")  # type: ignore[arg-type]
    assert sent == []

    with pytest.raises(InvalidInput, match="row 1 has 1 cells, but row 0 has 2"):
        create_table_artifact([[1, 2], [3]])
    with pytest.raises(InvalidInput, match="http:// or https://"):
        create_image_artifact("javascript:alert(1)")
    with pytest.raises(InvalidInput, match="from 0 to 100"):
        create_progress_artifact(150)
    text = create_markdown_artifact("not a bar")
    with pytest.raises(Conflict, match="only a progress artifact"):
        update_progress_artifact(text, 5)
    with pytest.raises(NotFound):
        update_progress_artifact(uuid.uuid4(), 5)
    assert stored(tracked) == stored(tracked, type="markdown")  # nothing refused was kept


def test_from_async_code(tracked: RunningServer) -> None:
    @task
    async def in_async_task() -> uuid.UUID:
        return await create_markdown_artifact("from an async task", key="notes")

    @task
    def in_sync_task() -> uuid.UUID:
        return create_markdown_artifact("from a sync task", key="notes")

    @flow
    async def publish() -> list[uuid.UUID]:
        bar = await create_progress_artifact(0, key="steps")
        await aupdate_progress_artifact(bar, 100)
        link = await acreate_link_artifact("mailto:ops@example.com", key="contact")
        latest = await Artifact.aget("steps")
        assert latest is not None and latest.data == 100
        return [bar, link, await in_async_task(), in_sync_task()]

    made = asyncio.run(publish())
    run_id = stored(tracked, key="contact")[0].flow_run_id
    assert run_id is not None
    assert {a.id for a in stored(tracked, flow_run_id=run_id)} == set(made)

    async def outside() -> uuid.UUID:
        return await acreate_markdown_artifact("from a loop", key="notes")

    loose = asyncio.run(outside())
    assert stored(tracked, key="notes")[0].id == loose
    assert stored(tracked, key="notes")[0].flow_run_id is None


def test_an_untracked_run_stores_nothing_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    @flow
    def offline() -> uuid.UUID:
        made = create_markdown_artifact("# kept nowhere", key="offline")
        update_progress_artifact(made, 50)  # nothing to update: no error either
        return made

    with caplog.at_level(logging.WARNING):
        assert isinstance(offline(), uuid.UUID)
    assert "the markdown artifact 'offline' was not stored" in caplog.text
    with pytest.raises(ServerUnreachable):  # outside a run, a missing server is an error
        create_markdown_artifact("# lost")


RUN_PATH = """
import json, sys
from dockyard import flow
from dockyard.artifacts import create_table_artifact

@flow
def publishes() -> str:
    return str(create_table_artifact([{"a": 1}], key="light"))

made = publishes()
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("httpx", "pydantic", "asyncio"))
print(json.dumps({"id": made, "heavy": heavy}))
"""


def test_a_flow_publishes_without_loading_httpx_pydantic_or_asyncio(
    tracked: RunningServer, tmp_path: Path
) -> None:
    script = tmp_path / "publishes.py"
    script.write_text(textwrap.dedent(RUN_PATH))
    done = subprocess.run(
        [sys.executable, str(script)],
        env={**tracked.env, "DOCKYARD_API_URL": tracked.api_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["heavy"] == []
    [made] = stored(tracked, key="light")
    assert str(made.id) == answer["id"] and made.flow_run_id is not None


def test_the_public_names() -> None:
    import dockyard.artifacts

    assert "create_markdown_artifact" in dockyard.artifacts.__all__
    assert "Artifact" in dockyard.artifacts.__all__
