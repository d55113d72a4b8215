"""The triage tables mirror migration 0014 and the read API round-trips a case."""

from __future__ import annotations

import json

import sqlalchemy as sa

from sentinelle.store.db import open_engine
from sentinelle.triage import store
from sentinelle.triage.tables import (
    metadata,
    triage_files,
    triage_groups,
    triage_links,
    triage_media,
    triage_series,
)


def test_tables_mirror_the_migrated_schema(db_url: str) -> None:
    engine = open_engine(db_url)
    try:
        insp = sa.inspect(engine)
        migrated = set(insp.get_table_names())
        assert metadata.tables
        for name, table in metadata.tables.items():
            assert name in migrated, name
            db = {c["name"]: c["nullable"] for c in insp.get_columns(name)}
            code = {c.name: c.nullable for c in table.columns}
            assert db == code, name
        entry_cols = {c["name"] for c in insp.get_columns("bank_entries")}
        assert {"series", "victim_identified", "offender_identified", "is_distributed"} <= (
            entry_cols
        )
    finally:
        engine.dispose()


def test_read_api_round_trip(db_url: str) -> None:
    engine = open_engine(db_url)
    try:
        case = store.create_case(engine, "op-test", {"weights": {"camera": 3.0}})
        assert store.create_case(engine, "op-test").id == case.id  # idempotent
        with engine.begin() as c:
            gid = c.execute(
                sa.insert(triage_groups).values(
                    case_id=case.id,
                    key="G-aa",
                    media_type="image",
                    status="new",
                    tier="camera_new",
                    priority=9.5,
                    rank=1,
                    reasons=json.dumps([{"cue": "camera", "weight": 3.0, "detail": "EXIF"}]),
                    n_media=1,
                    n_files=2,
                )
            ).inserted_primary_key[0]
            mid = c.execute(
                sa.insert(triage_media).values(
                    case_id=case.id, sha256="a" * 64, md5="b" * 32, size=10, group_id=gid
                )
            ).inserted_primary_key[0]
            for p in ("x/a.jpg", "y.zip!/a.jpg"):
                c.execute(
                    sa.insert(triage_files).values(
                        case_id=case.id,
                        path_key=p.ljust(64, "0")[:64],
                        kind="member" if "!/" in p else "file",
                        path=p,
                        source_path=p.split("!/")[0],
                        member_path=p.split("!/")[1] if "!/" in p else None,
                        size=10,
                        mtime_ns=1,
                        media_id=mid,
                        hashed_at=store.now(),
                    )
                )
            sid = c.execute(
                sa.insert(triage_series).values(
                    case_id=case.id,
                    key="S-1",
                    imported=False,
                    n_groups=1,
                    priority=9.5,
                    cues=json.dumps({"device": 1}),
                )
            ).inserted_primary_key[0]
            c.execute(sa.update(triage_groups).values(series_id=sid))
            c.execute(
                sa.insert(triage_links).values(
                    case_id=case.id,
                    series_id=sid,
                    group_a=gid,
                    group_b=gid,
                    cue="device",
                    score=1.0,
                    detail="Canon X",
                )
            )
        groups = store.list_groups(engine, case.id)
        assert [g.key for g in groups] == ["G-aa"]
        assert groups[0].reasons[0]["cue"] == "camera"
        assert [f.path for f in store.group_files(engine, gid)] == ["x/a.jpg", "y.zip!/a.jpg"]
        assert store.group_media(engine, gid)[0].sha256 == "a" * 64
        s = store.list_series(engine, case.id)[0]
        assert s.cues == {"device": 1}
        assert store.series_links(engine, s.id)[0].detail == "Canon X"
        assert store.set_series_name(engine, case.id, "S-1", "Imported name")
        assert store.get_series(engine, case.id, "S-1").name == "Imported name"
        assert store.case_summary(engine, case.id)["tiers"] == {"camera_new": 1}
    finally:
        engine.dispose()
