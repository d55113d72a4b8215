"""Sentinelle on Spark beside plain ``sentinelle scan``, and hash-only matching speed.

Run by hand (about 15 minutes on a busy 2-core machine)::

    .venv/bin/python bench/bench_spark.py [--files 500] [--rounds 2] [--pdq-rows 200000]
                                          [--md5-rows 10000000] [--blas-threads 1] [--no-append]

**Files per second.** The same folder of JPEG photos (BSDS500, ~480x320) is hashed and
matched against a bank of 10,000 random PDQ hashes + 10 of the photos by four
long-lived, warmed-up processes: ``run_scan`` with ``workers=1`` and ``workers=2``
(what ``sentinelle scan DIR --workers N --no-provenance --rescan`` runs: a fresh
worker pool per scan, JSONL written; ``--no-provenance`` because the Spark path
computes no provenance verdict) and ``hash_paths`` on Spark ``local[1]`` and
``local[2]`` (``noop`` sink, one task per core: a backfill's tasks hold 1,000 files,
so Spark's per-task cost, ~0.3 s on this loaded machine, is amortised as in a real
job). Process start-up (imports, Spark session) is outside the timings for all
four, and each process first runs one untimed job on the whole folder (the JVM's
JIT warms up over the first ~1,000 files; reported beside the rates, with the first
job's cold start); per-job overhead (the scan's worker pool, Spark's job scheduling)
is inside the rates, and a job of 8 files per round shows it alone. ``--repeat K``
adds K-1 re-encoded copies of each photo (a larger folder, the fixed costs
amortised as over a backfill's tasks).
The methods run interleaved, the order rotating per round, so they share the
background load; the ratio local[2] / scan --workers 2 is taken per round (median, min).
PySpark starts its Python workers with ``OMP_NUM_THREADS=1``; a scan worker's OpenBLAS
would otherwise use every core for PDQ's matrix products, so by default
(``--blas-threads 1``) the scan processes get the same single BLAS thread and both
sides use the cores they are given; ``--blas-threads 0`` leaves scan as a user runs it.

**Hash-only.** A bank of 1,000,000 random PDQ and 1,000,000 MD5 hashes (a
:class:`BankSnapshot` made in memory). One core (``NUMBA_NUM_THREADS=1``):
``HashOnlyIndex.match_batch`` (what each executor runs per Arrow batch) on
batches of ``hashonly.BATCH_ROWS`` (65,536) rows: MD5 rows (``--md5-rows``, 10M by
default) and PDQ rows (``--pdq-rows``; 10% near copies of bank hashes at 0..31 bits,
the rest random);
recall of the near copies against numpy brute force. Then Spark ``local[1]``
end to end (``match_hashes`` on generated rows, ``noop`` sink) for the same MD5
count and the PDQ count.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from _machine import OUT_DIR, append_results, load_average  # noqa: E402

SHARED = BENCH.parents[0].parent / "shared"
PHOTOS = SHARED / "corpora" / "photos" / "bsds500"
PY = sys.executable
N0 = 8  # files of the warm-up folder


# ----------------------------------------------------------------------------- data


def make_world(root: Path, n_files: int, repeat: int = 1) -> tuple[str, Path, Path]:
    """The bank and two folders: ``all`` (``n_files`` photos, plus ``repeat - 1``
    re-encoded copies of each at JPEG quality 94, 93...: distinct files of the same
    size class) and ``small`` (the first :data:`N0`, for warm-up and the per-job cost)."""
    from sentinelle.banks import BankStore
    from sentinelle.formats.enroll import entries_from_paths
    from sentinelle.formats.entry import EntryIn
    from sentinelle.store.db import open_engine

    if root.exists():
        shutil.rmtree(root)
    big, small = root / "all", root / "small"
    big.mkdir(parents=True)
    small.mkdir()
    photos = sorted(PHOTOS.glob("*.jpg"))[:n_files]
    if len(photos) < n_files:
        raise SystemExit(f"need {n_files} photos in {PHOTOS}")
    for p in photos:
        shutil.copy(p, big / p.name)
    if repeat > 1:
        from PIL import Image

        for p in photos:
            with Image.open(p) as im:
                im.load()
                for r in range(1, repeat):
                    im.save(big / f"r{r}_{p.name}", "JPEG", quality=95 - r)
    for p in photos[:N0]:
        shutil.copy(p, small / p.name)
    url = f"sqlite:///{root / 'bank.db'}"
    store = BankStore(open_engine(url))
    store.create_bank("bench")
    rng = np.random.default_rng(7)
    rand = rng.integers(0, 256, (10_000, 32), dtype=np.uint8)
    store.add_entries("bench", [EntryIn(signal_type="pdq", hash=bytes(h).hex()) for h in rand])
    enrolled, _ = entries_from_paths(photos[:10])
    store.add_entries("bench", enrolled)
    return url, big, small


# ----------------------------------------------------------------------------- children


def child(kind: str, arg: str, url: str, big: str, small: str) -> None:
    """Long-lived process: warm up on ``small``, then time one job on ``big`` per stdin line.

    ``kind`` ``spark``: ``hash_paths`` on a session with master ``arg``, ``noop`` sink.
    ``kind`` ``scan``: ``run_scan`` (what ``sentinelle scan --workers arg --no-provenance
    --rescan`` runs: a fresh worker pool per scan, JSONL written).
    """
    os.environ["SENTINELLE_DATABASE_URL"] = url
    from sentinelle.banks import BankStore
    from sentinelle.store.db import open_engine

    if kind == "spark":
        from sentinelle.spark.media import hash_paths
        from sentinelle.spark.session import make_session
        from sentinelle.spark.snapshot import BankSnapshot

        spark = make_session(arg, "bench", {"spark.ui.enabled": "false"})
        spark.sparkContext.setLogLevel("ERROR")
        snap = BankSnapshot.from_store(BankStore(open_engine(url)))
        cores = int(arg[6:-1]) if arg.startswith("local[") else 2

        def job(folder: str) -> None:
            paths = sorted(str(p) for p in Path(folder).iterdir())
            rdd = spark.sparkContext.parallelize([(p,) for p in paths], cores)  # no shuffle
            df = spark.createDataFrame(rdd, "path string")
            hash_paths(df, snap).write.format("noop").mode("overwrite").save()

    else:
        from sentinelle.cli.scan_cmd import run_scan

        tmp = Path(big).parent / f"jsonl-{os.getpid()}"
        tmp.mkdir(exist_ok=True)

        def job(folder: str) -> None:
            out = tmp / "scan.jsonl"
            run_scan([Path(folder)], out, workers=int(arg), rescan=True, provenance=False,
                     show_progress=False, database_url=url)  # fmt: skip
            assert sum(1 for _ in out.open()) == len(list(Path(folder).iterdir()))

    t = time.perf_counter()
    job(small)  # cold start: imports, workers, matcher, numba kernels
    cold = time.perf_counter() - t
    t = time.perf_counter()
    job(big)  # warm-up on the whole folder: the JVM's JIT, every worker a task will use
    first = time.perf_counter() - t
    print("ready", json.dumps([cold, first]), flush=True)
    for line in sys.stdin:  # "big" or "small": the folder of this job
        c = tree_cpu()
        t = time.perf_counter()
        job(small if line.strip() == "small" else big)
        print(json.dumps([time.perf_counter() - t, tree_cpu() - c]), flush=True)


def tree_cpu() -> float:
    """CPU seconds of this process and every descendant (the scan's pool and forkserver,
    Spark's JVM and Python workers), reaped children included."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def bench_files(args: argparse.Namespace) -> tuple[str, dict]:
    tmp = OUT_DIR / "spark"
    url, big, small = make_world(tmp / "world", args.files, args.repeat)
    specs = {
        "scan --workers 1": ("scan", "1"),
        "scan --workers 2": ("scan", "2"),
        "spark local[1]": ("spark", "local[1]"),
        "spark local[2]": ("spark", "local[2]"),
    }
    env = dict(os.environ)
    if args.blas_threads:  # PySpark runs its workers with OMP_NUM_THREADS=1: the same for scan
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[k] = str(args.blas_threads)
    children = {}
    for name, (kind, arg) in specs.items():
        children[name] = subprocess.Popen(
            [PY, __file__, "--child", kind, arg, url, str(big), str(small)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    starts: dict[str, tuple[float, float]] = {}
    for name, p in children.items():
        assert p.stdout is not None
        word, _, rest = p.stdout.readline().strip().partition(" ")
        assert word == "ready", name
        starts[name] = tuple(json.loads(rest))  # type: ignore[assignment]

    def run(name: str, folder: str = "big") -> tuple[float, float]:
        p = children[name]
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write(folder + "\n")
        p.stdin.flush()
        wall, cpu = json.loads(p.stdout.readline())
        return float(wall), float(cpu)

    names = list(specs)
    n_big = len(list(big.iterdir()))
    rates: dict[str, list[float]] = {n: [] for n in names}
    per_cpu: dict[str, list[float]] = {n: [] for n in names}
    fixed: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for n in order:
            fixed[n].append(run(n, "small")[0])  # a job of N0 files: the per-job cost
            dt, cpu = run(n)
            rates[n].append(n_big / dt)
            per_cpu[n].append(n_big / cpu)
            print(f"round {r}: {n}: {dt:.2f}s, {cpu:.2f} CPU s -> {rates[n][-1]:.1f} files/s, "
                  f"{per_cpu[n][-1]:.1f} per CPU-s", flush=True)  # fmt: skip
    for p in children.values():
        assert p.stdin is not None
        p.stdin.close()
        p.wait(120)
    med = {n: statistics.median(v) for n, v in rates.items()}
    medc = {n: statistics.median(v) for n, v in per_cpu.items()}
    cratio = [
        a / b for a, b in zip(per_cpu["spark local[2]"], per_cpu["scan --workers 2"], strict=True)
    ]
    ratio = [a / b for a, b in zip(rates["spark local[2]"], rates["scan --workers 2"], strict=True)]
    scal = [a / b for a, b in zip(rates["spark local[2]"], rates["spark local[1]"], strict=True)]
    what = (
        f"{args.files} BSDS500 JPEG photos"
        if args.repeat == 1
        else f"{args.files} BSDS500 JPEG photos and {args.repeat - 1} re-encoded copies of "
        f"each (q94..), {n_big} files"
    )
    lines = [
        f"Files: {what} (~480x320, {_mean_kb(big):.0f} KB mean); bank "
        f"10,000 random PDQ + 10 of the photos. Each method in its own long-lived, warmed-up "
        f"process; one job = all {n_big} files (scan: run_scan with a fresh worker pool and "
        "its JSONL; Spark: hash_paths, noop sink, one task per core). "
        f"{args.rounds} rounds, interleaved, order rotating. BLAS threads per process: "
        + (
            f"{args.blas_threads} for all (OMP_NUM_THREADS/OPENBLAS_NUM_THREADS; PySpark sets "
            "OMP_NUM_THREADS=1 in its workers itself)"
            if args.blas_threads
            else "unset for scan (OpenBLAS may use every core in each scan worker for PDQ's "
            "matrix products), 1 in Spark's workers (PySpark sets OMP_NUM_THREADS=1)"
        )
        + ".",
        "",
        "",
        "Wall: files per second. CPU: files per CPU-second of the whole process tree (scan: "
        "the driver, forkserver and pool workers; Spark: the driver, the JVM and its Python "
        "workers), the cost on a machine whose cores are shared.",
        "",
        f"Job of {N0} files: wall seconds of a job on the {N0}-file folder, timed before "
        "each large job (median): the per-job fixed cost (scan: a fresh worker pool; Spark: "
        "job scheduling, tasks, Python workers when they were not reused). Start-up, outside "
        f"the rates: the first job of the process ({N0} files: Spark session's first job, "
        "Python workers, imports, matcher, kernels) and the first job on the whole folder "
        "(warm-up, untimed in the rates: the JVM's JIT, workers of every task slot).",
        "",
        "| method | files/s wall (median) | per round | files per CPU-s (median) | per round "
        f"| job of {N0} files, s | start-up: first job of {N0} / first whole-folder job, s |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in names:
        per = ", ".join(f"{x:.1f}" for x in rates[n])
        perc = ", ".join(f"{x:.1f}" for x in per_cpu[n])
        fx = statistics.median(fixed[n])
        c0, c1 = starts[n]
        lines.append(
            f"| {n} | {med[n]:.1f} | {per} | {medc[n]:.1f} | {perc} | {fx:.2f} "
            f"| {c0:.1f} / {c1:.1f} |"
        )
    rmed, rmin = statistics.median(ratio), min(ratio)
    verdict = "met" if rmed >= 0.75 else "not met"
    lines += [
        "",
        f"- Spark overhead: local[2] / scan --workers 2 = **{rmed:.2f}** (per-round median, "
        f"min {rmin:.2f}); target >= 0.75 (within 25%): **{verdict}**",
        f"- Same by CPU cost: local[2] / scan --workers 2 = **{statistics.median(cratio):.2f}** "
        f"files per CPU-second (min {min(cratio):.2f}); "
        f"**{'met' if statistics.median(cratio) >= 0.75 else 'not met'}** on that measure",
        f"- Scaling local[1] -> local[2]: {statistics.median(scal):.2f}x (2 cores shared with "
        "other sessions)",
        f"- Per core (local[1]): {med['spark local[1]']:.1f} files/s; scan --workers 1: "
        f"{med['scan --workers 1']:.1f} files/s",
    ]
    return "\n".join(lines), {
        "rates": med,
        "per_cpu": medc,
        "ratio": rmed,
        "cpu_ratio": statistics.median(cratio),
        "per_core": med["spark local[1]"],
        "job_of_small_s": {n: statistics.median(v) for n, v in fixed.items()},
        "start_s": starts,
    }


def _mean_kb(d: Path) -> float:
    sizes = [p.stat().st_size for p in d.iterdir()]
    return sum(sizes) / len(sizes) / 1024


# ----------------------------------------------------------------------------- hash-only


def big_snapshot(n: int, rng: np.random.Generator):
    import hashlib

    from sentinelle.banks.records import BankInfo, LoadedSignal
    from sentinelle.spark.snapshot import BankSnapshot

    info = BankInfo(1, "bench", "", True, None, {"pdq": 31})  # type: ignore[arg-type]
    pdq = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    md5 = [hashlib.md5(i.to_bytes(8, "little")).hexdigest() for i in range(n)]
    sig = {
        "pdq": LoadedSignal("pdq", np.arange(n, dtype=np.int64), np.ones(n, np.int32), pdq,
                            {1: "bench"}, {1: 31}),
        "md5": LoadedSignal("md5", np.arange(n, 2 * n, dtype=np.int64), np.ones(n, np.int32), md5,
                            {1: "bench"}, {1: 0}),
    }  # fmt: skip
    return BankSnapshot(1, [info], {"bench": {"pdq": 31, "md5": 0}}, sig), pdq, md5


def hashonly_child(args: argparse.Namespace) -> None:
    """Single-core hash-only figures (run with NUMBA_NUM_THREADS=1)."""
    import hashlib

    import pyarrow as pa

    from sentinelle.spark.hashonly import HashOnlyIndex

    rng = np.random.default_rng(1)
    snap, pdq, md5 = big_snapshot(args.bank, rng)
    t = time.perf_counter()
    idx = HashOnlyIndex(snap)
    build = time.perf_counter() - t
    out: dict[str, float] = {"build_s": build}
    # PDQ: 10% planted near copies (0..31 bits), the rest random
    n = args.pdq_rows
    q = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    planted = rng.choice(n, n // 10, replace=False)
    src = rng.integers(0, args.bank, len(planted))
    for qi, si in zip(planted, src, strict=True):
        bits = np.unpackbits(pdq[si])
        bits[rng.choice(256, int(rng.integers(0, 32)), replace=False)] ^= 1
        q[qi] = np.packbits(bits)
    hexes = [bytes(r).hex() for r in q]
    from sentinelle.spark import hashonly

    # before: every batch through PDQIndex (the path of batches < JOIN_MIN_QUERIES)
    join_min = hashonly.JOIN_MIN_QUERIES
    step = hashonly.BATCH_ROWS  # what a Spark worker matches at once (hashonly.rebatch)
    out["batch_rows"] = step
    hashonly.JOIN_MIN_QUERIES = 1 << 62
    t = time.perf_counter()
    idx.match_batch(pa.record_batch({"pdq": hexes[:2000]}))  # builds PDQIndex, warms
    out["build_search_s"] = time.perf_counter() - t
    nb = min(n, args.pdq_before_rows)
    c = time.process_time()
    t = time.perf_counter()
    before = []
    for s in range(0, nb, step):
        before.append(idx.match_batch(pa.record_batch({"pdq": hexes[s : s + step]})))
    out["pdq_search_rows_s"] = nb / (time.perf_counter() - t)
    out["pdq_search_rows_cpu_s"] = nb / (time.process_time() - c)
    out["pdq_search_rows"] = nb
    hashonly.JOIN_MIN_QUERIES = join_min
    t = time.perf_counter()
    idx.match_batch(pa.record_batch({"pdq": hexes[:2000]}))  # builds the join index, warms
    out["build_join_s"] = time.perf_counter() - t
    # the bulk join's output equals PDQIndex's, batch for batch
    out["pdq_same_as_search"] = all(
        idx.match_batch(pa.record_batch({"pdq": hexes[s : s + step]})).equals(b)
        for s, b in zip(range(0, nb, step), before, strict=True)
    )
    found: dict[int, set[int]] = {}
    c = time.process_time()
    t = time.perf_counter()
    for s in range(0, n, step):
        res = idx.match_batch(pa.record_batch({"pdq": hexes[s : s + step]}))
        for i, ms in enumerate(res.column("matches").to_pylist()):
            if ms:
                found[s + i] = {m["entry_id"] for m in ms}
    out["pdq_rows_s"] = n / (time.perf_counter() - t)
    out["pdq_rows_cpu_s"] = n / (time.process_time() - c)
    # recall of the planted copies (and of anything else truly within 31), brute force
    w = pdq.view(np.uint64)
    missed = 0
    for qi, si in zip(planted[:2000], src[:2000], strict=True):
        d = np.bitwise_count(w ^ q[qi].view(np.uint64)).sum(axis=1)
        want = set(np.flatnonzero(d <= 31).tolist())
        assert si in want
        missed += len(want - found.get(int(qi), set()))
    out["pdq_recall_checked"] = 2000
    out["pdq_missed"] = missed
    # MD5: 1% present in the bank
    m = args.md5_rows
    other = [hashlib.md5(b"x" + i.to_bytes(8, "little")).hexdigest() for i in range(1_000_000)]
    idx_md5 = [md5[i % len(md5)] if i % 100 == 0 else other[i] for i in range(min(m, 1_000_000))]
    col = pa.array(idx_md5, pa.string())
    c = time.process_time()
    t = time.perf_counter()
    hits = done = 0
    for s in range(0, m, step):
        part = col.slice(s % len(idx_md5), min(step, m - s))
        res = idx.match_batch(pa.record_batch({"md5": part}))
        done += part.length() if hasattr(part, "length") else len(part)
        if s < 100_000:
            hits += sum(1 for x in res.column("matches").to_pylist() if x)
    out["md5_rows_s"] = done / (time.perf_counter() - t)
    out["md5_rows_cpu_s"] = done / (time.process_time() - c)
    out["md5_hits_first_100k"] = hits
    print(json.dumps(out))


def spark_hashonly_child(args: argparse.Namespace) -> None:
    """Spark local[1] end to end: generated rows -> match_hashes -> noop sink."""
    from pyspark.sql import functions as F

    from sentinelle.spark.hashonly import match_hashes
    from sentinelle.spark.session import make_session

    rng = np.random.default_rng(1)
    snap, _, _ = big_snapshot(args.bank, rng)
    spark = make_session("local[1]", "bench-hashonly", {
        "spark.ui.enabled": "false", "spark.driver.memory": "3g",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "10000"})  # fmt: skip
    spark.sparkContext.setLogLevel("ERROR")
    out = {}
    for name, rows, col in (
        ("md5", args.md5_rows, F.md5(F.col("id").cast("string"))),
        ("pdq", args.pdq_rows, F.sha2(F.col("id").cast("string"), 256)),
    ):
        df = spark.range(0, rows, numPartitions=max(1, rows // 1_000_000)).select(
            F.col("id"), col.alias(name)
        )
        match_hashes(spark.range(0, 10).select(F.col("id"), col.alias(name)), snap).count()
        t = time.perf_counter()
        match_hashes(df, snap).write.format("noop").mode("overwrite").save()
        out[f"spark_{name}_rows_s"] = rows / (time.perf_counter() - t)
    spark.stop()
    print(json.dumps(out))


def bench_hashonly(args: argparse.Namespace) -> tuple[str, dict]:
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    common = ["--bank", str(args.bank), "--pdq-rows", str(args.pdq_rows),
              "--md5-rows", str(args.md5_rows),
              "--pdq-before-rows", str(args.pdq_before_rows)]  # fmt: skip

    def last_json(flag: str) -> dict:
        cmd = [PY, __file__, flag, *common]
        res = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        return json.loads(res.stdout.splitlines()[-1])

    direct = last_json("--hashonly-child")
    sp = last_json("--spark-hashonly-child")
    md5_cpu, pdq_cpu = direct["md5_rows_cpu_s"], direct["pdq_rows_cpu_s"]
    recall = "100%" if direct["pdq_missed"] == 0 else "below 100%"
    same = "identical" if direct["pdq_same_as_search"] else "DIFFERENT"
    lines = [
        f"Bank: {args.bank:,} random PDQ + {args.bank:,} MD5 hashes (snapshot indexes "
        f"{direct['build_s']:.1f} s; PDQ indexes built on first use, once per executor "
        f"process: PDQIndex {direct['build_search_s']:.1f} s, bulk-join index "
        f"{direct['build_join_s']:.1f} s, each with a first batch of 2,000 rows). One thread; "
        f"batches of {direct['batch_rows']:,} rows (what a Spark worker matches at once). "
        "Per core = rows per CPU-second of the process (wall rates "
        "are shared with the other sessions' load). PDQ before/after in the same process: "
        "every batch through PDQIndex (the path of batches under "
        "`JOIN_MIN_QUERIES` distinct hashes), then the bulk join (`index/pdq_join.py`, "
        "batches from 512 distinct hashes); "
        f"their match columns on the first {direct['pdq_search_rows']:,} rows: {same}.",
        "",
        "| path | rows | rows per CPU-second | rows/s wall | recall |",
        "|---|---|---|---|---|",
        f"| HashOnlyIndex.match_batch, MD5 (1% in bank) | {args.md5_rows:,} | "
        f"{md5_cpu:,.0f} | {direct['md5_rows_s']:,.0f} | exact lookup |",
        f"| HashOnlyIndex.match_batch, PDQ via PDQIndex (before) | "
        f"{direct['pdq_search_rows']:,} | {direct['pdq_search_rows_cpu_s']:,.0f} | "
        f"{direct['pdq_search_rows_s']:,.0f} | same rows as the join |",
        "| HashOnlyIndex.match_batch, PDQ bulk join (10% near copies 0..31 bits) | "
        f"{args.pdq_rows:,} | "
        f"{pdq_cpu:,.0f} | {direct['pdq_rows_s']:,.0f} | {direct['pdq_recall_checked']} "
        f"planted copies checked by brute force: {direct['pdq_missed']} true matches missed |",
        f"| Spark local[1] match_hashes, MD5 (end to end, noop sink) | {args.md5_rows:,} | - | "
        f"{sp['spark_md5_rows_s']:,.0f} | - |",
        f"| Spark local[1] match_hashes, PDQ (random rows, end to end) | {args.pdq_rows:,} | - | "
        f"{sp['spark_pdq_rows_s']:,.0f} | - |",
        "",
        f"- Hash-only >= 1M rows/s per core vs a 1M-hash bank, recall 100%: MD5 "
        f"**{'met' if md5_cpu >= 1e6 else 'not met'}** ({md5_cpu:,.0f} rows per CPU-second); "
        f"PDQ **{'met' if pdq_cpu >= 1e6 else 'not met'}** ({pdq_cpu:,.0f} rows per "
        f"CPU-second, recall {recall}; PDQIndex path {direct['pdq_search_rows_cpu_s']:,.0f}, "
        f"{pdq_cpu / direct['pdq_search_rows_cpu_s']:.1f}x)",
    ]
    return "\n".join(lines), {**direct, **sp}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument(
        "--repeat", type=int, default=1, help="files x repeat in the folder (re-encoded copies)"
    )
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bank", type=int, default=1_000_000)
    ap.add_argument("--pdq-rows", type=int, default=200_000)
    ap.add_argument("--pdq-before-rows", type=int, default=20_000, help="rows on PDQIndex")
    ap.add_argument("--md5-rows", type=int, default=10_000_000)
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument(
        "--blas-threads", type=int, default=1, help="0: leave unset (as a user runs scan)"
    )
    ap.add_argument("--skip-files", action="store_true")
    ap.add_argument("--skip-hashonly", action="store_true")
    ap.add_argument("--child", nargs=5)
    ap.add_argument("--hashonly-child", action="store_true")
    ap.add_argument("--spark-hashonly-child", action="store_true")
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.hashonly_child:
        hashonly_child(args)
        return
    if args.spark_hashonly_child:
        spark_hashonly_child(args)
        return
    parts, figures = [], {}
    if not args.skip_files:
        md, f = bench_files(args)
        parts.append(
            "### Files per second: Spark local[1]/local[2] beside sentinelle scan\n\n" + md
        )
        figures["files"] = f
    if not args.skip_hashonly:
        md, f = bench_hashonly(args)
        parts.append("### Hash-only matching\n\n" + md)
        figures["hashonly"] = f
    body = "\n\n".join(parts) + (
        f"\n\nLoad average at the end {load_average()}: the 2 cores were shared with other "
        "sessions (absolute rates are low; the ratios are per round)."
    )
    print(body)
    print(json.dumps(figures, indent=1))
    if not args.no_append:
        append_results("Spark: backfill throughput and hash-only matching (bench_spark.py)", body)


if __name__ == "__main__":
    main()
