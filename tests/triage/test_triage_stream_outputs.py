"""Priority, CSV, VICS and HTML report in bounded memory (issue 12): they read the case
in chunks, and their results do not depend on the chunk sizes."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath

import pytest
from jinja2.utils import htmlsafe_json_dumps
from sqlalchemy import insert, select, update
from triage_cases import jpeg

from sentinelle.banks import BankStore
from sentinelle.formats.entry import EntryIn
from sentinelle.store.db import open_engine
from sentinelle.triage import csv_out, priority, report_html, reviews, store, vics_case
from sentinelle.triage.tables import (
    triage_files,
    triage_groups,
    triage_links,
    triage_media,
    triage_series,
)

CASE = "op-stream"
N_GROUPS = 31
EXIF = {
    "evidence": [
        {
            "source": "camera",
            "indicates": "camera",
            "finding": "EXIF capture fields",
            "details": {"rule": "exif_capture"},
        },
        {"source": "camera", "indicates": "camera", "finding": "camera qtables"},
    ]
}
C2PA = {"evidence": [{"source": "c2pa", "indicates": "camera", "finding": "signed capture"}]}
AI = {
    "confidence": 0.8,
    "evidence": [{"source": "meta", "indicates": "ai_generated", "finding": "A1111"}],
}
WEAK = {"evidence": [{"source": "det", "indicates": "ai_generated", "finding": "p=0.6"}]}
PROVENANCE = [  # (verdict, record) by media number
    ("no_evidence", EXIF),
    ("camera", C2PA),
    ("ai_generated", AI),
    ("no_evidence", WEAK),
    ("conflicting", {"tampered": True}),
    (None, None),
    ("no_evidence", EXIF),
]
# fractional weights: priorities that the stored 3 decimals round together, so the
# rank must come from the unrounded sums (as the whole-case sort did)
WEIGHTS = {"series_member": 0.00001, "copies": 0.0001, "camera_qtables": 0.00005, "face": 0.3}


def _build(engine, root: Path) -> store.Case:
    """A case of N_GROUPS groups: statuses, series (one empty), provenance, copies in
    archives, bank facts, reviews, links, file errors; thumbnails for a few."""
    root.mkdir(parents=True, exist_ok=True)
    case = store.create_case(engine, CASE, {"weights": WEIGHTS})
    bs = BankStore(engine)
    bs.create_bank("known")
    bs.add_entries(
        "known",
        [
            EntryIn("md5", "a" * 32, media_ref="r1", category="1", victim_identified=False),
            EntryIn("md5", "b" * 32, media_ref="r2", category="2", victim_identified=True),
        ],
    )
    entries = [e.id for e in bs.iter_entries("known")]
    now = store.now()
    with engine.begin() as c:
        sids = []
        for k in "dbca":  # keys out of id order; "S-a" gets no group
            c.execute(
                insert(triage_series).values(
                    case_id=case.id,
                    key=f"S-{k}",
                    name="Lake" if k == "b" else None,
                    imported=k == "b",
                    n_groups=0,
                    priority=0.0,
                    cues=json.dumps({"device": 1}),
                )
            )
            sids.append(
                c.execute(
                    select(triage_series.c.id).where(triage_series.c.key == f"S-{k}")
                ).scalar_one()
            )
        m = 0
        gids = []
        for i in range(N_GROUPS):
            known = i % 6 == 5
            matches = []
            if known:
                matches = (
                    [{"bank": "known", "category": "1", "entry_id": entries[i % 2]}]
                    if i % 12 == 5
                    else [{"bank": "known", "category": "A1", "series": "Harbour"}]
                )
            key = "G-" + hashlib.sha256(str(i).encode()).hexdigest()[:16]
            gid = c.execute(
                insert(triage_groups).values(
                    case_id=case.id,
                    key=key,
                    media_type="video" if i % 5 == 4 else "image",
                    status="known" if known else "new",
                    bank_category=("1" if i % 12 == 5 else "A1") if known else None,
                    matches=json.dumps(matches),
                    series_id=sids[i % 3] if i % 4 else None,
                    tier="unknown_new",
                    priority=0.0,
                    rank=0,
                    reasons="[]",
                    n_media=1 + i % 3,
                    n_files=1 + i % 3 + i % 2,
                )
            ).inserted_primary_key[0]
            gids.append(gid)
            for j in range(1 + i % 3):
                verdict, prov = PROVENANCE[m % len(PROVENANCE)]
                m += 1
                data = jpeg(1 + m % 24) if i < 6 and j == 0 else f"media {m}".encode()
                mid = c.execute(
                    insert(triage_media).values(
                        case_id=case.id,
                        sha256=hashlib.sha256(data).hexdigest(),
                        md5=hashlib.md5(data).hexdigest() if m % 9 else None,
                        sha1=hashlib.sha1(data).hexdigest(),
                        size=len(data),
                        media_type="image",
                        format="jpeg",
                        pdq="f" * 64 if m % 2 else None,
                        provenance_verdict=verdict,
                        provenance=json.dumps(prov) if prov else None,
                        group_id=gid,
                    )
                ).inserted_primary_key[0]
                if j == 0:
                    c.execute(
                        update(triage_groups)
                        .where(triage_groups.c.id == gid)
                        .values(representative_media_id=mid)
                    )
                p = root / f"m{m}.jpg"
                p.write_bytes(data)
                copies = [(str(p), str(p), None)]
                if (i + j) % 2:
                    z = root / f"disk{m % 3}.zip"
                    copies.append((f"{z}!/DCIM/{m}.jpg", str(z), f"DCIM/{m}.jpg"))
                for path, src, member in copies:
                    c.execute(
                        insert(triage_files).values(
                            case_id=case.id,
                            path_key=hashlib.sha256(path.encode()).hexdigest(),
                            kind="member" if member else "file",
                            path=path,
                            source_path=src,
                            member_path=member,
                            size=len(data),
                            mtime_ns=1_700_000_000_000_000_000 + m,
                            media_id=mid,
                            hashed_at=now,
                        )
                    )
        members = defaultdict(list)
        for i, gid in enumerate(gids):
            if i % 4:
                members[sids[i % 3]].append(gid)
        for sid, gs in members.items():
            for a, b in zip(gs, gs[1:], strict=False):
                c.execute(
                    insert(triage_links).values(
                        case_id=case.id,
                        series_id=sid,
                        group_a=a,
                        group_b=b,
                        cue="device",
                        score=0.5,
                        detail="same camera",
                    )
                )
        for k in range(3):
            c.execute(
                insert(triage_files).values(
                    case_id=case.id,
                    path_key=hashlib.sha256(f"bad{k}".encode()).hexdigest(),
                    kind="file",
                    path=str(root / f"broken{k}.jpg"),
                    source_path=str(root / f"broken{k}.jpg"),
                    size=1,
                    mtime_ns=0,
                    error_code="decode_error" if k else "too_large",
                    error_message="bad",
                    hashed_at=now,
                )
            )
        reviews.record(c, case_id=case.id, group_id=gids[2], decision="imported", actor="t")
        reviews.record(
            c, case_id=case.id, group_id=gids[11], decision="imported", category="3", actor="t"
        )
    return case


def _ranked(engine, case_id: int) -> list[tuple]:
    with engine.connect() as c:
        return [
            tuple(r)
            for r in c.execute(
                select(
                    triage_groups.c.id,
                    triage_groups.c.tier,
                    triage_groups.c.priority,
                    triage_groups.c.rank,
                    triage_groups.c.reasons,
                    triage_groups.c.provenance_verdict,
                )
                .where(triage_groups.c.case_id == case_id)
                .order_by(triage_groups.c.id)
            )
        ]


def _series_priorities(engine, case_id: int) -> dict[str, float]:
    with engine.connect() as c:
        rows = c.execute(
            select(triage_series.c.key, triage_series.c.priority).where(
                triage_series.c.case_id == case_id
            )
        )
        return dict(rows.all())


def _whole_case(engine, case_id: int, w, faces, ages):
    """The whole-case computation the streaming one replaced: every group scored, one
    sort of the unrounded priorities (then tier order, then key)."""
    with engine.connect() as c:
        groups = c.execute(select(triage_groups).where(triage_groups.c.case_id == case_id)).all()
        media = c.execute(
            select(triage_media)
            .where(triage_media.c.case_id == case_id)
            .order_by(triage_media.c.id)
        ).all()
    sizes = Counter(g.series_id for g in groups if g.series_id is not None)
    ev = defaultdict(priority._Evidence)
    age: dict[int, str] = {}
    for r in media:
        priority._read(ev[r.group_id], r.provenance_verdict, json.loads(r.provenance or "null"))
        if r.id in ages:
            age.setdefault(r.group_id, ages[r.id])
    scored = []
    for g in groups:
        tier, pri, reasons = priority.score(
            g.status,
            g.bank_category,
            ev[g.id],
            w,
            n_files=g.n_files,
            n_media=g.n_media,
            series_size=sizes.get(g.series_id, 1),
            faces=faces.get(g.id, 0),
            media_type=g.media_type,
            age_cue=age.get(g.id),
            matches=json.loads(g.matches) if g.matches else None,
        )
        vs = ev[g.id].verdicts
        verdict = max(vs, key=lambda v: vs[v]) if vs else None
        scored.append((g, tier, pri, json.dumps(reasons, separators=(",", ":")), verdict))
    scored.sort(key=lambda t: (-t[2], priority.TIERS.index(t[1]), t[0].key))
    rows = sorted(
        (g.id, tier, round(pri, 3), rank, reasons, verdict)
        for rank, (g, tier, pri, reasons, verdict) in enumerate(scored, start=1)
    )
    best: dict[int, float] = {}
    for g, _t, pri, _r, _v in scored:
        if g.series_id is not None:
            best[g.series_id] = max(best.get(g.series_id, 0.0), pri)
    return rows, best, Counter(t for _g, t, *_ in scored)


def test_prioritise_in_chunks_ranks_as_the_whole_case_sort(db_url: str, tmp_path: Path) -> None:
    engine = open_engine(db_url)
    try:
        case = _build(engine, tmp_path / "seized")
        w = priority.weights_from(WEIGHTS)
        with engine.connect() as c:
            gids = c.execute(select(triage_groups.c.id).order_by(triage_groups.c.id)).scalars()
            gids = list(gids)
            mids = list(c.execute(select(triage_media.c.id)).scalars())
        faces = {g: 1 + g % 2 for g in gids[::3]}
        ages = {m: f"apparent age {m}" for m in mids[::4]}
        want, best, tiers = _whole_case(engine, case.id, w, faces, ages)
        # groups tie after rounding here: ranking the stored (rounded) priorities
        # would give other ranks
        with engine.connect() as c:
            keys = dict(c.execute(select(triage_groups.c.id, triage_groups.c.key)).all())
        rounded = sorted(want, key=lambda r: (-r[2], priority.TIERS.index(r[1]), keys[r[0]]))
        assert [r[3] for r in rounded] != list(range(1, N_GROUPS + 1))
        for chunk in (1, 2, 3, None):
            got = priority.prioritise(
                engine, case.id, w, face_links=faces, age_cues=ages, chunk=chunk
            )
            assert got == dict(tiers) and list(got) == sorted(
                got, key=lambda t: min(r[3] for r in want if r[1] == t)
            )
            assert _ranked(engine, case.id) == want, chunk
            with engine.connect() as c:
                keys = dict(c.execute(select(triage_series.c.id, triage_series.c.key)).all())
            assert _series_priorities(engine, case.id) == {
                "S-a": 0.0,  # no group: left as it was
                **{keys[sid]: round(p, 3) for sid, p in best.items()},
            }
    finally:
        engine.dispose()


def _html(engine, **kw) -> str:
    html = report_html.render_report(engine, CASE, **kw)
    return re.sub(r"Generated [^·]+·", "Generated ·", html)


def test_outputs_do_not_depend_on_the_chunk_sizes(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_engine(db_url)
    try:
        case = _build(engine, tmp_path / "seized")
        priority.prioritise(engine, case.id, priority.weights_from(WEIGHTS))
        opts = {"max_rows": 20, "max_thumbnails": 3, "max_paths": 1, "max_errors": 2}
        out = []
        for small in (False, True):
            if small:
                monkeypatch.setattr(vics_case, "_BATCH", 1)
                monkeypatch.setattr(report_html, "CHUNK", 2)
                monkeypatch.setattr(report_html, "FILES_BUDGET", 1)
            buf = io.StringIO()
            n = csv_out.write_csv(
                engine, case.id, buf, **({"batch": 1, "files_budget": 1} if small else {})
            )
            vics = tmp_path / f"case{small}.json"
            media = vics_case.export_case(engine, CASE, vics)
            out.append((n, buf.getvalue(), media, vics.read_bytes(), _html(engine, **opts)))
        assert out[0] == out[1]
        n, text, media, vics, html = out[0]
        # every copy once, in rank order; every media with an MD5
        with engine.connect() as c:
            copies = c.execute(
                select(triage_files.c.id).where(triage_files.c.media_id.is_not(None))
            ).all()
        assert n == len(copies) == len(text.splitlines()) - 1
        ranks = [int(r.split(",", 1)[0]) for r in text.splitlines()[1:]]
        assert ranks == sorted(ranks) and len(set(ranks)) == N_GROUPS
        doc = json.loads(vics)
        assert len(doc["value"][0]["Media"]) == media
        ids = [x["MediaID"] for x in doc["value"][0]["Media"]]
        assert ids == sorted(ids)
        # the report: 20 of 31 groups listed, 3 thumbnails, series strips of listed
        # groups only, the sharp map as |tojson writes it, error counts from SQL
        assert len(re.findall(r'<tr id="g-', html)) == 20 and "11 more groups" in html
        assert "Priority queue (20 groups)" in html and "Series (4)" in html
        sharp = re.search(r'id="sharp">(.*?)</script>', html).group(1)
        assert len(json.loads(sharp)) == 3
        assert "decode_error: 2" in html and "too_large: 1" in html and "first 2 listed" in html
        assert "over the 3 thumbnail limit" in html and "review: imported" in html
    finally:
        engine.dispose()


def test_sharp_map_is_what_tojson_writes() -> None:
    previews = report_html._Previews()
    try:
        assert "".join(previews.sharp_json()) == str(htmlsafe_json_dumps({}, sort_keys=True))
        t = report_html.Thumb
        previews.put(
            [
                (1, 0, 1, "G-b", t("x", "<b>&'é"), None),
                (2, 1, 2, "G-a", t("y", "s1"), None),
                (3, 2, 3, "G-c", None, "no preview"),
                (4, 3, 4, "G-a", t("z", "s2"), None),  # a key twice: the later wins
                (5, 4, 5, "G-d", t("w", None), None),
            ]
        )
        want = {"G-b": "<b>&'é", "G-a": "s2"}
        got = "".join(previews.sharp_json())
        assert got == str(htmlsafe_json_dumps(want, sort_keys=True))
        assert previews.get([3, 5, 9]) == {
            3: (3, "G-c", None, "no preview"),
            5: (5, "G-d", t("w", None), None),
        }
    finally:
        previews.close()


def test_pages_follow_the_listing_order(db_url: str, tmp_path: Path) -> None:
    engine = open_engine(db_url)
    try:
        case = _build(engine, tmp_path / "seized")
        with engine.begin() as c:  # ties: equal ranks, equal series priorities
            c.execute(update(triage_groups).values(rank=triage_groups.c.id % 4))
            c.execute(update(triage_series).values(priority=1.5))
            c.execute(update(triage_series).where(triage_series.c.key == "S-c").values(priority=2))
        listed = [g.id for g in store.list_groups(engine, case.id)]
        for batch in (1, 2, 7, 500):
            pages = list(store.iter_groups(engine, case.id, batch=batch))
            assert all(len(p) <= batch for p in pages)
            assert [g.id for p in pages for g in p] == listed
            known = [
                g.id
                for p in store.iter_groups(engine, case.id, status="known", batch=batch)
                for g in p
            ]
            assert known == [g.id for g in store.list_groups(engine, case.id, status="known")]
            series = [s.id for p in store.iter_series(engine, case.id, batch=batch) for s in p]
            assert series == [s.id for s in store.list_series(engine, case.id)]
        groups = store.list_groups(engine, case.id)
        runs = list(store.by_files(groups, 4))
        assert [g for r in runs for g in r] == groups
        assert all(sum(g.n_files for g in r) <= 4 or len(r) == 1 for r in runs)
        assert store.file_error_counts(engine, case.id) == [("decode_error", 2), ("too_large", 1)]
        assert [f.path for f in store.file_errors(engine, case.id, limit=2)] == [
            f.path for f in store.file_errors(engine, case.id)[:2]
        ]
    finally:
        engine.dispose()


def test_id_lists_come_in_few_lengths() -> None:
    assert store.id_list([]) == []
    assert store.id_list([3, 1, 3]) == [1, 3] + [3] * 14
    lengths = {len(store.id_list(range(n))) for n in range(1, 1001)}
    assert lengths == {16, 32, 64, 128, 256, 512, 1024}


@pytest.mark.parametrize(
    "path",
    ["a/b.jpg", "a/b/", "a/./", "/", "", ".", "..", "a/..", "//x//y", "x", "a/b/.", "./.", "é/ü"],
)
def test_file_names_without_pathlib(path: str) -> None:
    assert vics_case._posix_name(path) == PurePosixPath(path).name
    assert vics_case._file_name(path) == Path(path).name
