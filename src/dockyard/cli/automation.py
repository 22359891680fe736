"""``dockyard automation``: create automations from a spec file, list, inspect, pause,
resume and delete them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dockyard.cli._common import JsonFlag, build, open_client
from dockyard.exceptions import DockyardError

if TYPE_CHECKING:
    from dockyard.schemas.events import Automation

app = typer.Typer(
    help="Manage automations: triggers on events, and the actions they start.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Name or id of the automation.", metavar="NAME")]
PAGE = 200


@app.command("create")
def create(
    file: Annotated[
        Path,
        typer.Option(
            "--file", "-f", metavar="FILE", help="The automation's spec, as YAML or JSON."
        ),
    ],
) -> None:
    """Create an automation from a spec file (name, trigger, actions; see docs/automations.md)."""
    from dockyard.cli import _output as out
    from dockyard.schemas.events import AutomationCreate

    spec = build(AutomationCreate, **read_spec(file))
    with open_client() as client:
        made = client.create_automation(spec)
    out.say(f"Created automation '{made.name}' ({made.id}).")


def read_spec(path: Path) -> dict[str, Any]:
    """The mapping in a YAML or JSON file.

    Raises:
        DockyardError: the file cannot be read, is not YAML, or holds no mapping.
    """
    import yaml  # type: ignore[import-untyped]

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DockyardError(f"cannot read the spec file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise DockyardError(f"the spec file {path} is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DockyardError(f"the spec file {path} is not valid YAML or JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DockyardError(
            f"the spec file {path} must hold a mapping with name, trigger and actions"
        )
    return {str(key): value for key, value in data.items()}


@app.command("ls")
def ls(json_: JsonFlag = False) -> None:
    """List automations: trigger, actions, enabled, and the last action's result."""
    from dockyard.cli import _output as out

    found: list[Automation] = []
    with open_client() as client:
        while True:
            page = client.list_automations(limit=PAGE, offset=len(found))
            found.extend(page)
            if len(page) < PAGE:
                break
    if json_:
        out.print_json([a.model_dump(mode="json") for a in found])
        return
    if not found:
        out.say("No automations yet; create one with: dockyard automation create --file FILE")
        return
    rows = [
        (
            a.name,
            a.trigger_summary(),
            a.actions_summary(),
            "yes" if a.enabled else "no",
            a.last_result(),
        )
        for a in found
    ]
    out.table(["Name", "Trigger", "Actions", "Enabled", "Last result"], rows)


@app.command("inspect")
def inspect(name: NameArg, json_: JsonFlag = False) -> None:
    """Show an automation with its latest action results and errors."""
    from dockyard.cli import _output as out

    with open_client() as client:
        automation = client.read_automation(name)
    if json_:
        out.print_json(automation.model_dump(mode="json"))
        return
    out.fields(
        [
            ("Name", automation.name),
            ("ID", automation.id),
            ("Enabled", "yes" if automation.enabled else "no"),
            ("Description", automation.description),
            ("Trigger", json.dumps(automation.trigger.model_dump(mode="json"), indent=2)),
            ("Actions", automation.actions_summary()),
            ("Deployment", automation.deployment_id),
            ("Created", automation.created),
        ]
    )
    if automation.results:
        rows = [
            (r.created, r.type, r.status, r.attempts, r.last_error or "")
            for r in automation.results
        ]
        out.table(["When", "Action", "Status", "Attempts", "Last error"], rows)
    else:
        out.say("It has not fired yet.")


@app.command("pause")
def pause(name: NameArg) -> None:
    """Disable an automation: it counts no events until resumed."""
    _set_enabled(name, False)


@app.command("resume")
def resume(name: NameArg) -> None:
    """Enable an automation."""
    _set_enabled(name, True)


@app.command("delete")
def delete(name: NameArg) -> None:
    """Delete an automation."""
    from dockyard.cli import _output as out

    with open_client() as client:
        client.delete_automation(name)
    out.say(f"Deleted automation '{name}'.")


def _set_enabled(name: str, enabled: bool) -> None:
    from dockyard.cli import _output as out

    with open_client() as client:
        automation = client.set_automation_enabled(name, enabled)
    out.say(f"Automation '{automation.name}' is {'enabled' if enabled else 'paused'}.")
