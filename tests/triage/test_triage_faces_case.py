"""Face hooks of a triage case (``face_links``, ``age_cues``) on a real database."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from sentinelle.triage import faces as F
from sentinelle.triage import store
from sentinelle.triage.tables import triage_files, triage_groups, triage_media

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "photos" / "bsds500"
REASON = F.unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"faces extra: {REASON}")


def _add(engine: sa.Engine, case_id: int, path: Path, status: str, n: int) -> int:
    data = path.read_bytes()
    with engine.begin() as c:
        gid = c.execute(
            sa.insert(triage_groups).values(
                case_id=case_id,
                key=f"G-{n}",
                media_type="image",
                status=status,
                tier="camera_new" if status == "new" else "known",
                priority=1.0,
                rank=n,
                reasons="[]",
                n_media=1,
                n_files=1,
            )
        ).inserted_primary_key[0]
        mid = c.execute(
            sa.insert(triage_media).values(
                case_id=case_id,
                sha256=f"{n:064x}",
                size=len(data),
                media_type="image",
                format="jpeg",
                meta=json.dumps({"make": "Fake"}),
                group_id=gid,
            )
        ).inserted_primary_key[0]
        c.execute(
            sa.insert(triage_files).values(
                case_id=case_id,
                path_key=f"{n:064x}",
                kind="file",
                path=path.name,
                source_path=str(path),
                member_path=None,
                size=len(data),
                mtime_ns=1,
                media_id=mid,
                hashed_at=store.now(),
            )
        )
    return int(mid)


def test_face_links_and_age_cues_on_a_case(engine: sa.Engine, tmp_path: Path) -> None:
    if not PHOTOS.is_dir():
        pytest.skip(f"shared corpus {PHOTOS} missing")
    src = Image.open(PHOTOS / "181018.jpg").convert("RGB")
    files = {}
    for name, im in {
        "woman.jpg": src,
        "woman-crop.jpg": src.crop((20, 20, src.width - 20, src.height - 20)),
    }.items():
        b = io.BytesIO()
        im.save(b, "JPEG", quality=85)
        (tmp_path / name).write_bytes(b.getvalue())
        files[name] = tmp_path / name
    for name in ("368037.jpg", "302022.jpg", "100007.jpg"):
        shutil.copy(PHOTOS / name, tmp_path / name)
        files[name] = tmp_path / name
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    files["broken.jpg"] = tmp_path / "broken.jpg"
    shutil.copy(PHOTOS / "181018.jpg", tmp_path / "known.jpg")
    files["known.jpg"] = tmp_path / "known.jpg"

    case = store.create_case(engine, "faces-case")  # default threshold 0.4
    ids = {
        name: _add(engine, case.id, p, "known" if name == "known.jpg" else "new", n)
        for n, (name, p) in enumerate(files.items(), start=1)
    }
    links = list(F.face_links(engine, case.id))
    # the photo and its crop link; known material is skipped; nothing else links
    assert [(a, b) for a, b, _, _ in links] == [
        tuple(sorted((ids["woman.jpg"], ids["woman-crop.jpg"])))
    ]
    a, b, score, detail = links[0]
    assert 0.6 < score <= 1.0 and "not an identification" in detail

    stored = {m.id: m.meta for m in store.iter_media(engine, case.id)}
    assert stored[ids["woman.jpg"]]["make"] == "Fake"  # other meta keys kept
    assert len(stored[ids["368037.jpg"]]["faces"]["faces"]) == 3
    assert stored[ids["100007.jpg"]]["faces"]["faces"] == []  # no face: kept as such
    assert "faces" not in stored[ids["broken.jpg"]]  # unreadable: retried next run
    assert "faces" not in stored[ids["known.jpg"]]
    errors = {mid: err for mid, _, err in F.case_faces(engine, case.id) if err}
    assert errors[ids["broken.jpg"]]["code"] == "corrupt_media"

    # a rerun reads the kept faces: same links even with the files gone
    for p in files.values():
        p.unlink()
    assert list(F.face_links(engine, case.id)) == links
    # the age cue raises the children's photo only; absence says nothing
    cues = F.age_cues(engine, case.id)
    if F.age_unavailable_reason() is None:
        assert set(cues) == {ids["368037.jpg"]}
        assert "never clears" in cues[ids["368037.jpg"]]
    else:
        assert cues == {}
