"""The public package: light to import, its ``__all__`` tells the truth, and the SDK's
layers import only downwards."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

# `import dockyard` is what every flow script and the engine pay for: none of these may load.
HEAVY = [
    "sqlalchemy",
    "fastapi",
    "pydantic",
    "httpx",
    "docker",
    "dockyard.server",
    "starlette",
    "uvicorn",
]


def imported_modules(statement: str) -> list[str]:
    """Modules a fresh interpreter imports to run ``statement`` (from ``-X importtime``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    modules = []
    for line in result.stderr.splitlines():
        # "import time:  self [us] | cumulative | imported package"
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                modules.append(name)
    return modules


def test_import_dockyard_stays_light() -> None:
    modules = imported_modules("import dockyard")
    assert "dockyard" in modules
    heavy = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert not heavy, f"`import dockyard` imports heavy modules: {', '.join(heavy)}"


PUBLIC = [
    "dockyard",
    "dockyard.exceptions",
    "dockyard.settings",
    "dockyard.states",
    "dockyard.futures",
    "dockyard.task_runners",
    "dockyard.cache_policies",
    "dockyard.logging",
    "dockyard.context",
    "dockyard.tasks",
    "dockyard.flows",
    "dockyard.schedules",
    "dockyard.utilities.annotations",
    "dockyard.testing.utilities",
    "dockyard.variables",
    "dockyard.artifacts",
    "dockyard.blocks.system",
    "dockyard.flow_runs",
    "dockyard.input",
    "dockyard.concurrency",
    "dockyard.concurrency.sync",
    "dockyard.concurrency.asyncio",
    "dockyard.events",
    "dockyard.events.actions",
    "dockyard.automations",
]


@pytest.mark.parametrize("module_name", PUBLIC)
def test_all_is_honest(module_name: str) -> None:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    assert names is not None, f"{module_name} must list its public names in __all__"
    missing = [name for name in names if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ lists names it does not define: {missing}"
    duplicates = sorted({name for name in names if list(names).count(name) > 1})
    assert not duplicates, f"{module_name}.__all__ lists names twice: {duplicates}"


# ---------------------------------------------------------------- the SDK's layers

SRC = Path(__file__).resolve().parents[1] / "src"
# Top down: each layer may import the layers below it, never one above (nor the server).
# The definitions (flows, tasks) and the engine are the top; a run's machinery and the
# deployments' are below them; the transport is at the bottom.
LAYERS = [
    (
        "definitions",
        (
            "dockyard.sdk.flows",
            "dockyard.sdk.tasks",
            "dockyard.sdk.flow_deployments",
            "dockyard.sdk.engine",
            "dockyard.sdk.server_calls",
        ),
    ),
    ("deploy", ("dockyard.sdk.deploy",)),
    ("runtime", ("dockyard.sdk.runtime",)),
    ("helpers", ("dockyard.sdk.options", "dockyard.sdk.parameters", "dockyard.sdk.docstrings")),
    ("transport", ("dockyard.sdk.api", "dockyard.sdk.transport")),
]


def _sdk_imports() -> dict[str, set[str]]:
    """What each SDK module imports when it runs (imports for type checkers left out)."""
    modules = {}
    for path in (SRC / "dockyard").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if not name.startswith("dockyard.sdk"):
            continue
        tree = ast.parse(path.read_text())
        typing_only = {
            id(node)
            for branch in ast.walk(tree)
            if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
            for node in ast.walk(branch)
        }
        found = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = [f"{node.module}.{alias.name}" for alias in node.names]
                found |= {sub for sub in subs if sub in modules}
                if node.module in modules and not all(sub in modules for sub in subs):
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name in modules}
        graph[name] = found - {name}
    return graph


def _layer(module: str) -> int | None:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None


def test_the_sdk_imports_only_downwards_and_never_the_server() -> None:
    upwards = []
    for module, imported in sorted(_sdk_imports().items()):
        own = _layer(module)
        for target in sorted(imported):
            assert not target.startswith("dockyard.server"), f"{module} imports {target}"
            theirs = _layer(target)
            if own is not None and theirs is not None and theirs < own:
                upwards.append(f"{module} ({LAYERS[own][0]}) imports {target}")
    assert not upwards, "imports against the layers:\n" + "\n".join(upwards)


def test_the_sdk_has_no_import_cycle() -> None:
    graph = _sdk_imports()
    seen: dict[str, int] = {}  # 1: on the path being walked, 2: done

    def walk(module: str, path: list[str]) -> None:
        seen[module] = 1
        for target in sorted(graph.get(module, ())):
            if seen.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in seen:
                walk(target, [*path, target])
        seen[module] = 2

    for module in sorted(graph):
        if module not in seen:
            walk(module, [module])
