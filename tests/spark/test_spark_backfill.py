"""sentinelle backfill: idempotent parts, a SIGKILLed run resumed to the same bytes, intake."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sentinelle.spark.backfill import BackfillError, run_backfill
from sentinelle.spark.snapshot import BankSnapshot


def _parts(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name.startswith("part-")}


def test_killed_backfill_rerun_gives_the_same_output(spark, world, tmp_path) -> None:
    snap = BankSnapshot.from_store(world["store"])
    inbox = str(world["inbox"])
    clean = tmp_path / "clean"
    s1 = run_backfill(spark, inbox, str(clean), snap, rows_per_partition=1)
    n_files = sum(1 for p in Path(inbox).rglob("*") if p.is_file())
    assert s1.rows == n_files and s1.partitions == n_files
    assert (clean / "_SUCCESS").exists()
    table = pq.read_table(clean)
    assert table.num_rows == n_files  # every file exactly once, corrupt ones included
    assert s1.matched >= 5 and s1.errors == 4  # junk, empty, truncated, bad header

    killed = tmp_path / "killed"
    env = {**os.environ, "SENTINELLE_DATABASE_URL": world["url"], "PYSPARK_PYTHON": sys.executable}
    cmd = [sys.executable, "-m", "sentinelle.cli.main", "backfill", inbox, "-o", str(killed),
           "--master", "local[1]", "--rows-per-partition", "1", "-q",
           "--conf", "spark.ui.enabled=false"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if killed.is_dir() and len(_parts(killed)) >= 3:
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver, its JVM and Python workers
        proc.wait(30)
    done_before = _parts(killed)
    assert 3 <= len(done_before) < n_files, "the kill came too late to test a resume"
    assert not (killed / "_SUCCESS").exists()
    s2 = run_backfill(spark, inbox, str(killed), snap, rows_per_partition=1)
    assert s2.skipped_partitions >= len(done_before)
    assert s2.written_partitions == n_files - s2.skipped_partitions
    assert not [p for p in killed.iterdir() if ".tmp-" in p.name]
    assert _parts(killed) == _parts(clean)  # byte for byte
    for name in ("_backfill.json", "_SUCCESS"):
        assert (killed / name).read_bytes() == (clean / name).read_bytes()
    # a third run does nothing
    s3 = run_backfill(spark, inbox, str(killed), snap, rows_per_partition=1)
    assert s3.written_partitions == 0 and s3.skipped_partitions == n_files


def test_rerun_with_other_banks_or_options_is_refused(spark, world, tmp_path) -> None:
    snap = BankSnapshot.from_store(world["store"])
    out = str(tmp_path / "o")
    inbox = str(world["inbox"])
    run_backfill(spark, inbox, out, snap, rows_per_partition=20)
    only = BankSnapshot.from_store(world["store"], banks=["strict"])
    with pytest.raises(BackfillError, match="banks") as e:
        run_backfill(spark, inbox, out, only, rows_per_partition=20)
    assert e.value.code == "output_mismatch"
    with pytest.raises(BackfillError, match="partitions"):
        run_backfill(spark, inbox, out, snap, rows_per_partition=7)


def test_table_input_carries_accounts_into_the_intake(spark, world, tmp_path) -> None:
    import sqlalchemy as sa

    from sentinelle.review.tables import case_items, cases
    from sentinelle.store.db import open_engine

    inbox = world["inbox"]
    names = ["resized.png", "exact-copy.bin", "junk.jpg", "100075.jpg"]
    tbl = tmp_path / "uris.parquet"
    spark.createDataFrame(
        [(str(inbox / n), f"user-{i}") for i, n in enumerate(names)], "uri string, account string"
    ).write.parquet(str(tbl))
    review = f"sqlite:///{tmp_path / 'service.db'}"
    snap = BankSnapshot.from_store(world["store"])
    kw = dict(table=True, path_col="uri", intake_url=review, account_col="account")
    s = run_backfill(spark, str(tbl), str(tmp_path / "out"), snap, **kw)
    assert s.rows == 4 and s.matched == 2 and s.errors == 1
    out = {Path(r["path"]).name: r for r in pq.read_table(tmp_path / "out").to_pylist()}
    assert out["junk.jpg"]["account"] == "user-2" and out["junk.jpg"]["error"]["code"]
    eng = open_engine(review)
    with eng.connect() as c:
        items = c.execute(
            sa.select(case_items.c.case_id, case_items.c.bank, case_items.c.summary)
        ).all()
        accts = dict(c.execute(sa.select(cases.c.id, cases.c.open_key)).all())
    n_matches = len(out["resized.png"]["matches"]) + len(out["exact-copy.bin"]["matches"])
    assert len(items) == n_matches
    assert {accts[i.case_id] for i in items} == {"user-0", "user-1"}
    assert all(json.loads(i.summary)["source"] == "backfill" for i in items)
    # a rerun (nothing left to hash) sends the same signals: none is added twice
    run_backfill(spark, str(tbl), str(tmp_path / "out"), snap, **kw)
    with eng.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(case_items)).scalar() == n_matches
    eng.dispose()


def test_hash_table_backfill(spark, world, tmp_path) -> None:
    from sentinelle.signals.hasher import hash_file

    inbox = world["inbox"]
    r = hash_file(inbox / "exact-copy.bin")
    pdq = {s.type: s.hash for s in r.signals}
    tbl = tmp_path / "h.parquet"
    spark.createDataFrame(
        [(1, pdq["pdq"], pdq["md5"]), (2, "f" * 64, None), (3, "bad", "0" * 32)],
        "id long, pdq string, md5 string",
    ).write.parquet(str(tbl))
    snap = BankSnapshot.from_store(world["store"])
    s = run_backfill(
        spark, str(tbl), str(tmp_path / "out"), snap, hashes=True, rows_per_partition=2
    )
    assert s.rows == 3 and s.partitions == 2 and s.matched == 1 and s.errors == 1
    rows = {r["id"]: r for r in pq.read_table(tmp_path / "out").to_pylist()}
    assert {m["signal"] for m in rows[1]["matches"]} == {"pdq", "md5"}
    assert rows[3]["error"]["code"] == "invalid_hash"


def test_cli_refuses_an_unknown_bank_before_starting_spark(world, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from sentinelle.cli.main import app

    monkeypatch.setenv("SENTINELLE_DATABASE_URL", world["url"])
    res = CliRunner().invoke(
        app, ["backfill", str(world["inbox"]), "-o", str(tmp_path / "o"), "--bank", "nope"]
    )
    assert res.exit_code == 1
    assert "unknown_bank" in res.output
    assert not (tmp_path / "o").exists()
