"""PDQ index benchmark: sentinelle PDQIndex vs threatexchange PDQIndex (faiss MIH).

Run by hand (several minutes at 10M)::

    .venv/bin/python bench/bench_index.py                  # 1M and 10M, both data kinds
    .venv/bin/python bench/bench_index.py --sizes 1000000  # quicker
    .venv/bin/python bench/bench_index.py --chunkings      # also compare chunk layouts at 1M

Every configuration (implementation x size x data kind) runs in a fresh
subprocess, single-threaded (NUMBA/OMP/MKL/OPENBLAS threads = 1 and
``faiss.omp_set_num_threads(1)``), so its RSS delta is clean. Measured:

- build: seconds to index an (n, 32) uint8 array (ours) / ``(hex, entry)``
  pairs (peer: how HMA feeds it);
- memory: RSS delta over the build (includes everything the index keeps);
- single-query latency (p50 / p99) and lookups/s = queries / total time,
  one query per call (``search(q[i:i+1])`` vs ``PDQIndex.query(hex)``);
- batch lookups/s (one call with all queries; peer: its batch method);
- recall and false positives vs numpy brute force on a sample of queries.

Queries: half near-duplicates of indexed hashes (exactly k bits flipped, k
uniform in 0..31), half uniform random (almost never match). Clustered data:
n/100 random centres, each row a centre with 0..10 random bits flipped.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
THREAD_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}
MAX_D = 31


# ----------------------------------------------------------------------------- data


def flip_random_bits(rows: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> None:
    """In place: flip exactly counts[i] distinct random bits of rows[i]."""
    for start in range(0, len(rows), 200_000):
        sl = slice(start, start + 200_000)
        cnt = counts[sl]
        order = np.argsort(rng.random((len(cnt), 256)), axis=1)
        sel = np.arange(256)[None, :] < cnt[:, None]
        bits = np.zeros((len(cnt), 256), dtype=np.uint8)
        np.put_along_axis(bits, order, sel.astype(np.uint8), axis=1)
        rows[sl] ^= np.packbits(bits, axis=1)


def make_data(kind: str, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.integers(0, 256, (n, 32), dtype=np.uint8)
    centres = rng.integers(0, 256, (max(1, n // 100), 32), dtype=np.uint8)
    data = centres[rng.integers(0, len(centres), n)]
    # few flips: flip bits of up to 10 random positions, vectorised by byte
    for _ in range(10):
        hit = rng.random(n) < 0.5
        pos = rng.integers(0, 256, n)
        data[hit, pos[hit] // 8] ^= (1 << (pos[hit] % 8)).astype(np.uint8)
    return data


def make_queries(data: np.ndarray, nq: int, seed: int = 1) -> np.ndarray:
    """The first ``nq`` of a fixed pool, so every implementation sees the same queries."""
    pool = max(nq, 5000)
    return _query_pool(data, pool, seed)[:nq]


def _query_pool(data: np.ndarray, nq: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    near = data[rng.integers(0, len(data), nq // 2)].copy()
    flip_random_bits(near, rng.integers(0, MAX_D + 1, len(near)), rng)
    rand = rng.integers(0, 256, (nq - nq // 2, 32), dtype=np.uint8)
    q = np.concatenate([near, rand])
    return q[rng.permutation(len(q))]


def brute_force(data: np.ndarray, queries: np.ndarray) -> list[set[int]]:
    words = data.view(np.uint64)
    out = []
    for q in queries.view(np.uint64):
        d = np.zeros(len(words), dtype=np.uint16)
        for w in range(4):
            d += np.bitwise_count(words[:, w] ^ q[w]).astype(np.uint16)
        out.append(set(np.nonzero(d <= MAX_D)[0].tolist()))
    return out


def rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


# ----------------------------------------------------------------------------- worker


def worker(impl: str, kind: str, n: int, nq: int, n_recall: int, chunking: str | None) -> dict:
    data = make_data(kind, n)
    queries = make_queries(data, nq)
    ids = np.arange(n, dtype=np.int64)
    res: dict = {"impl": impl, "kind": kind, "n": n, "queries": nq}
    if impl == "ours":
        from sentinelle.index.pdq_index import DEFAULT_CHUNK_BITS, PDQIndex

        bits = tuple(json.loads(chunking)) if chunking else DEFAULT_CHUNK_BITS
        res["chunking"] = f"{len(bits)} chunks ({'/'.join(map(str, sorted(set(bits))))} bits)"
        warm = PDQIndex(bits)  # compile (or load cached) kernels outside the timings
        warm.add(np.arange(5000), data[:5000])
        warm.search(queries[:2])
        del warm
        gc.collect()
        r0 = rss()
        t0 = time.perf_counter()
        idx = PDQIndex(bits)
        idx.add(ids, data)
        res["build_s"] = time.perf_counter() - t0
        gc.collect()
        res["rss_mb"] = (rss() - r0) / 2**20
        res["array_mb"] = idx.stats()["nbytes"] / 2**20

        def one(i: int) -> set[int]:
            return {e for e, _ in idx.search(queries[i : i + 1], MAX_D)[0]}

        def batch() -> None:
            idx.search(queries, MAX_D)
    else:
        import faiss
        from threatexchange.signal_type.pdq.pdq_index import PDQIndex as PeerIndex

        faiss.omp_set_num_threads(1)
        res["chunking"] = "faiss IndexBinaryMultiHash 16 x 16 bits"
        hexes = [bytes(q).hex() for q in queries]
        gc.collect()
        r0 = rss()
        t0 = time.perf_counter()
        idx = PeerIndex((bytes(data[i]).hex(), i) for i in range(n))
        res["build_s"] = time.perf_counter() - t0
        gc.collect()
        res["rss_mb"] = (rss() - r0) / 2**20
        res["array_mb"] = None

        def one(i: int) -> set[int]:
            return {m.metadata for m in idx.query(hexes[i])}

        def batch() -> None:
            idx.index.search_with_distance_in_result(hexes, MAX_D)

    lat = np.empty(nq)
    found: list[set[int]] = []
    for i in range(nq):
        t0 = time.perf_counter()
        got = one(i)
        lat[i] = time.perf_counter() - t0
        if i < n_recall:
            found.append(got)
    res["lookups_s"] = nq / lat.sum()
    res["p50_us"] = float(np.percentile(lat, 50) * 1e6)
    res["p99_us"] = float(np.percentile(lat, 99) * 1e6)
    t0 = time.perf_counter()
    batch()
    res["batch_lookups_s"] = nq / (time.perf_counter() - t0)
    truth = brute_force(data, queries[:n_recall])
    n_true = sum(len(t) for t in truth)
    n_hit = sum(len(t & f) for t, f in zip(truth, found, strict=True))
    res["recall"] = n_hit / n_true if n_true else 1.0
    res["false_pos"] = sum(len(f - t) for t, f in zip(truth, found, strict=True))
    res["recall_queries"] = n_recall
    res["true_matches"] = n_true
    return res


# ----------------------------------------------------------------------------- driver


def run_config(impl, kind, n, nq, n_recall, chunking=None) -> dict:
    cmd = [sys.executable, __file__, "--worker", impl, kind, str(n), str(nq), str(n_recall)]
    if chunking:
        cmd += ["--chunking-json", chunking]
    env = {**os.environ, **THREAD_ENV}
    print(f"... {impl} {kind} n={n:,} queries={nq}", flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return {"impl": impl, "kind": kind, "n": n, "error": proc.stderr.strip()[-300:]}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print("    " + json.dumps(res), flush=True)
    return res


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(rows: list[dict]) -> str:
    head = (
        "| n | data | index | build s | RSS delta MiB | lookups/s (1 per call) | p50 us | p99 us "
        "| batch lookups/s | recall (queries, true matches) | false pos |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['n']:,} | {r['kind']} | {r['impl']} | error: {r['error']} |")
            continue
        name = "sentinelle" if r["impl"] == "ours" else "threatexchange PDQIndex"
        lines.append(
            f"| {r['n']:,} | {r['kind']} | {name}: {r['chunking']} | {r['build_s']:.1f} "
            f"| {r['rss_mb']:.0f} | {r['lookups_s']:,.0f} | {r['p50_us']:.0f} "
            f"| {r['p99_us']:.0f} | {r['batch_lookups_s']:,.0f} "
            f"| {r['recall']:.4f} ({r['recall_queries']}, {r['true_matches']}) "
            f"| {r['false_pos']} |"
        )
    return head + "\n".join(lines) + "\n"


def verdicts(rows: list[dict]) -> str:
    out = []
    by = {
        (r["impl"], r["kind"], r["n"]): r for r in rows if "error" not in r and not r.get("variant")
    }
    for (impl, kind, n), ours in sorted(by.items()):
        peer = by.get(("peer", kind, n))
        if impl != "ours" or peer is None:
            continue
        speed = ours["lookups_s"] / peer["lookups_s"]
        batch = ours["batch_lookups_s"] / peer["batch_lookups_s"]
        mem = ours["rss_mb"] / peer["rss_mb"]
        exact = ours["recall"] == 1.0 and ours["false_pos"] == 0
        out.append(
            f"- n={n:,} {kind}: speed {speed:.1f}x single-query, {batch:.1f}x batch "
            f"(target >= 10x: **{'met' if speed >= 10 else 'not met'}**); memory "
            f"{mem:.2f} of peer (target <= 0.5: **{'met' if mem <= 0.5 else 'not met'}**); "
            f"recall {ours['recall']:.4f}, false positives {ours['false_pos']} (target 100%: "
            f"**{'met' if exact else 'not met'}**)"
        )
        if n >= 10_000_000:
            ok = ours["build_s"] < 60
            out.append(
                f"- n={n:,} {kind}: start-up build {ours['build_s']:.1f} s "
                f"(target well under a minute: **{'met' if ok else 'not met'}**)"
            )
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--kinds", default="uniform,clustered")
    ap.add_argument("--queries", type=int, default=5000, help="queries for our index")
    ap.add_argument("--peer-queries", default="1000000:2000,10000000:300")
    ap.add_argument("--recall-queries", default="1000000:400,10000000:100")
    ap.add_argument("--chunkings", action="store_true", help="also compare chunk layouts at 1M")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    ap.add_argument("--chunking-json", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        impl, kind, n, nq, nr = args.worker
        res = worker(impl, kind, int(n), int(nq), int(nr), args.chunking_json)
        print(json.dumps(res))
        return

    OUT.mkdir(exist_ok=True)
    peer_q = {int(k): int(v) for k, v in (p.split(":") for p in args.peer_queries.split(","))}
    rec_q = {int(k): int(v) for k, v in (p.split(":") for p in args.recall_queries.split(","))}
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        for kind in args.kinds.split(","):
            nr = rec_q.get(n, 200)
            rows.append(run_config("ours", kind, n, args.queries, min(nr, args.queries)))
            if not args.no_peer:
                pq = peer_q.get(n, 1000)
                rows.append(run_config("peer", kind, n, pq, min(nr, pq)))
    if args.chunkings:
        for bits in ([16] * 16, [20] * 9 + [19] * 4, [22] * 4 + [21] * 8):
            row = run_config("ours", "uniform", 1_000_000, args.queries, 200, json.dumps(bits))
            row["variant"] = True  # layout comparison only: not used for the verdicts
            rows.append(row)

    body = (
        "Single thread (NUMBA_NUM_THREADS=OMP_NUM_THREADS=1, faiss.omp_set_num_threads(1)); "
        "each row a fresh subprocess. max_distance 31. Queries: half near-duplicates "
        "(0..31 bits flipped), half random; the peer uses fewer queries at large n "
        "(column 'recall' shows the query sample checked against numpy brute force). "
        "Clustered: n/100 centres, rows with up to 10 flipped bits.\n\n"
        + table(rows)
        + "\n"
        + verdicts(rows)
    )
    print(body)
    (OUT / "bench_index.json").write_text(json.dumps(rows, indent=1))
    if not args.no_append:
        sys.path.insert(0, str(BENCH))
        from _machine import append_results

        append_results("PDQ index: sentinelle PDQIndex vs threatexchange PDQIndex", body)


if __name__ == "__main__":
    main()
