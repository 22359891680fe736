"""A stand-in for ``python -m dockyard.engine`` that tests start as a job's ``command``.

It follows the launch contract a real engine relies on: the run's id, lease token and API
URL come from the environment; it moves its run PENDING → RUNNING → COMPLETED through the
API, presenting the lease token. Standard library only, so it starts in a few milliseconds.

    python fake_engine.py [--launched FILE] [--append FILE] [--dump FILE]
                          [--delay-start S] [--no-start] [--sleep S] [--exit N] [--ignore-term]
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
    post_state("COMPLETED")


if __name__ == "__main__":
    main()
