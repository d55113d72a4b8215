"""`sentinelle scan`'s per-file work, as a user runs it, beside threatexchange's hasher.

Run by hand (about 10 minutes on a quiet 2-core machine)::

    .venv/bin/python bench/bench_scan.py [--rounds 5] [--end-to-end] [--no-append]

Main table (interleaved, per file): what one scan worker does for each file, called
in this process: ``sentinelle.scan.runner._hash_worker`` (read once, crypto hashes,
reduced decode, PDQ, trimmed view, provenance record from the shared decode; the
C2PA reader in its worker process) plus the bank match (``Matcher.match_fast``,
a bank of 10,000 random PDQ hashes plus 20 enrolled photos), with the defaults
(trimming and provenance on), with ``--no-provenance``, with ``--no-trim`` and with
both off; and the peer, python-threatexchange's ``pdq_from_file``. Start-up is not
in it (each method is warmed up on every file first). Interleaved: in each round
every file is processed by every method back to back, the order rotating, so all
methods see the same background load on the shared machine; per-round ratios,
median (min).

``--end-to-end`` adds the scan as the CLI runs it: ``run_scan`` (=
``sentinelle scan DIR --workers 1``) in a fresh subprocess per measurement, timing a
folder of 1 file and one of N files after a warm-up scan; per image =
(t_N - t_1) / (N - 1), i.e. start-up (pool, bank load) subtracted.

Two corpora per size, JPEG: ``rendered`` (bench_hashing.py's photo-like files, q90,
with sensor-like noise: 3.9 MB at 12 MP, so entropy decoding is a large part of any
decode) and ``photos`` (BSDS500 photos upscaled, Lanczos, to the size, q92: smooth).
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
from PIL import Image

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from _machine import OUT_DIR, append_results  # noqa: E402

SHARED = BENCH.parents[0].parent / "shared"
FILES = 3
OURS = {
    "default": {},
    "--no-provenance": {"provenance": False},
    "--no-trim": {"trim": False},
    "--no-provenance --no-trim": {"provenance": False, "trim": False},
}
PEER = "threatexchange pdq_from_file"
TARGETS = {4.0: 8.0, 12.0: 20.0}


# ----------------------------------------------------------------------------- data


def photo_files(mp: float, out: Path) -> list[Path]:
    """BSDS500 photos upscaled to about ``mp`` megapixels, JPEG q92."""
    src = sorted((SHARED / "corpora/photos/bsds500").glob("*.jpg"))[::97][:FILES]
    files = []
    for i, p in enumerate(src):
        dst = out / f"photo-{mp:g}mp-{i}.jpg"
        if not dst.exists():
            img = Image.open(p).convert("RGB")
            s = (mp * 1e6 / (img.width * img.height)) ** 0.5
            img.resize((round(img.width * s), round(img.height * s)), Image.LANCZOS).save(
                dst, "JPEG", quality=92
            )
        files.append(dst)
    return files


def folders(files: list[Path], base: Path, n: int) -> tuple[Path, Path]:
    """``base/one`` (the first file) and ``base/many`` (``n`` copies, cycling the files)."""
    one, many = base / "one", base / "many"
    for d in (one, many):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    shutil.copy(files[0], one / files[0].name)
    for i in range(n):
        shutil.copy(files[i % len(files)], many / f"{i:03d}-{files[i % len(files)].name}")
    return one, many


def make_bank(db: Path) -> str:
    from sentinelle.banks import BankStore
    from sentinelle.formats.enroll import entries_from_paths
    from sentinelle.formats.entry import EntryIn
    from sentinelle.store.db import open_engine

    url = f"sqlite:///{db}"
    if db.exists():
        return url
    store = BankStore(open_engine(url))
    store.create_bank("bench")
    rng = np.random.default_rng(0)
    store.add_entries(
        "bench",
        [
            EntryIn(signal_type="pdq", hash=bytes(h).hex())
            for h in rng.integers(0, 256, (10_000, 32), dtype=np.uint8)
        ],
    )
    enrolled = sorted((SHARED / "corpora/photos/bsds500").glob("*.jpg"))[1::25][:20]
    entries, failed = entries_from_paths(enrolled, augment=False)
    store.add_entries("bench", entries)
    return url


# ----------------------------------------------------------------------------- workers


def worker(method: str, one: str, many: str, n: int, db_url: str, out: str) -> None:
    """In a fresh process: time a scan of ``one`` then of ``many``; print seconds as JSON."""
    if method == PEER:
        from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file

        def run(folder: str) -> None:
            for p in sorted(Path(folder).iterdir()):
                pdq_from_file(p)
    else:
        from sentinelle.cli.scan_cmd import run_scan

        kw = OURS[method]

        def run(folder: str) -> None:
            jsonl = Path(out) / f"{Path(folder).name}-{time.monotonic_ns()}.jsonl"
            run_scan(
                [Path(folder)], jsonl, workers=1, database_url=db_url, show_progress=False, **kw
            )

    run(one)  # warm-up: lazy imports, kernel compilation, page cache (once per process)
    t0 = time.perf_counter()
    run(one)
    t1 = time.perf_counter()
    run(many)
    t2 = time.perf_counter()
    print(json.dumps({"one": t1 - t0, "many": t2 - t1}))


def measure(method: str, one: Path, many: Path, n: int, db_url: str, out: Path) -> float:
    """Seconds per image, start-up subtracted, from one fresh subprocess."""
    key = str([*OURS, PEER].index(method))  # names like --no-trim would read as options
    cmd = [sys.executable, __file__, "--worker", key, str(one), str(many), str(n), db_url]
    env = {**os.environ, "SENTINELLE_DATABASE_URL": db_url}
    res = subprocess.run(cmd + [str(out)], env=env, capture_output=True, text=True, check=True)
    t = json.loads(res.stdout.strip().splitlines()[-1])
    return (t["many"] - t["one"]) / (n - 1)


# ----------------------------------------------------------------------------- per file


def per_file_methods(db_url: str) -> dict:
    """name -> fn(path): one scan worker's work on one file plus the match; and the peer."""
    from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file

    from sentinelle.banks import BankStore
    from sentinelle.index.matcher import Matcher
    from sentinelle.media.limits import DEFAULT_LIMITS
    from sentinelle.scan.runner import ScanOptions, _hash_worker
    from sentinelle.store.db import open_engine

    matcher = Matcher(BankStore(open_engine(db_url)))
    sources = ScanOptions().provenance_sources

    def ours(trim: bool, prov: bool):
        variants = ("trimmed",) if trim else ()

        def run(p: Path) -> None:
            r = _hash_worker(str(p), False, variants, DEFAULT_LIMITS, prov, None, sources)
            matcher.match_fast(r)

        return run

    out = {m: ours(kw.get("trim", True), kw.get("provenance", True)) for m, kw in OURS.items()}
    out[PEER] = lambda p: pdq_from_file(p)
    return out


def _cpu() -> float:
    """CPU seconds of this process and its live children (the C2PA reader's worker)."""
    import psutil

    me = psutil.Process()
    total = time.process_time()
    for child in me.children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def interleaved(
    methods: dict, files: list[Path], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per-round seconds per file of every method, methods interleaved file by file.

    Returns (wall seconds, CPU seconds): CPU time (this process and its children) does
    not count waiting for a core, so on a loaded machine its ratios are the better
    estimate of an idle machine's (the wall figures also pay for every wait until the
    C2PA worker process is scheduled).
    """
    names = list(methods)
    for p in files:  # warm-up: imports, kernels, C2PA worker, page cache
        for fn in methods.values():
            fn(p)
    per: dict[str, list[float]] = {n: [] for n in names}
    per_cpu: dict[str, list[float]] = {n: [] for n in names}
    k = 0
    for r in range(rounds):
        spent = dict.fromkeys(names, 0.0)
        spent_cpu = dict.fromkeys(names, 0.0)
        for p in files:
            order = names[k % len(names) :] + names[: k % len(names)]
            k += 1
            for n in order:
                c0 = _cpu()
                t0 = time.perf_counter()
                methods[n](p)
                spent[n] += time.perf_counter() - t0
                spent_cpu[n] += _cpu() - c0
        for n in names:
            per[n].append(spent[n] / len(files))
            per_cpu[n].append(spent_cpu[n] / len(files))
        print(
            f"    round {r + 1}: "
            + ", ".join(
                f"{n} {1000 * per[n][-1]:.1f} ms ({1000 * per_cpu[n][-1]:.1f} CPU)" for n in names
            ),
            flush=True,
        )
    return per, per_cpu


# ----------------------------------------------------------------------------- driver


def _table(title: str, rows: list[str]) -> str:
    methods = [*OURS, PEER]
    return (
        f"{title}\n\n| size | corpus (mean file) | "
        + " | ".join(f"{m} ms/img" for m in methods)
        + " | "
        + " | ".join(f"TE / {m}" for m in OURS)
        + " |\n|---|---|"
        + "---|" * (len(methods) + len(OURS))
        + "\n"
        + "\n".join(rows)
        + "\n"
    )


def _row(mp: float, corpus: str, size_mb: float, per: dict[str, list[float]]) -> tuple:
    methods = [*OURS, PEER]
    ratio = {m: [p / o for p, o in zip(per[PEER], per[m], strict=True)] for m in OURS}
    cells = " | ".join(f"{1000 * statistics.median(per[m]):.1f}" for m in methods)
    rcells = " | ".join(
        f"**{statistics.median(ratio[m]):.1f}x** ({min(ratio[m]):.1f}x)" for m in OURS
    )
    med = statistics.median(ratio["default"])
    target = (
        f"- {mp:g} MP {corpus}: default {med:.1f}x threatexchange (min "
        f"{min(ratio['default']):.1f}x; --no-provenance "
        f"{statistics.median(ratio['--no-provenance']):.1f}x, --no-trim "
        f"{statistics.median(ratio['--no-trim']):.1f}x, both off "
        f"{statistics.median(ratio['--no-provenance --no-trim']):.1f}x); target >= "
        f"{TARGETS[mp]:g}x: **{'met' if med >= TARGETS[mp] else 'not met'}**"
    )
    return f"| {mp:g} MP | {corpus} ({size_mb:.1f} MB) | {cells} | {rcells} |", target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (per file)")
    ap.add_argument("--sizes", default="4,12", help="megapixels, comma-separated")
    ap.add_argument("--end-to-end", action="store_true", help="also time run_scan end to end")
    ap.add_argument("--e2e-rounds", type=int, default=2)
    ap.add_argument("--n-ours", type=int, default=41, help="end to end: files in the N folder")
    ap.add_argument("--n-peer", type=int, default=4, help="end to end: files, peer")
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        key, one, many, n, db_url, out = args.worker
        worker([*OURS, PEER][int(key)], one, many, int(n), db_url, out)
        return

    from bench_hashing import make_files

    work = OUT_DIR / "scan"
    work.mkdir(parents=True, exist_ok=True)
    db_url = make_bank(work / "bank.db")
    rendered = make_files()
    methods = per_file_methods(db_url)
    rows, targets, e2e_rows, e2e_targets = [], [], [], []
    cpu_rows: list[str] = []
    cpu_targets: list[str] = []
    for mp in (float(x) for x in args.sizes.split(",")):
        corpora = {"rendered": rendered[mp], "photos": photo_files(mp, work)}
        for corpus, files in corpora.items():
            size_mb = sum(p.stat().st_size for p in files) / len(files) / 2**20
            print(f"{corpus} {mp:g} MP, per file", flush=True)
            wall, cpu = interleaved(methods, files, args.rounds)
            row, target = _row(mp, corpus, size_mb, wall)
            cpu_row, cpu_target = _row(mp, corpus, size_mb, cpu)
            rows.append(row)
            targets.append(target)
            cpu_rows.append(cpu_row)
            cpu_targets.append(cpu_target)
            print(row, cpu_row, sep="\n", flush=True)
            if args.end_to_end:
                e2e_row, e2e_target = _row(
                    mp, corpus, size_mb, end_to_end(files, work, corpus, mp, db_url, args)
                )
                e2e_rows.append(e2e_row)
                e2e_targets.append(e2e_target)
                print(e2e_row, flush=True)
    body = _table(
        f"Per file, interleaved ({args.rounds} rounds; {FILES} files per corpus and size): "
        "one scan worker's work (`_hash_worker`: read, MD5/SHA-1/SHA-256, PDQ on the "
        "reduced decode, trimmed view, provenance record) plus `Matcher.match_fast` "
        "against 10,000 random PDQ hashes + 20 photos, vs `pdq_from_file`. ms per image "
        "(median of rounds); ratios per round, median (min).",
        rows,
    )
    body += "\n" + "\n".join(targets) + "\n\n"
    body += _table(
        "The same rounds by CPU time (this process + the C2PA reader's worker process; "
        "waiting for a core not counted): ms CPU per image, ratios per round.",
        cpu_rows,
    )
    body += "\n" + "\n".join(cpu_targets) + "\n"
    if e2e_rows:
        body += "\n" + _table(
            f"End to end: `run_scan` (= `sentinelle scan DIR --workers 1`), start-up "
            f"subtracted ((t_N - t_1) / (N - 1), N = {args.n_ours} ours, {args.n_peer} peer, "
            f"a fresh process per measurement, after a warm-up scan), {args.e2e_rounds} "
            "rounds, the order rotating.",
            e2e_rows,
        )
        body += "\n" + "\n".join(e2e_targets) + "\n"
    print(body)
    if not args.no_append:
        append_results("Scan speed: default, --no-provenance, --no-trim vs threatexchange", body)


def end_to_end(
    files: list[Path], work: Path, corpus: str, mp: float, db_url: str, args: argparse.Namespace
) -> dict[str, list[float]]:
    methods = [*OURS, PEER]
    dirs = {
        "ours": folders(files, work / f"{corpus}-{mp:g}-ours", args.n_ours),
        "peer": folders(files, work / f"{corpus}-{mp:g}-peer", args.n_peer),
    }
    per: dict[str, list[float]] = {m: [] for m in methods}
    for r in range(args.e2e_rounds):
        order = methods[r % len(methods) :] + methods[: r % len(methods)]
        for m in order:
            side = "peer" if m == PEER else "ours"
            n = args.n_peer if m == PEER else args.n_ours
            one, many = dirs[side]
            per[m].append(measure(m, one, many, n, db_url, work))
        print(
            f"    end to end round {r + 1}: "
            + ", ".join(f"{m} {1000 * per[m][-1]:.1f} ms" for m in methods),
            flush=True,
        )
    return per


if __name__ == "__main__":
    main()
