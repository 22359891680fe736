"""Secrets over the real API, on SQLite and PostgreSQL: stored encrypted under the server's
key, and shown in clear by one route only; the key file, shared by servers of one home."""

from __future__ import annotations

import asyncio
import json
import stat

from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from _support import RunningServer, ServerFactory

VALUE = "correct-horse-battery-staple-0042"


def _stored(database_url: str) -> list[tuple[str, str]]:
    """The secrets table as the database holds it."""

    async def read() -> list[tuple[str, str]]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(text("SELECT name, ciphertext FROM secrets"))
                return [(name, ciphertext) for name, ciphertext in rows]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_secret_lifecycle_never_shows_the_value(server: RunningServer) -> None:
    with server.http() as http:
        created = http.post("/secrets", json={"name": "db-password", "value": VALUE})
        assert created.status_code == 201, created.text
        secret = created.json()
        assert set(secret) == {"id", "name", "created", "updated"}
        again = http.post("/secrets", json={"name": "db-password", "value": "other"})
        assert again.status_code == 409
        assert "dockyard secret set db-password --overwrite" in again.json()["hint"]

        listed = http.get("/secrets")
        assert listed.status_code == 200 and listed.json() == [secret]
        assert http.get("/secrets/name/db-password").json() == secret
        shown = http.get("/secrets/name/db-password/value")
        assert shown.status_code == 200 and shown.json() == {**secret, "value": VALUE}

        replaced = http.put("/secrets/name/db-password", json={"value": {"user": "u", "pw": "p"}})
        assert replaced.status_code == 200 and "value" not in replaced.json()
        value = http.get("/secrets/name/db-password/value").json()["value"]
        assert value == {"user": "u", "pw": "p"}
        assert http.put("/secrets/name/fresh", json={"value": ["a"]}).status_code == 200

        answers = [listed.text, created.text, again.text, replaced.text]
        assert not any(VALUE in answer for answer in answers)

        assert http.delete("/secrets/name/db-password").status_code == 204
        gone = http.get("/secrets/name/db-password/value")
        assert gone.status_code == 404 and gone.json()["detail"] == "secret 'db-password' not found"
        assert http.delete("/secrets/name/db-password").status_code == 404
        assert [s["name"] for s in http.get("/secrets").json()] == ["fresh"]
    assert VALUE not in server.log()


def test_refused_values_are_not_echoed(server: RunningServer) -> None:
    with server.http() as http:
        for body in (
            {"name": "Bad Name", "value": VALUE},
            {"name": "ok", "value": 42},
            {"name": "ok", "value": VALUE + "\x00"},
            {"name": "ok", "value": VALUE * 10_000},
            {"name": "ok", "value": VALUE, "extra": 1},
        ):
            refused = http.post("/secrets", json=body)
            assert refused.status_code == 422, body
            assert VALUE not in refused.text and "42" not in refused.text
        put = http.put("/secrets/name/ok", json={"value": None})
        assert put.status_code == 422 and put.json()["field"] == "value"
        assert http.get("/secrets").json() == []
    assert VALUE not in server.log()


def test_stored_encrypted_under_the_key_file(server: RunningServer) -> None:
    with server.http() as http:
        assert http.post("/secrets", json={"name": "token", "value": VALUE}).status_code == 201
    [(name, ciphertext)] = _stored(server.database_url)
    assert name == "token" and VALUE not in ciphertext

    key_file = server.home / "encryption.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes().strip()
    assert json.loads(Fernet(key).decrypt(ciphertext.encode())) == VALUE
    assert not [p.name for p in server.home.iterdir() if p.name.startswith(".encryption")]


def test_a_second_server_of_the_home_reads_the_same_key(
    server: RunningServer, server_factory: ServerFactory
) -> None:
    with server.http() as http:
        assert http.post("/secrets", json={"name": "token", "value": VALUE}).status_code == 201
    key = (server.home / "encryption.key").read_text()
    second = server_factory(DOCKYARD_HOME=str(server.home))
    with second.http() as http:
        assert http.get("/secrets/name/token/value").json()["value"] == VALUE
    assert (server.home / "encryption.key").read_text() == key


def test_the_key_setting_is_used_and_a_wrong_one_fails_clearly(
    server_factory: ServerFactory,
) -> None:
    first_key, other_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = server_factory(DOCKYARD_SERVER_ENCRYPTION_KEY=first_key)
    with first.http() as http:
        assert http.post("/secrets", json={"name": "token", "value": VALUE}).status_code == 201
    assert not (first.home / "encryption.key").exists()
    [(_, ciphertext)] = _stored(first.database_url)
    assert json.loads(Fernet(first_key).decrypt(ciphertext.encode())) == VALUE

    second = server_factory(DOCKYARD_SERVER_ENCRYPTION_KEY=other_key)
    with second.http() as http:
        refused = http.get("/secrets/name/token/value")
        assert refused.status_code == 409
        assert "another encryption key" in refused.json()["detail"]
        assert "DOCKYARD_SERVER_ENCRYPTION_KEY" in refused.json()["hint"]
        assert http.get("/secrets").status_code == 200  # names stay readable

    bad = server_factory(DOCKYARD_SERVER_ENCRYPTION_KEY="not-a-key", wait=False)
    assert bad.process.wait(timeout=30) != 0
    lines = [line for line in bad.log().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "DOCKYARD_SERVER_ENCRYPTION_KEY is not a Fernet key" in lines[0]
    assert "not-a-key" not in lines[0]


def test_a_bad_key_file_fails_at_start(server_factory: ServerFactory, tmp_path) -> None:
    home = tmp_path / "home-with-bad-key"
    home.mkdir()
    (home / "encryption.key").write_text("garbage\n")
    bad = server_factory(DOCKYARD_HOME=str(home), wait=False)
    assert bad.process.wait(timeout=30) != 0
    assert "encryption.key is not a Fernet key" in bad.log()
    assert "Traceback" not in bad.log()
