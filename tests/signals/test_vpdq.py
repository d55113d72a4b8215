"""vPDQ conformance against the reference vpdq outputs, and the video match rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinelle.signals.hashcodec import hamming_hex
from sentinelle.signals.hasher import hash_file
from sentinelle.signals.types import VideoFrame, VPDQSignal
from sentinelle.signals.vpdq import match_videos, read_reference_file, vpdq_hash

CLIPS = sorted(
    p.stem
    for p in (Path(__file__).resolve().parents[2].parent / "shared/conformance/vpdq/videos").glob(
        "*.mp4"
    )
)


def _frame_agreement(ours: VPDQSignal, ref: VPDQSignal, min_quality: int = 50) -> float:
    """% of reference frames (quality >= min_quality) whose index we hash within 31."""
    by_index = {f.frame: f for f in ours.frames}
    considered = [f for f in ref.frames if f.quality >= min_quality and f.frame in by_index]
    if not considered:
        return 0.0
    ok = sum(hamming_hex(by_index[f.frame].hash, f.hash) <= 31 for f in considered)
    return 100.0 * ok / len(considered)


@pytest.fixture(scope="module")
def vdir(shared: Path) -> Path:
    return shared / "conformance/vpdq"


def test_all_clips_present(vdir: Path) -> None:
    assert len(CLIPS) == 10


@pytest.mark.slow
@pytest.mark.parametrize("clip", CLIPS)
def test_fast_path_conformance(clip: str, vdir: Path) -> None:
    """Fast path (scan): every frame, >= 95% within distance 31, videos match."""
    ref = read_reference_file(vdir / "expected" / f"{clip}.txt")
    ours = vpdq_hash(vdir / "videos" / f"{clip}.mp4", exact=False)
    assert [f.frame for f in ours.frames] == [f.frame for f in ref.frames]
    for a, b in zip(ours.frames, ref.frames, strict=True):
        assert a.timestamp == pytest.approx(b.timestamp, abs=0.002)
    assert _frame_agreement(ours, ref) >= 95.0
    q_pct, t_pct, is_match = match_videos(ours, ref)
    assert is_match, (q_pct, t_pct)


@pytest.mark.parametrize("clip", CLIPS)
def test_exact_path_conformance(clip: str, vdir: Path) -> None:
    """Exact path (native RGB24 as the reference): first 60 frames of every clip."""
    ref = read_reference_file(vdir / "expected" / f"{clip}.txt")
    ours = vpdq_hash(vdir / "videos" / f"{clip}.mp4", exact=True, first_frames=60)
    assert len(ours.frames) == 60
    assert _frame_agreement(ours, ref) >= 95.0
    for a, b in zip(ours.frames, ref.frames, strict=False):
        assert a.quality == pytest.approx(b.quality, abs=5)
    head = VPDQSignal(ref.frames[:60])
    assert match_videos(ours, head)[2]


def test_hash_file_vpdq_and_json(vdir: Path) -> None:
    r = hash_file(vdir / "videos/doorknob-hd-no-bar.mp4", signals=("vpdq", "md5"))
    assert r.error is None and r.width == 1280 and r.height == 720
    d = r.to_dict()
    assert [s["type"] for s in d["signals"]] == ["vpdq", "md5"]
    f0 = d["signals"][0]["frames"][0]
    assert set(f0) >= {"frame", "hash", "quality", "timestamp"} and f0["frame"] == 0


def test_different_videos_do_not_match(vdir: Path) -> None:
    chair = read_reference_file(vdir / "expected/chair-19-sd-bar.txt")
    pattern = read_reference_file(vdir / "expected/pattern-sd-grey-bar.txt")
    door = read_reference_file(vdir / "expected/doorknob-hd-no-bar.txt")
    for a, b in ((chair, pattern), (chair, door), (pattern, door)):
        q, t, m = match_videos(a, b)
        assert not m and q < 80 and t < 80


def test_variants_of_one_video_match(vdir: Path) -> None:
    a = read_reference_file(vdir / "expected/chair-orig-22-sd-bar.txt")
    b = read_reference_file(vdir / "expected/chair-22-with-small-logo-bar.txt")
    assert match_videos(a, b)[2]


def _sig(hashes: list[str], quality: int = 100) -> VPDQSignal:
    return VPDQSignal(tuple(VideoFrame(i, h, quality, i / 30) for i, h in enumerate(hashes)))


def test_match_rule_semantics() -> None:
    z = "0" * 64
    near = "0" * 56 + "ffffffff"  # 32 bits away -> no match at 31
    close = "0" * 60 + "ffff"  # 16 bits away
    far = "f" * 64
    # duplicates collapse: 3 frames of z count once
    assert _sig([z, z, z]).unique_frames() == [_sig([z]).frames[0]]
    assert match_videos(_sig([z, z, z]), _sig([close])) == (100.0, 100.0, True)
    assert match_videos(_sig([z]), _sig([near]))[2] is False
    assert match_videos(_sig([z]), _sig([near]), distance=32)[2] is True
    # one-sided containment: the query is all in the target but not vice versa
    q, t, m = match_videos(_sig([z]), _sig([z, far]))
    assert (q, t, m) == (100.0, 50.0, False)
    assert match_videos(_sig([z]), _sig([z, far]), threshold_pct=50.0)[2] is True
    # low-quality frames are ignored; no usable frames never matches
    assert match_videos(_sig([z], quality=10), _sig([z], quality=10)) == (0.0, 0.0, False)
    assert match_videos(_sig([]), _sig([z]))[2] is False
