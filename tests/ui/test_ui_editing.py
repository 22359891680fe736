"""Everything editable from the UI, in the browser: each edit shows in the API afterwards; a
refused edit shows every refusal (the form's and the API's) next to its field and keeps what
was typed; a delete asks first on a page naming what goes with it; a custom run builds inputs
for a pydantic model's fields and asks before starting at a time in the past.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from pydantic import BaseModel

from _support import RunningServer
from dockyard import flow, schemas

RUN_PAGE = re.compile(r"/runs/[0-9a-f-]{36}$")


class Inner(BaseModel):
    depth: int = 2
    label: str


class Options(BaseModel):
    retries: int = 3
    fast: bool = False
    inner: Inner
    mode: str | None = None


@flow
def report(opts: Options, days: int = 7, loud: bool = True) -> None:
    """A flow whose first parameter is a pydantic model (its schema has ``$defs``)."""


def field_error(page: Page, key: str) -> str:
    return page.locator(f'[data-field="{key}"] > .field-error').inner_text()


def field_input(page: Page, key: str) -> Any:
    return page.locator(f'[data-field="{key}"]').locator("input, textarea, select").first


def save(page: Page, name: str = "Save") -> None:
    page.get_by_role("button", name=name, exact=True).click()


def make_deployment(server: RunningServer, pool: str, **extra: Any) -> schemas.Deployment:
    with server.client() as client:
        client.create_work_pool(schemas.WorkPoolCreate(name=pool, type="process"))
        return client.upsert_deployment(
            schemas.DeploymentCreate(
                flow_name="report",
                name="daily",
                entrypoint="flows.py:report",
                work_pool_name=pool,
                parameter_schema=report.parameter_schema(),
                **extra,
            )
        )


def api_status(server: RunningServer, path: str) -> int:
    with server.http() as http:
        return http.get(path).status_code


# ---------------------------------------------------------------- pools and queues


def test_a_pool_and_its_queues_are_edited_in_the_browser(
    server: RunningServer,
    page: Page,
    screenshot: Callable[[str], Path],
    console_errors: list[str],
) -> None:
    with server.client() as client:
        client.create_work_pool(schemas.WorkPoolCreate(name="edits", type="process"))
    page.goto(f"{server.url}/work-pools/edits")
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page).to_have_url(f"{server.url}/work-pools/edits/edit")

    # refused: a negative limit (the API's model) and a job variable that is not JSON
    page.locator("#f-description").fill("nightly batch")
    page.locator("#f-concurrency_limit").fill("-1")
    page.locator("#f-var\\.env").fill('{"MODE": "batch"')
    save(page)
    expect(page.locator("#form-problems")).to_contain_text("2 problems")
    assert "greater than or equal to 0" in field_error(page, "concurrency_limit")
    assert "valid JSON" in field_error(page, "env")
    expect(page.locator("#f-concurrency_limit")).to_have_value("-1")
    expect(page.locator("#f-var\\.env")).to_have_value('{"MODE": "batch"')
    expect(page.locator("#f-description")).to_have_value("nightly batch")
    screenshot("pool-edit-refused")
    with server.client() as client:
        assert client.read_work_pool("edits").description is None  # nothing was saved

    page.locator("#f-concurrency_limit").fill("3")
    page.locator("#f-var\\.env").fill('{"MODE": "batch"}')
    page.locator("#f-var\\.working_dir").fill("/srv/flows")
    page.locator("#f-var\\.stream_output").uncheck()
    save(page)
    expect(page).to_have_url(f"{server.url}/work-pools/edits")
    with server.client() as client:
        pool = client.read_work_pool("edits")
    assert (pool.description, pool.concurrency_limit) == ("nightly batch", 3)
    defaults = {
        k: v.get("default") for k, v in pool.base_job_template["variables"]["properties"].items()
    }
    assert defaults["env"] == {"MODE": "batch"}
    assert defaults["working_dir"] == "/srv/flows"
    assert defaults["stream_output"] is False

    # queues: every refusal at once, the API's "name taken" among them
    page.goto(f"{server.url}/work-pools/edits/queues")
    page.get_by_role("link", name="New queue").click()
    page.locator("#f-name").fill("a/b")
    page.locator("#f-priority").fill("0")
    page.locator("#f-concurrency_limit").fill("many")
    save(page, "Create queue")
    expect(page.locator("#form-problems")).to_contain_text("3 problems")
    assert "'/'" in field_error(page, "name")
    assert "greater than or equal to 1" in field_error(page, "priority")
    assert "whole number" in field_error(page, "concurrency_limit")
    expect(page.locator("#f-name")).to_have_value("a/b")
    page.locator("#f-name").fill("default")
    page.locator("#f-concurrency_limit").fill("2")
    save(page, "Create queue")
    expect(page.locator("#form-problems")).to_contain_text("2 problems")
    assert "already exists" in field_error(page, "name")
    page.locator("#f-name").fill("urgent")
    page.locator("#f-priority").fill("1")
    save(page, "Create queue")
    expect(page).to_have_url(f"{server.url}/work-pools/edits/queues")
    with server.client() as client:
        urgent = client.read_work_queue("edits", "urgent")
        assert (urgent.priority, urgent.concurrency_limit) == (1, 2)
        assert client.read_work_queue("edits", "default").priority == 2

    row = page.locator('td[data-queue="urgent"]')
    row.get_by_role("link", name="Edit").click()
    page.locator("#f-description").fill("hot fixes")
    page.locator("#f-concurrency_limit").fill("")  # no limit
    page.locator("#f-paused").check()
    save(page)
    expect(page).to_have_url(f"{server.url}/work-pools/edits/queues")
    with server.client() as client:
        urgent = client.read_work_queue("edits", "urgent")
    assert (urgent.description, urgent.concurrency_limit, urgent.paused) == (
        "hot fixes",
        None,
        True,
    )
    row.get_by_role("button", name="Resume").click()
    expect(row.get_by_role("button", name="Pause")).to_be_visible()
    with server.client() as client:
        assert client.read_work_queue("edits", "urgent").paused is False
        deployment = client.upsert_deployment(
            schemas.DeploymentCreate(
                flow_name="etl", name="hourly", work_pool_name="edits", work_queue_name="urgent"
            )
        )
        start = schemas.utcnow() + timedelta(hours=1)
        client.create_deployment_run(
            deployment.id, schemas.DeploymentRunCreate.model_validate({"scheduled_start": start})
        )

    expect(
        page.locator('td[data-queue="default"]').get_by_role("link", name="Delete…")
    ).to_have_count(0)
    row.get_by_role("link", name="Delete…").click()
    cascade = page.locator("#queue-cascade")
    expect(cascade).to_contain_text("1 deployment that uses it")
    expect(cascade).to_contain_text("1 run that has not started")
    page.get_by_role("button", name="Delete queue urgent").click()
    expect(page).to_have_url(f"{server.url}/work-pools/edits/queues")
    assert api_status(server, "/work-pools/edits/queues/urgent") == 404
    with server.client() as client:
        assert client.read_deployment(deployment.id).work_queue_name == "default"
    page.goto(f"{server.url}/work-pools/edits/queues/default/delete")
    expect(page.locator("#delete-refused")).to_contain_text("cannot be deleted")
    expect(page.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)

    # a template of any shape the API takes can be edited (a variable's schema may be `true`)
    odd = {
        "job_configuration": {"command": "{{ anything }}"},
        "variables": {"type": "object", "properties": {"anything": True}},
    }
    with server.client() as client:
        client.create_work_pool(
            schemas.WorkPoolCreate(name="odd", type="process", base_job_template=odd)
        )
    page.goto(f"{server.url}/work-pools/odd/edit")
    page.locator("#f-var\\.anything").fill('["run"]')
    save(page)
    expect(page).to_have_url(f"{server.url}/work-pools/odd")
    with server.client() as client:
        variables = client.read_work_pool("odd").base_job_template["variables"]
    assert variables["properties"]["anything"] == {"default": ["run"]}
    assert console_errors == []


# ---------------------------------------------------------------- deletes and workers


def _backdate(server: RunningServer, worker: str) -> None:
    """Make ``worker`` last poll long ago (as if it stopped years back): offline."""
    database = server.database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(database) as db:
        db.execute(
            "UPDATE workers SET last_heartbeat = '2020-01-01 00:00:00.000000' WHERE name = ?",
            (worker,),
        )


def test_deletes_name_what_goes_and_only_offline_workers_are_forgotten(
    server: RunningServer, page: Page, console_errors: list[str]
) -> None:
    deployment = make_deployment(
        server, "doomed", schedules=[schemas.ScheduleCreate(cron="0 9 * * *", active=False)]
    )
    with server.client() as client:
        later = schemas.utcnow() + timedelta(days=30)
        body = schemas.DeploymentRunCreate.model_validate(
            {"scheduled_start": later, "parameters": {"opts": {"inner": {"label": "x"}}}}
        )
        waiting = client.create_deployment_run(deployment.id, body)
        client.cancel_flow_run(client.create_deployment_run(deployment.id, body).id)
        for name in ("gone", "busy"):
            client.heartbeat(schemas.WorkerHeartbeat(name=name, work_pool_name="doomed"))
    _backdate(server, "gone")

    page.goto(f"{server.url}/work-pools/doomed/workers")
    expect(
        page.locator('tr[data-worker="gone"]').get_by_role("link", name="Forget…")
    ).to_be_visible()
    expect(
        page.locator('tr[data-worker="busy"]').get_by_role("link", name="Forget…")
    ).to_have_count(0)
    page.goto(f"{server.url}/work-pools/doomed/workers/busy/forget")
    expect(page.locator("#delete-refused")).to_contain_text("only an offline worker")
    expect(page.get_by_role("button", name=re.compile("^Forget"))).to_have_count(0)
    page.goto(f"{server.url}/work-pools/doomed/workers")
    page.locator('tr[data-worker="gone"]').get_by_role("link", name="Forget…").click()
    expect(page.locator("#worker-cascade")).to_contain_text("If it polls again")
    page.get_by_role("button", name="Forget worker gone").click()
    expect(page).to_have_url(f"{server.url}/work-pools/doomed/workers")
    with server.client() as client:
        assert [w.name for w in client.list_workers("doomed")] == ["busy"]

    # the pool is used by a deployment: the API refuses, and the page says why
    page.goto(f"{server.url}/work-pools/doomed")
    page.get_by_role("link", name="Delete…").click()
    expect(page.locator("#delete-refused")).to_contain_text("1 deployment uses it")
    expect(page.locator("#pool-users")).to_contain_text("report/daily")
    expect(page.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)

    page.locator("#pool-users").get_by_role("link", name="report/daily").click()
    page.get_by_role("link", name="Delete…", exact=True).first.click()
    cascade = page.locator("#deployment-cascade")
    expect(cascade).to_contain_text("its 1 schedule")
    expect(cascade).to_contain_text("cancels its 1 run that had not started")
    expect(page.locator("#confirm-delete")).to_contain_text("1 other run keeps its history")
    page.get_by_role("button", name="Delete deployment").click()
    expect(page).to_have_url(f"{server.url}/deployments")
    assert api_status(server, f"/deployments/{deployment.id}") == 404
    with server.client() as client:
        assert client.read_flow_run(waiting.id).state == "CANCELLED"

    page.goto(f"{server.url}/work-pools/doomed/delete")
    cascade = page.locator("#pool-cascade")
    expect(cascade).to_contain_text("its 1 work queue (default)")
    expect(cascade).to_contain_text("the record of its 1 worker")
    expect(page.locator("#confirm-delete")).to_contain_text("2 other runs keep their history")
    page.get_by_role("button", name="Delete pool doomed").click()
    expect(page).to_have_url(f"{server.url}/work-pools")
    assert api_status(server, "/work-pools/doomed") == 404
    assert console_errors == []


# ---------------------------------------------------------------- deployments and schedules


def test_a_deployment_and_its_schedules_are_edited_in_the_browser(
    server: RunningServer,
    page: Page,
    screenshot: Callable[[str], Path],
    console_errors: list[str],
) -> None:
    deployment = make_deployment(server, "deploy-pool", parameters={"days": 3})
    link = f"{server.url}/deployments/{deployment.id}"
    page.goto(link)
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page).to_have_url(f"{link}/edit")
    expect(field_input(page, "days")).to_have_value("3")
    expect(field_input(page, "loud")).to_be_checked()  # the flow's default
    expect(field_input(page, "opts.retries")).to_have_value("")  # no value: the flow's

    # refused at once: the form's (a number, JSON, a nested model) and the API's
    field_input(page, "days").fill("many")
    field_input(page, "opts.retries").fill("4")  # a model missing its required inner.label
    page.locator("#f-job_variables").fill('{"no_such_variable": 1}')
    page.locator("#f-concurrency_limit").fill("0")
    save(page)
    expect(page.locator("#form-problems")).to_contain_text("4 problems")
    assert "whole number" in field_error(page, "days")
    assert "a value is required" in field_error(page, "opts.inner")  # none of it typed
    assert "unknown job variable 'no_such_variable'" in field_error(page, "job_variables")
    assert "greater than or equal to 1" in field_error(page, "concurrency_limit")
    expect(field_input(page, "days")).to_have_value("many")
    expect(field_input(page, "opts.retries")).to_have_value("4")
    expect(page.locator("#f-concurrency_limit")).to_have_value("0")
    page.locator("#f-job_variables").fill('{"env": {"A": "1"')
    save(page)
    assert "not valid JSON" in field_error(page, "job_variables")
    expect(page.locator("#f-job_variables")).to_have_value('{"env": {"A": "1"')
    screenshot("deployment-edit-refused")

    field_input(page, "days").fill("5")
    field_input(page, "opts.inner.label").fill("deep")
    page.locator("#f-job_variables").fill('{"env": {"A": "1"}}')
    page.locator("#f-concurrency_limit").fill("2")
    page.locator("#f-tags").fill("nightly, ui")
    save(page)
    expect(page).to_have_url(f"{link}?done=saved")
    with server.client() as client:
        saved = client.read_deployment(deployment.id)
    # "loud" kept the flow's default: not stored
    assert saved.parameters == {
        "days": 5,
        "opts": {"retries": 4, "fast": False, "inner": {"label": "deep"}},
    }
    assert saved.job_variables == {"env": {"A": "1"}}
    assert (saved.concurrency_limit, saved.tags) == (2, ["nightly", "ui"])

    # schedules: a bad cron and a bad time zone refused together
    page.get_by_role("link", name="Add schedule").click()
    page.locator("#f-cron").fill("61 * * * *")
    page.locator("#f-timezone").fill("Mars/Olympus")
    save(page, "Add schedule")
    expect(page.locator("#form-problems")).to_contain_text("2 problems")
    assert "not a valid cron expression" in field_error(page, "cron")
    assert "Mars/Olympus" in field_error(page, "timezone")
    expect(page.locator("#f-cron")).to_have_value("61 * * * *")
    screenshot("schedule-new-refused")
    page.locator("#f-cron").fill("0 9 * * 1-5")
    page.locator("#f-timezone").fill("Europe/Berlin")
    save(page, "Add schedule")
    expect(page).to_have_url(f"{link}?done=schedule-added")
    with server.client() as client:
        (schedule,) = client.list_schedules(deployment.id)
    assert (schedule.cron, schedule.timezone, schedule.active) == (
        "0 9 * * 1-5",
        "Europe/Berlin",
        True,
    )

    schedules = page.locator("section", has=page.get_by_role("heading", name="Schedules"))
    schedules.get_by_role("button", name="Pause").click()
    expect(page).to_have_url(f"{link}?done=schedule-paused")
    with server.client() as client:
        assert client.list_schedules(deployment.id)[0].active is False
    schedules.get_by_role("link", name="Delete…").click()
    expect(page.locator("#confirm-delete")).to_contain_text("cron 0 9 * * 1-5")
    expect(page.locator("#confirm-delete")).to_contain_text(
        "removes its 0 runs that had not started"
    )
    page.get_by_role("button", name="Delete schedule").click()
    expect(page).to_have_url(f"{link}?done=schedule-deleted")
    with server.client() as client:
        assert client.list_schedules(deployment.id) == []
    assert console_errors == []


# ---------------------------------------------------------------- a custom run, as a user


ADMIN_KEY = "editing-admin-key"


@pytest.mark.parametrize("server", [{"DOCKYARD_SERVER_API_KEY": ADMIN_KEY}], indirect=True)
def test_a_user_runs_a_nested_custom_run_and_sees_no_edit_forms(
    server: RunningServer,
    page: Page,
    screenshot: Callable[[str], Path],
    console_errors: list[str],
) -> None:
    deployment = make_deployment(server, "run-pool")
    with httpx.Client(base_url=server.api_url, timeout=30.0) as http:
        made = http.post(
            "/api-keys",
            json={"name": "viewer", "scope": "user"},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert made.status_code == 201, made.text
    link = f"{server.url}/deployments/{deployment.id}"
    page.goto(link)
    page.locator("#f-api_key").fill(made.json()["key"])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(link)
    expect(page.get_by_role("link", name="Edit", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Add schedule")).to_have_count(0)
    page.goto(f"{server.url}/work-pools/run-pool/queues")
    expect(page.get_by_role("link", name="New queue")).to_have_count(0)
    expect(page.get_by_role("link", name="Delete…")).to_have_count(0)
    page.goto(f"{server.url}/work-pools/run-pool/edit")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()

    page.goto(f"{link}/run")
    expect(field_input(page, "opts.retries")).to_have_value("3")  # the model's default
    expect(field_input(page, "opts.inner.depth")).to_have_value("2")
    field_input(page, "opts.inner.depth").fill("five")
    page.locator("#f-run_name").fill("with/slash")
    save(page, "Run")
    expect(page.locator("#form-problems")).to_contain_text("3 problems")
    assert "whole number" in field_error(page, "opts.inner.depth")
    assert "a value is required" in field_error(page, "opts.inner.label")
    assert "'/'" in field_error(page, "run_name")

    field_input(page, "opts.inner.depth").fill("5")
    field_input(page, "opts.inner.label").fill("deep")
    field_input(page, "opts.fast").check()
    page.locator("#f-run_name").fill("manual-1")
    page.locator("#f-run_tags").fill("backfill, ui")
    page.locator("#f-start").fill("2020-01-31T09:30:00")
    save(page, "Run")
    expect(page.locator("#confirm-past")).to_contain_text("is in the past")
    expect(field_input(page, "opts.inner.label")).to_have_value("deep")
    screenshot("custom-run-past-start")
    with server.client() as client:
        assert client.list_flow_runs(deployment_id=deployment.id) == []  # asked first
    page.get_by_role("button", name="Run anyway").click()
    expect(page).to_have_url(RUN_PAGE)
    run_id = uuid.UUID(page.url.rsplit("/", 1)[1])
    with server.client() as client:
        run = client.read_flow_run(run_id)
    assert run.name == "manual-1"
    assert {"backfill", "ui"} <= set(run.tags)
    assert run.parameters == {
        "days": 7,
        "loud": True,
        "opts": {"retries": 3, "fast": True, "inner": {"depth": 5, "label": "deep"}},
    }
    assert run.scheduled_start is not None
    assert run.scheduled_start.isoformat().startswith("2020-01-31T09:30:00")
    assert console_errors == []


# ---------------------------------------------------------------- nested inputs, no browser


def test_a_models_fields_get_inputs_of_their_own_and_read_back_into_it() -> None:
    from dockyard.server.ui import forms

    schema = report.parameter_schema()
    keys = forms.paths(schema, nested=True, inputs_only=True)
    assert keys[:5] == [
        "opts.retries",
        "opts.fast",
        "opts.inner.depth",
        "opts.inner.label",
        "opts.mode",
    ]
    (opts, *_) = forms.build(schema, {}, "param.", {}, nested=True, defaults=True)
    assert (opts.kind, opts.required) == ("object", True)
    inner = opts.children[2]
    assert [(f.key, f.value) for f in inner.children] == [
        ("opts.inner.depth", "2"),
        ("opts.inner.label", ""),
    ]

    errors: dict[str, str] = {}
    typed = {"opts.retries": "5", "opts.fast": "on", "opts.inner.depth": "x", "days": "3"}
    values = forms.read(schema, typed, errors, nested=True)
    assert values == {"opts": {"retries": 5, "fast": True, "inner": {}}, "days": 3, "loud": False}
    forms.validate(schema, values, errors, nested=True)
    assert errors == {
        "opts.inner.depth": "enter a whole number",
        "opts.inner.label": "a value is required",
    }

    # an object of which nothing was typed has no value; ``Model | None`` and pydantic 1's
    # ``allOf`` + ``definitions`` map too; a model that holds itself keeps a JSON box
    node = {"$ref": "#/definitions/Node"}
    older = {
        "type": "object",
        "definitions": {
            "Node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "next": {"anyOf": [node, {"type": "null"}]},
                },
            }
        },
        "properties": {
            "head": {"title": "Head", "allOf": [node]},
            "spare": {"anyOf": [node, {"type": "null"}], "default": None},
        },
    }
    kinds = {
        f.key: (f.kind, [(c.key, c.kind) for c in f.children])
        for f in forms.build(older, {}, "", {}, nested=True)
    }
    assert kinds == {
        "head": ("object", [("head.value", "integer"), ("head.next", "json")]),
        "spare": ("object", [("spare.value", "integer"), ("spare.next", "json")]),
    }
    raw = {"head.value": "1", "head.next": "", "spare.value": "", "spare.next": ""}
    assert forms.read(older, raw, {}, nested=True) == {"head": {"value": 1}}


def test_a_parameter_schema_stored_as_given_never_breaks_the_forms() -> None:
    """The API stores a deployment's parameter schema as sent: whatever it says, the forms
    show what they can and check nothing they cannot."""
    from dockyard.server.ui import forms

    for schema in (
        {"properties": [], "required": "abc"},
        {"properties": {"a": {"$ref": "#/$defs/Missing"}, "b": True}},
        {"type": 5, "properties": {"a": {"$ref": "urn:dockyard:nowhere"}}},
    ):
        built = forms.build(schema, {"a": 1}, "p.", {}, nested=True, defaults=True)
        errors: dict[str, str] = {}
        values = forms.read(schema, {"a": "1"}, errors, nested=True)
        forms.validate(schema, values, errors, nested=True)
        assert errors == {}, schema
        assert forms.defaults(schema) == {}
        assert [f.kind for f in built] in ([], ["json", "json"], ["json"])
