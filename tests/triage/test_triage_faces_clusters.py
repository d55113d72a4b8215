"""Face clustering maths on synthetic embeddings (no face model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from sentinelle.triage.face_clusters import (
    DEFAULT_THRESHOLD,
    DLIB_THRESHOLD,
    FaceRef,
    cluster_faces,
    pairs_below,
)


def _unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    v = rng.normal(size=(n, 128))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _near(base: np.ndarray, rng: np.random.Generator, dist: float) -> np.ndarray:
    """A vector exactly ``dist`` away from ``base``."""
    d = rng.normal(size=128)
    d -= d.dot(base) * base / base.dot(base)
    return (base + dist * d / np.linalg.norm(d)).astype(np.float32)


def test_pairs_below_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    centres = _unit(rng, 30)
    emb = np.concatenate([centres] + [np.stack([_near(c, rng, 0.3) for c in centres])])
    # random unit vectors are ~1.41 apart; each centre and its twin 0.3
    got = sorted((i, j) for i, j, _ in pairs_below(emb, 0.5))
    d = np.linalg.norm(emb[:, None, :] - emb[None, :, :], axis=-1)
    want = sorted((i, j) for i in range(len(emb)) for j in range(i + 1, len(emb)) if d[i, j] < 0.5)
    assert got == want and len(got) == 30


def test_links_files_and_series_with_reasons() -> None:
    rng = np.random.default_rng(2)
    person, other = _unit(rng, 2)
    refs = [
        FaceRef("a.jpg", 0, person, series_id="S-1"),
        FaceRef("b.jpg", 0, _near(person, rng, 0.35), series_id="S-2"),
        FaceRef("b.jpg", 1, other, series_id="S-2"),
        FaceRef("c.jpg", 0, _near(other, rng, 0.55), series_id="S-3"),  # only under 0.6
    ]
    res = cluster_faces(refs)
    assert res.threshold == DEFAULT_THRESHOLD == 0.4
    assert [(fl.file_a, fl.file_b) for fl in res.file_links] == [("a.jpg", "b.jpg")]
    fl = res.file_links[0]
    assert fl.distance == pytest.approx(0.35, abs=1e-5)
    assert "a.jpg#0 ~ b.jpg#0" in fl.reason and "not an identification" in fl.reason
    assert [(s.series_a, s.series_b) for s in res.series_links] == [("S-1", "S-2")]
    assert res.series_links[0].files == (("a.jpg", "b.jpg"),)
    assert "same face in series S-1 and S-2" in res.series_links[0].reason
    assert len(res.clusters) == 1 and res.clusters[0].files == ["a.jpg", "b.jpg"]
    # at dlib's own threshold the weaker pair links too
    loose = cluster_faces(refs, DLIB_THRESHOLD)
    assert {(s.series_a, s.series_b) for s in loose.series_links} == {
        ("S-1", "S-2"),
        ("S-2", "S-3"),
    }


def test_no_link_inside_one_file_and_chain_conflict_flagged() -> None:
    rng = np.random.default_rng(3)
    p = _unit(rng)[0]
    twin = _near(p, rng, 0.2)
    # two near-identical faces in one photo: never linked to each other
    res = cluster_faces([FaceRef("group.jpg", 0, p), FaceRef("group.jpg", 1, twin)])
    assert res.links == () and res.clusters == ()
    # ... but a third file close to both chains them: the cluster is marked as a conflict
    res = cluster_faces(
        [FaceRef("group.jpg", 0, p), FaceRef("group.jpg", 1, twin), FaceRef("x.jpg", 0, p)]
    )
    assert len(res.clusters) == 1
    c = res.clusters[0]
    assert c.conflict and len(c.members) == 3
    assert all(lk.a.file_id != lk.b.file_id for lk in res.links)


def test_chaining_is_visible_in_the_diameter() -> None:
    rng = np.random.default_rng(4)
    a = _unit(rng)[0]
    step = rng.normal(size=128)
    step -= step.dot(a) * a
    step /= np.linalg.norm(step)
    chain = [FaceRef(f"f{i}.jpg", 0, (a + 0.45 * i * step).astype(np.float32)) for i in range(4)]
    res = cluster_faces(chain, 0.5)
    assert len(res.clusters) == 1
    assert res.clusters[0].diameter == pytest.approx(1.35, abs=1e-4)  # far above 0.5
    assert len(res.file_links) == 3  # only the direct neighbours are links


def test_deterministic_and_order_independent() -> None:
    rng = np.random.default_rng(5)
    centres = _unit(rng, 5)
    refs = [
        FaceRef(f"m{k}-{j}", 0, _near(centres[k], rng, 0.25), series_id=f"S-{j % 3}")
        for k in range(5)
        for j in range(4)
    ]
    r1 = cluster_faces(refs)
    r2 = cluster_faces(list(reversed(refs)))
    assert [c.key for c in r1.clusters] == [c.key for c in r2.clusters]
    assert [c.files for c in r1.clusters] == [c.files for c in r2.clusters]
    assert r1.file_links == r2.file_links and r1.series_links == r2.series_links
    assert all(c.key.startswith("P-") and len(c.key) == 14 for c in r1.clusters)


def test_random_faces_do_not_link_and_bad_input_is_refused() -> None:
    rng = np.random.default_rng(6)
    emb = _unit(rng, 2000)  # unrelated faces, ~1.41 apart
    res = cluster_faces([FaceRef(str(i), 0, e) for i, e in enumerate(emb)])
    assert res.links == () and res.n_faces == 2000
    assert cluster_faces([]).clusters == ()
    with pytest.raises(ValueError, match="threshold"):
        cluster_faces([], 0.7)
    with pytest.raises(ValueError, match="128"):
        cluster_faces([FaceRef("a", 0, np.zeros(64, np.float32))])
    with pytest.raises(ValueError, match="finite"):
        cluster_faces([FaceRef("a", 0, np.full(128, np.nan, np.float32))])
    with pytest.raises(ValueError, match="share"):
        cluster_faces([FaceRef("a", 0, emb[0]), FaceRef("a", 0, emb[1])])
