"""Bank store benchmark: bulk import, idempotent re-import and bulk load of PDQ hashes.

Measures, on SQLite (a file under bench/out/) and PostgreSQL (a throwaway schema):

* ``import_file`` of an N-line ``pdq-list`` (parse + validate + one-transaction
  bulk insert + change log), then the same file again (all duplicates);
* ``load_signal("pdq")`` (what the matcher does at start-up), extrapolated to
  10M rows (target: "10M PDQ rows well under a minute", i.e. <= 30 s);
* peers: python-threatexchange's own PDQ-list reading (``PdqSignal.validate_signal_str``
  per line, what its ``match --hashes`` does), and a plain SQLAlchemy-ORM store
  (``session.add_all`` / ``select(BankEntry)``), the approach of ORM-based stores
  such as HMA's, measured on a subset and scaled linearly.

Run by hand::

    .venv/bin/python bench/bench_bank_store.py            # 1M rows
    .venv/bin/python bench/bench_bank_store.py --n 200000 --no-append
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from importlib import metadata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import OUT_DIR, append_results  # noqa: E402
from sentinelle.banks import BankStore  # noqa: E402
from sentinelle.store.db import open_engine  # noqa: E402

PG_URL = os.environ.get("SENTINELLE_TEST_POSTGRES_URL") or (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def make_list(n: int) -> Path:
    path = OUT_DIR / f"pdq_{n}.txt"
    if path.exists() and path.stat().st_size == n * 65:
        return path
    rng = np.random.default_rng(2024)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for start in range(0, n, 100_000):
            block = rng.integers(0, 256, size=(min(100_000, n - start), 32), dtype=np.uint8)
            f.write("".join(r.tobytes().hex() + "\n" for r in block))
    return path


def timed(fn):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def bench_ours(url: str, path: Path, n: int) -> dict[str, float]:
    store = BankStore(open_engine(url))
    store.create_bank("bench")
    rep, t_import = timed(lambda: store.import_file("bench", path, "pdq-list"))
    assert rep.added == n, rep
    loaded, t_load = timed(lambda: store.load_signal("pdq"))
    assert len(loaded) == n and loaded.hashes.shape == (n, 32)
    rep2, t_reimport = timed(lambda: store.import_file("bench", path, "pdq-list"))
    assert rep2.added == 0 and rep2.duplicates == n
    store.engine.dispose()
    return {"import": t_import, "reimport": t_reimport, "load": t_load}


def bench_te_parse(path: Path) -> float | None:
    try:
        from threatexchange.signal_type.pdq.signal import PdqSignal
    except ImportError:
        return None
    t = time.perf_counter()
    hashes = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            hashes.append(PdqSignal.validate_signal_str(line))
    return time.perf_counter() - t


def bench_orm(url: str, path: Path, m: int) -> dict[str, float]:
    """ORM baseline on the first ``m`` hashes: add_all + commit, then select + convert."""
    from sqlalchemy.orm import Session

    from sentinelle.store.models import Bank, BankEntry

    engine = open_engine(url)
    hashes = path.read_text().split()[:m]
    with Session(engine) as s:
        bank = Bank(name="orm", description="")
        s.add(bank)
        s.commit()
        bank_id = bank.id
        t = time.perf_counter()
        s.add_all(BankEntry(bank_id=bank_id, signal_type="pdq", hash=h) for h in hashes)
        s.commit()
        t_import = time.perf_counter() - t
    with Session(engine) as s:
        t = time.perf_counter()
        objs = s.query(BankEntry).filter(BankEntry.bank_id == bank_id).all()
        arr = np.frombuffer(bytes.fromhex("".join(o.hash for o in objs)), np.uint8).reshape(-1, 32)
        ids = np.array([o.id for o in objs], dtype=np.int64)
        t_load = time.perf_counter() - t
    assert arr.shape == (m, 32) and len(ids) == m
    engine.dispose()
    return {"import": t_import, "load": t_load}


def pg_schema_url() -> tuple[str, str]:
    from sqlalchemy.engine import make_url

    from sentinelle.store.db import normalize_url

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    url = make_url(normalize_url(PG_URL)).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, url.render_as_string(hide_password=False)


def pg_exec(sql: str) -> None:
    from sqlalchemy import create_engine, text

    from sentinelle.store.db import normalize_url

    e = create_engine(normalize_url(PG_URL))
    with e.begin() as c:
        c.execute(text(sql))
    e.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--orm-n", type=int, default=100_000)
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()
    n, m = args.n, args.orm_n
    path = make_list(n)
    load1 = os.getloadavg()[0]
    results: dict[str, dict[str, float]] = {}
    orm: dict[str, dict[str, float]] = {}
    backends = ["sqlite"] + ([] if args.no_pg else ["postgresql"])
    for backend in backends:
        if backend == "sqlite":
            db = OUT_DIR / "bench_bank_store.db"
            for suffix in ("", "-wal", "-shm", ".migrate.lock"):
                Path(str(db) + suffix).unlink(missing_ok=True)
            url = f"sqlite:///{db}"
            results[backend] = bench_ours(url, path, n)
            orm_db = OUT_DIR / "bench_orm.db"
            for suffix in ("", "-wal", "-shm", ".migrate.lock"):
                Path(str(orm_db) + suffix).unlink(missing_ok=True)
            orm[backend] = bench_orm(f"sqlite:///{orm_db}", path, m)
        else:
            schema, url = pg_schema_url()
            pg_exec(f'CREATE SCHEMA "{schema}"')
            try:
                results[backend] = bench_ours(url, path, n)
            finally:
                pg_exec(f'DROP SCHEMA "{schema}" CASCADE')
            schema, url = pg_schema_url()
            pg_exec(f'CREATE SCHEMA "{schema}"')
            try:
                orm[backend] = bench_orm(url, path, m)
            finally:
                pg_exec(f'DROP SCHEMA "{schema}" CASCADE')
        r = results[backend]
        print(
            f"{backend}: import {r['import']:.1f}s, re-import {r['reimport']:.1f}s, "
            f"load {r['load']:.2f}s for {n} rows; ORM baseline ({m} rows): "
            f"import {orm[backend]['import']:.1f}s, load {orm[backend]['load']:.2f}s"
        )
    te = bench_te_parse(path)
    load2 = os.getloadavg()[0]
    scale = n / m
    rows = [
        "| measurement | backend | Sentinelle | peer | peer is |",
        "|---|---|---|---|---|",
    ]
    for b in backends:
        r, o = results[b], orm[b]
        rows.append(
            f"| import {n:,}-line pdq-list (one transaction) | {b} | {r['import']:.1f} s | "
            f"{o['import'] * scale:.1f} s | SQLAlchemy ORM add_all ({m:,} rows x{scale:g}) |"
        )
        rows.append(f"| re-import same file (all duplicates) | {b} | {r['reimport']:.1f} s | - | |")
        rows.append(
            f"| load_signal('pdq'), {n:,} rows | {b} | {r['load']:.2f} s | "
            f"{o['load'] * scale:.2f} s | ORM select + hex->uint8 ({m:,} rows x{scale:g}) |"
        )
    if te is not None:
        rows.append(
            f"| read+validate {n:,}-line PDQ list (no DB) | - | (included in import) | "
            f"{te:.1f} s | python-threatexchange PdqSignal.validate_signal_str per line |"
        )
    targets = []
    for b in backends:
        t10 = results[b]["load"] * 10_000_000 / n
        verdict = "met" if t10 <= 30 else ("partly met (< 60 s)" if t10 < 60 else "not met")
        targets.append(
            f"- Load 10M PDQ rows well under a minute ({b}): extrapolated "
            f"{t10:.0f} s from {n:,} rows -> **{verdict}** (well under = <= 30 s)."
        )
    versions = ", ".join(
        f"{p} {metadata.version(p)}" for p in ("sqlalchemy", "alembic", "psycopg") if _has(p)
    )
    body = (
        "\n".join(rows)
        + "\n\n"
        + "\n".join(targets)
        + (
            f"\n\nAlso: {versions}; SQLite {__import__('sqlite3').sqlite_version}; "
            f"PostgreSQL on the same machine. Load average (1 min) at start/end: "
            f"{load1:.1f}/{load2:.1f} (other benchmarks share the 2 cores: times are noisy)."
        )
    )
    print(body)
    if not args.no_append:
        append_results(f"Bank store: bulk import and load ({n:,} PDQ rows)", body)


def _has(pkg: str) -> bool:
    try:
        metadata.version(pkg)
        return True
    except metadata.PackageNotFoundError:
        return False


if __name__ == "__main__":
    main()
