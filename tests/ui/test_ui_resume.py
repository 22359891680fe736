"""The Resume form of a paused run in Chromium: built from its pause's input schema, a bad
value shown beside its field (the run stays paused), then resumed with typed input."""

from __future__ import annotations

import enum
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect
from pydantic import Field

from _support import RunningServer
from dockyard.input import RunInput


class Level(enum.Enum):
    LOW = "low"
    HIGH = "high"


class Review(RunInput):
    approved: bool
    reviewer: str = Field(description="who looked at it")
    count: int
    level: Level = Level.LOW
    limits: dict[str, int] = Field(default_factory=dict)


def test_resume_a_paused_run_from_its_page(
    server: RunningServer,
    page: Page,
    screenshot: Callable[[str], Path],
    console_errors: list[str],
) -> None:
    with server.http() as http:
        made = http.post("/flow-runs", json={"flow_name": "review"}).json()
    run_id, token = made["id"], made["lease_token"]
    page.goto(f"{server.url}/runs/{run_id}")
    expect(page.locator("#run-state [data-state]")).to_have_text("Running")
    expect(page.locator("#resume-form")).to_have_count(0)

    with server.http() as http:  # the flow pauses while its page is open
        body = {"key": "pause-1", "lease_token": token, "input_schema": Review.model_json_schema()}
        assert http.post(f"/flow-runs/{run_id}/pause", json=body).is_success
    form = page.locator("#resume-form")
    expect(form).to_be_visible()  # the panel asks again until the run pauses
    expect(page.locator("#resume-title")).to_have_text("Paused: waiting to be resumed")
    expect(form.locator('[data-field="reviewer"] .hint')).to_have_text("who looked at it")

    form.locator("#f-input\\.reviewer").fill("marvin")
    form.locator("#f-input\\.count").fill("many")
    form.locator("#f-input\\.limits").fill('{"cpu": "two"}')
    form.get_by_role("button", name="Resume").click()
    expect(form.locator('[data-field="count"] .field-error')).to_have_text("enter a whole number")
    expect(form.locator("#f-input\\.reviewer")).to_have_value("marvin")  # what was typed stays
    screenshot("resume-bad-input")
    form.locator("#f-input\\.count").fill("3")
    form.get_by_role("button", name="Resume").click()
    expect(form.locator('[data-field="limits"] .field-error')).to_contain_text("not of type")
    with server.client() as client:
        assert client.read_flow_run(run_id).state == "PAUSED"

    form.locator("#f-input\\.limits").fill('{"cpu": 2}')
    form.locator("#f-input\\.approved").check()
    form.locator("#f-input\\.level").select_option("high")
    form.get_by_role("button", name="Resume").click()
    expect(page).to_have_url(f"{server.url}/runs/{run_id}?done=resumed")
    expect(page.get_by_role("status")).to_have_text("Run resumed.")
    expect(page.locator("#run-state [data-state]")).to_have_text("Running")
    with server.http() as http:
        pause = http.get(f"/flow-runs/{run_id}/pause", params={"key": "pause-1"}).json()
    assert pause["run_input"] == {
        "approved": True,
        "reviewer": "marvin",
        "count": 3,
        "level": "high",
        "limits": {"cpu": 2},
    }
    assert Review.model_validate(pause["run_input"]).level is Level.HIGH
    assert console_errors == []
