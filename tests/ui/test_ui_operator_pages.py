"""The pages an operator reads every day, in the browser: the dashboard's counts lead to
exactly the runs they count, a pool's Runs tab puts what happened before what is to come,
a deployment's upcoming runs are only those still to start, and the new-pool form shows
every refusal at once and keeps what was typed.

One server for the whole module, seeded once: three deployments on two pools, runs in every
common state, late runs and runs due hours from now. Tests add only what no other counts.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urljoin

import httpx
import pytest
from playwright.sync_api import Page, expect

from _support import RunningServer, ServerFactory
from dockyard import schemas
from dockyard.client import Client
from dockyard.server.ui import rendering

RUN_LINK = re.compile(r"^/runs/[0-9a-f-]{36}$")
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
FUTURE_RUNS = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("operator-pages")
    factory = ServerFactory(base / "servers", f"sqlite+aiosqlite:///{base / 'dockyard.db'}")
    # RUNNING runs stay RUNNING (no engine renews their lease), so counts hold still
    running = factory(DOCKYARD_LEASE_SECONDS="86400")
    yield running
    problems = factory.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def seeded(server: RunningServer) -> dict[str, str]:
    with server.client() as client:
        return _seed(client)


def _seed(client: Client) -> dict[str, str]:
    for pool in ("busy", "local"):
        client.create_work_pool(schemas.WorkPoolCreate(name=pool, type="process"))
    etl, report, sync = (
        client.upsert_deployment(
            schemas.DeploymentCreate(
                flow_name=flow, name=name, entrypoint=f"{flow}.py:{flow}", work_pool_name=pool
            )
        )
        for flow, name, pool in (
            ("etl", "nightly", "busy"),
            ("report", "daily", "local"),
            ("sync", "hourly", "local"),
        )
    )
    finals = ["COMPLETED", "FAILED", "COMPLETED", "CRASHED", "FAILED", "RUNNING", "COMPLETED"]
    for final in finals:
        _finished_run(client, etl, final)
    for final in ("COMPLETED", "FAILED", "COMPLETED"):
        _finished_run(client, report, final)
    now = schemas.utcnow()
    for ago in (timedelta(hours=2), timedelta(hours=3), timedelta(hours=30)):
        _run_at(client, report, now - ago)  # no worker: late
    cancelled = _run_at(client, etl, now + timedelta(minutes=50))
    client.cancel_flow_run(cancelled)
    for number in range(FUTURE_RUNS):
        _run_at(client, etl, now + timedelta(hours=2, minutes=10 * number))
    return {"etl": str(etl.id), "sync": str(sync.id), "cancelled": str(cancelled)}


def _finished_run(client: Client, deployment: schemas.Deployment, final: str) -> None:
    """A run claimed by a worker and taken to ``final`` by its engine."""
    client.create_deployment_run(deployment.id, schemas.DeploymentRunCreate())
    pool = deployment.work_pool_name
    request = schemas.ClaimRequest(worker_name=f"{pool}-worker", work_pool_name=pool)
    (claimed,) = client.claim(request)
    run_id, token = claimed.flow_run.id, claimed.lease_token
    client.set_flow_run_state(run_id, schemas.StateTransition(state="RUNNING", lease_token=token))
    if final != "RUNNING":
        transition = schemas.StateTransition(state=final, lease_token=token, message="ended")
        client.set_flow_run_state(run_id, transition)


def _run_at(client: Client, deployment: schemas.Deployment, start: object) -> uuid.UUID:
    body = schemas.DeploymentRunCreate.model_validate({"scheduled_start": start})
    return client.create_deployment_run(deployment.id, body).id


def listed_runs(page: Page, url: str) -> set[str]:
    """The runs a run list shows at ``url``, over all its pages."""
    found: set[str] = set()
    while url:
        page.goto(url)
        links = page.locator("main a[href^='/runs/']").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))"
        )
        found.update(href for href in links if RUN_LINK.match(href))
        following = page.locator("main a[rel=next]")
        url = urljoin(page.url, following.first.get_attribute("href")) if following.count() else ""
    return found


def test_every_dashboard_count_lists_exactly_its_runs(
    server: RunningServer, seeded: dict[str, str], page: Page, console_errors: list[str]
) -> None:
    page.goto(server.url + "/")
    counted = page.locator("#dashboard a[data-count]").evaluate_all(
        "links => links.map(a => [a.getAttribute('href'), +a.dataset.count])"
    )
    by_href: dict[str, int] = dict(counted)
    assert by_href["/runs?state=FAILED,CRASHED&range=24h"] == 4  # 3 failed, 1 crashed
    assert by_href[f"/runs?deployment_id={seeded['etl']}&state=FAILED,CRASHED&range=24h"] == 3
    assert by_href["/runs?state=CANCELLED&range=24h"] >= 1  # cancelled before its start
    assert by_href["/runs?state=LATE&range=all"] == 3  # one of them due 30 h ago
    assert by_href["/runs?state=RUNNING&range=24h"] == 1
    states = page.locator(".bar-row a[data-count]").evaluate_all(
        "links => links.map(a => +a.dataset.count)"
    )
    assert sum(states) == by_href["/runs?range=24h"], "the states add up to the total"
    for href, count in sorted({(href, count) for href, count in counted}):
        assert len(listed_runs(page, server.url + href)) == count, href
    # the run cancelled before it was due is over: the run list's default view has it
    assert f"/runs/{seeded['cancelled']}" in listed_runs(page, server.url + "/runs")
    assert console_errors == []


def test_a_pools_runs_tab_shows_the_past_first_and_upcoming_apart(
    server: RunningServer, seeded: dict[str, str], page: Page, console_errors: list[str]
) -> None:
    page.goto(f"{server.url}/work-pools/busy/runs")
    past = page.locator("#pool-runs tbody tr")
    expect(past).to_have_count(8)  # 7 claimed runs and the cancelled one: none is to come
    expect(page.locator("#pool-runs [data-state=SCHEDULED]")).to_have_count(0)
    expect(page.locator("#pool-runs [data-state=RUNNING]")).to_have_count(1)
    upcoming = page.locator("#pool-upcoming tbody tr")
    expect(upcoming).to_have_count(5)
    expect(upcoming.first).to_contain_text("Scheduled")
    expect(upcoming.first.locator("time")).to_have_text(re.compile(r"^in (2 h|1 h 5\d min)$"))
    all_upcoming = page.get_by_role("link", name=f"All {FUTURE_RUNS} upcoming runs")
    href = all_upcoming.get_attribute("href")
    assert href == "/runs?pool=busy&state=SCHEDULED&range=upcoming"

    state = page.locator("#f-run-state")
    state.select_option("FAILED")
    expect(page).to_have_url(re.compile(r"/work-pools/busy/runs\?state=FAILED$"))
    expect(past).to_have_count(2)
    expect(page.locator("#pool-runs [data-state=FAILED]")).to_have_count(2)
    state.select_option(label="Failed or crashed")
    expect(past).to_have_count(3)
    expect(page.locator("#pool-runs h2")).to_have_text("Runs: Failed or crashed")
    page.reload()  # the filter is in the URL: a reload or a shared link keeps it
    expect(state).to_have_value("FAILED,CRASHED")
    expect(past).to_have_count(3)
    assert len(listed_runs(page, server.url + href)) == FUTURE_RUNS
    assert console_errors == []


def test_a_deployments_upcoming_runs_are_those_still_to_start(
    server: RunningServer, seeded: dict[str, str], page: Page
) -> None:
    now = schemas.utcnow()
    with server.client() as client:
        sync = client.read_deployment(uuid.UUID(seeded["sync"]))
        client.cancel_flow_run(_run_at(client, sync, now + timedelta(minutes=30)))
        _run_at(client, sync, now + timedelta(hours=1, minutes=58, seconds=30))
        _run_at(client, sync, now + timedelta(hours=26))
    page.goto(f"{server.url}/deployments/{seeded['sync']}")
    card = page.locator("section", has=page.get_by_role("heading", name="Upcoming runs"))
    rows = card.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(card).not_to_contain_text("Cancelled")
    expect(rows.first.locator("time")).to_have_text("in 1 h 58 min")
    expect(rows.last.locator("time")).to_have_text("in 26 h")
    see_all = card.get_by_role("link", name="All 2 upcoming runs")
    see_all.click()
    expect(page).to_have_url(re.compile(r"/runs\?deployment_id=.*&state=SCHEDULED&range=upcoming$"))
    assert len(listed_runs(page, page.url)) == 2


def test_relative_times_round_to_the_nearest_unit() -> None:
    now = rendering._now()
    cases = {
        timedelta(seconds=12): "in 12 s",
        timedelta(seconds=59, milliseconds=700): "in 1 min",
        timedelta(minutes=44, seconds=40): "in 45 min",
        timedelta(hours=1, minutes=58, seconds=20): "in 1 h 58 min",
        timedelta(hours=1, minutes=59, seconds=40): "in 2 h",
        timedelta(hours=5, minutes=10): "in 5 h 10 min",
        timedelta(hours=9, minutes=40): "in 10 h",
        timedelta(hours=47): "in 47 h",
        timedelta(days=3, hours=13): "in 4 d",
    }
    for ahead, shown in cases.items():
        # a moment later than the check: the few microseconds it takes round away
        assert rendering.ago(now + ahead + timedelta(milliseconds=5)) == shown, ahead
    assert rendering.ago(now - timedelta(hours=1, minutes=58, seconds=20)) == "1 h 58 min ago"


def field_error(page: Page, name: str) -> str:
    return page.locator(f'[data-field="{name}"] .field-error').inner_text()


def test_the_new_pool_form_shows_every_refusal_at_once_and_keeps_what_was_typed(
    server: RunningServer, seeded: dict[str, str], page: Page, console_errors: list[str]
) -> None:
    page.goto(f"{server.url}/work-pools/new")
    page.locator("#f-type").select_option("docker")
    expect(page.locator("#f-var\\.labels")).to_be_visible()
    page.locator("#f-name").fill("busy")  # taken: only the API knows
    page.locator("#f-concurrency_limit").fill("many")
    page.locator("#f-var\\.env").fill('{"MODE": "ui"')
    page.locator("#f-var\\.labels").fill("team=data")
    page.get_by_role("button", name="Create work pool").click()

    expect(page.locator("#form-problems")).to_contain_text("4 problems")
    assert "already exists" in field_error(page, "name")
    assert "whole number" in field_error(page, "concurrency_limit")
    assert "valid JSON" in field_error(page, "env")
    assert "valid JSON" in field_error(page, "labels")
    expect(page.locator("#f-var\\.env")).to_have_value('{"MODE": "ui"')
    expect(page.locator("#f-var\\.labels")).to_have_value("team=data")
    expect(page.locator("#f-concurrency_limit")).to_have_value("many")
    expect(page.locator("#f-type")).to_have_value("docker")

    # an invalid name and an invalid template, refused together; the JSON is kept as typed
    page.locator("#f-name").fill("no spaces")
    page.locator("#f-concurrency_limit").fill("")
    page.locator("#f-var\\.env").fill("{}")  # as the form first showed them
    page.locator("#f-var\\.labels").fill("{}")
    page.locator("summary", has_text="Advanced").click()
    page.locator("#f-template").fill('{"job_configuration": {"command": "{{ nope }}"}}')
    page.get_by_role("button", name="Create work pool").click()
    expect(page.locator("#form-problems")).to_contain_text("2 problems")
    assert "must not contain ' '" in field_error(page, "name")
    assert "not declared in 'variables'" in field_error(page, "template")
    expect(page.locator("#f-template")).to_have_value(re.compile(r"\{\{ nope \}\}"))
    expect(page.locator("#template-in-use")).to_be_visible()

    # an edited JSON is used, no box to tick; changing the fields as well is refused
    template = page.locator("#f-template").input_value()
    edited = template.replace("{{ nope }}", "run-{{ image }}")
    image = {"type": "object", "properties": {"image": {"type": "string", "default": "etl:2"}}}
    edited = edited.replace(
        '"job_configuration"', f'"variables": {json.dumps(image)}, "job_configuration"'
    )
    page.locator("#f-name").fill("from-json")
    page.locator("#f-template").fill(edited)
    page.locator("#f-var\\.image").fill("python:3.12")
    page.get_by_role("button", name="Create work pool").click()
    assert "the fields would not be used" in field_error(page, "template")
    page.locator("#f-var\\.image").fill("")
    page.get_by_role("button", name="Create work pool").click()
    expect(page).to_have_url(f"{server.url}/work-pools/from-json")
    with server.client() as client:
        made = client.read_work_pool("from-json").base_job_template
    assert made["job_configuration"] == {"command": "run-{{ image }}"}
    assert made["variables"]["properties"]["image"]["default"] == "etl:2"
    assert console_errors == []


@pytest.mark.parametrize(
    "template",
    [
        "[]",
        '"text"',
        '{"variables": []}',
        '{"job_configuration": {}, "variables": {"properties": []}}',
        '{"job_configuration": {}, "variables": {"properties": {"a": {"anyOf": 5}}}}',
        '{"job_configuration": {}, "variables": {"properties": {"a": {"default": NaN}}}}',
        '{"job_configuration": {"x": "\\u0000"}}',
    ],
)
def test_a_template_of_any_shape_is_refused_beside_its_field(
    server: RunningServer, seeded: dict[str, str], template: str
) -> None:
    """Posted as a script would (no browser): refused next to the template, never a 500."""
    with httpx.Client(base_url=server.url, trust_env=False, timeout=30.0) as browser:
        token = TOKEN.search(browser.get("/work-pools/new").text)
        assert token is not None
        fields = {
            "csrf_token": token.group(1),
            "type": "process",
            "name": "odd",
            "template": template,
        }
        answer = browser.post("/work-pools/new", data=fields)
    assert answer.status_code == 422, answer.text
    assert 'class="field has-error" data-field="template"' in answer.text


def test_late_runs_and_a_paused_pool_are_drawn_not_left_to_a_font(
    server: RunningServer, seeded: dict[str, str], page: Page
) -> None:
    """The deployments list draws late runs as Late squares (not grey Scheduled ones), and a
    paused pool's header draws its icon as SVG: the fonts here lack the pause glyph."""
    page.goto(f"{server.url}/deployments")
    report = page.locator('tr[data-deployment="report/daily"]')
    expect(report.locator(".squares .state-late")).to_have_count(3)
    expect(report.locator(".squares .state-late").first).to_have_attribute(
        "title", re.compile(r": Late, ")
    )
    with server.client() as client:
        client.create_work_pool(schemas.WorkPoolCreate(name="resting", type="process"))
        client.pause_work_pool("resting")
    page.goto(f"{server.url}/work-pools/resting")
    expect(page.locator("#pool-header svg.icon-paused").first).to_be_visible()
    assert "⏸" not in page.locator("#pool-header").inner_text()
