"""The default scene cue (ORB key votes propose, RANSAC decides): voting, the feature
file, the worker-process path end to end, the all-pairs limit, and the indexed
per-row queries of the store (real files, real SQLite)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from triage_seized import device_exif, save_jpeg

from sentinelle.store.db import open_engine
from sentinelle.triage import scene, store
from sentinelle.triage.run import media_reader, run_triage
from sentinelle.triage.series import SeriesOptions, build_series

PHOTOS = Path(__file__).resolve().parents[2].parent / "shared/corpora/photos/bsds500"


def _photo(i: int) -> Image.Image:
    return Image.open(sorted(PHOTOS.glob("*.jpg"))[i]).convert("RGB")


def _shots(root: Path, im: Image.Image, n: int, name: str) -> None:
    """``n`` overlapping 60% crops of one scene, EXIF-weak (model only, days apart)."""
    w, h = im.size
    for k in range(n):
        x = int(w * 0.2 * k)
        shot = im.crop((x, 0, x + int(w * 0.6), int(h * 0.6))).resize((w, h))
        ex = device_exif("Apple", "iPhone 12", None, f"2024:0{k + 1}:01 10:00:00")
        save_jpeg(shot, root / f"{name}_{k}.jpg", 90, ex)


def test_vote_pairs_shared_keys_stop_words_and_top_k() -> None:
    rng = np.random.default_rng(1)

    def keys(vals: np.ndarray) -> np.ndarray:
        return np.tile(vals.astype(np.uint32), (scene.VOTE_TABLES, 1))

    common = rng.integers(0, 2**24, 20)
    stop = np.arange(5, dtype=np.uint32)  # held by every image: stop words
    imgs = {
        0: keys(np.r_[common, stop, rng.integers(0, 2**24, 50)]),
        1: keys(np.r_[common[:10], stop, rng.integers(0, 2**24, 50)]),
        2: keys(np.r_[common[:2], stop, rng.integers(0, 2**24, 50)]),  # 2 x 4 tables = 8
    }
    for i in range(3, 3 + scene.VOTE_MAX_POSTING):
        imgs[i] = keys(np.r_[stop, rng.integers(0, 2**24, 50)])
    got = {(a, b): v for a, b, v in scene.vote_pairs(imgs.items(), top_k=8, min_votes=10)}
    assert got == {(0, 1): 10 * scene.VOTE_TABLES}  # (0, 2) has 8 < 10; stop words gone
    got = {(a, b) for a, b, _v in scene.vote_pairs(imgs.items(), top_k=1, min_votes=1)}
    # each image keeps its best partner: 0 and 1 each other, 2 one of them (a tie)
    assert (0, 1) in got and len(got) == 2 and got <= {(0, 1), (0, 2), (1, 2)}
    assert scene.vote_pairs([(0, imgs[0])]) == []


def test_vote_pairs_same_answer_in_one_pass_or_many() -> None:
    """Splitting the pair space into passes (bounded memory) changes nothing."""
    rng = np.random.default_rng(5)
    base = rng.integers(0, 2**24, size=4000)
    imgs = []
    for i in range(300):
        common = rng.random((scene.VOTE_TABLES, 120)) < 0.5
        k = np.where(
            common,
            rng.choice(base, size=(scene.VOTE_TABLES, 120)),
            rng.integers(0, 2**24, size=(scene.VOTE_TABLES, 120)),
        )
        imgs.append((i, k.astype(np.uint32)))
    one = scene.vote_pairs(imgs, pass_keys=10**9)
    many = scene.vote_pairs(lambda: iter(imgs), pass_keys=20_000)  # 8 passes
    assert one and one == many


def test_feature_file_round_trip_real_photo() -> None:
    import io

    b = io.BytesIO()
    _photo(3).save(b, "JPEG", quality=90)
    feat = scene.orb_features(b.getvalue())
    assert feat is not None and len(feat[1]) > 100
    with scene.FeatureFile() as ff:
        s0, s1 = ff.append(feat), ff.append(None)
        got, keys = ff.read(s0)
        assert np.array_equal(got[0], feat[0]) and np.array_equal(got[1], feat[1])
        assert keys.shape == (scene.VOTE_TABLES, min(len(feat[1]), scene.VOTE_DESCRIPTORS))
        assert ff.read(s1)[0] is None and not ff.has_features(s1)
        got_keys = dict(ff.keys())
        assert np.array_equal(got_keys[s0], keys) and got_keys[s1].size == 0
        assert scene.orb_inliers(got, feat) >= scene.ORB_MIN_INLIERS
        path = ff.path
    assert not Path(path).exists()  # the temporary file goes with the run


def test_orb_votes_in_workers_link_shots_and_leave_others(tmp_path: Path) -> None:
    root = tmp_path / "seized"
    _shots(root, _photo(30), 3, "IMG")
    for i in (60, 61, 62):  # unrelated photos, same phone model
        ex = device_exif("Apple", "iPhone 12", None, "2024:05:01 10:00:00")
        save_jpeg(_photo(i), root / f"other{i}.jpg", 90, ex)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    engine = open_engine(f"sqlite:///{tmp_path / 'sc.db'}")
    try:
        s = run_triage(engine, "scene", [root], workers=2)  # the default: scene "orb"
        assert s.series.scene_groups >= 6 and s.series.scene_candidates >= 2
        assert set(s.series.scene_seconds) == {"features", "candidates", "verify"}
        (series,) = store.list_series(engine, s.case.id)
        members = {
            Path(f.path).name
            for g in store.series_groups(engine, series.id)
            for f in store.group_files(engine, g.id)
        }
        assert members == {"IMG_0.jpg", "IMG_1.jpg", "IMG_2.jpg"}
        scene_links = [lk for lk in store.series_links(engine, series.id) if lk.cue == "scene"]
        assert scene_links and all("key votes" in lk.detail for lk in scene_links)
        # one process (the in-process path through a reader) finds the same series
        r = build_series(
            engine,
            s.case.id,
            SeriesOptions(scene="orb", threads=1),
            reader=media_reader(engine),
        )
        assert r.series == 1 and r.per_cue["scene"] == len(scene_links)
    finally:
        engine.dispose()


def test_orb_all_pairs_limit_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "seized"
    _shots(root, _photo(40), 3, "A")
    engine = open_engine(f"sqlite:///{tmp_path / 'all.db'}")
    try:
        s = run_triage(engine, "all", [root], workers=1, series_options=SeriesOptions(scene="none"))
        full = build_series(
            engine, s.case.id, SeriesOptions(scene="orb-all"), reader=media_reader(engine)
        )
        assert full.scene_candidates == 3 and not full.scene_truncated
        assert full.series == 1
        cut = build_series(
            engine,
            s.case.id,
            SeriesOptions(scene="orb-all", orb_max_pairs=1),
            reader=media_reader(engine),
        )
        assert cut.scene_candidates == 1 and cut.scene_truncated
    finally:
        engine.dispose()


def test_per_row_store_queries_use_the_case_indexes(tmp_path: Path) -> None:
    """The SQL the store runs per group / media / series is answered from the case
    indexes (EXPLAIN QUERY PLAN of the captured statements): no scan of the case's
    files per group, which made reports quadratic."""
    from sqlalchemy import event

    root = tmp_path / "seized"
    _shots(root, _photo(50), 2, "B")
    engine = open_engine(f"sqlite:///{tmp_path / 'ix.db'}")
    try:
        s = run_triage(engine, "ix", [root], workers=1)
        g = store.list_groups(engine, s.case.id)[0]
        (series,) = store.list_series(engine, s.case.id)
        seen: list[tuple[str, object]] = []

        def grab(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("SELECT"):
                seen.append((statement, params))

        event.listen(engine, "before_cursor_execute", grab)
        assert store.group_files(engine, g.id) and store.group_media(engine, g.id)
        assert store.media_files(engine, g.representative_media_id or 0)
        assert store.series_groups(engine, series.id) and store.series_links(engine, series.id)
        event.remove(engine, "before_cursor_execute", grab)
        want = ("ix_triage_files_media", "ix_triage_media_group", "ix_triage_files_media")
        want += ("ix_triage_groups_series", "ix_triage_links_series")
        assert len(seen) == len(want)
        with engine.connect() as c:
            for (sql, params), ix in zip(seen, want, strict=True):
                rows = c.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
                plan = " | ".join(r[-1] for r in rows)
                assert f"INDEX {ix} (case_id=? AND" in plan, plan
                assert "SCAN triage_" not in plan, plan
    finally:
        engine.dispose()


def test_keyset_chunks_are_range_reads(tmp_path: Path) -> None:
    """Every keyset chunk a triage run reads (``id > ? ORDER BY id LIMIT n``) is a range
    read of a ``(case_id, id)`` index: no chunk reads the whole case and sorts it
    (which made the stages quadratic in the case size)."""
    from sqlalchemy import event

    root = tmp_path / "seized"
    _shots(root, _photo(51), 3, "K")
    engine = open_engine(f"sqlite:///{tmp_path / 'keyset.db'}")
    seen: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        sql = " ".join(statement.split()).upper()
        if sql.startswith("SELECT") and ".ID > " in sql and "LIMIT" in sql:
            seen.append((statement, params))

    try:
        event.listen(engine, "before_cursor_execute", grab)
        s = run_triage(engine, "keyset", [root], workers=1)
        event.remove(engine, "before_cursor_execute", grab)
        assert s.grouping.groups and s.series.series
        tables = {t for sql, _p in seen for t in ("triage_media", "triage_groups") if t in sql}
        assert len(seen) >= 5 and tables == {"triage_media", "triage_groups"}
        with engine.connect() as c:
            for sql, params in seen:
                plan = " | ".join(
                    r[-1] for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
                )
                assert "_case_id (case_id=? AND id>?)" in plan, plan
                assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
    finally:
        engine.dispose()


def test_exact_rehash_in_workers_matches_the_serial_path(tmp_path: Path) -> None:
    """Bank matching re-hashes near-threshold copies exactly; in two worker processes
    it finds the same known groups as in one."""
    from triage_seized import build_seized, enroll_known

    from sentinelle.banks import BankStore
    from sentinelle.index.matcher import Matcher
    from sentinelle.triage.grouping import group_case

    seized = build_seized(
        tmp_path / "seized", n_known=6, n_series=1, shots_per_series=2, n_singles=3, n_ai=1
    )
    engine = open_engine(f"sqlite:///{tmp_path / 'ex.db'}")
    try:
        enroll_known(engine, seized)
        matcher = Matcher(BankStore(engine))
        s = run_triage(
            engine, "ex", [seized.root], workers=1, series_options=SeriesOptions(scene="none")
        )

        def state() -> list[tuple[str, str, str | None]]:
            return sorted(
                (g.key, g.status, g.bank_category) for g in store.list_groups(engine, s.case.id)
            )

        one = group_case(engine, s.case.id, matcher=matcher, workers=1)
        before = state()
        two = group_case(engine, s.case.id, matcher=matcher, workers=2)
        assert state() == before
        assert (one.known, one.verified_exact) == (two.known, two.verified_exact)
        assert two.known == 6 and two.verified_exact > 0  # the pool path ran
    finally:
        engine.dispose()


def test_ratio_matches_faiss_and_opencv_agree() -> None:
    """The fast 2-NN (faiss, when installed) keeps exactly OpenCV's ratio-test matches."""
    import io

    import pytest

    pytest.importorskip("faiss")
    feats = []
    for i in (7, 8):
        b = io.BytesIO()
        _photo(i).save(b, "JPEG", quality=85)
        feats.append(scene.orb_features(b.getvalue()))
    w, h = _photo(7).size
    b = io.BytesIO()
    _photo(7).crop((0, 0, int(w * 0.7), int(h * 0.7))).resize((w, h)).save(b, "JPEG")
    feats.append(scene.orb_features(b.getvalue()))
    for x, y in ((0, 1), (0, 2), (2, 1)):
        fq, ft = scene._ratio_matches(feats[x][1], feats[y][1])
        cq, ct = scene._ratio_matches_cv2(feats[x][1], feats[y][1])
        assert sorted(zip(fq.tolist(), ft.tolist(), strict=True)) == sorted(
            zip(cq.tolist(), ct.tolist(), strict=True)
        )
    assert scene.orb_inliers(feats[0], feats[2]) >= scene.ORB_MIN_INLIERS
    # RANSAC is seeded per pair: the same count whatever was verified before
    counts = set()
    for x in range(3):
        scene.orb_inliers(feats[x % 2], feats[1 - x % 2])
        counts.add(scene.orb_inliers(feats[0], feats[2]))
    assert len(counts) == 1
