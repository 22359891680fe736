"""A throwaway PostgreSQL cluster on a free loopback port, made with the system's binaries.

``initdb`` refuses to run as root, so as root every server command runs as the ``postgres``
user (``runuser``) in a directory that user owns; as anyone else it runs as that user.
The cluster trades durability for speed (no fsync): its data lives only as long as the tests.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from _support.require import require
from _support.servers import free_port

INSTALL_HINT = "PostgreSQL binaries not found: apt-get install postgresql"

_SERVER_OPTIONS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
)


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding ``initdb``, or one on PATH."""
    candidates = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1]
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


@dataclass
class PostgresCluster:
    """A running cluster; :meth:`new_database` hands out a fresh empty database per call."""

    bindir: Path
    base: Path
    port: int
    run_as: list[str]
    host: str = "127.0.0.1"
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def sockdir(self) -> Path:
        return self.base / "sock"

    @property
    def logfile(self) -> Path:
        return self.base / "server.log"

    def new_database(self) -> str:
        """Create an empty database and return its SQLAlchemy URL (asyncpg driver)."""
        name = f"dockyard_{os.getpid()}_{next(self._names)}"
        self._run("createdb", "-h", str(self.sockdir), "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql+asyncpg://postgres@{self.host}:{self.port}/{name}"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.run_as, str(self.bindir / program), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.base,
        )


def _owner() -> tuple[list[str], int, int] | None:
    """The command prefix that runs a program as the cluster's owner, and that owner's ids."""
    if os.geteuid() != 0:
        return [], os.getuid(), os.getgid()
    runuser = shutil.which("runuser")
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        return None
    return ([runuser, "-u", "postgres", "--"], user.pw_uid, user.pw_gid) if runuser else None


def start_postgres_cluster(
    host: str = "127.0.0.1", prefix: tuple[str, ...] = ()
) -> PostgresCluster:
    """Initialise and start a cluster; skips (by hand) or fails (CI) when PostgreSQL is absent.

    It listens on ``host``; ``prefix`` runs its commands elsewhere (``ip netns exec NS``, for
    a database on a host of the test's own)."""
    bindir = find_bindir()
    owner = _owner()
    require(bindir is not None and owner is not None, INSTALL_HINT)
    assert bindir is not None and owner is not None
    run_as, uid, gid = owner
    # Not under pytest's tmp dirs: those are private to the current user, and the socket path
    # must stay short (about 100 bytes at most).
    base = Path(tempfile.mkdtemp(prefix="dockyard-pg-", dir="/tmp" if run_as else None))
    os.chown(base, uid, gid)
    cluster = PostgresCluster(
        bindir=bindir, base=base, port=0, run_as=[*prefix, *run_as], host=host
    )
    try:
        cluster._run(
            "initdb",
            "-D",
            str(cluster.datadir),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        _make_owned_dir(cluster.sockdir, uid, gid)
        if host != "127.0.0.1":  # clients on the other end of its own link get in too
            with (cluster.datadir / "pg_hba.conf").open("a") as hba:
                hba.write("host all all samenet trust\n")
        _start(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _make_owned_dir(path: Path, uid: int, gid: int) -> None:
    path.mkdir(mode=0o700)
    os.chown(path, uid, gid)


def _start(cluster: PostgresCluster, attempts: int = 3) -> None:
    """Start on a free port, trying another when a port is taken between choosing and binding."""
    error: subprocess.CalledProcessError | None = None
    for _ in range(attempts):
        cluster.port = free_port()
        options = (
            f"-k {cluster.sockdir} -p {cluster.port} -c listen_addresses={cluster.host} "
            f"{_SERVER_OPTIONS}"
        )
        try:
            cluster._run(
                "pg_ctl",
                "-D",
                str(cluster.datadir),
                "-l",
                str(cluster.logfile),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            )
            return
        except subprocess.CalledProcessError as exc:
            error = exc
    raise RuntimeError(
        f"PostgreSQL did not start: {error and (error.stderr or error.stdout)}\n"
        f"{cluster.log_tail()}"
    )
