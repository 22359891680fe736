"""What the benchmarks share: the two products measured, their servers, and small statistics.

Prefect is measured only when ``bench/.venv-prefect`` exists (``make bench`` installs it).
Servers listen on 127.0.0.1 only, on free ports, with temporary homes, and are stopped by
their context managers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PREFECT_VENV = ROOT / "bench" / ".venv-prefect"
PREFECT_VERSION = "3.9.1"
HEALTH_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without either product's settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKYARD_", "PREFECT_"))}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


# ---------------------------------------------------------------- the products


@dataclass(frozen=True)
class Product:
    """One orchestrator as the benchmarks see it: its interpreter, command and REST API."""

    name: str
    python: Path
    module: str

    @property
    def cli(self) -> list[str]:
        return [str(self.python.parent / self.module)]

    def server_command(self, port: int) -> list[str]:
        return [*self.cli, "server", "start", "--host", "127.0.0.1", "--port", str(port)]

    def server_env(self, home: Path) -> dict[str, str]:
        raise NotImplementedError

    def prepare(self, http: httpx.Client) -> dict[str, Any]:
        """Create what runs need before they can be created; return it as a context."""
        return {}

    def create_request(self, context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The path (under ``/api``) and JSON body that create one flow run."""
        raise NotImplementedError

    def read_path(self, run_id: str) -> str:
        raise NotImplementedError

    def count_runs(self, http: httpx.Client, context: dict[str, Any]) -> int:
        raise NotImplementedError


class Dockyard(Product):
    def server_env(self, home: Path) -> dict[str, str]:
        return clean_env(DOCKYARD_HOME=str(home))

    def create_request(self, context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "/flow-runs", {"flow_name": "bench", "state": "SCHEDULED"}

    def read_path(self, run_id: str) -> str:
        return f"/flow-runs/{run_id}"

    def count_runs(self, http: httpx.Client, context: dict[str, Any]) -> int:
        answer = http.get("/flow-runs", params={"flow_name": "bench", "limit": 1000})
        return len(answer.raise_for_status().json())


class Prefect(Product):
    def server_env(self, home: Path) -> dict[str, str]:
        # no network here: telemetry would only log failures
        return clean_env(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")

    def prepare(self, http: httpx.Client) -> dict[str, Any]:
        flow = http.post("/flows/", json={"name": "bench"}).raise_for_status().json()
        return {"flow_id": flow["id"]}

    def create_request(self, context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "/flow_runs/", {"flow_id": context["flow_id"]}

    def read_path(self, run_id: str) -> str:
        return f"/flow_runs/{run_id}"

    def count_runs(self, http: httpx.Client, context: dict[str, Any]) -> int:
        body = {"flows": {"id": {"any_": [context["flow_id"]]}}}
        return int(http.post("/flow_runs/count", json=body).raise_for_status().json())


DOCKYARD = Dockyard(name="dockyard", python=Path(sys.executable), module="dockyard")
PREFECT = Prefect(
    name=f"prefect {PREFECT_VERSION}", python=PREFECT_VENV / "bin" / "python", module="prefect"
)


def products(names: list[str] | None = None) -> list[Product]:
    """Dockyard, and Prefect when its bench environment exists; ``names`` (default: the
    command's arguments), ``dockyard`` or ``prefect``, pick some of them."""
    wanted = set(sys.argv[1:] if names is None else names)
    found: list[Product] = []
    if not wanted or DOCKYARD.module in wanted:
        found.append(DOCKYARD)
    if wanted and PREFECT.module not in wanted:
        return found
    if PREFECT.python.exists():
        found.append(PREFECT)
    else:
        print(f"{PREFECT_VENV} not found: Prefect figures are skipped (`make bench` makes it)")
    return found


def measure_each(
    prefix: str,
    measure: Callable[[Product, Path], dict[str, Any]],
    report: Callable[[Product, dict[str, Any]], None],
) -> dict[str, dict[str, Any]]:
    """Measure each product of :func:`products` in one temporary directory (named ``prefix``...)
    and report it; a product whose measurement fails is said so and left out. Returns the
    figures by product module (``"dockyard"``, ``"prefect"``)."""
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        for product in products():
            try:
                results[product.module] = measure(product, Path(tmp))
            except Exception as exc:
                print(f"{product.name}: failed: {exc}")
                continue
            report(product, results[product.module])
    return results


# ---------------------------------------------------------------- servers


class Server:
    """A server process (in its own session, so that any children stop with it)."""

    def __init__(self, product: Product, home: Path, env: dict[str, str] | None = None) -> None:
        self.product = product
        self.home = home
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        home.mkdir(parents=True, exist_ok=True)
        self.log_path = home / "server.log"
        self.started = time.perf_counter()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                product.server_command(self.port),
                env={**product.server_env(home), **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=home,
                start_new_session=True,
            )

    def wait_healthy(self) -> float:
        """Seconds from launch until ``/api/health`` answered 200."""
        deadline = self.started + HEALTH_TIMEOUT
        with httpx.Client(timeout=2.0, trust_env=False) as http:
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.product.name} server exited:\n{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if http.get(f"{self.api_url}/health").status_code == 200:
                        return time.perf_counter() - self.started
                time.sleep(0.01)
        raise RuntimeError(f"{self.product.name} server not healthy in time:\n{self.log_tail()}")

    def rss_mib(self) -> float:
        """Resident memory of the server and all its descendants, in MiB."""
        return sum(_rss_kib(pid) for pid in _process_tree(self.process.pid)) / 1024

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server and its descendants used so far."""
        return sum(_cpu_ticks(pid) for pid in _process_tree(self.process.pid)) / _TICKS

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def running_server(
    product: Product, home: Path, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """A healthy server (``env`` added to its environment), stopped when the block ends."""
    server = Server(product, home, env)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


def _process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # the command name in field 2 may hold spaces: read the fields after its ')'
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------- PostgreSQL, throwaway


class PostgresMissing(Exception):
    """Raised when no throwaway PostgreSQL cluster can be made here (the reason says why)."""


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Any]:
    """The test suite's throwaway cluster (tests/_support/postgres.py: the system's binaries,
    owned by the ``postgres`` user when run as root, on a free loopback port); its
    ``new_database()`` hands out empty databases. Stopped and removed when the block ends.

    Raises:
        PostgresMissing: no PostgreSQL binaries (``apt-get install postgresql``) or no user
            to run them as.
    """
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    from _support.postgres import start_postgres_cluster

    try:
        cluster = start_postgres_cluster()
    except BaseException as exc:
        # outside pytest, a missing part still raises pytest's skip (or, with CI=true, fail)
        if type(exc).__module__.startswith("_pytest"):
            raise PostgresMissing(str(exc)) from None
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


async def pg_fetch(url: str, sql: str) -> list[Any]:
    """Rows of one query on the database of SQLAlchemy ``url`` (asyncpg driver)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def raise_open_files_limit() -> int:
    """Raise this process's (and so its children's) open-files limit to the hard limit:
    a fleet of clients holds a socket each. Returns the limit now in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
