"""Turn media files into bank entries (enrollment from media, not from hash lists)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..errors import MediaError
from ..signals.types import HashSignal, VPDQSignal
from .entry import EntryIn


def entries_from_media(
    path: str | os.PathLike[str],
    *,
    augment: bool = False,
    category: str | None = None,
    source_org: str | None = None,
    note: str | None = None,
) -> list[EntryIn]:
    """Entries for one image or video; raises :class:`MediaError` if it cannot be hashed.

    Images give MD5 + SHA-256 + PDQ (``plain``; with ``augment``, also the PDQ hashes of
    central crops, variants ``crop5``...). Videos give MD5 + SHA-256 + one ``vpdq``
    entry per unique frame hash (quality >= 50), variant ``frame<N>``. All entries of one
    file share ``media_ref`` = its SHA-256, which groups them (video-level matching).
    """
    from ..signals.hasher import enrollment_hashes, hash_file

    result = hash_file(path, signals=("md5", "sha256", "vpdq"))
    if result.error is not None:
        raise result.error
    sha = result.signal("sha256")
    assert isinstance(sha, HashSignal)
    common = dict(media_ref=sha.hash, category=category, source_org=source_org, note=note)
    out: list[EntryIn] = []
    for s in result.signals:
        if isinstance(s, HashSignal) and s.type in ("md5", "sha256"):
            out.append(EntryIn(signal_type=s.type, hash=s.hash, **common))
    if result.media_type == "image":
        for v in enrollment_hashes(path, augment=augment):
            out.append(EntryIn(signal_type="pdq", hash=v.hash, variant=v.variant, **common))
    elif result.media_type == "video":
        vpdq = result.signal("vpdq")
        if not isinstance(vpdq, VPDQSignal) or not vpdq.unique_frames(50):
            raise MediaError("video has no frame of sufficient quality to enroll", "no_frames")
        for f in vpdq.unique_frames(50):
            out.append(
                EntryIn(signal_type="vpdq", hash=f.hash, variant=f"frame{f.frame}", **common)
            )
    return out


def entries_from_paths(
    paths: Iterable[str | os.PathLike[str]], **kw: object
) -> tuple[list[EntryIn], list[tuple[str, MediaError]]]:
    """Entries for many files; files that fail are returned with their error."""
    entries: list[EntryIn] = []
    failed: list[tuple[str, MediaError]] = []
    for p in paths:
        try:
            entries.extend(entries_from_media(p, **kw))  # type: ignore[arg-type]
        except MediaError as e:
            failed.append((str(p), e))
    return entries, failed
