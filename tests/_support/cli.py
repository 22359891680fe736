"""The real ``dockyard`` command, run as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

# Every test runs the CLI of the code under test, with the interpreter running the tests.
CLI_COMMAND: tuple[str, ...] = (sys.executable, "-m", "dockyard.cli.main")


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    check: bool | int = True,
    timeout: float = 60.0,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``dockyard *args`` and return the finished process (text output).

    Args:
        env: the whole environment (``RunningServer.env`` points it at a server); defaults to
            the test process's own, which the test session keeps free of the user's settings.
        input: text for standard input; without it standard input is empty.
        check: ``True`` fails the test unless the command succeeds, an ``int`` fails it unless
            the command exits with that status, ``False`` accepts any status.
    """
    full_env = dict(os.environ if env is None else env)
    # wide enough that tables do not wrap names the tests look for
    full_env.setdefault("COLUMNS", "200")
    command = [*CLI_COMMAND, *args]
    try:
        result = subprocess.run(
            command,
            env=full_env,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"`dockyard {' '.join(args)}` still running after {timeout} s\n"
            f"--- stdout\n{_text(exc.stdout)}\n--- stderr\n{_text(exc.stderr)}",
            pytrace=False,
        )
    expected = 0 if check is True else None if check is False else int(check)
    if expected is not None and result.returncode != expected:
        pytest.fail(describe(result, f"expected exit status {expected}"), pytrace=False)
    return result


def describe(result: subprocess.CompletedProcess[str], problem: str = "") -> str:
    """A readable account of a finished command, for failure messages."""
    args = " ".join(str(a) for a in result.args[len(CLI_COMMAND) :])
    head = f"`dockyard {args}` exited with status {result.returncode}"
    return (
        f"{head}{'; ' + problem if problem else ''}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def assert_clean_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """The command failed with exit status 1 and a readable message naming ``words``."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: "), result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
