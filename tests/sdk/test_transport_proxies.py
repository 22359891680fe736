"""The lean transport goes through the proxies the environment names, as the HTTP client does.

A tiny proxy on 127.0.0.1 (``http_proxy.HttpProxy``) records what it relayed; the rules of
``NO_PROXY`` and friends are checked against the HTTP client's own choice.
"""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fake_http import FakeServer
from http_proxy import HttpProxy

from _support import RunningServer, require
from dockyard.exceptions import ServerUnreachable
from dockyard.schemas import DeploymentCreate, DeploymentRunCreate
from dockyard.sdk import transport
from dockyard.sdk.transport import LeanTransport, proxy_for

# every spelling of the proxy variables, cleared so that a test sets only its own
PROXY_VARIABLES = [
    f"{name}_{suffix}"
    for name in ("http", "https", "all", "no", "HTTP", "HTTPS", "ALL", "NO")
    for suffix in (("proxy",) if name.islower() else ("PROXY",))
]


@pytest.fixture
def proxy() -> Iterator[HttpProxy]:
    made = HttpProxy()
    yield made
    made.close()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setattr(transport, "BACKOFF", 0.0)
    server = FakeServer()
    yield server
    server.close()


def test_plain_http_goes_through_the_proxy_with_the_whole_url(
    fake: FakeServer, proxy: HttpProxy
) -> None:
    lean = LeanTransport(fake.url, "k3y", environ={"HTTP_PROXY": proxy.url})
    try:
        assert lean.post("/things", {"n": 1}) == {"ok": True}
        assert lean.get("/things", {"q": "x"}) == {"ok": True}
    finally:
        lean.close()
    assert [(r.method, r.target) for r in proxy.relayed] == [
        ("POST", f"{fake.url}/things"),
        ("GET", f"{fake.url}/things?q=x"),
    ]
    assert proxy.relayed[0].headers["host"] == fake.url.split("/")[2]
    assert [(r.path, r.body) for r in fake.requests] == [
        ("/api/things", {"n": 1}),
        ("/api/things?q=x", None),
    ]
    assert fake.requests[0].headers["authorization"] == "Bearer k3y"


def test_credentials_in_the_proxy_url_go_to_the_proxy_only(
    fake: FakeServer, proxy: HttpProxy
) -> None:
    with_user = proxy.url.replace("http://", "http://dock%40yard:s%3Acret@")
    lean = LeanTransport(fake.url, None, environ={"http_proxy": with_user})
    try:
        lean.get("/x")
    finally:
        lean.close()
    expected = "Basic " + base64.b64encode(b"dock@yard:s:cret").decode()
    assert proxy.relayed[0].headers["proxy-authorization"] == expected
    assert "proxy-authorization" not in fake.requests[0].headers


@pytest.mark.parametrize(
    "no_proxy", ["127.0.0.1", "*", "example.com, 127.0.0.1", "http://127.0.0.1"]
)
def test_no_proxy_sends_matching_hosts_direct(
    fake: FakeServer, proxy: HttpProxy, no_proxy: str
) -> None:
    lean = LeanTransport(fake.url, None, environ={"ALL_PROXY": proxy.url, "NO_PROXY": no_proxy})
    try:
        assert lean.get("/x") == {"ok": True}
    finally:
        lean.close()
    assert proxy.relayed == [] and len(fake.requests) == 1


def test_the_lower_case_variable_wins(fake: FakeServer, proxy: HttpProxy) -> None:
    environ = {"HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": proxy.url}
    lean = LeanTransport(fake.url, None, environ=environ)
    try:
        lean.get("/x")
    finally:
        lean.close()
    assert len(proxy.relayed) == 1


def _certificate(directory: Path) -> tuple[Path, Path]:
    require(shutil.which("openssl"), "openssl is not installed (it makes the test's certificate)")
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = (
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
    )
    subprocess.run(
        [*command.split(), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_https_goes_through_a_connect_tunnel(
    proxy: HttpProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = FakeServer(tls=context)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the test's certificate
    lean = LeanTransport(server.url, "k3y", environ={"HTTPS_PROXY": proxy.url})
    try:
        assert lean.post("/things", {"n": 1}) == {"ok": True}
        assert lean.post("/things", {"n": 2}) == {"ok": True}
    finally:
        lean.close()
        server.close()
    host_port = server.url.split("/")[2]
    # one tunnel, kept alive for both calls; the proxy saw no path and no API key
    assert [(r.method, r.target) for r in proxy.relayed] == [("CONNECT", host_port)]
    assert [(r.path, r.body) for r in server.requests] == [
        ("/api/things", {"n": 1}),
        ("/api/things", {"n": 2}),
    ]
    assert server.requests[0].headers["authorization"] == "Bearer k3y"


def test_a_proxy_the_transport_cannot_use_is_named_in_the_error(
    fake: FakeServer,
) -> None:
    lean = LeanTransport(fake.url, None, environ={"http_proxy": "socks5://127.0.0.1:1080"})
    with pytest.raises(ServerUnreachable, match="http:// proxies only"):
        lean.get("/x")
    assert fake.requests == []


CASES = [
    ({"HTTP_PROXY": "p1:3128"}, "http://example.com/api"),
    ({"HTTP_PROXY": "http://p1:3128"}, "https://example.com/api"),
    ({"HTTPS_PROXY": "http://p2:3128"}, "https://example.com/api"),
    ({"ALL_PROXY": "http://p3:3128", "HTTP_PROXY": "http://p1:1"}, "http://example.com/api"),
    ({"ALL_PROXY": "http://p3:3128"}, "https://example.com:8443/api"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": "example.com"}, "http://www.example.com/api"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": "example.com"}, "http://example.com/api"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": "example.com"}, "http://wwwexample.com/api"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": ".example.com"}, "http://example.com/api"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": ".example.com"}, "http://a.example.com/api"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": "Example.COM"}, "http://a.example.com/api"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": "example.com:8080"}, "http://example.com:8080/"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": "example.com:8080"}, "http://example.com/api"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": "10.1.2.3"}, "http://10.1.2.3:4200/api"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": "10.1.2.3"}, "http://10.1.2.4:4200/api"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": "::1"}, "http://[::1]:4200/api"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": "localhost"}, "http://localhost:4200/api"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": "http://h1"}, "https://h1/api"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": "http://h1"}, "http://h1/api"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": "a.com, *, b.com"}, "http://c.com/api"),
    ({"ALL_PROXY": "http://p3", "NO_PROXY": " "}, "http://c.com/api"),
    ({"http_proxy": "http://lower", "HTTP_PROXY": "http://upper"}, "http://c.com/api"),
    ({"http_proxy": "", "HTTP_PROXY": "http://upper"}, "http://c.com/api"),
    ({"no_proxy": "c.com", "NO_PROXY": "", "ALL_PROXY": "http://p3"}, "http://c.com/api"),
]


@pytest.mark.parametrize(("environ", "url"), CASES)
def test_the_rules_are_the_http_clients(
    environ: dict[str, str], url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [*PROXY_VARIABLES, "REQUEST_METHOD"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with httpx.Client() as client:
        pool = client._transport_for_url(httpx.URL(url))._pool  # type: ignore[attr-defined]
        theirs = getattr(pool, "_proxy_url", None)
    target = urlsplit(url)
    ours = proxy_for(target.scheme, str(target.hostname), target.port, environ)
    if theirs is None:
        assert ours is None
    else:
        assert ours is not None
        mine = urlsplit(ours if "://" in ours else f"http://{ours}")
        assert (mine.hostname, mine.port or 80) == (theirs.host.decode(), theirs.port or 80)


FLOW = """
from dockyard import flow

@flow
def proxied(n: int) -> int:
    return n * 2
"""


def _run_engine(server: RunningServer, tmp_path: Path, env: dict[str, str]) -> tuple[str, int]:
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOW))
    with server.client() as client:
        deployment = client.upsert_deployment(
            DeploymentCreate(
                flow_name="proxied", name="d", entrypoint="flows.py:proxied", path=str(tmp_path)
            )
        )
        run = client.create_deployment_run(deployment.id, DeploymentRunCreate(parameters={"n": 21}))
    base = {k: v for k, v in server.env.items() if k not in PROXY_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-m", "dockyard.engine", str(run.id)],
        env={**base, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    with server.client() as client:
        finished = client.read_flow_run(run.id)
    assert (finished.state, finished.result) == ("COMPLETED", 42)
    return str(run.id), done.returncode


def test_a_flow_run_reaches_the_server_through_the_proxy(
    server: RunningServer, proxy: HttpProxy, tmp_path: Path
) -> None:
    run_id, _ = _run_engine(server, tmp_path, {"http_proxy": proxy.url})
    relayed = [(r.method, r.target) for r in proxy.relayed]
    assert ("GET", f"{server.api_url}/version") in relayed
    assert ("POST", f"{server.api_url}/flow-runs/{run_id}/state") in relayed


def test_no_proxy_takes_a_flow_run_straight_to_the_server(
    server: RunningServer, proxy: HttpProxy, tmp_path: Path
) -> None:
    _run_engine(server, tmp_path, {"HTTP_PROXY": proxy.url, "NO_PROXY": "localhost,127.0.0.1"})
    assert proxy.relayed == []
