"""One triage stage at a time on kept cases: main-process peak RSS and time per stage.

``bench_triage.py --large`` measures whole runs, where a stage's peak sits on what the
stages before it left. This runs each stage alone, in a fresh process, on a copy of a
case kept from such a run (``--large-child triage --work DIR`` keeps ``DIR/large.db``),
so a stage's growth with the case size can be read straight off, and two versions of
the code can be compared on the very same case (run this script once per checkout,
with ``PYTHONPATH`` naming the checkout's ``src``).

    python bench/bench_triage_stages.py --case 10000=/tmp/k10/large.db \\
        --case 100000=/tmp/k100/large.db --stages group series priority

RSS is sampled every 0.05 s; "base" is the process after imports and opening the case
(before the stage), "peak" the largest sample during the stage.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

STAGES = ("group", "series", "priority", "csv", "vics", "html")


def _stage(db: str, stage: str, out_dir: str) -> dict[str, Any]:
    """In the child: run one stage on the case "large" of ``db``."""
    import psutil

    from sentinelle.banks import BankStore
    from sentinelle.index.matcher import Matcher
    from sentinelle.store.db import open_engine
    from sentinelle.triage import store
    from sentinelle.triage.run import media_reader, release_memory
    from sentinelle.triage.sources import DEFAULT_SOURCE_LIMITS, read_bytes

    engine = open_engine(f"sqlite:///{db}")
    case = store.get_case(engine, "large")
    if case is None:
        raise SystemExit(f"{db}: no case 'large'")
    matcher = Matcher(BankStore(engine))
    me = psutil.Process()
    release_memory()
    base = me.memory_info().rss / 2**20
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], me.memory_info().rss / 2**20)
            stop.wait(0.05)

    threading.Thread(target=sample, daemon=True).start()
    t0 = time.perf_counter()
    if stage == "group":
        from sentinelle.triage.grouping import group_case

        group_case(
            engine,
            case.id,
            matcher=matcher,
            reader=lambda s, m: read_bytes(s, m, DEFAULT_SOURCE_LIMITS),
            workers=2,
            limits=DEFAULT_SOURCE_LIMITS,
        )
    elif stage == "series":
        from sentinelle.triage.series import SeriesOptions, build_series

        build_series(
            engine, case.id, SeriesOptions(threads=2), previous={}, reader=media_reader(engine)
        )
    elif stage == "priority":
        from sentinelle.triage.priority import prioritise, weights_from

        prioritise(engine, case.id, weights_from(None))
    elif stage == "csv":
        from sentinelle.triage import csv_out

        csv_out.write_csv(engine, case.id, Path(out_dir) / "case.csv")
    elif stage == "vics":
        from sentinelle.triage import vics_case

        vics_case.export_case(engine, "large", Path(out_dir) / "case.vics.json")
    else:
        from sentinelle.triage import report_html

        report_html.write_report(engine, "large", Path(out_dir) / "report.html")
    secs = time.perf_counter() - t0
    stop.wait(0.1)
    stop.set()
    engine.dispose()
    return {"base": base, "peak": peak[0], "seconds": secs}


def _run(db: Path, stage: str) -> dict[str, Any]:
    """A fresh process per stage, on a private copy of the case (stages rewrite it)."""
    with tempfile.TemporaryDirectory(prefix="bench_triage_stages_") as tmp:
        copy = Path(tmp) / "case.db"
        shutil.copyfile(db, copy)
        wal = db.with_name(db.name + "-wal")
        if wal.exists():  # what the last writer has not checkpointed yet
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        cmd = [sys.executable, __file__, "--child", str(copy), stage, tmp]
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise RuntimeError(f"{stage} on {db} failed:\n{p.stderr[-3000:]}")
        return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", default=[], help="FILES=path/to/large.db")
    ap.add_argument("--stages", nargs="*", default=list(STAGES), choices=STAGES)
    ap.add_argument("--label", default="", help="Names the code measured (a commit).")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_stage(*args.child)))
        return
    cases = sorted((int(k), Path(v)) for k, v in (c.split("=", 1) for c in args.case))
    if not cases:
        ap.error("name at least one --case FILES=DB")
    rows: dict[str, dict[int, dict[str, Any]]] = {}
    for stage in args.stages:
        for files, db in cases:
            r = _run(db, stage)
            rows.setdefault(stage, {})[files] = r
            print(f"{stage} {files}: {json.dumps(r)}", flush=True)
    sizes = [f for f, _db in cases]
    head = " | ".join(f"{f:,} files: base / peak MiB, s" for f in sizes)
    lines = [f"Code: {args.label or 'this checkout'}.", ""]
    lines.append(f"| stage | {head} | growth KiB per file |")
    lines.append("|---" * (len(sizes) + 2) + "|")
    for stage, by in rows.items():
        cells = [
            f"{by[f]['base']:.0f} / {by[f]['peak']:.0f}, {by[f]['seconds']:.1f}" for f in sizes
        ]
        lo, hi = sizes[0], sizes[-1]
        growth = f"{(by[hi]['peak'] - by[lo]['peak']) * 1024 / (hi - lo):.2f}" if hi > lo else "-"
        lines.append(f"| {stage} | {' | '.join(cells)} | {growth} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
