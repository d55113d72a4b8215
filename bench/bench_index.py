"""PDQ index benchmark: sentinelle PDQIndex vs threatexchange PDQIndex (faiss MIH).

Run by hand (several minutes at 10M)::

    .venv/bin/python bench/bench_index.py                  # 1M and 10M, both data kinds
    .venv/bin/python bench/bench_index.py --sizes 1000000  # quicker
    .venv/bin/python bench/bench_index.py --chunkings      # also compare chunk layouts at 1M

Each implementation is built in its own fresh, single-threaded subprocess
(NUMBA/OMP/MKL/OPENBLAS threads = 1 and ``faiss.omp_set_num_threads(1)``), so
its RSS delta is clean. The two subprocesses stay alive and the driver then
alternates short query rounds between them (``--rounds``, default 20): the
machine is shared, and timing all of one index and then all of the other
gave each a different background load and ratios off by up to ~1.5x. Speed
is reported as the median of per-round rates and the per-round ratio (median
and min). Measured:

- build: seconds to index an (n, 32) uint8 array (ours) / ``(hex, entry)``
  pairs (peer: how HMA feeds it);
- memory: peak RSS growth during the build (``ru_maxrss`` after the build minus
  ``ru_maxrss`` just before it, the high-water mark first reset to the current RSS
  through ``/proc/self/clear_refs``), and the RSS delta kept after it;
- single-query latency (p50 / p99, all rounds) and lookups/s per round,
  one query per call (``search(q[i:i+1])`` vs ``PDQIndex.query(hex)``);
- batch lookups/s (one call per round with a slice of queries; peer: its batch
  method);
- recall and false positives vs numpy brute force on a sample of queries.

Queries: half near-duplicates of indexed hashes (exactly k bits flipped, k
uniform in 0..31), half uniform random (almost never match). Clustered data:
n/100 random centres, each row a centre with 0..10 random bits flipped.
"""

from __future__ import annotations

import argparse
import contextlib
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
    pool = max(nq, 10_000)
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


def peak_start() -> int:
    """``ru_maxrss`` (bytes) at the start of a build, the high-water mark reset first.

    Linux lets a process reset its peak RSS to the current RSS (``5`` into
    ``/proc/self/clear_refs``); without it the peak of the data preparation would hide
    a smaller build peak.
    """
    import resource

    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_growth_mb(start: int) -> float:
    import resource

    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - start) / 2**20


# ----------------------------------------------------------------------------- worker


class Built:
    """One implementation's index, built in this (fresh) process, plus its query paths."""

    def __init__(self, impl: str, kind: str, n: int, nq: int, chunking: str | None) -> None:
        data = make_data(kind, n)
        self.data = data
        self.queries = make_queries(data, nq)
        ids = np.arange(n, dtype=np.int64)
        self.info: dict = {"impl": impl, "kind": kind, "n": n}
        if impl == "ours":
            from sentinelle.index.pdq_index import DEFAULT_CHUNK_BITS, PDQIndex

            bits = tuple(json.loads(chunking)) if chunking else DEFAULT_CHUNK_BITS
            self.info["chunking"] = (
                f"{len(bits)} chunks ({'/'.join(map(str, sorted(set(bits))))} bits)"
            )
            forced = bits if chunking else None  # default: the production layout choice
            warm = PDQIndex(forced)  # compile (or load cached) kernels outside the timings
            warm.add(np.arange(5000), data[:5000])
            warm.search(self.queries[:2])
            del warm
            gc.collect()
            r0 = rss()
            p0 = peak_start()
            t0 = time.perf_counter()
            idx = PDQIndex(forced)
            idx.add(ids, data)
            self.info["build_s"] = time.perf_counter() - t0
            self.info["peak_mb"] = peak_growth_mb(p0)
            gc.collect()
            self.info["rss_mb"] = (rss() - r0) / 2**20
            self.info["array_mb"] = idx.stats()["nbytes"] / 2**20
            q = self.queries

            def one(i: int) -> set[int]:
                return {e for e, _ in idx.search(q[i : i + 1], MAX_D)[0]}

            def batch(lo: int, hi: int) -> None:
                idx.search(q[lo:hi], MAX_D)
        else:
            import faiss
            from threatexchange.signal_type.pdq.pdq_index import PDQIndex as PeerIndex

            faiss.omp_set_num_threads(1)
            self.info["chunking"] = "faiss IndexBinaryMultiHash 16 x 16 bits"
            hexes = [bytes(q).hex() for q in self.queries]
            gc.collect()
            r0 = rss()
            p0 = peak_start()
            t0 = time.perf_counter()
            idx = PeerIndex((bytes(data[i]).hex(), i) for i in range(n))
            self.info["build_s"] = time.perf_counter() - t0
            self.info["peak_mb"] = peak_growth_mb(p0)
            gc.collect()
            self.info["rss_mb"] = (rss() - r0) / 2**20
            self.info["array_mb"] = None

            def one(i: int) -> set[int]:
                return {m.metadata for m in idx.query(hexes[i])}

            def batch(lo: int, hi: int) -> None:
                idx.index.search_with_distance_in_result(hexes[lo:hi], MAX_D)

        self.one, self.batch = one, batch
        self.found: dict[int, set[int]] = {}

    def single_round(self, lo: int, hi: int, keep_below: int) -> dict:
        """One query per call over queries[lo:hi]; returns the per-call latencies."""
        lat = []
        for i in range(lo, hi):
            t0 = time.perf_counter()
            got = self.one(i)
            lat.append(time.perf_counter() - t0)
            if i < keep_below:
                self.found[i] = got
        return {"lat": lat}

    def batch_round(self, lo: int, hi: int) -> dict:
        t0 = time.perf_counter()
        self.batch(lo, hi)
        return {"seconds": time.perf_counter() - t0}

    def recall(self, n_recall: int) -> dict:
        """Recall and false positives of the single-query answers vs numpy brute force."""
        qs = sorted(i for i in self.found if i < n_recall)
        truth = brute_force(self.data, self.queries[qs])
        found = [self.found[i] for i in qs]
        n_true = sum(len(t) for t in truth)
        n_hit = sum(len(t & f) for t, f in zip(truth, found, strict=True))
        return {
            "recall": n_hit / n_true if n_true else 1.0,
            "false_pos": sum(len(f - t) for t, f in zip(truth, found, strict=True)),
            "recall_queries": len(qs),
            "true_matches": n_true,
        }


def serve(impl: str, kind: str, n: int, nq: int, chunking: str | None) -> None:
    """Long-lived worker: build, report, then answer one JSON command per stdin line."""
    built = Built(impl, kind, n, nq, chunking)
    print(json.dumps(built.info), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "single":
            res = built.single_round(cmd["lo"], cmd["hi"], cmd["keep_below"])
        elif op == "batch":
            res = built.batch_round(cmd["lo"], cmd["hi"])
        elif op == "recall":
            res = built.recall(cmd["n"])
        else:
            return
        print(json.dumps(res), flush=True)


# ----------------------------------------------------------------------------- driver


class Worker:
    """Driver side of :func:`serve`: a subprocess spoken to with JSON lines."""

    def __init__(self, impl: str, kind: str, n: int, nq: int, chunking: str | None) -> None:
        cmd = [sys.executable, __file__, "--serve", impl, kind, str(n), str(nq)]
        if chunking:
            cmd += ["--chunking-json", chunking]
        env = {**os.environ, **THREAD_ENV}
        self.proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise RuntimeError(f"worker exited with {self.proc.wait()}")
        return json.loads(line)

    def ask(self, **cmd) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def slices(total: int, rounds: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, total, rounds + 1).astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def run_pair(
    kind: str, n: int, nq_ours: int, nq_peer: int, n_recall: int, rounds: int, peer: bool
) -> list[dict]:
    """Build both indexes in two fresh processes, then alternate query rounds between them.

    Round r: ours answers queries[lo_r:hi_r] one per call, the peer its own
    slice (fewer queries: it is slower, so both take similar wall time),
    which of the two goes first alternating; then each runs one batch call.
    Per-round lookups/s and the per-round ratio see the same background load.
    """
    print(f"... {kind} n={n:,}: building ours", flush=True)
    impls = {"ours": Worker("ours", kind, n, nq_ours, None)}
    print("    " + json.dumps(impls["ours"].info), flush=True)
    if peer:
        print(f"... {kind} n={n:,}: building peer", flush=True)
        impls["peer"] = Worker("peer", kind, n, nq_peer, None)
        print("    " + json.dumps(impls["peer"].info), flush=True)
    nq = {"ours": nq_ours, "peer": nq_peer}
    # Single-query rounds use the first 2/3 of each query list, batch rounds the rest.
    single = {k: slices(nq[k] * 2 // 3, rounds) for k in impls}
    batch = {k: slices(nq[k] - nq[k] * 2 // 3, rounds) for k in impls}
    lat: dict[str, list[float]] = {k: [] for k in impls}
    rate: dict[str, list[float]] = {k: [] for k in impls}
    brate: dict[str, list[float]] = {k: [] for k in impls}
    names = list(impls)
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for k in order:
            lo, hi = single[k][r]
            got = impls[k].ask(op="single", lo=lo, hi=hi, keep_below=n_recall)["lat"]
            lat[k] += got
            rate[k].append(len(got) / sum(got))
        for k in order:
            lo, hi = batch[k][r]
            off = nq[k] * 2 // 3
            sec = impls[k].ask(op="batch", lo=off + lo, hi=off + hi)["seconds"]
            brate[k].append((hi - lo) / sec)
        print(
            f"    round {r + 1}/{rounds}: "
            + ", ".join(f"{k} {rate[k][-1]:,.0f}/s (batch {brate[k][-1]:,.0f}/s)" for k in names),
            flush=True,
        )
    rows = []
    for k, w in impls.items():
        res = dict(w.info)
        res.update(w.ask(op="recall", n=n_recall))
        w.close()
        arr = np.array(lat[k])
        res["queries"] = len(arr)
        res["rounds"] = rounds
        res["lookups_s"] = float(np.median(rate[k]))
        res["batch_lookups_s"] = float(np.median(brate[k]))
        res["p50_us"] = float(np.percentile(arr, 50) * 1e6)
        res["p99_us"] = float(np.percentile(arr, 99) * 1e6)
        res["round_rates"] = rate[k]
        res["round_batch_rates"] = brate[k]
        rows.append(res)
        print("    " + json.dumps({x: y for x, y in res.items() if "round" not in x}), flush=True)
    if peer:
        ours, theirs = rows
        ratio = [a / b for a, b in zip(ours["round_rates"], theirs["round_rates"], strict=True)]
        bratio = [
            a / b
            for a, b in zip(ours["round_batch_rates"], theirs["round_batch_rates"], strict=True)
        ]
        ours["ratio_med"], ours["ratio_min"] = float(np.median(ratio)), float(min(ratio))
        ours["bratio_med"], ours["bratio_min"] = float(np.median(bratio)), float(min(bratio))
    return rows


def run_alone(kind: str, n: int, nq: int, n_recall: int, rounds: int, chunking: str) -> dict:
    """Our index alone with a forced chunk layout (layout comparison only)."""
    w = Worker("ours", kind, n, nq, chunking)
    lats: list[float] = []
    rates, brates = [], []
    for (lo, hi), (blo, bhi) in zip(
        slices(nq * 2 // 3, rounds), slices(nq - nq * 2 // 3, rounds), strict=True
    ):
        got = w.ask(op="single", lo=lo, hi=hi, keep_below=n_recall)["lat"]
        lats += got
        rates.append(len(got) / sum(got))
        off = nq * 2 // 3
        brates.append((bhi - blo) / w.ask(op="batch", lo=off + blo, hi=off + bhi)["seconds"])
    res = dict(w.info)
    res.update(w.ask(op="recall", n=n_recall))
    w.close()
    arr = np.array(lats)
    res.update(
        queries=len(arr),
        rounds=rounds,
        lookups_s=float(np.median(rates)),
        batch_lookups_s=float(np.median(brates)),
        p50_us=float(np.percentile(arr, 50) * 1e6),
        p99_us=float(np.percentile(arr, 99) * 1e6),
        variant=True,
    )
    print("    " + json.dumps(res), flush=True)
    return res


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(rows: list[dict]) -> str:
    head = (
        "| n | data | index | build s | peak RSS growth in build MiB | RSS kept MiB "
        "| lookups/s (1 per call, median of rounds) "
        "| ours / peer per round, median (min) | p50 us | p99 us | batch lookups/s "
        "| batch ours / peer, median (min) | recall (queries, true matches) | false pos |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        name = "sentinelle" if r["impl"] == "ours" else "threatexchange PDQIndex"
        ratio = bratio = "-"
        if "ratio_med" in r:
            ratio = f"**{r['ratio_med']:.1f}x** ({r['ratio_min']:.1f}x)"
            bratio = f"{r['bratio_med']:.1f}x ({r['bratio_min']:.1f}x)"
        lines.append(
            f"| {r['n']:,} | {r['kind']} | {name}: {r['chunking']} | {r['build_s']:.1f} "
            f"| {r['peak_mb']:.0f} | {r['rss_mb']:.0f} | {r['lookups_s']:,.0f} | {ratio} "
            f"| {r['p50_us']:.0f} "
            f"| {r['p99_us']:.0f} | {r['batch_lookups_s']:,.0f} | {bratio} "
            f"| {r['recall']:.4f} ({r['recall_queries']}, {r['true_matches']}) "
            f"| {r['false_pos']} |"
        )
    return head + "\n".join(lines) + "\n"


def verdicts(rows: list[dict]) -> str:
    out = []
    by = {(r["impl"], r["kind"], r["n"]): r for r in rows if not r.get("variant")}
    for (impl, kind, n), ours in sorted(by.items(), key=lambda kv: (kv[0][2], kv[0][1])):
        peer = by.get(("peer", kind, n))
        if impl != "ours" or peer is None:
            continue
        mem = ours["peak_mb"] / peer["peak_mb"]
        exact = ours["recall"] == 1.0 and ours["false_pos"] == 0
        out.append(
            f"- n={n:,} {kind}: speed {ours['ratio_med']:.1f}x single-query (median per-round "
            f"ratio, min {ours['ratio_min']:.1f}x; {ours['lookups_s']:,.0f} vs "
            f"{peer['lookups_s']:,.0f} lookups/s), batch {ours['bratio_med']:.1f}x "
            f"(target >= 10x: **{'met' if ours['ratio_med'] >= 10 else 'not met'}**); peak "
            f"build memory {ours['peak_mb']:,.0f} vs {peer['peak_mb']:,.0f} MiB = {mem:.2f} of "
            f"peer (target <= 0.3: **{'met' if mem <= 0.3 else 'not met'}**); "
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
    ap.add_argument("--rounds", type=int, default=20, help="interleaved query rounds")
    ap.add_argument("--queries", default="1000000:9000,10000000:3000", help="ours, per size")
    ap.add_argument("--peer-queries", default="1000000:1500,10000000:300")
    ap.add_argument("--recall-queries", default="1000000:400,10000000:100")
    ap.add_argument("--chunkings", action="store_true", help="also compare chunk layouts at 1M")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--chunking-json", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        impl, kind, n, nq = args.serve
        serve(impl, kind, int(n), int(nq), args.chunking_json)
        return

    def per_size(spec: str) -> dict[int, int]:
        return {int(k): int(v) for k, v in (p.split(":") for p in spec.split(","))}

    OUT.mkdir(exist_ok=True)
    our_q, peer_q = per_size(args.queries), per_size(args.peer_queries)
    rec_q = per_size(args.recall_queries)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        for kind in args.kinds.split(","):
            nq, pq = our_q.get(n, 3000), peer_q.get(n, 300)
            # recall is checked on queries both sides answered one per call
            nr = min(rec_q.get(n, 100), pq * 2 // 3, nq * 2 // 3)
            rows += run_pair(kind, n, nq, pq, nr, args.rounds, not args.no_peer)
    if args.chunkings:
        for bits in ([16] * 16, [20] * 9 + [19] * 4, [22] * 4 + [21] * 8):
            rows.append(run_alone("uniform", 1_000_000, 6000, 200, args.rounds, json.dumps(bits)))

    body = (
        "Single thread (NUMBA_NUM_THREADS=OMP_NUM_THREADS=1, faiss.omp_set_num_threads(1)), "
        "max_distance 31. Each index is built in its own fresh subprocess; peak RSS growth "
        "= ru_maxrss after the build minus ru_maxrss just before it (high-water mark reset "
        "to the current RSS via /proc/self/clear_refs), RSS kept = RSS delta after it; "
        "the two long-lived subprocesses are then driven **alternately**: "
        f"{args.rounds} rounds, each round ours answers a slice of its queries one per "
        "call, the peer a (smaller) slice of the same query list, the order alternating, "
        "then one batch call each. lookups/s = median of the per-round rates; the ratio is "
        "computed per round (same background load for both) and reported as median (min). "
        "Queries: half near-duplicates (0..31 bits flipped), half random. Recall: the "
        "single-query answers to the first queries vs numpy brute force. Clustered: n/100 "
        "centres, rows with up to 10 flipped bits.\n\n" + table(rows) + "\n" + verdicts(rows)
    )
    print(body)
    (OUT / "bench_index.json").write_text(json.dumps(rows, indent=1))
    if not args.no_append:
        sys.path.insert(0, str(BENCH))
        from _machine import append_results

        append_results("PDQ index: sentinelle PDQIndex vs threatexchange PDQIndex", body)


if __name__ == "__main__":
    main()
