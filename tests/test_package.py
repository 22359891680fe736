"""The public package: light to import, and its ``__all__`` tells the truth."""

from __future__ import annotations

import importlib
import subprocess
import sys

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


@pytest.mark.parametrize("module_name", ["dockyard", "dockyard.exceptions", "dockyard.settings"])
def test_all_is_honest(module_name: str) -> None:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    assert names is not None, f"{module_name} must list its public names in __all__"
    missing = [name for name in names if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ lists names it does not define: {missing}"
    duplicates = sorted({name for name in names if list(names).count(name) > 1})
    assert not duplicates, f"{module_name}.__all__ lists names twice: {duplicates}"
