"""What the deploy tests share: flow files, scripts, workers, git repositories, waiting."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from _support import CLI_COMMAND, RunningServer, wait_until

STOP_TIMEOUT = 20.0

FLOWS = """\
import os
import sys
import time

from dockyard import flow


@flow(log_prints=True)
def get_repo_info(repo_name: str = "PrefectHQ/prefect", stars: int = 0) -> str:
    \"\"\"Look at a repository.

    Args:
        repo_name: owner/name of the repository.
        stars: how many stars to report.
    \"\"\"
    print(f"{repo_name} has {stars} stars")
    return repo_name


@flow(log_prints=True)
def slow(seconds: float = 60.0) -> None:
    print("sleeping")
    time.sleep(seconds)
    print("woke up")


@flow
def failing() -> None:
    raise RuntimeError("this flow fails")


@flow(log_prints=True)
def crash_once(marker: str) -> str:
    if not os.path.exists(marker):
        open(marker, "w").close()
        print("crashing")
        sys.stdout.flush()
        os._exit(3)
    return "second attempt"
"""


def write(path: Path, text: str) -> Path:
    """Write ``text`` (dedented) to ``path`` and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def run_python(
    script: Path | str,
    env: Mapping[str, str],
    *args: str,
    cwd: Path | None = None,
    check: bool = True,
    timeout: float = 90.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``python SCRIPT ARGS`` (SCRIPT: a path, or code when it has a newline)."""
    head = ["-c", script] if isinstance(script, str) and "\n" in script else [str(script)]
    done = subprocess.run(
        [sys.executable, *head, *args],
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        pytest.fail(
            f"python {head[-1][:60]!r} exited with {done.returncode}\n--- stdout\n"
            f"{done.stdout}\n--- stderr\n{done.stderr}",
            pytrace=False,
        )
    return done


def run_engine(
    env: Mapping[str, str], run_id: uuid.UUID, cwd: Path, timeout: float = 90.0
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dockyard.engine RUN_ID`` to its end."""
    return subprocess.run(
        [sys.executable, "-m", "dockyard.engine", str(run_id)],
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def state_of(server: RunningServer, run_id: uuid.UUID) -> str:
    with server.client() as client:
        return str(client.read_flow_run(run_id).state)


def log_messages(server: RunningServer, run_id: uuid.UUID) -> list[str]:
    with server.client() as client:
        return [log.message for log in client.read_logs(flow_run_id=run_id)]


def stop(process: subprocess.Popen[Any], sig: int = signal.SIGINT) -> int:
    """Send ``sig`` and wait for the process; kill it if it does not stop in time."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"process {process.args!r} did not stop within {STOP_TIMEOUT} s")
    return int(process.returncode)


class Workers:
    """``dockyard worker start`` processes for one test, Ctrl-C'd when it ends."""

    def __init__(self, server: RunningServer, base: Path) -> None:
        self.server = server
        self.base = base
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, pool: str, *args: str) -> subprocess.Popen[bytes]:
        """Start a worker on ``pool`` (made a process pool if missing); return its process."""
        self.base.mkdir(parents=True, exist_ok=True)
        log = self.base / f"worker-{len(self.started)}.log"
        command = [*CLI_COMMAND, "worker", "start", "--pool", pool, "--type", "process", *args]
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                env=self.server.env,
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.started.append(process)
        wait_until(lambda: self._ready(pool), 30, f"work pool {pool!r} to be READY")
        return process

    def _ready(self, pool: str) -> bool:
        with self.server.client() as client:
            return str(client.read_work_pool(pool).status) == "READY"

    def close(self) -> None:
        for process in self.started:
            with contextlib.suppress(Exception):
                stop(process)


def bare_repository(git: str, base: Path, files: Mapping[str, str]) -> tuple[Path, Path]:
    """A bare git repository (``base/repo.git``) with one commit holding ``files``.

    Returns the bare repository and the working copy that pushed to it.
    """
    bare, work = base / "repo.git", base / "work"
    _git(git, "init", "--quiet", "--bare", "--initial-branch", "main", str(bare))
    _git(git, "init", "--quiet", "--initial-branch", "main", str(work))
    commit(git, work, files, "first")
    _git(git, "-C", str(work), "remote", "add", "origin", str(bare))
    _git(git, "-C", str(work), "push", "--quiet", "origin", "main")
    return bare, work


def commit(git: str, work: Path, files: Mapping[str, str], message: str) -> str:
    """Commit ``files`` in the working copy ``work``; return the commit's id."""
    for name, text in files.items():
        write(work / name, text)
    _git(git, "-C", str(work), "add", "--all")
    _git(
        git,
        "-C",
        str(work),
        "-c",
        "user.name=Test",
        "-c",
        "user.email=test@example.com",
        "commit",
        "--quiet",
        "-m",
        message,
    )
    return _git(git, "-C", str(work), "rev-parse", "HEAD").strip()


def _git(git: str, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": os.environ.get("HOME", "/tmp")}
    done = subprocess.run([git, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout
