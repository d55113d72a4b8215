"""Audit trail and evidence store: what chaining and encryption cost (issue 6).

Side by side, on SQLite (file) and PostgreSQL (127.0.0.1:5432/test, a throwaway
schema):

* audit append: ``record_event`` (head-row lock + chained SHA-256 + 3 statements)
  vs a plain one-row INSERT into an unchained table (the baseline);
* ``verify_chain`` throughput (entries/s);
* evidence ``put``/``get`` of 1 MiB benign random blobs (AES-256-GCM + audit) vs
  a plain INSERT/SELECT of the same bytes in the clear (the baseline), and raw
  AES-GCM in memory (the floor).

Usage: ``.venv/bin/python bench/bench_audit_evidence.py [--events 2000] [--blobs 40]
[--no-postgres] [--no-append]``
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import append_results  # noqa: E402
from sentinelle.audit import record_event, verify_chain  # noqa: E402
from sentinelle.evidence import EvidenceStore  # noqa: E402
from sentinelle.store.db import open_engine  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def bench_db(name: str, engine: sa.Engine, events: int, blobs: int) -> list[str]:
    rows = []
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE bench_plain (id INTEGER PRIMARY KEY, at TEXT, actor TEXT, "
                "action TEXT, details TEXT)"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TABLE bench_blobs (id INTEGER PRIMARY KEY, data BYTEA)"
                if engine.dialect.name == "postgresql"
                else "CREATE TABLE bench_blobs (id INTEGER PRIMARY KEY, data BLOB)"
            )
        )
    t = time.perf_counter()
    for i in range(events):
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO bench_plain VALUES (:i, 'now', 'system', 'case.view', '{}')"),
                {"i": i + 1},
            )
    plain = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(events):
        record_event(engine, actor="system", action="case.view", details={"i": i})
    chained = time.perf_counter() - t
    t = time.perf_counter()
    res = verify_chain(engine)
    ver = time.perf_counter() - t
    assert res.ok and res.checked == events
    rows.append(
        f"| {name} | audit append, {events} single-row transactions | "
        f"{_rate(events, chained):,.0f} /s | plain INSERT {_rate(events, plain):,.0f} /s |"
    )
    rows.append(f"| {name} | verify_chain | {_rate(events, ver):,.0f} entries/s | - |")

    store = EvidenceStore(engine, secrets.token_bytes(32))
    payloads = [secrets.token_bytes(1 << 20) for _ in range(blobs)]
    t = time.perf_counter()
    ids = [
        store.put(1 + i % 4, p, media_type="application/octet-stream", actor="system")
        for i, p in enumerate(payloads)
    ]
    put = time.perf_counter() - t
    t = time.perf_counter()
    for b in ids:
        store.get(b, actor="system")
    get = time.perf_counter() - t
    t = time.perf_counter()
    for i, p in enumerate(payloads):
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO bench_blobs VALUES (:i, :d)"), {"i": i + 1, "d": p})
    pput = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(blobs):
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT data FROM bench_blobs WHERE id = :i"), {"i": i + 1}).one()
    pget = time.perf_counter() - t
    mb = blobs
    rows.append(
        f"| {name} | evidence put 1 MiB (encrypt + audit) | {mb / put:,.0f} MiB/s | "
        f"plain INSERT {mb / pput:,.0f} MiB/s |"
    )
    rows.append(
        f"| {name} | evidence get 1 MiB (decrypt + audit) | {mb / get:,.0f} MiB/s | "
        f"plain SELECT {mb / pget:,.0f} MiB/s |"
    )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--blobs", type=int, default=40)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()

    key = AESGCM.generate_key(bit_length=256)
    data = secrets.token_bytes(1 << 20)
    t = time.perf_counter()
    for _ in range(200):
        AESGCM(key).encrypt(b"\x00" * 12, data, b"aad")
    floor = 200 / (time.perf_counter() - t)
    rows = [
        "| database | operation | Sentinelle | baseline |",
        "|---|---|---|---|",
        f"| (memory) | AES-256-GCM encrypt 1 MiB | {floor:,.0f} MiB/s | - |",
    ]
    with tempfile.TemporaryDirectory() as d:
        eng = open_engine(f"sqlite:///{Path(d) / 'bench.db'}")
        rows += bench_db("SQLite", eng, args.events, args.blobs)
        eng.dispose()
    if not args.no_postgres:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(PG)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            eng = open_engine(
                sa.engine.make_url(PG)
                .update_query_dict({"options": f"-csearch_path={schema}"})
                .render_as_string(hide_password=False)
            )
            rows += bench_db("PostgreSQL", eng, args.events, args.blobs)
            eng.dispose()
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    body = "\n".join(rows)
    print(body)
    if not args.no_append:
        append_results(
            "Audit trail and evidence store (bench_audit_evidence.py, issue 6)",
            body + "\n\nBaselines: the same rows without hash chaining / in the clear, one "
            "transaction each. The audit append serialises on the head row by design.",
        )


if __name__ == "__main__":
    main()
