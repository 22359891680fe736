"""Startup, memory and single-request latency: Dockyard beside Prefect, measured in one run.

    python bench/startup.py [dockyard] [prefect]     # default: both (Prefect if installed)

Prints a table of figures, Dockyard's targets, and the ratio Prefect / Dockyard (above 1
means Dockyard is faster or smaller). Figures are printed, never asserted.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _common import Product, Server, median, percentile, products

IMPORT_RUNS = 11
HELP_RUNS = 10
SERVER_STARTS = 3
REQUESTS = 200
WARMUP_REQUESTS = 20
BUSY_RETRIES = 10


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    target: float | None = None  # Dockyard's: at most this


METRICS = [
    Metric("import", "import (median of 11)", "ms", 60),
    Metric("help", "--help (median of 10)", "ms", 200),
    Metric("healthy_new", "server healthy, new database", "ms", 1500),
    Metric("healthy_existing", "server healthy, existing database", "ms", 1000),
    Metric("rss", "server RSS after start", "MiB", 100),
    Metric("rss_after", "server RSS after 400 requests", "MiB"),
    Metric("create_p50", "create one flow run, p50", "ms", 5),
    Metric("create_p99", "create one flow run, p99", "ms"),
    Metric("read_p50", "read one flow run, p50", "ms", 2),
    Metric("read_p99", "read one flow run, p99", "ms"),
    Metric("busy_retries", "requests retried after a 503", "n"),
]


@dataclass
class Figures:
    product: Product
    values: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def measure(self, step: Callable[[Product, dict[str, float]], None]) -> None:
        """Run one step; the figures it recorded before failing are kept."""
        try:
            step(self.product, self.values)
        except Exception:
            self.errors.append(traceback.format_exc())
            print(f"  {self.product.name}: {step.__name__} failed", file=sys.stderr)


def measure_import(product: Product, values: dict[str, float]) -> None:
    """Time ``import X`` inside fresh interpreters (the interpreter's own start not counted)."""
    code = (
        "import time; t = time.perf_counter(); "
        f"import {product.module}; print(time.perf_counter() - t)"
    )
    command = [str(product.python), "-c", code]
    subprocess.run(command, check=True, capture_output=True)  # warm the bytecode caches
    times = [
        float(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        for _ in range(IMPORT_RUNS)
    ]
    values["import"] = median(times) * 1000


def measure_help(product: Product, values: dict[str, float]) -> None:
    """Wall time of the whole ``X --help`` command, as a user waits for it."""
    command = [*product.cli, "--help"]
    subprocess.run(command, check=True, capture_output=True)
    times = []
    for _ in range(HELP_RUNS):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    values["help"] = median(times) * 1000


def measure_server(product: Product, values: dict[str, float]) -> None:
    """Start on new databases, then again on the last one; then request latency."""
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-") as tmp:
        new, rss = [], []
        home = Path(tmp)
        for i in range(SERVER_STARTS):
            home = Path(tmp) / f"new-{i}"
            server = Server(product, home)
            try:
                new.append(server.wait_healthy())
                rss.append(server.rss_mib())
            finally:
                server.stop()
        values["healthy_new"] = median(new) * 1000
        values["rss"] = median(rss)
        existing = []
        for i in range(SERVER_STARTS):
            server = Server(product, home)
            try:
                existing.append(server.wait_healthy())
                if i == SERVER_STARTS - 1:
                    values["healthy_existing"] = median(existing) * 1000
                    measure_latency(product, server, values)
                    values["rss_after"] = server.rss_mib()
            finally:
                server.stop()


def measure_latency(product: Product, server: Server, values: dict[str, float]) -> None:
    """Client-side latency over one kept-alive connection.

    A 503 ("busy, try again") is retried after a short, growing pause, as a product's own
    client would, and the retries count in the request's time.
    """
    with httpx.Client(base_url=server.api_url, timeout=30.0, trust_env=False) as http:
        context = product.prepare(http)
        path, body = product.create_request(context)
        retries = 0

        def call(method: str, url: str, **kwargs: Any) -> tuple[float, httpx.Response]:
            nonlocal retries
            started = time.perf_counter()
            answer = http.request(method, url, **kwargs)
            for attempt in range(BUSY_RETRIES):
                if answer.status_code != 503:
                    break
                retries += 1
                time.sleep(min(0.01 * 2**attempt, 1.0))
                answer = http.request(method, url, **kwargs)
            return time.perf_counter() - started, answer.raise_for_status()

        for _ in range(WARMUP_REQUESTS):
            call("POST", path, json=body)
        created, ids = [], []
        for _ in range(REQUESTS):
            seconds, answer = call("POST", path, json=body)
            created.append(seconds)
            ids.append(answer.json()["id"])
        values["create_p50"] = percentile(created, 50) * 1000
        values["create_p99"] = percentile(created, 99) * 1000
        read = [call("GET", product.read_path(run_id))[0] for run_id in ids]
        values["read_p50"] = percentile(read, 50) * 1000
        values["read_p99"] = percentile(read, 99) * 1000
        values["busy_retries"] = retries


def print_table(dockyard: Figures, others: list[Figures]) -> None:
    header = f"{'metric':<36} {'unit':>4} {'dockyard':>10} {'target':>8}      "
    for other in others:
        header += f"{other.product.name:>15} {'ratio':>7}"
    print()
    print(header)
    print("-" * len(header))
    for metric in METRICS:
        ours = dockyard.values.get(metric.key)
        line = f"{metric.label:<36} {metric.unit:>4} {_number(ours, metric.unit):>10} "
        if metric.target is None:
            line += " " * 14
        else:
            verdict = "n/a " if ours is None else "ok  " if ours <= metric.target else "MISS"
            line += f"{'<= ' + format(metric.target, 'g'):>8} {verdict} "
        for other in others:
            theirs = other.values.get(metric.key)
            ratio = f"{theirs / ours:.1f}x" if theirs and ours else "n/a"
            line += f"{_number(theirs, metric.unit):>15} {ratio:>7}"
        print(line)
    if others:
        print()
        print("ratio = other / dockyard: above 1 means Dockyard is faster or smaller.")


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "n":
        return str(int(value))
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def main() -> int:
    all_figures = []
    for product in products():
        print(f"measuring {product.name} ...", flush=True)
        figures = Figures(product)
        for step in (measure_import, measure_help, measure_server):
            figures.measure(step)
        all_figures.append(figures)
    dockyard, *others = all_figures
    print_table(dockyard, others)
    for figures in all_figures:
        for error in figures.errors:
            print(f"\n{figures.product.name}: a measurement failed:\n{error}", file=sys.stderr)
    # Dockyard's own failures are bugs; the reference's only cost its column.
    return 1 if dockyard.errors else 0


if __name__ == "__main__":
    sys.exit(main())
