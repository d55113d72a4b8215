"""``kill -9`` during a bulk import leaves the bank exactly as it was.

A real ``sentinelle bank import`` process imports 300,000 random PDQ hashes
(several seconds of work). The test waits until the process is *provably inside
its write transaction* -- on SQLite the database's write lock is held (a
``BEGIN IMMEDIATE`` from here is refused), on PostgreSQL the process holds a
``RowExclusiveLock`` on this schema's ``bank_entries`` table -- then sends
SIGKILL. Afterwards:

* the database opens normally (SQLite: ``PRAGMA integrity_check`` is ``ok``);
* the bank has exactly the entries it had before, and no change-log row was
  added for it;
* re-running the same import succeeds and adds every hash.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from sentinelle.banks import BankStore
from sentinelle.formats.entry import EntryIn
from sentinelle.store.db import open_engine
from sentinelle.store.models import ChangeLog

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

REPO = Path(__file__).resolve().parents[2]
N_HASHES = 300_000
N_BEFORE = 25
LOCK_WAIT_S = 90.0


def write_pdq_list(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=(n, 32), dtype=np.uint8).tobytes().hex()
    with path.open("w") as f:
        f.write("\n".join(raw[i : i + 64] for i in range(0, len(raw), 64)))
        f.write("\n")


def start_import(db_url: str, bank: str, path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINELLE_")}
    env["SENTINELLE_DATABASE_URL"] = db_url
    return subprocess.Popen(
        [sys.executable, "-m", "sentinelle.cli.main", "bank", "import", bank, str(path)]
        + ["--format", "pdq-list"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )


def sqlite_writer_active(db_path: str) -> bool:
    """True when another connection holds the database's write lock."""
    con = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            return True
        raise
    else:
        con.execute("ROLLBACK")
        return False
    finally:
        con.close()


def pg_writer_active(engine, pid: int, pg_port: int) -> bool:  # type: ignore[no-untyped-def]
    """True when the PostgreSQL backend serving process ``pid`` is in a transaction
    that has written (it has a transaction id): found by the client's TCP port."""
    ports = [
        c.laddr.port
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == pg_port
    ]
    if not ports:
        return False
    with engine.connect() as conn:
        n = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY(:ports) "
                "AND backend_xid IS NOT NULL AND state <> 'idle'"
            ),
            {"ports": ports},
        ).scalar_one()
    return bool(n)


def bank_state(store: BankStore, engine, bank: str) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """(entries in the bank, change-log rows for it, highest change-log seq)."""
    info = store.get_bank(bank)
    with engine.connect() as conn:
        logs = conn.execute(
            select(func.count()).select_from(ChangeLog).where(ChangeLog.bank_id == info.id)
        ).scalar_one()
        top = conn.execute(select(func.coalesce(func.max(ChangeLog.seq), 0))).scalar_one()
    return info.total, int(logs), int(top)


def test_kill_9_during_import_leaves_bank_unchanged(db_url: str, tmp_path: Path) -> None:
    big = tmp_path / "big.pdq.txt"
    write_pdq_list(big, N_HASHES, seed=1234)

    engine = open_engine(db_url)
    store = BankStore(engine)
    store.create_bank("victim")
    rng = np.random.default_rng(99)
    before_entries = [
        EntryIn(signal_type="pdq", hash=rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex())
        for _ in range(N_BEFORE)
    ]
    store.add_entries("victim", before_entries)
    before = bank_state(store, engine, "victim")
    assert before[0] == N_BEFORE

    is_sqlite = db_url.startswith("sqlite")
    db_path = make_url(db_url).database if is_sqlite else None

    pg_port = None if is_sqlite else (make_url(db_url).port or 5432)

    def writing() -> bool:
        if is_sqlite:
            return sqlite_writer_active(db_path)  # type: ignore[arg-type]
        return pg_writer_active(engine, proc.pid, pg_port)  # type: ignore[arg-type]

    proc = start_import(db_url, "victim", big)
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while not writing():
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                pytest.fail(f"import ended (rc {proc.returncode}) before it could be killed: {out}")
            if time.monotonic() > deadline:
                pytest.fail("import never started writing")
            time.sleep(0.02)
        time.sleep(0.3 if is_sqlite else 0.05)  # inside the transaction
        assert proc.poll() is None, "import finished before the kill"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
    engine.dispose()

    # The database opens fine and the bank is exactly as before.
    engine = open_engine(db_url)
    try:
        if is_sqlite:
            with engine.connect() as conn:
                assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
        store = BankStore(engine)
        after = bank_state(store, engine, "victim")
        assert after == before, f"bank changed by a killed import: {before} -> {after}"
        assert sorted(e.hash for e in store.iter_entries("victim")) == sorted(
            e.hash for e in before_entries
        )

        # Re-running the same import succeeds.
        proc = start_import(db_url, "victim", big)
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, out.decode(errors="replace")
        total, logs, _ = bank_state(store, engine, "victim")
        assert total == N_BEFORE + N_HASHES
        assert logs >= before[1] + 1
    finally:
        engine.dispose()
