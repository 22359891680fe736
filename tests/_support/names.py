"""Names for property tests: the strategies, and a snapshot of what a name must never reach."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from _support.servers import RunningServer
from dockyard._names import path_segment

# characters that mean something in a URL, a shell, a terminal or a database, and some that
# mean nothing anywhere
SPECIAL = "./\\%?#&=;:@+$,!*'\"()[]{}<>|`~^ -_\t\n\x00\x1b\x7f\x85\xa0\u2028\u3000\ufeff"
PLAIN = "aZ9üß中\U0001f600"
# whole names that once reached other resources, or look like they could
KNOWN = ["..", ".", "...", "%2e%2e", "%2E%2E", ".%2e", "..;", "..\\", "../P", "-x", "--help"]

NAMES = st.one_of(
    st.sampled_from(KNOWN),
    st.text(alphabet=st.sampled_from(SPECIAL + PLAIN), min_size=1, max_size=8),
    # anything Unicode has but lone surrogates (tests/test_names.py checks those)
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12),
)

# Bounded and reproducible: the same examples on every run and in CI, none kept on disk, and
# no deadline (a request to a real server on a shared machine takes what it takes). A test
# sets its own bound: ``@settings(BOUNDED, max_examples=40)``.
BOUNDED = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def snapshot(server: RunningServer) -> dict[str, Any]:
    """Every pool, queue, deployment and worker on ``server``: what a name must never touch.

    Without what changes by itself as time passes (a pool's status, a worker's last beat):
    a pause shows in ``paused``.
    """
    with server.http() as http:
        pools = [_steady(p) for p in http.get("/work-pools").json()]
        found: dict[str, Any] = {"pools": pools, "queues": {}, "workers": {}}
        for pool in pools:
            at = f"/work-pools/{path_segment(pool['name'])}"
            found["queues"][pool["name"]] = http.get(f"{at}/queues").json()
            found["workers"][pool["name"]] = [_steady(w) for w in http.get(f"{at}/workers").json()]
        found["deployments"] = http.get("/deployments").json()
        return found


def _steady(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("status", "last_polled", "last_heartbeat")}
