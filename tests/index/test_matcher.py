"""The matcher over a real database (SQLite and PostgreSQL): incremental updates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from sentinelle.banks import BankStore
from sentinelle.formats.entry import EntryIn
from sentinelle.index.matcher import Matcher
from sentinelle.signals.types import HashResult, HashSignal, PDQVariant, VideoFrame, VPDQSignal
from sentinelle.store.db import open_engine


def _rand_hex(rng: np.random.Generator) -> str:
    return rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex()


def _flip(hex_hash: str, n: int, rng: np.random.Generator) -> str:
    v = int(hex_hash, 16)
    for b in rng.choice(256, n, replace=False):
        v ^= 1 << int(b)
    return f"{v:064x}"


def _pdq_result(h: str, variants: list[tuple[str, str]] | None = None) -> HashResult:
    return HashResult(
        path="q.jpg",
        size=1,
        media_type="image",
        signals=[HashSignal("pdq", h, 100)],
        query_variants=[PDQVariant(n, v, 100) for n, v in (variants or [("plain", h)])],
    )


def test_pdq_thresholds_variants_and_incremental_updates(db_url: str) -> None:
    rng = np.random.default_rng(1)
    store = BankStore(open_engine(db_url))
    store.create_bank("a")
    store.create_bank("b")
    store.set_threshold("b", "pdq", 10)
    base = [_rand_hex(rng) for _ in range(50)]
    store.add_entries("a", [EntryIn(signal_type="pdq", hash=h, category="A1") for h in base])
    store.add_entries("b", [EntryIn(signal_type="pdq", hash=base[0])])
    m = Matcher(store)
    q = _flip(base[0], 20, rng)
    got = m.match(_pdq_result(q))
    assert {(x.bank, x.distance) for x in got} == {("a", 20)}  # b's threshold is 10
    assert got[0].category == "A1" and got[0].entry_hash == base[0]
    assert m.match(_pdq_result(_flip(base[1], 32, rng))) == []
    # the trimmed variant is what matches; it is reported
    got = m.match(_pdq_result(_rand_hex(rng), [("plain", _rand_hex(rng)), ("trimmed", base[2])]))
    assert [(x.variant, x.distance) for x in got] == [("trimmed", 0)]

    # a new entry reaches the matcher through refresh(), without a reload
    new = _rand_hex(rng)
    store.add_entries("a", [EntryIn(signal_type="pdq", hash=new)])
    assert m.match(_pdq_result(new)) == []
    assert m.refresh() >= 1
    (hit,) = m.match(_pdq_result(new))
    # deleting it removes it; a disabled entry stops matching; re-enabled it matches again
    store.delete_entry(hit.entry_id, reason="false positive")
    m.refresh()
    assert m.match(_pdq_result(new)) == []
    (e0,) = [x for x in m.match(_pdq_result(base[3]))]
    store.disable_entry(e0.entry_id, until=datetime.now(UTC) + timedelta(days=1))
    m.refresh()
    assert m.match(_pdq_result(base[3])) == []
    store.enable_entry(e0.entry_id)
    m.refresh()
    assert len(m.match(_pdq_result(base[3]))) == 1


def test_exact_and_bank_selection(db_url: str) -> None:
    store = BankStore(open_engine(db_url))
    store.create_bank("x")
    store.create_bank("y")
    md5 = "0" * 31 + "1"
    store.add_entries("x", [EntryIn(signal_type="md5", hash=md5)])
    store.add_entries("y", [EntryIn(signal_type="md5", hash=md5)])
    r = HashResult(path="f", size=1, signals=[HashSignal("md5", md5)])
    assert {x.bank for x in Matcher(store).match(r)} == {"x", "y"}
    assert {x.bank for x in Matcher(store, banks=["y"]).match(r)} == {"y"}
    assert (
        Matcher(store).match(HashResult(path="f", size=1, signals=[HashSignal("md5", "f" * 32)]))
        == []
    )


def test_video_level_rule(db_url: str) -> None:
    rng = np.random.default_rng(7)
    store = BankStore(open_engine(db_url))
    store.create_bank("v")
    frames = [_rand_hex(rng) for _ in range(10)]
    store.add_entries(
        "v",
        [
            EntryIn(signal_type="vpdq", hash=h, variant=f"frame{i}", media_ref="vid1")
            for i, h in enumerate(frames)
        ],
    )
    m = Matcher(store)

    def video(hashes: list[str]) -> HashResult:
        fr = tuple(VideoFrame(i, h, 100, i / 30) for i, h in enumerate(hashes))
        return HashResult(path="v.mp4", size=1, media_type="video", signals=[VPDQSignal(fr)])

    near = [_flip(h, 8, rng) for h in frames]
    (hit,) = [x for x in m.match(video(near)) if x.signal == "vpdq"]
    assert hit.extra["query_match_pct"] == 100.0 and hit.extra["target_match_pct"] == 100.0
    # 7 of 10 frames in common: below the 80% rule on both sides -> no video match
    partial = frames[:7] + [_rand_hex(rng) for _ in range(3)]
    assert [x for x in m.match(video(partial)) if x.signal == "vpdq"] == []


def test_needs_exact_flags_only_near_misses(db_url: str) -> None:
    from sentinelle.index.matcher import FAST_VERIFY_MARGIN

    rng = np.random.default_rng(3)
    store = BankStore(open_engine(db_url))
    store.create_bank("n")
    h = _rand_hex(rng)
    store.add_entries("n", [EntryIn(signal_type="pdq", hash=h)])
    m = Matcher(store)
    assert not m.needs_exact(_pdq_result(h))  # certain match: no doubt
    assert not m.needs_exact(_pdq_result(_flip(h, 31 - FAST_VERIFY_MARGIN, rng)))
    assert m.needs_exact(_pdq_result(_flip(h, 31 - FAST_VERIFY_MARGIN + 1, rng)))
    assert m.needs_exact(_pdq_result(_flip(h, 31, rng)))
    assert m.needs_exact(_pdq_result(_flip(h, 31 + FAST_VERIFY_MARGIN, rng)))
    assert not m.needs_exact(_pdq_result(_flip(h, 31 + FAST_VERIFY_MARGIN + 1, rng)))
    assert not m.needs_exact(_pdq_result(_rand_hex(rng)))
