"""group_case reads the media in keyset chunks: any chunk size gives the same groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from triage_seized import build_seized, enroll_known

from sentinelle.banks import BankStore
from sentinelle.index.matcher import Matcher
from sentinelle.store.db import open_engine
from sentinelle.triage import grouping
from sentinelle.triage.grouping import group_case
from sentinelle.triage.run import run_triage
from sentinelle.triage.series import SeriesOptions
from sentinelle.triage.tables import triage_groups, triage_media


def _state(engine: Any, case_id: int) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
    g = triage_groups.c
    with engine.connect() as c:
        groups = c.execute(
            select(
                g.key,
                g.status,
                g.bank_category,
                g.matches,
                g.media_type,
                g.n_media,
                g.n_files,
                g.representative_media_id,
                g.tier,
            )
            .where(g.case_id == case_id)
            .order_by(g.key)
        ).all()
        members = c.execute(
            select(triage_media.c.sha256, triage_groups.c.key)
            .join(triage_groups, triage_groups.c.id == triage_media.c.group_id)
            .where(triage_media.c.case_id == case_id)
            .order_by(triage_media.c.sha256)
        ).all()
    return [tuple(r) for r in groups], [tuple(r) for r in members]


def test_small_chunks_give_the_same_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seized = build_seized(
        tmp_path / "seized", n_known=5, n_series=2, shots_per_series=3, n_singles=4, n_ai=1
    )
    engine = open_engine(f"sqlite:///{tmp_path / 'ch.db'}")
    try:
        enroll_known(engine, seized)
        matcher = Matcher(BankStore(engine))
        s = run_triage(
            engine, "ch", [seized.root], workers=1, series_options=SeriesOptions(scene="none")
        )
        cid = s.case.id
        # two media of different chunks share an MD5 (not a SHA-256): they must be joined
        with engine.connect() as c:
            rows = c.execute(
                select(triage_media.c.id, triage_media.c.md5)
                .where(triage_media.c.case_id == cid, triage_media.c.media_type.is_not(None))
                .order_by(triage_media.c.id)
            ).all()
        assert len(rows) > 8
        first, last = rows[0], rows[-1]
        with engine.begin() as c:
            c.execute(
                update(triage_media).where(triage_media.c.id == last.id).values(md5=first.md5)
            )

        one = group_case(engine, cid, matcher=matcher)
        whole = _state(engine, cid)
        monkeypatch.setattr(grouping, "CHUNK", 3)
        three = group_case(engine, cid, matcher=matcher)
        assert _state(engine, cid) == whole
        assert vars(one) == vars(three)
        assert one.known > 0 and one.groups < one.media
        key = {sha: k for sha, k in whole[1]}
        with engine.connect() as c:
            sha = dict(
                c.execute(
                    select(triage_media.c.id, triage_media.c.sha256).where(
                        triage_media.c.id.in_([first.id, last.id])
                    )
                ).all()
            )
        assert key[sha[first.id]] == key[sha[last.id]]
        monkeypatch.setattr(grouping, "CHUNK", 1)
        group_case(engine, cid, matcher=matcher)
        assert _state(engine, cid) == whole
    finally:
        engine.dispose()
