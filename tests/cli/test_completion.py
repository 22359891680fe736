"""Shell completion: ``dockyard --install-completion`` and ``--show-completion``, and the
answers a shell gets through the protocol they set up (``_DOCKYARD_COMPLETE``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from _support import CLI_COMMAND, require

# what a completion request may not import: it runs at every press of Tab
HEAVY = ["httpx", "pydantic", "rich", "dockyard.client", "dockyard.schemas", "dockyard.server"]
WORK_POOL_COMMANDS = {"create", "ls", "inspect", "update", "pause", "resume", "delete", "preview"}


def complete(*words: str, extra: dict[str, str] | None = None) -> list[str]:
    """What bash is offered for the last of ``words`` (the word being typed, maybe "")."""
    env = {
        **os.environ,
        "_DOCKYARD_COMPLETE": "complete_bash",
        "COMP_WORDS": " ".join(["dockyard", *words]),
        "COMP_CWORD": str(len(words)),
        **(extra or {}),
    }
    result = subprocess.run(
        CLI_COMMAND, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout.splitlines()


def test_completing_commands_and_options() -> None:
    assert set(complete("")) >= {"work-pool", "deployment", "flow-run", "server", "worker"}
    assert complete("work-p") == ["work-pool"]
    assert set(complete("work-pool", "")) >= WORK_POOL_COMMANDS
    assert complete("work-pool", "ins") == ["inspect"]
    assert "--json" in complete("work-pool", "ls", "--")
    assert "--install-completion" in complete("--")


def test_a_completion_request_imports_nothing_heavy() -> None:
    env = {
        **os.environ,
        "_DOCKYARD_COMPLETE": "complete_bash",
        "COMP_WORDS": "dockyard work-pool ",
        "COMP_CWORD": "2",
    }
    command = [sys.executable, "-X", "importtime", *CLI_COMMAND[1:]]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    modules = [
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]
    heavy = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert not heavy, f"a completion request imports {heavy}"


SCRIPT_LINES = {
    "bash": "complete -o default -F _dockyard_completion dockyard",
    "zsh": "compdef _dockyard_completion dockyard",
    "fish": "complete --command dockyard",
}


def test_show_completion_prints_the_script_of_the_shell_it_runs_in() -> None:
    """typer finds the shell among the command's parent processes."""
    shells = [shell for shell in SCRIPT_LINES if shutil.which(shell)]
    require("bash" in shells, "bash not installed")
    for shell in shells:
        # `; exit` keeps the shell as the parent process instead of replacing itself
        result = subprocess.run(
            [shell, "-c", '"$@"; exit $?', shell, *CLI_COMMAND, "--show-completion"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "_DOCKYARD_COMPLETE" in result.stdout, result.stdout
        assert SCRIPT_LINES[shell] in result.stdout, result.stdout


def test_install_completion_for_bash_completes_in_bash(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    require(bash, "bash not installed")
    dockyard = Path(sys.executable).parent / "dockyard"
    require(dockyard.exists(), f"{dockyard} missing: pip install -e '.[dev]'")
    assert bash is not None
    env = {**os.environ, "HOME": str(tmp_path), "PATH": f"{dockyard.parent}:{os.environ['PATH']}"}
    installed = subprocess.run(
        [bash, "-c", "dockyard --install-completion; exit $?"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    assert "bash completion installed" in installed.stdout
    script = tmp_path / ".bash_completions" / "dockyard.sh"
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()

    # a new interactive shell reads ~/.bashrc; then Tab after `dockyard work-pool ` is asked
    # for what it offers
    offered = subprocess.run(
        [
            bash,
            "-i",
            "-c",
            'COMP_WORDS=(dockyard work-pool ""); COMP_CWORD=2; '
            '_dockyard_completion dockyard; printf "%s\\n" "${COMPREPLY[@]}"',
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert offered.returncode == 0, offered.stderr
    assert set(offered.stdout.split()) >= WORK_POOL_COMMANDS
