"""Matching a scanned model against hash banks: exact identifiers and tensor overlap.

* ``file_sha256`` (and the same digest as a plain ``sha256`` entry) and ``tensor_sha256``
  are looked up exactly;
* the per-tensor hashes are looked up as ``tensor_part_sha`` entries and grouped by the
  entry's ``media_ref`` (one known model = one ``media_ref``): a group reports how many of
  the scanned model's distinct tensors it holds. Tensors under ``MIN_PART_BYTES`` are left
  out on both sides (constant scalars are shared by unrelated models). A LoRA merged into a
  checkpoint, a file extracted from a known one, or a renamed copy shows up as a partial or
  full overlap.

Enrolling a known model: :func:`entries_for` gives the bank entries of a scan result.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..formats.entry import EntryIn
from .result import ModelScanResult

EXACT_SIGNALS = ("file_sha256", "tensor_sha256")
PART_SIGNAL = "tensor_part_sha"
#: Tensors smaller than this identify nothing (LoRA ``alpha`` scalars, zero biases and
#: position ids are the same in unrelated models): neither enrolled nor looked up.
MIN_PART_BYTES = 128


def identifying_parts(result: ModelScanResult) -> list[str]:
    """The distinct per-tensor hashes of ``result`` worth enrolling or looking up."""
    return sorted({t.sha256 for t in result.tensors if t.nbytes >= MIN_PART_BYTES})


@dataclass(frozen=True)
class ModelMatch:
    """``kind``: ``exact`` (one entry) or ``overlap`` (tensor parts of one ``media_ref``)."""

    kind: str
    bank: str
    signal: str
    media_ref: str | None
    category: str | None
    entry_ids: tuple[int, ...]
    parts_matched: int = 0
    parts_scanned: int = 0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind,
            "bank": self.bank,
            "signal": self.signal,
            "media_ref": self.media_ref,
            "category": self.category,
            "entries": len(self.entry_ids),
        }
        if self.kind == "overlap":
            d["parts_matched"] = self.parts_matched
            d["parts_scanned"] = self.parts_scanned
            d["overlap"] = round(self.parts_matched / max(self.parts_scanned, 1), 4)
        return d


def entries_for(
    result: ModelScanResult, media_ref: str, *, parts: bool = True, **fields: Any
) -> list[EntryIn]:
    """Bank entries identifying ``result``'s model (``fields``: category, note...)."""
    out = [EntryIn(s.type, s.hash, media_ref=media_ref, **fields) for s in result.signals]
    if parts:
        for h in identifying_parts(result):
            out.append(EntryIn(PART_SIGNAL, h, media_ref=media_ref, **fields))
    return out


def _lookup(matcher: Any, signal: str, hex_hash: str) -> list[Any]:
    """``matcher.match_exact``; a matcher built without the type has no entries of it."""
    try:
        return matcher.match_exact(signal, hex_hash)
    except KeyError:
        return []


def match_model(result: ModelScanResult, matcher: Any, store: Any) -> list[ModelMatch]:
    """Matches of ``result`` in the matcher's banks (``store``: its BankStore)."""
    out: list[ModelMatch] = []
    wanted = [(s.type, s.hash) for s in result.signals if s.type in EXACT_SIGNALS]
    file_hash = result.signal("file_sha256")
    if file_hash:
        wanted.append(("sha256", file_hash))
    exact_ids = {m.entry_id for sig, h in wanted for m in _lookup(matcher, sig, h)}
    entries = store.get_entries(exact_ids) if exact_ids else {}
    for sig, h in wanted:
        for m in _lookup(matcher, sig, h):
            e = entries.get(m.entry_id)
            media_ref = e.media_ref if e else None
            out.append(ModelMatch("exact", m.bank, sig, media_ref, m.category, (m.entry_id,)))
    parts = identifying_parts(result)
    hits: dict[int, str] = {}
    banks: dict[int, tuple[str, str | None]] = {}
    for h in parts:
        for m in _lookup(matcher, PART_SIGNAL, h):
            hits[m.entry_id] = h
            banks[m.entry_id] = (m.bank, m.category)
    if hits:
        stored = store.get_entries(hits)
        groups: dict[tuple[str, str], set[int]] = defaultdict(set)
        for eid in hits:
            e = stored.get(eid)
            ref = (e.media_ref if e else None) or f"entry:{eid}"
            groups[(banks[eid][0], ref)].add(eid)
        for (bank, ref), ids in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            category = banks[next(iter(ids))][1]
            out.append(
                ModelMatch(
                    "overlap", bank, PART_SIGNAL, None if ref.startswith("entry:") else ref,
                    category, tuple(sorted(ids)), len({hits[i] for i in ids}), len(parts),
                )
            )  # fmt: skip
    return out
