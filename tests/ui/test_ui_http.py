"""The UI over plain HTTP (no browser): forms, their checks, pagination, live fragments."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from html import unescape as html_unescape

import httpx
import pytest

from _support import RunningServer
from dockyard import schemas

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def browser(server: RunningServer) -> Iterator[httpx.Client]:
    """An HTTP client that keeps cookies, as a browser would."""
    with httpx.Client(base_url=server.url, timeout=30.0, trust_env=False) as client:
        yield client


def token(browser: httpx.Client, path: str = "/work-pools/new") -> str:
    found = TOKEN.search(browser.get(path).text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def post(browser: httpx.Client, path: str, **fields: str) -> httpx.Response:
    return browser.post(path, data={"csrf_token": token(browser), **fields})


def field_error(html: str, field: str) -> str:
    block = re.search(rf'data-field="{re.escape(field)}".*?</div>', html, re.S)
    assert block, f"no field {field}"
    error = re.search(r'class="field-error"[^>]*>([^<]*)<', block.group(0))
    return html_unescape(error.group(1)) if error else ""


def test_pages_carry_security_headers(server: RunningServer, browser: httpx.Client) -> None:
    page = browser.get("/work-pools")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    csrf_cookie = page.headers["set-cookie"]
    assert "dockyard_csrf=" in csrf_cookie and "httponly" in csrf_cookie.lower()
    assert "samesite=lax" in csrf_cookie.lower()
    htmx = browser.get("/static/htmx.min.js")
    assert htmx.status_code == 200 and "htmx" in htmx.text[:200]
    assert "Zero-Clause BSD" in browser.get("/static/htmx.LICENSE.txt").text
    missing = browser.get("/work-pools/no-such-pool")
    assert missing.status_code == 404 and "no-such-pool" in missing.text


def test_a_post_from_another_site_is_refused(server: RunningServer, browser: httpx.Client) -> None:
    fields = {"csrf_token": token(browser), "type": "process", "name": "p1"}
    foreign = browser.post("/work-pools/new", data=fields, headers={"Origin": "http://evil.test"})
    assert foreign.status_code == 403
    same = browser.post("/work-pools/new", data=fields, headers={"Origin": server.url})
    assert same.status_code == 303 and same.headers["location"] == "/work-pools/p1"


def test_pool_form_errors_are_shown_beside_their_fields(
    server: RunningServer, browser: httpx.Client
) -> None:
    bad_name = post(browser, "/work-pools/new", type="process", name="no spaces")
    assert bad_name.status_code == 422
    assert "must not contain ' '" in field_error(bad_name.text, "name")
    # the API's rule for names, saying what a pool's name is
    for name, says in [("..", "must not be '..'"), (".", "must not be '.'"), ("a\x01", "\\x01")]:
        refused = post(browser, "/work-pools/new", type="process", name=name)
        assert refused.status_code == 422
        assert says in field_error(refused.text, "name")
        assert "letters, digits, '-', '_' and '.'" in field_error(refused.text, "name")
    dotted = post(browser, "/work-pools/new", type="process", name="my.pool")
    assert dotted.status_code == 303 and dotted.headers["location"] == "/work-pools/my%2Epool"
    assert "my.pool" in browser.get(dotted.headers["location"]).text

    bad_env = post(browser, "/work-pools/new", type="process", name="p", **{"var.env": "{"})
    assert bad_env.status_code == 422
    assert "valid JSON" in field_error(bad_env.text, "env")

    wrong_type = post(browser, "/work-pools/new", type="process", name="p", **{"var.env": "[1]"})
    assert "is not of type 'object'" in field_error(wrong_type.text, "env")

    template = '{"job_configuration": {"command": "{{ nope }}"}, "variables": {}}'
    undeclared = post(
        browser, "/work-pools/new", type="process", name="p", use_json="on", template=template
    )
    assert undeclared.status_code == 422
    assert "not declared in 'variables'" in field_error(undeclared.text, "template")

    made = post(
        browser,
        "/work-pools/new",
        type="process",
        name="p",
        concurrency_limit="3",
        **{"var.env": '{"MODE": "ui"}', "var.stream_output": "on", "var.command": ""},
    )
    assert made.status_code == 303
    with server.client() as client:
        pool = client.read_work_pool("p")
    assert pool.concurrency_limit == 3
    properties = pool.base_job_template["variables"]["properties"]
    assert properties["env"]["default"] == {"MODE": "ui"}
    assert properties["stream_output"]["default"] is True
    assert "default" not in properties["command"]

    again = post(browser, "/work-pools/new", type="process", name="p")
    assert "already exists" in field_error(again.text, "name")


def test_lists_paginate(server: RunningServer, browser: httpx.Client) -> None:
    with server.client() as client:
        for number in range(27):
            client.create_work_pool(
                schemas.WorkPoolCreate(name=f"pool-{number:02}", type="process")
            )
    first = browser.get("/work-pools").text
    assert first.count("data-pool=") == 25 and 'rel="next"' in first
    second = browser.get("/work-pools?page=2").text
    assert second.count("data-pool=") == 2 and 'rel="prev"' in second
    assert 'data-pool="pool-26"' in second
    rows = browser.get("/work-pools?page=2&partial=rows")
    assert rows.text.lstrip().startswith('<div id="pool-rows"') and "<html" not in rows.text


def test_log_tail_pages_forward_and_stops_when_the_run_is_over(
    server: RunningServer, browser: httpx.Client
) -> None:
    with server.client() as client:
        run = client.create_flow_run(schemas.FlowRunCreate(flow_name="tail"))
        client.create_logs(
            [schemas.LogCreate(flow_run_id=run.id, message=f"line {n}") for n in range(3)]
        )
        first = browser.get(f"/runs/{run.id}/logs?after_id=0").text
        assert [f"line {n}" in first for n in range(3)] == [True] * 3
        after = int(re.findall(r"after_id=(\d+)", first)[-1])
        assert 'hx-trigger="every 1s"' in first
        assert "line" not in browser.get(f"/runs/{run.id}/logs?after_id={after}").text
        client.create_logs([schemas.LogCreate(flow_run_id=run.id, message="line 3")])
        assert "line 3" in browser.get(f"/runs/{run.id}/logs?after_id={after}").text
        client.set_flow_run_state(
            run.id, schemas.StateTransition(state="COMPLETED", lease_token=run.lease_token)
        )
    # just ended: still listening for a worker's last words
    assert "hx-get" in browser.get(f"/runs/{run.id}/logs?after_id={after + 1}").text
    summary = browser.get(f"/runs/{run.id}?partial=summary").text
    assert "Completed" in summary and "hx-trigger" not in summary  # final: stops polling


def test_run_again_cancel_and_schedules(server: RunningServer, browser: httpx.Client) -> None:
    with server.client() as client:
        client.create_work_pool(schemas.WorkPoolCreate(name="p", type="process"))
        deployment = client.upsert_deployment(
            schemas.DeploymentCreate(
                flow_name="f",
                name="d",
                work_pool_name="p",
                parameters={"n": 1},
                schedules=[schemas.ScheduleCreate(interval=600)],
            )
        )
        first = client.create_deployment_run(
            deployment.id, schemas.DeploymentRunCreate(parameters={"n": 2})
        )
    again = post(browser, f"/runs/{first.id}/again")
    assert again.status_code == 303
    new_id = uuid.UUID(again.headers["location"].rsplit("/", 1)[1])
    cancel = post(browser, f"/runs/{new_id}/cancel")
    assert cancel.headers["location"].endswith("?done=cancelled")
    assert "cancelled before it started" in browser.get(cancel.headers["location"]).text
    repeat = post(browser, f"/runs/{new_id}/cancel")
    assert repeat.headers["location"].endswith("?done=not-cancellable")

    (schedule,) = deployment.schedules
    path = f"/deployments/{deployment.id}/schedules/{schedule.id}"
    assert post(browser, f"{path}/pause").status_code == 303
    assert post(browser, f"/deployments/{deployment.id}/pause").status_code == 303
    with server.client() as client:
        new = client.read_flow_run(new_id)
        updated = client.read_deployment(deployment.id)
    assert new.parameters == {"n": 2} and new.state == "CANCELLED"
    assert updated.paused and not updated.schedules[0].active
    assert post(browser, f"{path}/resume").status_code == 303
    assert post(browser, "/work-pools/p/pause").status_code == 303
    assert "This pool is paused" in browser.get("/work-pools/p").text


def test_values_no_database_stores_are_refused_not_500(
    server: RunningServer, browser: httpx.Client
) -> None:
    """A NUL in a page's path, or NaN and NUL typed in a run's JSON boxes: "not found" or
    the form's own error, never a server error (PostgreSQL cannot even compare NUL)."""
    for path in ("/work-pools/a%00b", "/runs/x?state=%00", "/deployments/%00"):
        answer = browser.get(path)
        assert answer.status_code in (404, 422), (path, answer.status_code)
    with server.client() as client:
        client.create_work_pool(schemas.WorkPoolCreate(name="pool", type="process"))
        deployment = client.upsert_deployment(
            schemas.DeploymentCreate(flow_name="f", name="d", work_pool_name="pool")
        )
    path = f"/deployments/{deployment.id}/run"
    for parameters in ('{"x": NaN}', '{"x": "a\\u0000b"}'):
        page = browser.post(
            path, data={"csrf_token": token(browser, path), "parameters": parameters}
        )
        assert page.status_code == 422, page.text
        assert field_error(page.text, "parameters"), parameters
    with server.client() as client:
        assert client.list_flow_runs() == []
