"""A custom run: a bad parameter is shown next to its field and creates nothing; good values
make one run with them."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from _support import RunningServer
from dockyard import schemas

PARAMETER_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "title": "Name", "default": "dock", "position": 0},
        "count": {"type": "integer", "title": "Count", "minimum": 1, "position": 1},
        "loud": {"type": "boolean", "title": "Loud", "default": False, "position": 2},
        "options": {"type": "object", "title": "Options", "default": {}, "position": 3},
    },
    "required": ["count"],
}


def make_deployment(server: RunningServer) -> schemas.Deployment:
    with server.client() as client:
        client.create_work_pool(schemas.WorkPoolCreate(name="custom-pool", type="process"))
        return client.upsert_deployment(
            schemas.DeploymentCreate(
                flow_name="greet",
                name="custom",
                entrypoint="flows.py:greet",
                work_pool_name="custom-pool",
                parameter_schema=PARAMETER_SCHEMA,
                parameters={"count": 2},
            )
        )


def run_count(server: RunningServer, deployment: schemas.Deployment) -> int:
    with server.client() as client:
        return len(client.list_flow_runs(deployment_id=deployment.id))


def test_bad_parameter_is_shown_beside_its_field_and_creates_nothing(
    server: RunningServer,
    page: Page,
    screenshot: Callable[[str], Path],
    console_errors: list[str],
) -> None:
    deployment = make_deployment(server)
    form_url = f"{server.url}/deployments/{deployment.id}/run"
    page.goto(f"{server.url}/deployments/{deployment.id}")
    page.get_by_role("link", name="Custom run…").click()
    expect(page).to_have_url(form_url)
    count = page.locator('[data-field="count"]')
    expect(count.locator("input")).to_have_value("2")  # the deployment's value

    count.locator("input").fill("many")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(count.locator(".field-error")).to_have_text(re.compile("whole number"))
    expect(page.locator('[data-field="name"] .field-error')).to_have_count(0)
    expect(count.locator("input")).to_have_value("many")  # what was typed stays
    screenshot("custom-run-bad-parameter")
    assert run_count(server, deployment) == 0

    count.locator("input").fill("0")  # a number, but below the schema's minimum
    page.locator('[data-field="options"] textarea').fill('{"retries": 3')
    page.get_by_role("button", name="Run", exact=True).click()
    expect(count.locator(".field-error")).to_contain_text("minimum of 1")
    expect(page.locator('[data-field="options"] .field-error')).to_contain_text("valid JSON")
    assert run_count(server, deployment) == 0

    count.locator("input").fill("3")
    page.locator('[data-field="options"] textarea').fill('{"retries": 3}')
    page.locator('[data-field="loud"] input').check()
    page.locator("#f-job_variables").fill('{"env": {"GREETING": "ahoy"}}')
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    expect(page.locator("#parameters")).to_contain_text('"count": 3')

    with server.client() as client:
        (run,) = client.list_flow_runs(deployment_id=deployment.id)
    assert run.parameters == {"name": "dock", "count": 3, "loud": True, "options": {"retries": 3}}
    assert run.job_variables == {"env": {"GREETING": "ahoy"}}
    assert console_errors == []


def test_job_variables_the_pool_refuses_create_nothing(server: RunningServer, page: Page) -> None:
    deployment = make_deployment(server)
    page.goto(f"{server.url}/deployments/{deployment.id}/run")
    page.locator("#f-job_variables").fill('{"no_such_variable": 1}')
    page.get_by_role("button", name="Run", exact=True).click()
    error = page.locator('[data-field="job_variables"] .field-error')
    expect(error).to_contain_text("unknown job variable 'no_such_variable'")
    page.locator("#f-job_variables").fill("{}")
    page.locator("#f-start").fill("2031-01-31T09:30:00")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    with server.client() as client:
        (run,) = client.list_flow_runs(deployment_id=deployment.id)
    assert run.scheduled_start is not None
    assert run.scheduled_start.isoformat().startswith("2031-01-31T09:30:00")
