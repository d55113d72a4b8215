"""Encrypted evidence store: AES-256-GCM per-case keys, binding, destruction with proof.

Media is a benign image rendered with Pillow. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import threading
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import Engine, select, text, update
from typer.testing import CliRunner

from sentinelle.audit import list_events, verify_chain
from sentinelle.audit.chain import canonical_json
from sentinelle.cli.main import app
from sentinelle.evidence import (
    EvidenceError,
    EvidenceStore,
    deletion_records,
    load_master_key,
    place_legal_hold,
)
from sentinelle.evidence.tables import evidence_blobs, evidence_keys
from sentinelle.store.db import open_engine

MASTER = secrets.token_bytes(32)


def _png(seed: int = 0) -> bytes:
    """A benign rendered scene: sky, sun, hills."""
    img = Image.new("RGB", (96, 64), (120 + seed % 100, 170, 230))
    d = ImageDraw.Draw(img)
    d.ellipse((60, 6, 84, 30), fill=(250, 220, 60))
    d.polygon([(0, 64), (30, 30), (70, 64)], fill=(40, 140 + seed % 80, 60))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture()
def store(engine: Engine) -> EvidenceStore:
    return EvidenceStore(engine, MASTER)


def _code(exc: pytest.ExceptionInfo[EvidenceError]) -> str:
    return exc.value.code


# -- master key ---------------------------------------------------------------


def test_load_master_key_from_env_and_file(tmp_path: Path) -> None:
    b64 = base64.b64encode(MASTER).decode()
    assert load_master_key({"SENTINELLE_MASTER_KEY": b64}) == MASTER
    assert load_master_key({"SENTINELLE_MASTER_KEY": base64.urlsafe_b64encode(MASTER).decode()})
    f = tmp_path / "master.key"
    f.write_text(b64 + "\n")
    assert load_master_key({"SENTINELLE_MASTER_KEY_FILE": str(f)}) == MASTER
    cases = {
        "no_master_key": {},
        "bad_master_key": {"SENTINELLE_MASTER_KEY": "not base64!!"},
    }
    cases_more = [
        ({"SENTINELLE_MASTER_KEY": base64.b64encode(b"short").decode()}, "bad_master_key"),
        ({"SENTINELLE_MASTER_KEY": b64, "SENTINELLE_MASTER_KEY_FILE": str(f)}, "bad_master_key"),
        ({"SENTINELLE_MASTER_KEY_FILE": str(tmp_path / "missing")}, "bad_master_key"),
    ]
    for code, env in cases.items():
        with pytest.raises(EvidenceError) as ei:
            load_master_key(env)
        assert ei.value.code == code
    for env, code in cases_more:
        with pytest.raises(EvidenceError) as ei:
            load_master_key(env)
        assert ei.value.code == code
    with pytest.raises(EvidenceError) as ei:
        EvidenceStore(None, b"x" * 16)  # type: ignore[arg-type]
    assert ei.value.code == "bad_master_key"


def test_keygen_cli_writes_a_private_file(tmp_path: Path) -> None:
    out = tmp_path / "k"
    r = CliRunner().invoke(app, ["evidence", "keygen", "--out", str(out)])
    assert r.exit_code == 0
    assert out.stat().st_mode & 0o777 == 0o600
    assert len(load_master_key({"SENTINELLE_MASTER_KEY_FILE": str(out)})) == 32
    r = CliRunner().invoke(app, ["evidence", "keygen", "--out", str(out)])
    assert r.exit_code == 1  # never overwrites a key
    r = CliRunner().invoke(app, ["evidence", "keygen"])
    assert r.exit_code == 0 and len(base64.b64decode(r.stdout.strip())) == 32


# -- put / get ----------------------------------------------------------------


def test_roundtrip_is_encrypted_at_rest_and_audited(store: EvidenceStore, engine: Engine) -> None:
    data = _png(1)
    bid = store.put(7, data, media_type="image/PNG", filename="beach.png", actor="user:alice")
    bid2 = store.put(7, _png(2), media_type="image/png", actor="system")
    item = store.read(bid, actor="user:bob")
    assert (item.data, item.media_type, item.filename, item.case_id) == (
        data,
        "image/png",
        "beach.png",
        7,
    )
    assert store.get(bid2, actor="user:bob") == (_png(2), "image/png")
    assert [b.id for b in store.list_case(7)] == [bid, bid2]
    with engine.connect() as conn:
        row = conn.execute(select(evidence_blobs).where(evidence_blobs.c.id == bid)).one()
        key = conn.execute(select(evidence_keys)).one()
    ct = bytes(row.ciphertext)
    assert data not in ct and b"IHDR" not in ct and b"beach.png" not in bytes(row.filename_ct)
    assert len(ct) == len(data) + 16 and len(row.nonce) == 12
    assert len(bytes(key.wrapped_key)) == 1 + 12 + 32 + 16
    actions = [(e.action, e.actor) for e in reversed(list_events(engine))]
    assert actions == [
        ("evidence.store", "user:alice"),
        ("evidence.store", "system"),
        ("evidence.read", "user:bob"),
        ("evidence.read", "user:bob"),
    ]
    assert verify_chain(engine).ok


def test_sqlite_file_never_holds_the_plaintext(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ev.db'}"
    eng = open_engine(url)
    marker = b"BENIGN-MARKER-" + secrets.token_bytes(4000)
    EvidenceStore(eng, MASTER).put(
        1, marker, media_type="application/octet-stream", filename="visible-name.bin", actor="cli"
    )
    eng.dispose()
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("ev.db"))
    assert marker[:40] not in blob and b"visible-name" not in blob


def test_ciphertexts_are_bound_to_case_and_row(store: EvidenceStore, engine: Engine) -> None:
    a = store.put(1, _png(1), media_type="image/png", actor="cli")
    b = store.put(2, _png(2), media_type="image/png", actor="cli")
    with engine.begin() as conn:
        ra = conn.execute(select(evidence_blobs).where(evidence_blobs.c.id == a)).one()
        conn.execute(
            update(evidence_blobs)
            .where(evidence_blobs.c.id == b)
            .values(nonce=ra.nonce, ciphertext=ra.ciphertext)
        )
    with pytest.raises(EvidenceError) as ei:
        store.get(b, actor="cli")  # case 1's ciphertext moved into case 2's row
    assert _code(ei) == "decrypt_failed"
    with engine.begin() as conn:
        k1 = conn.execute(select(evidence_keys.c.wrapped_key).where(evidence_keys.c.case_id == 1))
        conn.execute(
            update(evidence_keys)
            .where(evidence_keys.c.case_id == 2)
            .values(wrapped_key=k1.scalar_one())
        )
    with pytest.raises(EvidenceError) as ei:
        store.get(b, actor="cli")  # case 1's key moved to case 2
    assert _code(ei) == "decrypt_failed"
    # A flipped bit in a ciphertext.
    with engine.begin() as conn:
        ct = bytearray(ra.ciphertext)
        ct[5] ^= 1
        conn.execute(
            update(evidence_blobs).where(evidence_blobs.c.id == a).values(ciphertext=bytes(ct))
        )
    with pytest.raises(EvidenceError) as ei:
        store.get(a, actor="cli")
    assert _code(ei) == "decrypt_failed"


def test_wrong_master_key_and_rotation(store: EvidenceStore, engine: Engine) -> None:
    bid = store.put(3, _png(3), media_type="image/png", actor="cli")
    other = EvidenceStore(engine, secrets.token_bytes(32))
    with pytest.raises(EvidenceError) as ei:
        other.get(bid, actor="cli")
    assert _code(ei) == "decrypt_failed"
    new_master = secrets.token_bytes(32)
    assert store.rewrap(new_master, actor="cli") == 1
    assert EvidenceStore(engine, new_master).get(bid, actor="cli")[0] == _png(3)
    with pytest.raises(EvidenceError) as ei:
        EvidenceStore(engine, MASTER).get(bid, actor="cli")
    assert _code(ei) == "decrypt_failed"


BAD_PUTS = [
    (0, b"x", "image/png", None),
    (-1, b"x", "image/png", None),
    ("7", b"x", "image/png", None),
    (1, b"", "image/png", None),
    (1, "text", "image/png", None),
    (1, b"x" * 2001, "image/png", None),
    (1, b"x", "png", None),
    (1, b"x", "image/png; charset=x", None),
    (1, b"x", "", None),
    (1, b"x", "image/png", ""),
    (1, b"x", "image/png", "a\nb"),
    (1, b"x", "image/png", "n" * 256),
]


def test_bad_input_is_refused(engine: Engine) -> None:
    store = EvidenceStore(engine, MASTER, max_bytes=2000)
    for case_id, data, media_type, filename in BAD_PUTS:
        with pytest.raises(EvidenceError) as ei:
            store.put(case_id, data, media_type=media_type, filename=filename, actor="cli")  # type: ignore[arg-type]
        assert _code(ei) == "bad_evidence", (case_id, media_type, filename)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM evidence_blobs")).scalar() == 0


def test_unknown_blob(store: EvidenceStore) -> None:
    for bid in (999, "1", None):
        with pytest.raises(EvidenceError) as ei:
            store.get(bid, actor="cli")  # type: ignore[arg-type]
        assert _code(ei) == "unknown_blob"


def test_concurrent_first_puts_share_one_case_key(store: EvidenceStore, engine: Engine) -> None:
    ids: list[int] = []
    errors: list[BaseException] = []

    def put(i: int) -> None:
        try:
            ids.append(store.put(11, _png(i), media_type="image/png", actor="system"))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(ids) == 6
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM evidence_keys")).scalar() == 1
    assert sorted(store.get(i, actor="cli")[0] for i in ids) == sorted(_png(i) for i in range(6))


# -- destruction ----------------------------------------------------------------


def test_destroy_case_crypto_shreds_with_a_proof(store: EvidenceStore, engine: Engine) -> None:
    a = store.put(5, _png(1), media_type="image/png", filename="a.png", actor="cli")
    b = store.put(5, _png(2), media_type="image/png", actor="cli")
    keep = store.put(6, _png(3), media_type="image/png", actor="cli")
    with engine.connect() as conn:
        wrapped = bytes(
            conn.execute(
                select(evidence_keys.c.wrapped_key).where(evidence_keys.c.case_id == 5)
            ).scalar_one()
        )
        cts = {
            int(r.id): hashlib.sha256(bytes(r.nonce) + bytes(r.ciphertext)).hexdigest()
            for r in conn.execute(select(evidence_blobs).where(evidence_blobs.c.case_id == 5))
        }
    proof = store.destroy_case(5, actor="user:admin", reason="user request")
    assert proof["kind"] == "request" and proof["forced"] is False
    assert proof["wrapped_key_sha256"] == hashlib.sha256(wrapped).hexdigest()
    assert {x["id"]: x["ciphertext_sha256"] for x in proof["blobs"]} == cts
    core = {k: v for k, v in proof.items() if k not in ("proof_sha256", "deletion_id", "audit_id")}
    assert hashlib.sha256(canonical_json(core).encode()).hexdigest() == proof["proof_sha256"]
    assert deletion_records(engine, 5)[0]["proof_sha256"] == proof["proof_sha256"]
    ev = list_events(engine, action="evidence.destroy")[0]
    assert ev.id == proof["audit_id"] and ev.details["proof_sha256"] == proof["proof_sha256"]
    with engine.connect() as conn:
        k = conn.execute(select(evidence_keys).where(evidence_keys.c.case_id == 5)).one()
        rows = conn.execute(select(evidence_blobs).where(evidence_blobs.c.case_id == 5)).all()
    assert k.wrapped_key is None and k.destroyed_at is not None
    assert all(r.ciphertext is None and r.nonce is None and r.filename_ct is None for r in rows)
    for bid in (a, b):
        with pytest.raises(EvidenceError) as ei:
            store.get(bid, actor="cli")
        assert _code(ei) == "evidence_destroyed"
    with pytest.raises(EvidenceError) as ei:
        store.put(5, b"x", media_type="image/png", actor="cli")
    assert _code(ei) == "evidence_destroyed"
    with pytest.raises(EvidenceError) as ei:
        store.destroy_case(5, actor="cli", reason="again")
    assert _code(ei) == "evidence_destroyed"
    with pytest.raises(EvidenceError) as ei:
        store.destroy_case(404, actor="cli", reason="nothing there")
    assert _code(ei) == "no_evidence"
    assert store.get(keep, actor="cli")[0] == _png(3)
    assert verify_chain(engine).ok


def test_destroy_under_hold_needs_force_and_a_reason(store: EvidenceStore, engine: Engine) -> None:
    store.put(8, _png(8), media_type="image/png", actor="cli")
    hid = place_legal_hold(engine, case_id=8, actor="user:legal", reason="court order 12")
    with pytest.raises(EvidenceError) as ei:
        store.destroy_case(8, actor="user:admin", reason="cleanup")
    assert _code(ei) == "under_hold" and f"legal hold {hid}" in ei.value.message
    for reason in ("", "   "):
        with pytest.raises(EvidenceError) as ei:
            store.destroy_case(8, actor="user:admin", reason=reason, force=True)
        assert _code(ei) == "bad_hold"
    proof = store.destroy_case(8, actor="user:admin", reason="order vacated", force=True)
    assert proof["forced"] is True and proof["kind"] == "forced"
    assert proof["holds_overridden"] == [hid]
    from sentinelle.evidence import list_holds

    (h,) = list_holds(engine, case_id=8)
    assert h.released_by == "user:admin" and "order vacated" in (h.release_reason or "")


def test_sqlite_destruction_leaves_no_key_bytes_in_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ev.db'}"
    eng = open_engine(url)
    store = EvidenceStore(eng, MASTER)
    store.put(1, secrets.token_bytes(20_000), media_type="application/octet-stream", actor="cli")
    with eng.connect() as conn:
        wrapped = bytes(conn.execute(select(evidence_keys.c.wrapped_key)).scalar_one())
        ct = bytes(conn.execute(select(evidence_blobs.c.ciphertext)).scalar_one())
    store.destroy_case(1, actor="cli", reason="test")
    eng.dispose()  # last connection closed: WAL checkpointed and removed
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("ev.db"))
    assert wrapped not in raw and ct[1000:1100] not in raw


def test_cli_destroy_and_proofs(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", db_url)
    eng = open_engine(db_url)
    EvidenceStore(eng, MASTER).put(9, _png(9), media_type="image/png", actor="cli")
    run = CliRunner().invoke
    assert run(app, ["retention", "hold", "9", "--reason", "investigation"]).exit_code == 0
    r = run(app, ["retention", "destroy", "9", "--reason", "asked"])
    assert r.exit_code == 1 and "under_hold" in r.output
    r = run(app, ["retention", "destroy", "9", "--reason", "asked", "--force"])
    assert r.exit_code == 0, r.output
    proof = json.loads(r.stdout)
    assert proof["forced"] and proof["actor"] == "cli" and len(proof["blobs"]) == 1
    r = run(app, ["retention", "proofs", "--case", "9"])
    assert r.exit_code == 0 and json.loads(r.stdout)[0]["proof_sha256"] == proof["proof_sha256"]
    eng.dispose()
