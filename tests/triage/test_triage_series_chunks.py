"""build_series reads the groups and media in keyset chunks into arrays, and the scene
cue's votes are counted in slices and partitions on disk: any chunk size or memory
budget gives the same series, links and reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from triage_seized import build_seized

from sentinelle.store.db import open_engine
from sentinelle.triage import scene, series
from sentinelle.triage.run import media_reader, run_triage
from sentinelle.triage.series import SeriesOptions, build_series, snapshot
from sentinelle.triage.tables import triage_groups, triage_links, triage_series


def _state(engine: Any, case_id: int) -> tuple[list[Any], list[Any], list[Any]]:
    g, s, ln = triage_groups.c, triage_series.c, triage_links.c
    with engine.connect() as c:
        key_of = dict(c.execute(select(g.id, g.key).where(g.case_id == case_id)).all())
        sk = dict(c.execute(select(s.id, s.key).where(s.case_id == case_id)).all())
        rows = c.execute(
            select(s.key, s.name, s.n_groups, s.cues).where(s.case_id == case_id)
        ).all()
        members = c.execute(select(g.key, g.series_id).where(g.case_id == case_id)).all()
        links = c.execute(
            select(ln.group_a, ln.group_b, ln.cue, ln.score, ln.detail, ln.series_id).where(
                ln.case_id == case_id
            )
        ).all()
    return (
        sorted(tuple(r) for r in rows),
        sorted((k, sk.get(sid)) for k, sid in members),
        sorted((key_of[a], key_of[b], cue, sc, d, sk.get(sid)) for a, b, cue, sc, d, sid in links),
    )


def test_small_chunks_and_budgets_give_the_same_series(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seized = build_seized(
        tmp_path / "seized", n_known=3, n_series=3, shots_per_series=3, n_singles=4, n_ai=1
    )
    engine = open_engine(f"sqlite:///{tmp_path / 'se.db'}")
    try:
        s = run_triage(engine, "se", [seized.root], workers=1)
        cid = s.case.id
        reader = media_reader(engine)

        def rebuild() -> tuple[Any, ...]:
            r = build_series(
                engine, cid, SeriesOptions(), previous=snapshot(engine, cid), reader=reader
            )
            return r.series, r.links, r.per_cue, r.scene_groups, r.scene_candidates

        whole, summary = _state(engine, cid), rebuild()
        assert summary[0] >= 3 and summary[3] >= 2  # series found, the scene cue looked
        assert _state(engine, cid) == whole  # a rerun keeps the series keys
        monkeypatch.setattr(series, "CHUNK", 2)
        monkeypatch.setattr(scene, "VOTE_PASS_KEYS", 50)
        assert rebuild() == summary
        assert _state(engine, cid) == whole
    finally:
        engine.dispose()


def test_vote_arrays_match_the_pair_list_at_any_budget() -> None:
    rng = np.random.default_rng(9)
    base = rng.integers(0, 2**24, size=600)
    imgs = [
        (i, np.where(rng.random((4, 40)) < 0.6, rng.choice(base, (4, 40)), i).astype(np.uint32))
        for i in range(80)
    ]
    imgs.append((80, np.zeros((4, 0), dtype=np.uint32)))  # an image without features
    ref = scene.vote_pairs(imgs, pass_keys=10**9)
    assert len(ref) > 40
    for budget in (5_000, 300, 7):
        a, b, n = scene.vote_arrays(lambda: iter(imgs), pass_keys=budget)
        assert list(zip(a.tolist(), b.tolist(), n.tolist(), strict=True)) == ref
    # top_k bounds each image's partners, counted on either side of a pair
    a, b, _n = scene.vote_arrays(imgs, top_k=2, min_votes=1, pass_keys=100)
    assert len(a) and np.all(a < b)
    two = scene.vote_pairs(imgs, top_k=2, min_votes=1)
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == [(x, y) for x, y, _v in two]
