"""Reading a variable and a secret from a flow run: Dockyard beside Prefect, in one run.

    python bench/variables.py [dockyard] [prefect]     # default: both (Prefect if installed)

A local server holds one small variable; a flow, run in its own process as a script runs it
and tracked by that server, reads it with ``Variable.get`` 500 times in sequence, each call
timed from call to value. Prints the p50 and p99 per product and the ratio. Prefect is
measured on the same work when ``bench/.venv-prefect`` exists, under its own interpreter and
server. Figures are printed, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
from _common import DOCKYARD, Product, clean_env, measure_each, percentile, running_server

READS = 500
WARMUP = 20
TARGET_P50_MS = 3.0
NAME = "bench_config"
SECRET_NAME, SECRET_VALUE = SECRET = ("bench-token", "s3cr3t-bench-token")
VALUE = {"region": "eu-west", "retries": 3, "endpoints": ["a", "b", "c"], "debug": False}

# Each workload runs under its product's interpreter and prints one JSON line:
# {"seconds": [s, ...], "value": <the value read>, "secret_seconds": [...], "secret": <it>}.
WORKLOAD = """
import json, sys, time
from {module} import flow
from {module}.blocks.system import Secret
from {module}.variables import Variable

NAME, READS, WARMUP = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
SECRET_NAME, SECRET_VALUE = sys.argv[4], sys.argv[5]

def timed(read):
    for _ in range(WARMUP):
        read()
    seconds = []
    for _ in range(READS):
        start = time.perf_counter()
        value = read()
        seconds.append(time.perf_counter() - start)
    return seconds, value

@flow
def reads() -> dict:
    seconds, value = timed(lambda: Variable.get(NAME))
    Secret(value=SECRET_VALUE).save(SECRET_NAME, overwrite=True)
    secret_seconds, secret = timed(lambda: Secret.load(SECRET_NAME).get())
    return {{"seconds": seconds, "value": value, "secret_seconds": secret_seconds,
             "secret": secret}}

print(json.dumps(reads()))
"""


def create_variable(product: Product, api_url: str) -> None:
    with httpx.Client(base_url=api_url, timeout=30.0, trust_env=False) as http:
        if product is DOCKYARD:
            answer = http.post("/variables", json={"name": NAME, "value": VALUE})
        else:
            answer = http.post("/variables/", json={"name": NAME, "value": VALUE})
        answer.raise_for_status()


def measure(product: Product, work: Path) -> dict[str, Any]:
    """Start the product's server, make the variable, run the workload; return its figures."""
    home = work / f"{product.module}-home"
    with running_server(product, home) as server:
        create_variable(product, server.api_url)
        if product is DOCKYARD:
            env = clean_env(DOCKYARD_HOME=str(home), DOCKYARD_API_URL=server.api_url)
        else:
            env = clean_env(
                PREFECT_HOME=str(home),
                PREFECT_API_URL=server.api_url,
                PREFECT_SERVER_ANALYTICS_ENABLED="false",
            )
        script = work / f"reads_{product.module}.py"
        script.write_text(textwrap.dedent(WORKLOAD.format(module=product.module)))
        done = subprocess.run(
            [str(product.python), str(script), NAME, str(READS), str(WARMUP), *SECRET],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=600,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{product.name} workload failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(lines[-1])
    if figures["value"] != VALUE:
        raise RuntimeError(f"{product.name} read {figures['value']!r}, not {VALUE!r}")
    if figures["secret"] != SECRET_VALUE:
        raise RuntimeError(f"{product.name} read the secret as {figures['secret']!r}")
    return figures


def report(product: Product, figures: dict[str, Any]) -> None:
    print(f"{product.name}:")
    for label, key in (("Variable.get", "seconds"), ("Secret.load().get()", "secret_seconds")):
        seconds = figures[key]
        p50, p99 = percentile(seconds, 50) * 1e3, percentile(seconds, 99) * 1e3
        print(f"  {label:<20} p50 {p50:7.2f} ms", end="")
        print(f"  (target <= {TARGET_P50_MS:g} ms)" if product is DOCKYARD else "")
        print(f"  {label:<20} p99 {p99:7.2f} ms  ({len(seconds)} reads)")


def main() -> int:
    print(f"variables and secrets: a tracked flow reads each {READS} times in sequence")
    results = measure_each("dockyard-bench-variables-", measure, report)
    if "dockyard" in results and "prefect" in results:
        for label, key in (("variable", "seconds"), ("secret", "secret_seconds")):
            ours = percentile(results["dockyard"][key], 50)
            theirs = percentile(results["prefect"][key], 50)
            ratio = theirs / ours
            print(f"{label}: ratio prefect / dockyard at p50: {ratio:.1f}x (above 1: faster)")
    return 0 if "dockyard" in results else 1


if __name__ == "__main__":
    sys.exit(main())
