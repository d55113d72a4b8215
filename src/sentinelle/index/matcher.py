"""Match signals against the enabled entries of hash banks.

A :class:`Matcher` loads the enabled entries of the selected banks into in-memory
indexes (exact lookups for cryptographic hashes, :class:`PDQIndex` for PDQ and
vPDQ frame hashes) and keeps them current by following the store's change log:
``refresh()`` applies only what changed, it never rebuilds the indexes.

Matching rules
* md5 / sha1 / sha256: equality.
* pdq: Hamming distance <= the bank's PDQ threshold (default 31), for every query
  variant of the image (plain, trimmed, dihedral views); each entry is reported once,
  with its best (smallest) distance and the variant that produced it.
* vpdq: a video matches a banked video when >= 80% of the query's unique frames
  (quality >= 50) match one of the banked video's frames and >= 80% of the banked
  video's unique frames are matched (the vPDQ video-level rule). Video frames are also
  matched against image PDQ entries (variant ``frame:<n>``).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..signals.hashcodec import pdq_bytes_to_hex, pdq_hexes_to_array
from ..signals.signal_types import find_signal_type, get_signal_type, signal_types
from ..signals.types import HashResult, HashSignal, VPDQSignal
from .exact import ExactIndex
from .pdq_index import PDQIndex

VIDEO_MATCH_PCT = 80.0
MIN_FRAME_QUALITY = 50
MIN_VARIANT_QUALITY = 50  # query variants other than "plain" below this are not used
FAST_VERIFY_MARGIN = 16
"""Bits by which a fast-path PDQ hash may differ from the reference hash of the same
file (DCT-domain downscaled decode; measured in ``bench/bench_robustness.py``). A
fast hash whose distance to an entry is within this margin of the entry's threshold
is re-checked with the reference hash (:meth:`Matcher.match_fast`), so fast scanning
finds what exact scanning finds. 31 + 16 = 47 is also the largest radius the index
answers without a full scan."""
RELOAD_AFTER_CHANGES = 50_000  # a bigger batch of changes (bulk import) -> reload aside


@dataclass(frozen=True)
class Match:
    bank: str
    entry_id: int
    entry_hash: str
    signal: str
    distance: int
    variant: str = "plain"
    category: str | None = None
    enrolled_variant: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        d.update(extra)
        return d


@dataclass
class _EntryMeta:
    bank_id: int
    hash: str
    variant: str = "plain"
    media_ref: str | None = None
    category: str | None = None


class _Columns:
    """The entries of one signal type as loaded at start-up, column-wise, sorted by id."""

    def __init__(self, loaded: Any) -> None:
        ids = np.asarray(loaded.entry_ids, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        self.ids = ids[order]
        self.bank_ids = np.asarray(loaded.bank_ids, dtype=np.int64)[order]
        if isinstance(loaded.hashes, np.ndarray):
            self.hashes = np.asarray(loaded.hashes, dtype=np.uint8)[order]
        else:
            self.hashes = [loaded.hashes[i] for i in order]
        n = len(ids)
        variants = list(getattr(loaded, "variants", None) or ["plain"] * n)
        refs = list(getattr(loaded, "media_refs", None) or [None] * n)
        self.variants = [variants[i] for i in order]
        self.media_refs = [refs[i] for i in order]

    def get(self, entry_id: int) -> _EntryMeta | None:
        i = int(np.searchsorted(self.ids, entry_id))
        if i >= len(self.ids) or self.ids[i] != entry_id:
            return None
        h = self.hashes[i]
        return _EntryMeta(
            bank_id=int(self.bank_ids[i]),
            hash=h if isinstance(h, str) else pdq_bytes_to_hex(h),
            variant=self.variants[i],
            media_ref=self.media_refs[i],
        )


class Matcher:
    """In-memory matching over the enabled entries of ``banks`` (default: all enabled)."""

    def __init__(self, store: Any, banks: list[str] | None = None) -> None:
        self.store = store
        self.banks = list(banks) if banks else None
        self.version = -1
        self._lock = threading.RLock()  # guards the indexes: held briefly
        self._refresh_lock = threading.Lock()  # one refresh/reload at a time
        self.load()

    # ---------------------------------------------------------------- loading
    _STATE = (
        "version",
        "_bank_names",
        "_thresholds",
        "_columns",
        "_overlay",
        "_exact",
        "_pdq",
        "_vpdq",
        "_video_frames",
    )

    def load(self) -> None:
        """(Re)load everything from the store: at start-up and after bank-level changes.

        The new indexes are built aside, without the lock, and swapped in at once:
        matching goes on against the old ones meanwhile.
        """
        fresh = Matcher.__new__(Matcher)
        fresh.store, fresh.banks = self.store, self.banks
        fresh._build()
        with self._lock:
            for name in self._STATE:
                setattr(self, name, getattr(fresh, name))

    def _build(self) -> None:
        self.version = self.store.current_seq()
        self._bank_names: dict[int, str] = {}
        self._thresholds: dict[int, dict[str, int]] = {}
        # Loaded entries live in numpy columns (compact at 10M+ entries); entries
        # changed since (and cached look-ups) live in the overlay.
        self._columns: list[_Columns] = []
        self._overlay: dict[int, _EntryMeta | None] = {}
        # Which index serves a type is the type's ``index``: one ExactIndex per exact
        # type, one PDQIndex for image PDQ and one for video frames.
        self._exact: dict[str, ExactIndex] = {
            st.name: ExactIndex(st.name) for st in signal_types() if st.index == "exact"
        }
        self._pdq = PDQIndex()
        self._vpdq = PDQIndex()
        self._video_frames: dict[str, int] = defaultdict(int)  # media_ref -> frames
        self._load_banks()
        for st in signal_types():
            loaded = self.store.load_signal(st.name, banks=self.banks)
            self._bank_names.update(loaded.bank_names)
            self._add_loaded(st.name, loaded)

    def _fuzzy_index(self, index: str) -> PDQIndex:
        return self._pdq if index == "pdq" else self._vpdq

    def _load_banks(self) -> None:
        for bank in self.store.list_banks():
            if not bank.enabled or (self.banks is not None and bank.name not in self.banks):
                continue
            self._bank_names[bank.id] = bank.name
            self._thresholds[bank.id] = self.store.thresholds(bank.name)

    def _add_loaded(self, sig: str, loaded: Any) -> None:
        if len(loaded.entry_ids) == 0:
            return
        cols = _Columns(loaded)
        self._columns.append(cols)
        index = get_signal_type(sig).index
        if index == "exact":
            self._exact[sig].add(cols.ids.tolist(), list(loaded.hashes))
        else:
            self._fuzzy_index(index).add(cols.ids, cols.hashes)
        if index == "vpdq":
            for ref in cols.media_refs:
                if ref:
                    self._video_frames[ref] += 1

    def _meta_of(self, entry_id: int) -> _EntryMeta | None:
        """Metadata of an indexed entry: the overlay of refreshed entries, else the columns."""
        if entry_id in self._overlay:
            return self._overlay[entry_id]
        for cols in self._columns:
            meta = cols.get(entry_id)
            if meta is not None:
                self._overlay[entry_id] = meta  # cache (matches are rare)
                return meta
        return None

    # ---------------------------------------------------------------- updates
    def refresh(self) -> int:
        """Apply the store's changes since the last load/refresh; returns how many.

        Entry changes are applied in place (the entries are read in batches, then the
        indexes are updated under the lock without database access). A bank-level
        change (threshold, enable, delete) or a very large batch of changes (a bulk
        import) triggers a reload built aside and swapped in.
        """
        with self._refresh_lock:
            changes = self.store.changes_since(self.version)
            if not changes:
                return 0
            if len(changes) > RELOAD_AFTER_CHANGES or any(c.entry_id is None for c in changes):
                self.load()
                return len(changes)
            ids = [c.entry_id for c in changes if c.entry_id is not None]
            entries = self.store.get_entries(ids)
            with self._lock:
                for eid in dict.fromkeys(ids):  # each entry once, in change order
                    self._apply_entry(eid, entries.get(eid))
                self.version = max(self.version, changes[-1].seq)
            return len(changes)

    def _apply_entry(self, entry_id: int, entry: Any) -> None:
        old = self._meta_of(entry_id)
        if old is not None:
            self._remove(entry_id, old)
        self._overlay[entry_id] = None
        if entry is None or not self._active(entry):
            return
        meta = _EntryMeta(
            bank_id=entry.bank_id,
            hash=entry.hash,
            variant=getattr(entry, "variant", "plain") or "plain",
            media_ref=getattr(entry, "media_ref", None),
            category=entry.category or "",
        )
        st = find_signal_type(entry.signal_type)
        if st is None:
            return
        if st.index == "exact":
            self._exact[st.name].add([entry_id], [entry.hash])
        else:
            self._fuzzy_index(st.index).add([entry_id], pdq_hexes_to_array([entry.hash]))
            if st.index == "vpdq" and meta.media_ref:
                self._video_frames[meta.media_ref] += 1
        self._overlay[entry_id] = meta

    def _remove(self, entry_id: int, meta: _EntryMeta) -> None:
        for ex in self._exact.values():
            ex.remove([entry_id])
        self._pdq.remove([entry_id])
        self._vpdq.remove([entry_id])
        if meta.media_ref and meta.media_ref in self._video_frames:
            self._video_frames[meta.media_ref] -= 1

    def _active(self, entry: Any) -> bool:
        if entry.bank_id not in self._bank_names:
            return False
        if not entry.enabled:
            return False
        until = entry.disabled_until
        if until is not None:
            if until.tzinfo is None:
                until = until.replace(tzinfo=UTC)
            if until > datetime.now(UTC):
                return False
        return True

    # ---------------------------------------------------------------- matching
    def _bank_of(self, entry_id: int) -> int:
        meta = self._meta_of(entry_id)
        return meta.bank_id if meta is not None else -1

    def _threshold(self, bank_id: int, sig: str) -> int:
        default = get_signal_type(sig).default_threshold
        return self._thresholds.get(bank_id, {}).get(sig, default)

    def _max_threshold(self, sig: str) -> int:
        vals = [self._threshold(b, sig) for b in self._bank_names]
        return max(vals, default=31)

    def _category(self, entry_id: int, meta: _EntryMeta) -> str | None:
        if meta.category is None:
            entry = self.store.get_entry(entry_id)
            meta.category = (entry.category or "") if entry is not None else ""
        return meta.category or None

    def _make(self, entry_id: int, sig: str, distance: int, variant: str, **extra: Any) -> Match:
        meta = self._meta_of(entry_id)
        assert meta is not None  # only indexed entries are ever found
        return Match(
            bank=self._bank_names.get(meta.bank_id, str(meta.bank_id)),
            entry_id=entry_id,
            entry_hash=meta.hash,
            signal=sig,
            distance=int(distance),
            variant=variant,
            category=self._category(entry_id, meta),
            enrolled_variant=meta.variant,
            extra=extra,
        )

    def match(self, result: HashResult) -> list[Match]:
        """All matches for one hashed file (empty when it has an error)."""
        out = self._match(result, margin=None)
        assert out is not None  # without a margin there is no near miss to report
        return out

    def match_fast(
        self, result: HashResult, margin: int = FAST_VERIFY_MARGIN
    ) -> list[Match] | None:
        """Match a result hashed on the fast path, or None when it must be re-hashed.

        None means a PDQ query hash lies within ``margin`` bits of an entry's threshold
        (either side): only the reference hash can decide, so the caller re-hashes with
        ``exact=True`` and calls :meth:`match`. Rare for unrelated media (random hashes
        are ~128 bits apart). One index search serves both the check and the matches.
        """
        return self._match(result, margin=margin)

    def needs_exact(self, result: HashResult, margin: int = FAST_VERIFY_MARGIN) -> bool:
        """True when :meth:`match_fast` would ask for the reference hash."""
        return self.match_fast(result, margin) is None

    def _match(self, result: HashResult, margin: int | None) -> list[Match] | None:
        if result.error is not None:
            return []
        with self._lock:
            pdq = self._match_pdq_variants(self._pdq_queries(result), margin)
            if pdq is None:
                return None
            out: list[Match] = []
            for s in result.signals:
                if isinstance(s, HashSignal) and s.type in self._exact:
                    out.extend(self.match_exact(s.type, s.hash))
            out.extend(pdq)
            vpdq = result.signal("vpdq")
            if isinstance(vpdq, VPDQSignal):
                out.extend(self.match_video(vpdq))
            return out

    @staticmethod
    def _pdq_queries(result: HashResult) -> list[tuple[str, str, int]]:
        """The usable PDQ query hashes: every query variant (or the plain PDQ hash);
        variants other than ``plain`` below ``MIN_VARIANT_QUALITY`` are left out."""
        queries = [(v.variant, v.hash, v.quality) for v in result.query_variants]
        pdq = result.signal("pdq")
        if not queries and isinstance(pdq, HashSignal):
            queries = [("plain", pdq.hash, pdq.quality or 0)]
        return [q for q in queries if q[0] == "plain" or q[2] >= MIN_VARIANT_QUALITY]

    def match_exact(self, sig: str, hex_hash: str) -> list[Match]:
        with self._lock:
            return [
                self._make(eid, sig, 0, "plain")
                for eid in self._exact[sig].lookup(hex_hash)
                if self._meta_of(eid) is not None
            ]

    def match_pdq(self, hex_hashes: list[str]) -> list[list[Match]]:
        """Match a batch of PDQ hashes (as given by a caller); one list per hash."""
        with self._lock:
            if not hex_hashes:
                return []
            res = self._pdq.search(pdq_hexes_to_array(hex_hashes), self._max_threshold("pdq"))
            return [
                [
                    self._make(eid, "pdq", d, "plain")
                    for eid, d in hits
                    if d <= self._threshold(self._bank_of(eid), "pdq")
                ]
                for hits in res
            ]

    def _match_pdq_variants(
        self, usable: list[tuple[str, str, int]], margin: int | None = None
    ) -> list[Match] | None:
        """Best match per entry over all query hashes; None on a near miss (margin set)."""
        if not usable or len(self._pdq) == 0:
            return []
        radius = self._max_threshold("pdq") + (margin or 0)
        res = self._pdq.search(pdq_hexes_to_array([h for _, h, _ in usable]), min(255, radius))
        best: dict[int, tuple[int, int, str]] = {}  # entry -> (distance, order, variant)
        for order, ((variant, _, _), hits) in enumerate(zip(usable, res, strict=True)):
            for eid, d in hits:
                meta = self._meta_of(eid)
                if meta is None:
                    continue
                thr = self._threshold(meta.bank_id, "pdq")
                if margin is not None and thr - margin < d <= thr + margin:
                    return None
                if d > thr:
                    continue
                cand = (int(d), order, variant)
                if eid not in best or cand < best[eid]:
                    best[eid] = cand
        return [
            self._make(eid, "pdq", d, variant)
            for eid, (d, _, variant) in sorted(best.items(), key=lambda kv: (kv[1][0], kv[0]))
        ]

    def match_video(self, vpdq: VPDQSignal) -> list[Match]:
        frames = vpdq.unique_frames(min_quality=MIN_FRAME_QUALITY)
        if not frames:
            return []
        arr = pdq_hexes_to_array([f.hash for f in frames])
        out: list[Match] = []
        if len(self._vpdq):
            res = self._vpdq.search(arr, self._max_threshold("vpdq"))
            # per banked video: which query frames matched, which target frames were hit
            q_hit: dict[str, set[int]] = defaultdict(set)
            t_hit: dict[str, set[int]] = defaultdict(set)
            dists: dict[str, list[int]] = defaultdict(list)
            first_entry: dict[str, int] = {}
            for qi, hits in enumerate(res):
                for eid, d in hits:
                    meta = self._meta_of(eid)
                    if meta is None or not meta.media_ref:
                        continue
                    if d > self._threshold(meta.bank_id, "vpdq"):
                        continue
                    ref = meta.media_ref
                    q_hit[ref].add(qi)
                    t_hit[ref].add(eid)
                    dists[ref].append(int(d))
                    first_entry[ref] = min(first_entry.get(ref, eid), eid)
            for ref, qs in q_hit.items():
                q_pct = 100.0 * len(qs) / len(frames)
                t_total = max(1, self._video_frames.get(ref, 1))
                t_pct = 100.0 * len(t_hit[ref]) / t_total
                if q_pct >= VIDEO_MATCH_PCT and t_pct >= VIDEO_MATCH_PCT:
                    out.append(
                        self._make(
                            first_entry[ref],
                            "vpdq",
                            int(np.median(dists[ref])),
                            "video",
                            media_ref=ref,
                            query_match_pct=round(q_pct, 1),
                            target_match_pct=round(t_pct, 1),
                        )
                    )
        if len(self._pdq):
            # individual frames that are known images
            res = self._pdq.search(arr, self._max_threshold("pdq"))
            best: dict[int, tuple[int, int]] = {}
            for f, hits in zip(frames, res, strict=False):
                for eid, d in hits:
                    meta = self._meta_of(eid)
                    if meta is None or d > self._threshold(meta.bank_id, "pdq"):
                        continue
                    if eid not in best or (d, f.frame) < best[eid]:
                        best[eid] = (int(d), f.frame)
            for eid, (d, fr) in sorted(best.items()):
                out.append(self._make(eid, "pdq", d, f"frame:{fr}"))
        return out
