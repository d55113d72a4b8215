"""API keys: stored as hashes only, scopes, revocation, rotation, CLI."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from sentinelle.cli.main import app
from sentinelle.service.keys import (
    KeyError_,
    KeyVerifier,
    api_keys,
    create_key,
    list_keys,
    parse_token,
    revoke_key,
    rotate_key,
    verify_token,
)
from sentinelle.store.db import open_engine


def test_keys_are_stored_as_hashes_only(db_url: str) -> None:
    eng = open_engine(db_url)
    rec, token = create_key(eng, "platform upload path", ["scan", "curate"], rate_limit=50)
    kid, secret = parse_token(token)  # type: ignore[misc]
    assert kid == rec.id and len(secret) == 43 and token.startswith(f"snt_{rec.id}_")
    with eng.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.id == rec.id)).one()
    assert secret not in str(tuple(row)) and token not in str(tuple(row))
    assert rec.scopes == {"scan", "curate"} and rec.rate_limit == 50
    assert verify_token(eng, token) == rec
    assert verify_token(eng, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert verify_token(eng, "snt_12345_" + secret) is None
    assert verify_token(eng, "") is None and verify_token(eng, "Bearer x") is None
    eng.dispose()


def test_revoke_and_rotate(db_url: str) -> None:
    eng = open_engine(db_url)
    rec, token = create_key(eng, "k", ["scan"])
    new, new_token = rotate_key(eng, rec.id)
    assert new.id != rec.id and new.name == "k" and new.scopes == rec.scopes
    assert verify_token(eng, token) is None and verify_token(eng, new_token) is not None
    old = [k for k in list_keys(eng) if k.id == rec.id][0]
    assert old.revoked_at is not None and old.replaced_by == new.id
    with pytest.raises(KeyError_):
        rotate_key(eng, rec.id)  # already revoked
    revoke_key(eng, new.id)
    revoke_key(eng, new.id)  # idempotent
    assert verify_token(eng, new_token) is None
    assert [k.id for k in list_keys(eng, include_revoked=False)] == []
    with pytest.raises(KeyError_):
        revoke_key(eng, 987654)
    eng.dispose()


def test_key_validation(sqlite_url: str) -> None:
    eng = open_engine(sqlite_url)
    for name, scopes, rate in (
        ("", ["scan"], None),
        ("x", ["root"], None),
        ("x", [], None),
        ("bad\nname", ["scan"], None),
        ("x", ["scan"], -1.0),
        ("x", ["scan"], float("nan")),
    ):
        with pytest.raises(KeyError_):
            create_key(eng, name, scopes, rate)
    assert list_keys(eng) == []
    eng.dispose()


def test_verifier_cache_never_admits_a_wrong_secret(sqlite_url: str) -> None:
    eng = open_engine(sqlite_url)
    rec, token = create_key(eng, "k", ["scan"])
    v = KeyVerifier(eng, ttl_s=60)
    assert v.verify(token) == rec
    kid, secret = parse_token(token)  # type: ignore[misc]
    wrong = f"snt_{kid}_" + ("A" * 43 if secret != "A" * 43 else "B" * 43)
    assert v.verify(wrong) is None and v.verify(token) == rec
    revoke_key(eng, rec.id)
    assert v.verify(token) == rec  # cached for ttl_s ...
    v.invalidate(rec.id)
    assert v.verify(token) is None  # ... then refused
    eng.dispose()


def test_key_cli(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", sqlite_url)
    run = CliRunner().invoke
    res = run(app, ["key", "create", "ops", "--scope", "scan", "--scope", "curate", "--rate", "5"])
    assert res.exit_code == 0, res.output
    token = res.stdout.strip().splitlines()[-1]
    kid, _ = parse_token(token)  # type: ignore[misc]
    res = run(app, ["key", "list", "--json"])
    assert res.exit_code == 0 and f'"id": {kid}' in res.stdout and token not in res.stdout
    res = run(app, ["key", "rotate", str(kid)])
    assert res.exit_code == 0, res.output
    new_token = res.stdout.strip().splitlines()[-1]
    new_id, _ = parse_token(new_token)  # type: ignore[misc]
    res = run(app, ["key", "revoke", str(new_id)])
    assert res.exit_code == 0
    res = run(app, ["key", "list", "--all"])
    assert res.exit_code == 0 and "ops" in res.stdout
    assert run(app, ["key", "revoke", "424242"]).exit_code == 1
    assert run(app, ["key", "create", "x", "--scope", "superuser"]).exit_code == 1
    eng = open_engine(sqlite_url)
    assert verify_token(eng, token) is None and verify_token(eng, new_token) is None
    eng.dispose()


def test_key_changes_wait_for_a_concurrent_writer_instead_of_failing(sqlite_url: str) -> None:
    """A key change that overlaps another writer (the key-use audit thread, another
    instance) queues for the write lock. Started as a reader (``BEGIN DEFERRED``), its
    snapshot would be stale once the other writer commits, and SQLite refuses the
    upgrade at once ("database is locked") whatever the busy timeout."""
    import threading
    import time

    from sqlalchemy import text

    eng = open_engine(sqlite_url)
    rec, _ = create_key(eng, "rotated while busy", ["scan"])
    other = eng.connect().execution_options(sqlite_begin="IMMEDIATE")
    tx = other.begin()
    other.execute(text("UPDATE api_keys SET name = name WHERE id = :i"), {"i": rec.id})
    out: dict[str, object] = {}

    def rotate() -> None:
        try:
            out["rotated"] = rotate_key(eng, rec.id)
        except Exception as e:  # noqa: BLE001 - reported below
            out["error"] = e

    t = threading.Thread(target=rotate)
    t.start()
    time.sleep(0.3)  # rotate_key is now waiting for the lock the other writer holds
    tx.commit()
    other.close()
    t.join(30)
    assert "error" not in out, out.get("error")
    new_rec, _token = out["rotated"]  # type: ignore[misc]
    assert new_rec.name == "rotated while busy" and new_rec.id != rec.id
    eng.dispose()
