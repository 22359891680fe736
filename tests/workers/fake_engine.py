"""A stand-in for ``python -m dockyard.engine`` that tests start as a job's ``command``.

It follows the launch contract a real engine relies on: the run's id, lease token and API
URL come from the environment; it moves its run PENDING → RUNNING → COMPLETED through the
API, presenting the lease token. Standard library only, so it starts in a few milliseconds.

    python fake_engine.py [--launched FILE] [--append FILE] [--dump FILE]
                          [--delay-start S] [--no-start] [--sleep S] [--exit N] [--ignore-term]
                          [--hand-over STATE [--result JSON] [--token TOKEN]]

``--hand-over`` ends like an engine that could not reach the server: it writes the final
state as the line the worker reads (with the run's lease token, or ``--token``) and exits
with status 3 without reporting it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request

# the line an engine hands its final state over with (dockyard.sdk.engine.hand_over)
MARKER = "::dockyard-final-state::"


def post_state(state: str) -> None:
    url = f"{os.environ['DOCKYARD_API_URL']}/flow-runs/{os.environ['DOCKYARD_FLOW_RUN_ID']}/state"
    body = {"state": state, "lease_token": os.environ["DOCKYARD_LEASE_TOKEN"]}
    headers = {"Content-Type": "application/json"}
    if os.environ.get("DOCKYARD_API_KEY"):
        headers["Authorization"] = f"Bearer {os.environ['DOCKYARD_API_KEY']}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        print(f"fake engine: {state} refused: {exc.code} {exc.read()!r}", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--launched")  # gets the run's id at once
    parser.add_argument("--append")  # gets the run's id once it is RUNNING
    parser.add_argument("--dump")
    parser.add_argument("--delay-start", type=float, default=0.0)
    parser.add_argument("--no-start", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--exit", type=int)
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--hand-over")
    parser.add_argument("--result", default="null")
    parser.add_argument("--token")
    args = parser.parse_args()
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    run_id = os.environ["DOCKYARD_FLOW_RUN_ID"]
    print(f"fake engine {run_id} started", flush=True)
    if args.launched:
        with open(args.launched, "a") as file:
            file.write(run_id + "\n")
    if args.dump:
        seen = {"argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ), "pid": os.getpid()}
        with open(args.dump, "w") as file:
            json.dump(seen, file)
    time.sleep(args.delay_start)
    if not args.no_start:
        post_state("RUNNING")
    if args.append:
        with open(args.append, "a") as file:
            file.write(run_id + "\n")
    time.sleep(args.sleep)
    if args.exit is not None:
        print("fake crash trace: RuntimeError: boom", file=sys.stderr)
        sys.exit(args.exit)
    if args.hand_over:
        hand_over(args.hand_over, json.loads(args.result), args.token)
        sys.exit(3)
    post_state("COMPLETED")


def hand_over(state: str, result: object, token: str | None) -> None:
    record = {
        "flow_run_id": os.environ["DOCKYARD_FLOW_RUN_ID"],
        "state": state,
        "message": None,
        "result": result,
        "lease_token": token or os.environ["DOCKYARD_LEASE_TOKEN"],
    }
    print("a line without its newline", end="", file=sys.stderr, flush=True)
    print(f"\n{MARKER}{json.dumps(record)}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
