"""Every page passes axe-core with no serious or critical violation, in light and dark; the
first Tab reaches "Skip to content", which moves focus to the page's main content.

axe-core comes from the npm registry (`npm pack`, pinned below) into a cache directory, once:
without npm the test skips when run by hand and fails in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.sync_api import Page, expect
from test_ui_screenshots import pages
from ui_support import seed_showcase

from _support import RunningServer, require

AXE_VERSION = "4.14.1"
KEY = "a11y-test-key-51c2"
# what fails the test ("moderate" and "minor" findings are mostly best practices)
FAILING = ("serious", "critical")
SHOWN_TARGETS = 4
SCHEMES: tuple[Literal["light", "dark"], ...] = ("light", "dark")


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


@pytest.fixture(scope="session")
def axe_script() -> Path:
    """``axe.min.js`` of axe-core ``AXE_VERSION``, fetched with ``npm pack`` the first time
    (the tarball's integrity is checked by npm) and kept in the user's cache directory."""
    folder = _cache_home() / "dockyard-tests" / f"axe-core-{AXE_VERSION}"
    script = folder / "axe.min.js"
    if script.exists():
        return script
    npm = shutil.which("npm")
    require(npm, "npm not installed (axe-core comes from the npm registry): apt-get install npm")
    assert npm is not None
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        packed = subprocess.run(
            [npm, "pack", f"axe-core@{AXE_VERSION}", "--json", "--pack-destination", scratch],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if packed.returncode != 0:
            pytest.fail(f"npm pack axe-core@{AXE_VERSION} failed:\n{packed.stderr}")
        tarball = Path(scratch) / json.loads(packed.stdout)[0]["filename"]
        unpacked = Path(scratch) / "axe"
        unpacked.mkdir()
        with tarfile.open(tarball) as archive:
            for name in ("axe.min.js", "LICENSE"):
                member = archive.extractfile(f"package/{name}")
                assert member is not None, f"axe-core {AXE_VERSION} has no {name}"
                (unpacked / name).write_bytes(member.read())
        # a rename, so that another test process never finds half a file
        try:
            unpacked.rename(folder)
        except OSError:
            if not script.exists():
                raise
    return script


# each violation: its rule, impact and help, and each element it names (a CSS selector, and
# what axe says to fix there)
AUDIT = """async (rules) => {
    const options = {resultTypes: ["violations"]};
    if (rules) options.runOnly = {type: "rule", values: rules};
    const found = await axe.run(document, options);
    const fix = (n) => (n.failureSummary || "").replace(/\\s+/g, " ");
    const where = (n) => n.target.join(" ") + " :: " + fix(n);
    return found.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(where),
    }));
}"""
# the dark scheme changes colours only: there, only the rules about colour run again
COLOUR_RULES = ["color-contrast", "link-in-text-block"]


def _audit(page: Page, scheme: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = page.evaluate(AUDIT, COLOUR_RULES if scheme == "dark" else None)
    return result


def _seed_more(server: RunningServer, ids: dict[str, str]) -> dict[str, str]:
    """A variable, a secret, artifacts, a concurrency limit and an automation beside the
    showcase's pools, deployments and runs; returns the ids with a task run's."""
    with server.http() as http:
        for path, body in (
            ("/variables", {"name": "crew_list", "value": {"crew": ["zaphod"]}, "tags": ["ship"]}),
            ("/secrets", {"name": "registry-token", "value": "s3cret-value"}),
            ("/concurrency-limits", {"name": "database", "limit": 3}),
            (
                "/automations",
                {
                    "name": "runs-failing",
                    "trigger": {"expect": ["dockyard.flow-run.Failed"]},
                    "actions": [{"type": "cancel-flow-run"}],
                },
            ),
            (
                "/artifacts",
                {
                    "type": "markdown",
                    "key": "report",
                    "data": "# Nightly report\n\nLoaded **42** rows.",
                    "flow_run_id": ids["completed"],
                },
            ),
            (
                "/artifacts",
                {
                    "type": "table",
                    "key": "rows",
                    "data": [{"name": "a", "count": 1}, {"name": "b", "count": 2}],
                    "flow_run_id": ids["completed"],
                },
            ),
        ):
            answer = http.post(path, json=body)
            assert answer.status_code in (200, 201), f"{path}: {answer.text}"
        tasks = http.get("/task-runs", params={"flow_run_id": ids["failed"]})
        assert tasks.status_code == 200, tasks.text
    return {**ids, "task_run": tasks.json()[0]["id"]}


def _all_pages(ids: dict[str, str]) -> dict[str, tuple[str, int]]:
    found = {name: (path, 200) for name, path in pages(ids).items()}
    return {
        **found,
        "flow-run-logs-filtered": (f"/runs/{ids['failed']}?level=40", 200),
        "task-run": (f"/task-runs/{ids['task_run']}", 200),
        "variables": ("/variables?new=1", 200),
        "variable": ("/variables/crew_list", 200),
        "secrets": ("/secrets?new=1", 200),
        "artifacts": ("/artifacts", 200),
        "artifact": ("/artifacts/report", 200),
        "automations": ("/automations?new=1", 200),
        "automation-events": ("/automations/events", 200),
        "concurrency": ("/concurrency-limits?new=1", 200),
        "concurrency-limit": ("/concurrency-limits/database", 200),
        "not-found": (f"/runs/{uuid.uuid4()}", 404),
    }


def _report(name: str, scheme: str, violations: list[dict[str, Any]]) -> list[str]:
    lines = []
    for v in violations:
        if v["impact"] in FAILING:
            lines.append(f"{name} ({scheme}): {v['id']} [{v['impact']}] {v['help']}")
            lines.extend(f"    {target}" for target in v["targets"][:SHOWN_TARGETS])
            if len(v["targets"]) > SHOWN_TARGETS:
                lines.append(f"    ... and {len(v['targets']) - SHOWN_TARGETS} more")
    return lines


@pytest.mark.parametrize("server", [{"DOCKYARD_SERVER_API_KEY": KEY}], indirect=True)
def test_every_page_passes_axe(
    server: RunningServer, page: Page, axe_script: Path, console_errors: list[str]
) -> None:
    with server.client() as client:
        ids = seed_showcase(client)
    ids = _seed_more(server, ids)
    page.context.add_init_script(path=str(axe_script))
    problems: list[str] = []

    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        page.goto(f"{server.url}/login")
        problems += _report("login", scheme, _audit(page, scheme))
    page.locator("#f-api_key").fill(KEY)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()

    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        for name, (path, status) in _all_pages(ids).items():
            response = page.goto(server.url + path)
            assert response is not None and response.status == status, path
            problems += _report(name, scheme, _audit(page, scheme))
        # a form that refused what was typed: its errors beside the fields
        page.goto(f"{server.url}/variables?new=1")
        page.locator("#f-name").fill("Bad Name")
        page.locator("#f-value").fill("[1")
        page.get_by_role("button", name="Create variable").click()
        expect(page.locator(".field-error").first).to_be_visible()
        problems += _report("variable-form-errors", scheme, _audit(page, scheme))
    assert not problems, "axe-core found serious or critical violations:\n" + "\n".join(problems)
    assert console_errors == []


def test_skip_link_is_the_first_tab_stop(server: RunningServer, page: Page) -> None:
    page.goto(f"{server.url}/work-pools")
    skip = page.get_by_role("link", name="Skip to content")
    assert skip.evaluate("el => el.getBoundingClientRect().bottom") <= 0  # shown on focus only

    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    assert skip.evaluate("el => el.getBoundingClientRect().top") >= 0
    expect(skip).to_have_attribute("href", "#main")

    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    # the next Tab goes on from the main content, past the navigation
    page.keyboard.press("Tab")
    assert page.evaluate("document.querySelector('main').contains(document.activeElement)")
    expect(page.get_by_role("link", name="New work pool")).to_be_focused()
