"""hash_paths / hash_files on real Spark: the same rows ``sentinelle scan`` writes."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from sentinelle.spark.media import MediaOptions, hash_files, hash_paths
from sentinelle.spark.snapshot import BankSnapshot


def _key(m: dict) -> tuple:
    return (m["bank"], m["entry_id"], m["signal"], m["distance"], m["variant"])


@pytest.fixture(scope="module")
def scanned(world, tmp_path_factory):
    """``sentinelle scan`` (no provenance) of the inbox: the reference."""
    from sentinelle.cli.scan_cmd import run_scan
    from sentinelle.scan.records import read_records

    out = tmp_path_factory.mktemp("scan") / "scan.jsonl"
    run_scan(
        [world["inbox"]],
        out,
        workers=2,
        show_progress=False,
        provenance=False,
        database_url=world["url"],
    )
    return {r["path"]: r for r in read_records(out)}


def _files(inbox: Path) -> list[str]:
    return sorted(str(p) for p in inbox.rglob("*") if p.is_file())


def test_hash_paths_matches_what_scan_finds(spark, world, scanned) -> None:
    snap = BankSnapshot.from_store(world["store"])
    paths = _files(world["inbox"])
    df = spark.createDataFrame(
        [(p, f"acct-{i % 3}") for i, p in enumerate(paths)], "path string, account string"
    )
    rows = {
        r["path"]: r.asDict(recursive=True) for r in hash_paths(df.repartition(3), snap).collect()
    }
    assert sorted(rows) == paths  # one row per file, none lost, none doubled
    assert len(scanned) == len(paths)
    for p, rec in scanned.items():
        row = rows[p]
        assert row["account"] is not None
        assert sorted(_key(m) for m in row["matches"]) == sorted(_key(m) for m in rec["matches"]), p
        assert row["pdq_path"] == rec["pdq_path"], p
        got_err = row["error"]["code"] if row["error"] else None
        assert got_err == (rec["error"]["code"] if rec["error"] else None), p
        sig = {s["type"]: s.get("hash") for s in rec["signals"]}
        assert (row["md5"], row["sha256"], row["pdq"]) == (
            sig.get("md5"),
            sig.get("sha256"),
            sig.get("pdq"),
        )
        assert row["config"] == rec["config"] == "fast+trim"
    by_name = {Path(p).name: r for p, r in rows.items()}
    assert any(m["variant"].startswith("trimmed") for m in by_name["border.webp"]["matches"])
    assert {m["signal"] for m in by_name["exact-copy.bin"]["matches"]} >= {"md5", "sha256", "pdq"}
    assert all(
        m["category"] == "A1" for m in by_name["exact-copy.bin"]["matches"] if m["bank"] == "known"
    )
    for bad, code in [
        ("junk.jpg", "unsupported_type"),
        ("empty.png", "empty_file"),
        ("truncated.jpg", "corrupt_media"),
        ("bad-header.png", "corrupt_media"),
    ]:
        err = by_name[bad]["error"]
        assert err is not None and err["code"] == code and err["message"], bad
        assert by_name[bad]["matches"] == []
    # crypto hashes of what was read are kept for a corrupt file
    assert by_name["truncated.jpg"]["sha256"] is not None
    matched = {n for n, r in by_name.items() if r["matches"]}
    photos = {n for n in by_name if n.startswith("re-")}
    assert photos <= matched and {"resized.png", "border.webp", "exact-copy.bin"} <= matched
    assert not matched - photos - {"resized.png", "border.webp", "exact-copy.bin"}


def test_hash_files_binaryfile_source_gives_the_same_rows(spark, world) -> None:
    snap = BankSnapshot.from_store(world["store"])
    files = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .load(str(world["inbox"]))
    )
    got = hash_files(files, snap).drop("modificationTime", "length").collect()
    by_uri = {r["path"]: r.asDict(recursive=True) for r in got}
    names = {Path(p).name for p in by_uri}
    # Spark's binaryFile source lists no empty file (hash_paths gives it an error row)
    assert names == {Path(p).name for p in _files(world["inbox"])} - {"empty.png"}
    assert all(p.startswith("file:") for p in by_uri)
    uris = spark.createDataFrame([(p,) for p in sorted(by_uri)], "path string")
    again = {r["path"]: r.asDict(recursive=True) for r in hash_paths(uris, snap).collect()}
    for p, row in by_uri.items():  # bytes from the table == file read on the executor
        other = again[p]
        for k in ("md5", "sha256", "pdq", "size", "pdq_path", "error", "signals"):
            assert row[k] == other[k], (p, k)
        assert sorted(map(_key, row["matches"])) == sorted(map(_key, other["matches"]))


def test_exact_option_and_missing_files(spark, world, tmp_path) -> None:
    snap = BankSnapshot.from_store(world["store"])
    gone = str(tmp_path / "gone.jpg")
    target = world["inbox"] / "resized.png"
    df = spark.createDataFrame(
        [(gone,), (str(target),), ("s3a://no-such-bucket-sentinelle-test/x.jpg",), (None,)],
        "path string",
    )
    rows = hash_paths(df, snap, MediaOptions(exact=True)).collect()
    by = {r["path"]: r for r in rows}
    assert len(rows) == 4
    assert by[gone]["error"]["code"] == "io_error"
    assert by[str(target)]["pdq_path"] == "exact" and by[str(target)]["matches"]
    assert by[str(target)]["config"] == "exact+trim"
    remote = by["s3a://no-such-bucket-sentinelle-test/x.jpg"]["error"]
    assert remote is not None and remote["code"] in ("io_error", "unsupported_uri")
    assert by[None]["error"]["code"] == "io_error"


def test_isolated_hashing_gives_the_same_rows(world) -> None:
    """What a task retry does (each file in a child process) changes no value."""
    from sentinelle.spark.cache import matcher_for
    from sentinelle.spark.media import hash_batch

    snap = BankSnapshot.from_store(world["store"])
    m = matcher_for(snap)
    paths = [str(world["inbox"] / n) for n in ("resized.png", "junk.jpg", "exact-copy.bin")]
    b = pa.record_batch({"path": paths})
    assert hash_batch(b, m, isolate=True).to_pylist() == hash_batch(b, m).to_pylist()


def test_unknown_column_is_refused(spark, world) -> None:
    snap = BankSnapshot.from_store(world["store"])
    df = spark.createDataFrame([("x",)], "uri string")
    with pytest.raises(ValueError, match="no column 'path'"):
        hash_paths(df, snap)
    assert os.path.exists(world["inbox"])


def test_python_workers_fork_from_the_preloading_daemon(spark) -> None:
    """Workers come from sentinelle.spark.daemon, which loaded the hashing stack first."""

    def probe(it):
        import sys

        main = sys.modules["__main__"]
        spec = getattr(main, "__spec__", None)
        yield (
            getattr(spec, "name", None),
            "sentinelle.signals.hasher" in sys.modules,
            "numba" in sys.modules,
        )

    got = set(spark.sparkContext.parallelize(range(4), 2).mapPartitions(probe).collect())
    assert got == {("sentinelle.spark.daemon", True, True)}


def test_daemon_preload_loads_without_output(tmp_path) -> None:
    """The preload prints nothing on stdout (PySpark's daemon reports its port there)."""
    import subprocess
    import sys

    code = "from sentinelle.spark.daemon import preload; preload()"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert res.returncode == 0 and res.stdout == b"", res.stderr[-2000:]
    assert b"preload failed" not in res.stderr
