"""Hash-only matching: recall against brute force, bank thresholds, bad cells, on Spark."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest

from sentinelle.banks import BankStore
from sentinelle.formats.entry import EntryIn
from sentinelle.spark.hashonly import HashOnlyIndex, decode_hex, match_hashes
from sentinelle.spark.snapshot import BankSnapshot
from sentinelle.store.db import open_engine

N_BANK = 6000


def _flip(rng: np.random.Generator, h: np.ndarray, k: int) -> np.ndarray:
    bits = np.unpackbits(h)
    bits[rng.choice(256, k, replace=False)] ^= 1
    return np.packbits(bits)


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    rng = np.random.default_rng(14)
    url = f"sqlite:///{tmp_path_factory.mktemp('hashonly') / 'b.db'}"
    store = BankStore(open_engine(url))
    store.create_bank("wide")
    store.create_bank("narrow")
    store.set_threshold("narrow", "pdq", 20)
    pdq = rng.integers(0, 256, (N_BANK, 32), dtype=np.uint8)
    half = N_BANK // 2
    store.add_entries("wide", [EntryIn(signal_type="pdq", hash=bytes(h).hex()) for h in pdq[:half]])
    store.add_entries(
        "narrow", [EntryIn(signal_type="pdq", hash=bytes(h).hex()) for h in pdq[half:]]
    )
    md5 = [hashlib.md5(f"m{i}".encode()).hexdigest() for i in range(500)]
    store.add_entries("wide", [EntryIn(signal_type="md5", hash=h) for h in md5])
    store.add_entries("narrow", [EntryIn(signal_type="md5", hash=h) for h in md5[:10]])  # in both
    snap = BankSnapshot.from_store(store)
    # queries: near copies of bank rows at 0..40 bits, random rows, repeats
    q, src = [], []
    for _ in range(1200):
        j = int(rng.integers(0, N_BANK))
        q.append(_flip(rng, pdq[j], int(rng.integers(0, 41))))
        src.append(j)
    q.extend(rng.integers(0, 256, (800, 32), dtype=np.uint8))
    q.extend(q[:50])  # repeated hashes in one batch
    queries = np.array(q, dtype=np.uint8)
    return {"store": store, "snap": snap, "pdq": pdq, "md5": md5, "queries": queries}


def _truth(banks) -> list[set[tuple[str, int]]]:
    """Brute force over every entry with its bank's threshold: (bank, distance) sets."""
    snap, q = banks["snap"], banks["queries"]
    loaded = snap.signals["pdq"]
    names = {b.id: b.name for b in snap.banks}
    thr = np.array([snap.thresholds[names[int(b)]]["pdq"] for b in loaded.bank_ids])
    bits_b = np.unpackbits(loaded.hashes, axis=1).astype(np.int16)
    out = []
    for row in q:
        d = np.abs(bits_b - np.unpackbits(row).astype(np.int16)).sum(axis=1)
        hit = np.flatnonzero(d <= thr)
        out.append({(int(loaded.entry_ids[i]), int(d[i])) for i in hit})
    return out


@pytest.mark.parametrize("path", ["join", "search"])
def test_recall_is_complete_and_thresholds_are_per_bank(banks, monkeypatch, path) -> None:
    from sentinelle.spark import hashonly

    monkeypatch.setattr(hashonly, "JOIN_MIN_QUERIES", 1 if path == "join" else 10**9)
    idx = HashOnlyIndex(banks["snap"])
    hexes = [bytes(r).hex() for r in banks["queries"]]
    out = idx.match_batch(pa.record_batch({"pdq": hexes})).to_pylist()
    truth = _truth(banks)
    n_true = sum(len(t) for t in truth)
    assert n_true > 500  # the test has real matches to miss
    for row, want in zip(out, truth, strict=True):
        assert {(m["entry_id"], m["distance"]) for m in row["matches"]} == want
        assert row["error"] is None
    assert any(m["bank"] == "narrow" for r in out for m in r["matches"])
    assert all(m["distance"] <= 20 for r in out for m in r["matches"] if m["bank"] == "narrow")


def test_join_and_search_paths_give_identical_batches(banks, monkeypatch) -> None:
    """Large batches take the bulk join, small ones PDQIndex: same rows, same order."""
    from sentinelle.spark import hashonly

    hexes = [bytes(r).hex() for r in banks["queries"]]
    md5 = [banks["md5"][i % 600] if i % 600 < 500 else None for i in range(len(hexes))]
    batch = pa.record_batch({"pdq": hexes, "md5": md5})
    out = {}
    for path, limit in (("join", 1), ("search", 10**9)):
        monkeypatch.setattr(hashonly, "JOIN_MIN_QUERIES", limit)
        out[path] = HashOnlyIndex(banks["snap"]).match_batch(batch)
    assert out["join"].equals(out["search"])
    assert sum(len(m) for m in out["join"].column("matches").to_pylist()) > 500


def test_md5_and_bad_cells(banks) -> None:
    idx = HashOnlyIndex(banks["snap"])
    md5 = banks["md5"]
    b = pa.record_batch(
        {
            "md5": [md5[3].upper(), md5[200], "0" * 32, None, "xyz", md5[3] + "00"],
            "pdq": [None, "g" * 64, bytes(banks["pdq"][0]).hex(), None, None, ""],
        }
    )
    rows = idx.match_batch(b).to_pylist()
    assert sorted(m["bank"] for m in rows[0]["matches"]) == ["narrow", "wide"]  # both banks
    assert [m["signal"] for m in rows[1]["matches"]] == ["md5"]
    assert rows[1]["error"] == {"code": "invalid_hash", "message": "pdq: not 64 hex digits"}
    assert [(m["signal"], m["distance"]) for m in rows[2]["matches"]] == [("pdq", 0)]
    assert rows[3] == {"md5": None, "pdq": None, "matches": [], "error": None}
    assert rows[4]["error"]["code"] == "invalid_hash" and rows[4]["matches"] == []
    assert rows[5]["error"]["message"] == "md5: not 32 hex digits"


def test_decode_hex_handles_sliced_and_large_strings() -> None:
    arr = pa.array(["00ff", "AbCd", None, "zz00", "0"], pa.large_string()).slice(1)
    dig, present, valid = decode_hex(arr, 2)
    assert present.tolist() == [True, False, True, True]
    assert valid.tolist() == [True, False, False, False]
    assert dig[0].tolist() == [0xAB, 0xCD]
    # spaces are not hex (bytes.fromhex would skip them): the cell is invalid
    dig, present, valid = decode_hex(pa.array(["aabb", "cc d", " eef", "0011"]), 2)
    assert valid.tolist() == [True, False, False, True]
    assert dig[[0, 3]].tolist() == [[0xAA, 0xBB], [0x00, 0x11]]


def test_match_hashes_on_spark_equals_direct(spark, banks) -> None:
    hexes = [bytes(r).hex() for r in banks["queries"]]
    df = spark.createDataFrame(
        [(i, h, banks["md5"][i % 600] if i % 600 < 500 else None) for i, h in enumerate(hexes)],
        "id long, pdq string, md5 string",
    ).repartition(4)
    got = {r["id"]: r for r in match_hashes(df, banks["snap"]).collect()}
    assert len(got) == len(hexes)
    truth = _truth(banks)
    for i, want in enumerate(truth):
        pdq = {(m["entry_id"], m["distance"]) for m in got[i]["matches"] if m["signal"] == "pdq"}
        assert pdq == want
        n_md5 = sum(m["signal"] == "md5" for m in got[i]["matches"])
        assert n_md5 == (0 if i % 600 >= 500 else (2 if i % 600 < 10 else 1))


def test_index_is_built_once_per_executor_process(spark, banks) -> None:
    """Many tasks, few Python workers: each worker builds the index once."""
    from sentinelle.spark.session import broadcast_snapshot

    bc = broadcast_snapshot(spark, banks["snap"])
    fp = banks["snap"].fingerprint

    def probe(it):
        import os

        from sentinelle.spark import cache

        for batch in it:
            cache.hash_index_for(bc.value)
            cache.matcher_for(bc.value)
            counts = cache.build_counts()
            yield pa.record_batch(
                {
                    "pid": [os.getpid()] * batch.num_rows,
                    "idx": [counts.get(f"hashonly:{fp}", 0)] * batch.num_rows,
                    "mat": [counts.get(f"matcher:{fp}", 0)] * batch.num_rows,
                }
            )

    rows = spark.range(0, 64, numPartitions=16).mapInArrow(probe, "pid long, idx long, mat long")
    got = rows.collect()
    assert len(got) == 64
    pids = {r["pid"] for r in got}
    assert len(pids) < 16  # workers were reused across tasks
    assert {(r["idx"], r["mat"]) for r in got} == {(1, 1)}


def test_no_hash_column_is_refused(spark, banks) -> None:
    df = spark.createDataFrame([("x",)], "name string")
    with pytest.raises(ValueError, match="no hash column"):
        match_hashes(df, banks["snap"])


def test_rebatch_keeps_rows_and_order() -> None:
    from sentinelle.spark.hashonly import rebatch

    parts = [pa.record_batch({"pdq": [f"{i:064x}" for i in range(s, s + k)]}) for s, k in
             ((0, 3), (3, 5), (8, 1), (9, 20), (29, 2))]  # fmt: skip
    out = list(rebatch(iter(parts), 8))
    assert [b.num_rows for b in out] == [8, 21, 2]
    assert [v for b in out for v in b.column("pdq").to_pylist()] == [f"{i:064x}" for i in range(31)]
    assert list(rebatch(iter([]), 8)) == []
