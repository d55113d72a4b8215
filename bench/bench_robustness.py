"""Robustness benchmark: does a transformed copy of an enrolled photo still match?

Run by hand (about 10-12 minutes on 2 cores, 4 of them for the small photos)::

    .venv/bin/python bench/bench_robustness.py                      # all 524 photos
    .venv/bin/python bench/bench_robustness.py --limit 50 --large 0 # quick look

Setup. The 500 BSDS500 photos and the 24 Kodak photos (benign, from ``../shared``)
are enrolled into an in-memory bank with :func:`sentinelle.signals.hasher.enrollment_hashes`
(``augment=True``: plain PDQ + ``crop5/10/15`` central-crop hashes). Every photo
is then transformed by each transform of ``bench/transforms.py`` into a new
encoded file (bytes in memory) and hashed through the real scan code path,
:func:`sentinelle.signals.hasher.hash_bytes` with ``query_variants=("trimmed",
"dihedral")``, once with ``exact=True`` and once with ``exact=False`` (the fast
path ``sentinelle scan`` uses).

Configurations are subsets of those hashes:

- (a) ``plain``: the query's plain PDQ vs enrolled plain hashes (reference PDQ);
- (b) ``+trimmed``: plus the query's trimmed-view hash;
- (c) ``+augmented``: (b) against plain + central-crop enrolled hashes;
- (d) ``+dihedral``: (c) plus the 7 other orientations of the plain and trimmed views;
- (e) ``fast``: (d) computed with ``exact=False``.

A copy is *recalled* when any of its query hashes is within the threshold of any
enrolled hash of its own original. The *false-match* count is over ordered pairs
(query photo, other photo): the query variants of each untransformed original
against every other original's enrolled hashes; a pair counts once however many
hashes match. Matching is numpy brute force (exact Hamming distances).

Alternative match rules (per-variant thresholds, a quality gate on variant
hashes) are evaluated from the same hashes to show what each mitigation costs.

Large images (``--large N``, default 40 photos, evenly spaced). The photos are
too small for the fast path to decode at reduced size, so (e) above proves
nothing about it. Here each photo is upscaled (Lanczos) to about 4 MP and 12 MP
and saved as JPEG q92; that file is enrolled (exact, ``augment=True``), the same
transforms are applied to the large image, and every copy is hashed with
``exact=True`` and ``exact=False``: recall per transform for both paths, the
fast-vs-exact bit distance of the plain hash, and false matches. A 12 MP photo
costs about 15 s of CPU (20 transforms, two paths, trimmed + dihedral), hence the
subset.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import OUT_DIR, append_results  # noqa: E402
from sentinelle.index.matcher import FAST_VERIFY_MARGIN  # noqa: E402
from sentinelle.signals.hasher import enrollment_hashes, hash_bytes  # noqa: E402
from transforms import (  # noqa: E402
    CROP_TRANSFORMS,
    DIHEDRAL_TRANSFORMS,
    PADDING_TRANSFORMS,
    TRANSFORMS,
    encode,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PHOTO_DIRS = (SHARED / "corpora/photos/bsds500", SHARED / "corpora/photos/kodak24")
THRESHOLD = 31
QUERY_VARIANTS = ("trimmed", "dihedral")
ORIGINAL = "original"
LARGE_MEGAPIXELS = (4.0, 12.0)
"""Sizes of the large-image configuration (fast path proof): bsds500/kodak photos
are too small (481x321, 500x500) for ``exact=False`` to decode at reduced size."""
LARGE_QUALITY = 92

# config name -> (which query variants, which enrolled hashes)
CONFIGS: dict[str, tuple[str, str]] = {
    "plain": ("plain", "plain"),
    "+trimmed": ("trimmed", "plain"),
    "+augmented": ("trimmed", "all"),
    "+dihedral": ("all", "all"),
}
CONFIG_LABELS = {
    "plain": "(a) PDQ plain",
    "+trimmed": "(b) + trimmed",
    "+augmented": "(c) + augmented enrol",
    "+dihedral": "(d) + dihedral",
}


@dataclass(frozen=True)
class Rule:
    """How a query hash and an enrolled hash match.

    plain-vs-plain pairs use ``THRESHOLD``; any pair involving a variant (a
    trimmed/dihedral query view or a crop enrolled hash) uses ``variant_threshold``
    and, if ``min_variant_quality`` > 0, both hashes must have at least that quality.
    """

    name: str
    variant_threshold: int = THRESHOLD
    min_variant_quality: int = 0


RULES = (
    Rule("all <= 31"),
    Rule("variants need quality >= 50", THRESHOLD, 50),
    Rule("variants <= 28", 28),
    Rule("variants <= 24", 24),
)

Hashes = list[tuple[str, str, int]]  # (variant, hex, quality)


def photo_paths() -> list[Path]:
    out: list[Path] = []
    for d in PHOTO_DIRS:
        out.extend(sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".png")))
    return out


def _variants(data: bytes, exact: bool) -> Hashes:
    r = hash_bytes(data, signals=("pdq",), exact=exact, query_variants=QUERY_VARIANTS)
    if r.error is not None:
        return []
    return [(v.variant, v.hash, v.quality) for v in r.query_variants]


def upscale(img: Image.Image, megapixels: float) -> Image.Image:
    """``img`` enlarged (Lanczos) to about ``megapixels`` MP, aspect ratio kept."""
    s = (megapixels * 1e6 / (img.width * img.height)) ** 0.5
    return img.resize((round(img.width * s), round(img.height * s)), Image.LANCZOS)


def work(
    job: tuple[int, str] | tuple[int, str, float] | tuple[int, str, float, tuple[str, ...]],
) -> tuple[int, Hashes, dict[str, dict[str, Hashes]], float]:
    """Enroll one photo and hash all of its transformed copies (runs in a worker).

    With a third job field (megapixels), the photo is first upscaled to that size
    and saved as JPEG q92: that file is the enrolled original (exact hash) and the
    transforms are applied to the large image. A fourth field restricts the transforms.
    """
    idx, path = job[0], job[1]
    chosen = job[3] if len(job) > 3 else tuple(TRANSFORMS)
    if len(job) > 2:
        img = upscale(Image.open(Path(path)).convert("RGB"), float(job[2]))
        data = encode(img, quality=LARGE_QUALITY)
    else:
        data = Path(path).read_bytes()
        img = Image.open(Path(path)).convert("RGB")
    enrolled = [(v.variant, v.hash, v.quality) for v in enrollment_hashes(data, augment=True)]
    queries: dict[str, dict[str, Hashes]] = {}
    t_hash = 0.0
    for name, fn in [(ORIGINAL, None), *((t, TRANSFORMS[t]) for t in chosen)]:
        blob = data if fn is None else fn(img, random.Random(f"{idx}:{name}"))
        t0 = time.perf_counter()
        queries[name] = {"exact": _variants(blob, True), "fast": _variants(blob, False)}
        t_hash += time.perf_counter() - t0
    return idx, enrolled, queries, t_hash


def to_words(hexes: list[str]) -> np.ndarray:
    if not hexes:
        return np.zeros((0, 4), dtype=np.uint64)
    return (
        np.frombuffer(bytes.fromhex("".join(hexes)), dtype=">u8").astype(np.uint64).reshape(-1, 4)
    )


class Bank:
    """All enrolled hashes as arrays, for brute-force matching."""

    def __init__(self, enrolled: dict[int, Hashes]) -> None:
        rows = [(i, v, h, q) for i, hs in sorted(enrolled.items()) for v, h, q in hs]
        self.owner = np.array([r[0] for r in rows], dtype=np.int64)
        self.plain = np.array([r[1] == "plain" for r in rows])
        self.quality = np.array([r[3] for r in rows], dtype=np.int64)
        self.words = to_words([r[2] for r in rows])

    def distances(self, q: Hashes) -> np.ndarray:
        """(len(q), n_enrolled) Hamming distances."""
        qw = to_words([x[1] for x in q])
        return np.bitwise_count(qw[:, None, :] ^ self.words[None, :, :]).sum(axis=2)

    def matched_owners(self, q: Hashes, dist: np.ndarray, config: str, rule: Rule) -> set[int]:
        """Owners with any enrolled hash matching any selected query hash."""
        if not q:
            return set()
        qsel, esel = CONFIGS[config]
        names = [x[0] for x in q]
        if qsel == "plain":
            q_ok = np.array([n == "plain" for n in names])
        elif qsel == "trimmed":
            q_ok = np.array([n in ("plain", "trimmed") for n in names])
        else:
            q_ok = np.ones(len(q), dtype=bool)
        q_plain = np.array([n == "plain" for n in names])
        q_quality = np.array([x[2] for x in q])
        e_ok = np.ones_like(self.plain) if esel == "all" else self.plain
        both_plain = q_plain[:, None] & self.plain[None, :]
        thr = np.where(both_plain, THRESHOLD, rule.variant_threshold)
        ok = (dist <= thr) & e_ok[None, :] & q_ok[:, None]
        if rule.min_variant_quality:
            good = (q_quality[:, None] >= rule.min_variant_quality) & (
                self.quality[None, :] >= rule.min_variant_quality
            )
            ok &= both_plain | good
        return set(self.owner[ok.any(axis=0)].tolist())


def apply_verification(bank: Bank, queries: dict[int, dict[str, dict[str, Hashes]]]) -> float:
    """Make each query's ``fast`` hashes what ``sentinelle scan`` really uses.

    The scan's fast path re-hashes a file with the reference path when any of its fast
    query hashes lies within ``FAST_VERIFY_MARGIN`` bits of the threshold of an enrolled
    hash (``Matcher.match_fast``); those queries take their exact hashes here. Returns
    the fraction of queries re-hashed (the cost of the verification).
    """
    lo, hi = THRESHOLD - FAST_VERIFY_MARGIN, THRESHOLD + FAST_VERIFY_MARGIN
    n = verified = 0
    for per_t in queries.values():
        for hashes in per_t.values():
            f = hashes["fast"]
            n += 1
            if f and hashes["exact"]:
                d = bank.distances(f)
                if ((d > lo) & (d <= hi)).any():
                    hashes["fast"] = hashes["exact"]
                    verified += 1
    return verified / max(1, n)


def score(
    bank: Bank,
    queries: dict[int, dict[str, dict[str, Hashes]]],
    n_photos: int,
    transforms: list[str],
    rules: tuple[Rule, ...],
) -> tuple[dict, dict, dict]:
    """Recall hits and false-match pairs for every mode, config and rule.

    Returns ``recall[mode][config][rule][transform]`` (hits),
    ``fm[mode][config][rule]`` (pairs, untransformed originals) and
    ``fm_transformed[mode][config][rule]`` (pairs, transformed copies).
    """
    recall: dict = {}
    fm: dict = {}
    fm_transformed: dict = {}
    for mode in ("exact", "fast"):
        hits = {(c, r.name): dict.fromkeys(transforms, 0) for c in CONFIGS for r in rules}
        pairs = dict.fromkeys(hits, 0)
        pairs_t = dict.fromkeys(hits, 0)
        for i in range(n_photos):
            for t in [ORIGINAL, *transforms]:
                q = queries[i][t][mode]
                dist = bank.distances(q) if q else None
                for config in CONFIGS:
                    for rule in rules:
                        k = (config, rule.name)
                        owners = bank.matched_owners(q, dist, config, rule) if q else set()
                        if t == ORIGINAL:
                            pairs[k] += len(owners - {i})
                        else:
                            hits[k][t] += i in owners
                            pairs_t[k] += len(owners - {i})
        for (config, rname), h in hits.items():
            recall.setdefault(mode, {}).setdefault(config, {})[rname] = h
            fm.setdefault(mode, {}).setdefault(config, {})[rname] = pairs[(config, rname)]
            fm_transformed.setdefault(mode, {}).setdefault(config, {})[rname] = pairs_t[
                (config, rname)
            ]
    return recall, fm, fm_transformed


def large_images(
    paths: list[Path], args: argparse.Namespace, transforms: list[str]
) -> tuple[list[str], float]:
    """The large-image configuration: exact vs fast path on 4 MP and 12 MP copies.

    Returns the report lines and the worst fast-path recall drop (fraction).
    """
    step = max(1, len(paths) // args.large)
    chosen = paths[::step][: args.large]
    lines = [
        "",
        "### Large images: fast path (`exact=False`) vs exact",
        "",
        f"{len(chosen)} photos (every {step}th of the set) upscaled (Lanczos) to about "
        + " and ".join(f"{m:g} MP" for m in args.megapixels)
        + f", saved as JPEG q{LARGE_QUALITY}; the upscaled original is enrolled "
        "(exact hash, augment=True); the same transforms are applied to the large image. "
        "Columns: recall with config (b) + trimmed and (d) + dihedral, each exact / fast. "
        f"With {len(chosen)} photos one copy is {100 / len(chosen):.1f} points, so "
        "'<= 1 point' means no copy lost.",
    ]
    worst_drop = 0.0
    base = RULES[0].name
    for megapixels in args.megapixels:
        t0 = time.perf_counter()
        enrolled: dict[int, Hashes] = {}
        queries: dict[int, dict[str, dict[str, Hashes]]] = {}
        jobs = [(i, str(p), megapixels, tuple(transforms)) for i, p in enumerate(chosen)]
        with mp.get_context("spawn").Pool(args.workers) as pool:
            for i, enr, qs, _ in pool.imap_unordered(work, jobs, chunksize=1):
                enrolled[i], queries[i] = enr, qs
        wall = time.perf_counter() - t0
        print(f"  large {megapixels:g} MP: {len(chosen)} photos in {wall:.0f}s", flush=True)
        n = len(chosen)
        bank = Bank(enrolled)
        # fast-vs-exact bit distance of the plain hash, over all copies and originals
        bit_d = []
        for i in range(n):
            for t in [ORIGINAL, *transforms]:
                e, f = queries[i][t]["exact"], queries[i][t]["fast"]
                if e and f:
                    bit_d.append(
                        int(np.bitwise_count(to_words([e[0][1]]) ^ to_words([f[0][1]])).sum())
                    )
        d = np.array(bit_d)
        verified = apply_verification(bank, queries)
        recall, fm, fm_t = score(bank, queries, n, transforms, RULES[:1])
        lines += [
            "",
            f"**{megapixels:g} MP** ({wall:.0f}s): fast vs exact plain-hash distance over "
            f"{len(d)} files: mean {d.mean():.2f}, p95 {np.percentile(d, 95):.0f}, "
            f"max {d.max()} bits (raw fast hashes). The fast columns are the scan path: "
            f"raw fast hashes, re-hashed exactly on a near miss ({100 * verified:.1f}% of "
            f"files re-hashed). False-match pairs, config (d), originals exact/fast: "
            f"{fm['exact']['+dihedral'][base]}/{fm['fast']['+dihedral'][base]}; "
            f"transformed copies exact/fast: {fm_t['exact']['+dihedral'][base]}/"
            f"{fm_t['fast']['+dihedral'][base]}.",
            "",
            "| transform | (b) exact | (b) fast | (d) exact | (d) fast "
            "| fast - exact, worst config |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for t in transforms:
            cells = [
                pct(recall[mode][c][base][t] / n)
                for c in ("+trimmed", "+dihedral")
                for mode in ("exact", "fast")
            ]
            drop = max(
                (recall["exact"][c][base][t] - recall["fast"][c][base][t]) / n for c in CONFIGS
            )
            worst_drop = max(worst_drop, drop)
            lines.append(f"| {t} | " + " | ".join(cells) + f" | {-100 * drop:+.1f} |")
    return lines, worst_drop


def large_only(args: argparse.Namespace) -> None:
    """Only the large-image fast-vs-exact check (a quicker re-measure of the scan path)."""
    transforms = list(TRANSFORMS) if args.large_only == "all" else args.large_only.split(",")
    unknown = [t for t in transforms if t not in TRANSFORMS]
    if unknown:
        raise SystemExit(f"unknown transform(s) {unknown}; choose from {list(TRANSFORMS)}")
    t0 = time.perf_counter()
    lines, drop = large_images(photo_paths(), args, transforms)
    body = "\n".join(lines).strip() + (
        f"\n\n- fast path loses <= 1 point vs exact on every transform and config, large "
        f"images: **{'met' if drop <= 0.01 else 'not met'}**, worst drop {100 * drop:.1f} "
        f"points.\n\nWall time {time.perf_counter() - t0:.0f}s with {args.workers} workers."
    )
    print(body)
    if not args.no_append:
        append_results("Robustness, large images only: fast path vs exact", body)


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="use only the first N photos")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-append", action="store_true", help="do not write bench/RESULTS.md")
    ap.add_argument(
        "--large",
        type=int,
        default=40,
        help="photos (evenly spaced) for the large-image fast-path check; 0 skips it",
    )
    ap.add_argument(
        "--megapixels",
        type=lambda v: [float(x) for x in v.split(",")],
        default=list(LARGE_MEGAPIXELS),
        help="sizes of the large-image check, comma-separated (default 4,12)",
    )
    ap.add_argument(
        "--large-only",
        metavar="TRANSFORMS",
        help="run only the large-image check, on these transforms (comma-separated, or all)",
    )
    args = ap.parse_args()
    if args.large_only:
        large_only(args)
        return

    paths = photo_paths()
    if args.limit:
        paths = paths[: args.limit]
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    enrolled: dict[int, Hashes] = {}
    queries: dict[int, dict[str, dict[str, Hashes]]] = {}
    hash_cpu = 0.0
    jobs = [(i, str(p)) for i, p in enumerate(paths)]
    with mp.get_context("spawn").Pool(args.workers) as pool:
        for n, (i, enr, qs, th) in enumerate(pool.imap_unordered(work, jobs, chunksize=4), 1):
            enrolled[i], queries[i] = enr, qs
            hash_cpu += th
            if n % 50 == 0:
                print(f"  {n}/{len(paths)} photos ({time.perf_counter() - t0:.0f}s)", flush=True)
    t_hash = time.perf_counter() - t0
    bank = Bank(enrolled)
    n_photos = len(paths)
    transforms = list(TRANSFORMS)
    verified_small = apply_verification(bank, queries)  # the fast columns = the scan path

    recall, fm, fm_transformed = score(bank, queries, n_photos, transforms, RULES)
    n_query_hashes: dict[str, list[int]] = {c: [] for c in CONFIGS}
    for i in range(n_photos):
        for t in transforms:
            q = queries[i][t]["exact"]
            n_query_hashes["plain"].append(sum(x[0] == "plain" for x in q))
            n_trim = sum(x[0] in ("plain", "trimmed") for x in q)
            n_query_hashes["+trimmed"].append(n_trim)
            n_query_hashes["+augmented"].append(n_trim)
            n_query_hashes["+dihedral"].append(len(q))
    t_total = time.perf_counter() - t0

    base = RULES[0].name
    n_pairs = n_photos * (n_photos - 1)
    enrolled_per = {
        "plain": 1.0,
        "all": len(bank.owner) / n_photos,
    }

    lines = [
        f"{n_photos} photos (BSDS500 + Kodak24), {len(transforms)} transforms, threshold "
        f"{THRESHOLD}; queries hashed with `sentinelle.signals.hasher.hash_bytes(..., "
        f"query_variants=('trimmed', 'dihedral'))`, bank with `enrollment_hashes(augment=True)`; "
        "copies re-encoded as JPEG q90 unless the transform is a JPEG re-encode.",
        "",
        "### Recall per transform (rule: every pair <= 31)",
        "",
        "| transform | " + " | ".join(CONFIG_LABELS.values()) + " | (e) fast path, (d) | "
        "fast - exact, worst config |",
        "|---|" + "---:|" * (len(CONFIGS) + 2),
    ]
    worst_fast_drop = 0.0
    for t in transforms:
        cells = [pct(recall["exact"][c][base][t] / n_photos) for c in CONFIGS]
        fast_d = recall["fast"]["+dihedral"][base][t] / n_photos
        drops = [
            (recall["exact"][c][base][t] - recall["fast"][c][base][t]) / n_photos for c in CONFIGS
        ]
        worst = max(drops)
        worst_fast_drop = max(worst_fast_drop, worst)
        lines.append(f"| {t} | " + " | ".join(cells) + f" | {pct(fast_d)} | {-100 * worst:+.1f} |")

    lines += [
        "",
        "### False matches between distinct photos and query cost",
        "",
        f"Ordered pairs (query photo, other photo) out of {n_pairs:,} with any hash match; "
        "`transformed copies` counts the same for all transformed copies "
        f"({n_photos * len(transforms):,} queries x {n_photos - 1} others).",
        "",
        "| config | query hashes / image (mean) | enrolled hashes / photo | false-match pairs "
        "(originals) | rate | false-match pairs (transformed copies) | fast path FM pairs "
        "(originals) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in CONFIGS:
        fmc = fm["exact"][c][base]
        lines.append(
            f"| {CONFIG_LABELS[c]} | {np.mean(n_query_hashes[c]):.2f} | "
            f"{enrolled_per[CONFIGS[c][1]]:.1f} | {fmc} | {fmc / n_pairs:.2e} | "
            f"{fm_transformed['exact'][c][base]} | {fm['fast'][c][base]} |"
        )

    key = [*PADDING_TRANSFORMS, *CROP_TRANSFORMS, *DIHEDRAL_TRANSFORMS]
    lines += [
        "",
        "### Mitigations: match rules for variant hashes, config (d), exact path",
        "",
        "| rule | FM pairs (originals) | FM pairs (transformed) | "
        + " | ".join(key)
        + " | min recall, other transforms |",
        "|---|---:|---:|" + "---:|" * (len(key) + 1),
    ]
    for rule in RULES:
        r = recall["exact"]["+dihedral"][rule.name]
        others = min(r[t] for t in transforms if t not in key) / n_photos
        lines.append(
            f"| {rule.name} | {fm['exact']['+dihedral'][rule.name]} | "
            f"{fm_transformed['exact']['+dihedral'][rule.name]} | "
            + " | ".join(pct(r[t] / n_photos) for t in key)
            + f" | {pct(others)} |"
        )

    large_lines, large_drop = large_images(paths, args, transforms) if args.large else ([], None)
    lines += large_lines

    # Targets
    rd = recall["exact"]
    pad_min = min(rd["+trimmed"][base][t] for t in PADDING_TRANSFORMS) / n_photos
    crops = {t: rd["+augmented"][base][t] / n_photos for t in CROP_TRANSFORMS}
    crops_plain = {t: rd["plain"][base][t] / n_photos for t in CROP_TRANSFORMS}
    dih_min = min(rd["+dihedral"][base][t] for t in DIHEDRAL_TRANSFORMS) / n_photos
    fm_plain = fm["exact"]["plain"][base]

    def met(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    crop_ok = all(crops[t] >= 0.95 for t in ("crop5", "crop10", "crop15"))
    lines += [
        "",
        "### Targets",
        "",
        f"- >= 95% recall on border/letterbox/pillarbox/screenshot with trimming (b): "
        f"{met(pad_min >= 0.95)}, worst {pct(pad_min)} ("
        + ", ".join(f"{t} {pct(rd['+trimmed'][base][t] / n_photos)}" for t in PADDING_TRANSFORMS)
        + ").",
        "- crops up to 15% matched with augmented enrollment (c) (taken as >= 95%): "
        f"{met(crop_ok)}: "
        + ", ".join(f"{t} {pct(crops[t])} (plain {pct(crops_plain[t])})" for t in crops)
        + ".",
        f"- dihedral matching recovers rotations/mirror with >= 99% recall (d): "
        f"{met(dih_min >= 0.99)}, worst {pct(dih_min)}.",
        f"- fast path loses <= 1 point vs exact on every transform and config: "
        f"{met(worst_fast_drop <= 0.01)}, worst drop {100 * worst_fast_drop:.1f} points.",
    ]
    if large_drop is not None:
        lines.append(
            "- fast path loses <= 1 point vs exact on every transform and config, large "
            f"images ({' and '.join(f'{m:g} MP' for m in LARGE_MEGAPIXELS)}): "
            f"{met(large_drop <= 0.01)}, worst drop {100 * large_drop:.1f} points."
        )
    for c in ("+trimmed", "+augmented", "+dihedral"):
        extra = fm["exact"][c][base] - fm_plain
        lines.append(
            f"- no more false matches than plain PDQ ({fm_plain} pairs), {CONFIG_LABELS[c]}: "
            f"{met(extra <= 0)}, {fm['exact'][c][base]} pairs ({extra:+d})."
        )
    lines += [
        "",
        f"Wall time {t_total:.0f}s ({t_hash:.0f}s hashing with {args.workers} workers; "
        f"{1000 * hash_cpu / (n_photos * (len(transforms) + 1) * 2):.1f} ms per hash_bytes call "
        "incl. trimmed + dihedral variants, mean of exact and fast). The fast-path "
        "columns are the scan path: fast hashes, re-hashed with the reference path on a "
        f"near miss (within {FAST_VERIFY_MARGIN} bits of the threshold; "
        f"{100 * verified_small:.1f}% of queries here).",
    ]
    body = "\n".join(lines)
    print(body)
    (OUT_DIR / "robustness.md").write_text(body + "\n")
    if not args.no_append:
        append_results("Robustness: transforms, trimming, augmented enrollment, dihedral", body)


if __name__ == "__main__":
    main()
