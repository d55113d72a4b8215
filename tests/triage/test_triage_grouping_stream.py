"""group_case on a synthetic case written straight into the triage tables: the groups
are exactly those of a brute-force reference (PDQ plain and variant queries, MD5,
the vPDQ rule, bank matches), and the same with every chunk and batch size shrunk
(the index built five hashes at a time, queries streamed a few at a time, videos one
by one, a group bigger than a write batch). SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, insert, select

from sentinelle.index.matcher import Match
from sentinelle.signals.types import HashSignal
from sentinelle.triage import grouping, store
from sentinelle.triage.grouping import MIN_QUALITY, SEVERITY, VIDEO_PCT, group_case
from sentinelle.triage.tables import triage_files, triage_groups, triage_media

THRESHOLD = 31


def _flip(h: str, bits: int, rng: random.Random) -> str:
    v = int(h, 16)
    for b in rng.sample(range(256), bits):
        v ^= 1 << b
    return f"{v:064x}"


def _rand(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def _dist(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _media(rng: random.Random) -> list[dict[str, Any]]:
    """Images (families of near copies, variant-only links, low quality, shared MD5,
    undecodable) and videos (a matching pair, a half match, low-quality frames)."""
    out: list[dict[str, Any]] = []

    def image(pdq: str | None, q: int = 100, variants: list[Any] | None = None, **kw: Any) -> dict:
        n = len(out)
        sha = hashlib.sha256(f"m{n}-{rng.random()}".encode()).hexdigest()
        row = {
            "sha256": sha,
            "md5": hashlib.md5(sha.encode()).hexdigest(),
            "pdq": pdq,
            "pdq_quality": q if pdq else None,
            "media_type": "image",
            "meta": json.dumps({"variants": variants}) if variants else None,
            "vpdq": None,
        }
        row.update(kw)
        out.append(row)
        return row

    for size in (9, 2, 5, 3):  # near copies of a base (<= 12 bits each)
        base = _rand(rng)
        for _k in range(size):
            image(_flip(base, rng.randint(0, 12), rng))
    for _single in range(12):
        image(_rand(rng))
    a = image(_rand(rng))  # joined only through b's crop variant
    image(_rand(rng), variants=[["crop6", _flip(a["pdq"], 20, rng), 90]])
    c = image(_rand(rng))  # the variant is too poor to count
    image(_rand(rng), variants=[["crop6", _flip(c["pdq"], 3, rng), 40]])
    d = image(_rand(rng))  # a near copy of poor quality joins nothing
    image(_flip(d["pdq"], 2, rng), q=30)
    e = image(_rand(rng))  # same MD5, another SHA-256
    image(_rand(rng), md5=e["md5"])
    image(None, media_type=None)  # undecodable, unmatched: no group
    image(None, media_type=None, md5=None)

    def video(frames: list[tuple[str, int]]) -> None:
        row = image(None, media_type="video")
        row["vpdq"] = json.dumps([[i, h, q, i * 1.0] for i, (h, q) in enumerate(frames)])

    shots = [_rand(rng) for _ in range(10)]
    video([(h, 100) for h in shots] + [(shots[0], 100)])  # a repeated frame counts once
    video([(_flip(h, 5, rng), 100) for h in shots[:9]])  # 9/9 and 9/10: joined
    video([(_flip(h, 4, rng), 100) for h in shots[:5]] + [(_rand(rng), 100)] * 5)  # 5/10
    video([(h, 20) for h in shots])  # no good frame
    video([(_rand(rng), 100) for _ in range(4)])
    return out


class _Matcher:
    """Bank matches by SHA-256 (several per media, in no particular order)."""

    def __init__(self, table: dict[str, list[Match]]) -> None:
        self.table = table

    def match_fast(self, result: Any) -> list[Match]:
        sha = next(
            s.hash for s in result.signals if isinstance(s, HashSignal) and s.type == "sha256"
        )
        return list(self.table.get(sha, []))


def _world(engine: Engine) -> tuple[int, list[dict[str, Any]], _Matcher]:
    rng = random.Random(7)
    media = _media(rng)
    case = store.create_case(engine, "synthetic")
    with engine.begin() as c:
        for m in media:
            m["id"] = c.execute(
                insert(triage_media)
                .values(case_id=case.id, size=10, **{k: v for k, v in m.items() if k != "id"})
                .returning(triage_media.c.id)
            ).scalar_one()
        n = 0
        for m in media:
            for _copy in range(1 + m["id"] % 3):
                n += 1
                c.execute(
                    insert(triage_files).values(
                        case_id=case.id,
                        path_key=f"k{n}",
                        kind="file",
                        path=f"/seized/f{n}",
                        source_path=f"/seized/f{n}",
                        size=10,
                        mtime_ns=0,
                        media_id=m["id"],
                        hashed_at=store.now(),
                    )
                )
    # five of the first family are known: several matches each, mixed categories
    table: dict[str, list[Match]] = {}
    cats = ["B2", None, "7", "A2", "7"]
    for i, m in enumerate(media[:5]):
        table[m["sha256"]] = [
            Match(
                "bank", 100 + (i * 7 + k) % 9, "x", "pdq", (i + k) % 4, category=cats[(i + k) % 5]
            )
            for k in range(6)
        ]
    single = media[20]  # a single known only by VICS-like categories
    table[single["sha256"]] = [Match("bank2", 5, "x", "md5", 0, category="7")]
    return case.id, media, _Matcher(table)


def _reference(media: list[dict[str, Any]]) -> list[set[int]]:
    """Single-linkage groups by brute force (sets of media ids), ungroupable left out."""
    n = len(media)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    def join(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    good = [i for i, m in enumerate(media) if m["pdq"] and m["pdq_quality"] >= MIN_QUALITY]
    for i in good:
        qs = [media[i]["pdq"]]
        for _n, h, q in json.loads(media[i]["meta"] or "{}").get("variants") or []:
            if q >= MIN_QUALITY:
                qs.append(h)
        for j in good:
            if j != i and any(_dist(q, media[j]["pdq"]) <= THRESHOLD for q in qs):
                join(i, j)
    by_md5: dict[str, int] = {}
    for i, m in enumerate(media):
        if m["md5"]:
            join(by_md5.setdefault(m["md5"], i), i)
    vids = [i for i, m in enumerate(media) if m["vpdq"]]
    frames = {
        i: sorted({h for _f, h, q, _t in json.loads(media[i]["vpdq"]) if q >= MIN_QUALITY})
        for i in vids
    }
    for a in vids:
        for b in vids:
            fa, fb = frames[a], frames[b]
            if a < b and fa and fb:
                ab = sum(any(_dist(x, y) <= 31 for y in fb) for x in fa)
                ba = sum(any(_dist(y, x) <= 31 for x in fa) for y in fb)
                if ab >= VIDEO_PCT * len(fa) and ba >= VIDEO_PCT * len(fb):
                    join(a, b)
    comps: dict[int, set[int]] = {}
    for i in range(n):
        comps.setdefault(find(i), set()).add(i)
    return [
        {media[i]["id"] for i in s}
        for s in comps.values()
        if any(media[i]["media_type"] for i in s)
    ]


def _state(engine: Engine, case_id: int) -> tuple[list[tuple[Any, ...]], dict[int, str | None]]:
    g = triage_groups.c
    with engine.connect() as c:
        groups = c.execute(
            select(
                g.id,
                g.key,
                g.status,
                g.bank_category,
                g.matches,
                g.media_type,
                g.n_media,
                g.n_files,
                g.representative_media_id,
                g.tier,
            )  # fmt: skip
            .where(g.case_id == case_id)
            .order_by(g.key)
        ).all()
        key = {r.id: r.key for r in groups}
        members = {
            mid: key.get(gid)
            for mid, gid in c.execute(
                select(triage_media.c.id, triage_media.c.group_id).where(
                    triage_media.c.case_id == case_id
                )
            )
        }
    return [tuple(r)[1:] for r in groups], members


def _expected_matches(matcher: _Matcher, by_id: dict[int, dict], ids: list[int]) -> list[dict]:
    out: list[dict] = []
    for mid in sorted(ids):
        seen: dict[tuple[str, int], Match] = {}
        for m in matcher.table.get(by_id[mid]["sha256"], []):
            k = (m.bank, m.entry_id)
            if k not in seen or m.distance < seen[k].distance:
                seen[k] = m
        for m in sorted(seen.values(), key=lambda m: (m.distance, m.entry_id))[:20]:
            out.append(
                {
                    "bank": m.bank,
                    "entry_id": m.entry_id,
                    "category": m.category,
                    "signal": m.signal,
                    "distance": m.distance,
                    "variant": m.variant,
                }
            )
    return out


def test_groups_match_the_brute_force_reference_at_any_batch_size(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id, media, matcher = _world(engine)
    by_id = {m["id"]: m for m in media}
    res = group_case(engine, case_id, matcher=matcher, near_threshold=THRESHOLD)
    groups, members = _state(engine, case_id)
    got: dict[str, set[int]] = {}
    for mid, key in members.items():
        if key is not None:
            got.setdefault(key, set()).add(mid)
    want = _reference(media)
    assert sorted(map(sorted, got.values())) == sorted(map(sorted, want))
    assert res.groups == len(want) == len(groups) and res.media == len(media)
    assert max(map(len, want)) >= 5 and any(len(s) == 2 for s in want)  # families, pairs
    copies = Counter(mid for mid in by_id for _c in range(1 + mid % 3))
    for key, status, cat, matches, mtype, n_media, n_files, rep, tier in groups:
        ids = got[key]
        assert key == "G-" + min(by_id[i]["sha256"] for i in ids)[:16]
        assert (n_media, n_files, rep) == (len(ids), sum(copies[i] for i in ids), min(ids))
        assert mtype == ("video" if any(by_id[i]["vpdq"] for i in ids) else "image")
        found = _expected_matches(matcher, by_id, list(ids))
        assert (status, tier) == (("known", "known") if found else ("new", "unknown_new"))
        assert (json.loads(matches) if matches else []) == found[:20]
        cats = [str(m["category"]) for m in found if m["category"]]
        sev = [s for s in SEVERITY if s in cats]
        assert cat == (sev[0] if sev else Counter(cats).most_common(1)[0][0] if cats else None)
    known = [g for g in groups if g[1] == "known"]
    assert {g[2] for g in known} == {"A2", "7"} and res.known == 2
    assert any(len(json.loads(g[3])) == 20 for g in known)  # more than 20: the first 20 kept

    whole = _state(engine, case_id)[0]
    for name, value in (
        ("CHUNK", 2),
        ("INDEX_BUDGET", 5),  # the plain hashes indexed five at a time, queries re-read
        ("QUERY_STEP", 3),
        ("VIDEO_CHUNK", 1),
        ("GROUP_STEP", 2),
        ("MEMBER_STEP", 3),  # the known family spans several match look-ups and writes
    ):
        monkeypatch.setattr(grouping, name, value)
    small = group_case(engine, case_id, matcher=matcher, near_threshold=THRESHOLD)
    assert _state(engine, case_id)[0] == whole
    assert vars(small) == vars(res)
    # the budget really splits the index: parts of at most 5 hashes, each good hash once
    ids = grouping._load_columns(engine, case_id).ids
    parts = list(grouping._plain_parts(engine, case_id, ids, 5))
    good = sorted(m["id"] for m in media if m["pdq"] and (m["pdq_quality"] or 0) >= MIN_QUALITY)
    assert len(parts) > 2 and all(len(p) <= 5 and len(p) == len(h) for p, h in parts)
    assert sorted(ids[np.concatenate([p for p, _h in parts])].tolist()) == good
