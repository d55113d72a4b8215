"""Encrypted media on case items: attach a stored blob, or store once and attach.

::

    from sentinelle.evidence import EvidenceStore, load_master_key
    from sentinelle.review.media import attach_media, preserve_media

    store = EvidenceStore(engine, load_master_key())
    blob_id = preserve_media(engine, store, case_id, [item_id], data,
                             media_type="image/jpeg", actor="system")
    # or, with a blob already stored for that case:
    attach_media(engine, item_id, blob_id)

Media reaches a case only when a person needs it (a match, a block); it is then
stored encrypted by :class:`sentinelle.evidence.EvidenceStore` (per-case data key)
and the case item points at the blob (``case_items.media_blob_id``). The bytes are
never written anywhere else, and never in the clear.

Rules :func:`attach_media` enforces:

* the blob must exist and belong to the item's case (a blob of another case is
  under another case's key and holds: ``bad_media_blob_id``, 422);
* an item's media never changes once set: attaching the same blob again is a
  no-op, another blob is refused (``media_already_attached``, 409);
* every attachment is audited (``case.media_attach``, ids only).

:func:`preserve_media` stores the bytes once for several items of one case (one
upload matching several bank entries) and skips the store entirely when every
item already has media (the same file scanned again joins the pending items).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ._db import ConnOrEngine, audit, scope
from .errors import Conflict, NotFound, ReviewError
from .tables import case_items

__all__ = ["attach_media", "preserve_media"]


def _blob_case(conn: sa.Connection, blob_id: int) -> int:
    from ..evidence.tables import evidence_blobs

    case_id = conn.execute(
        sa.select(evidence_blobs.c.case_id).where(evidence_blobs.c.id == blob_id)
    ).scalar()
    if case_id is None:
        raise NotFound(f"no evidence blob {blob_id}", code="unknown_blob")
    return int(case_id)


def _check_id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ReviewError(f"{what} must be a positive integer", code=f"bad_{what}")
    return value


def attach_media(
    conn_or_engine: ConnOrEngine, item_id: int, blob_id: int, *, actor: str = "system"
) -> bool:
    """Point case item ``item_id`` at evidence blob ``blob_id``.

    Returns True when attached now, False when the item already had this blob.
    Raises ``unknown_item`` / ``unknown_blob`` (404), ``bad_media_blob_id`` (422:
    the blob belongs to another case) or ``media_already_attached`` (409). With a
    Connection the change joins the caller's transaction.
    """
    item_id = _check_id(item_id, "item_id")
    blob_id = _check_id(blob_id, "media_blob_id")
    with scope(conn_or_engine) as conn:
        item = conn.execute(
            sa.select(case_items.c.case_id, case_items.c.media_blob_id).where(
                case_items.c.id == item_id
            )
        ).first()
        if item is None:
            raise NotFound(f"no case item {item_id}", code="unknown_item")
        if _blob_case(conn, blob_id) != int(item.case_id):
            raise ReviewError(
                f"evidence blob {blob_id} belongs to another case than item {item_id}",
                code="bad_media_blob_id",
            )
        if item.media_blob_id is not None:
            if int(item.media_blob_id) == blob_id:
                return False
            raise Conflict(
                f"case item {item_id} already has media (blob {item.media_blob_id})",
                code="media_already_attached",
            )
        done = conn.execute(
            case_items.update()
            .where(case_items.c.id == item_id, case_items.c.media_blob_id.is_(None))
            .values(media_blob_id=blob_id)
        ).rowcount
        if not done:  # a concurrent writer attached media between our read and update
            raise Conflict(f"case item {item_id} already has media", code="media_already_attached")
        audit(
            conn,
            actor=actor,
            action="case.media_attach",
            target=f"case:{int(item.case_id)}",
            details={"item_id": item_id, "blob_id": blob_id},
        )
    return True


def preserve_media(
    engine: sa.Engine,
    store: Any,
    case_id: int,
    item_ids: Sequence[int],
    data: bytes,
    *,
    media_type: str,
    actor: str = "system",
) -> int | None:
    """Store ``data`` encrypted once and attach it to those ``item_ids`` without media.

    ``store`` is a :class:`sentinelle.evidence.EvidenceStore`. Returns the blob id
    the items now point at (an existing one when every item already had media),
    or None when ``item_ids`` is empty. Every item must belong to ``case_id``
    (``bad_item_id`` otherwise). Evidence errors (``EvidenceError``) propagate.
    """
    case_id = _check_id(case_id, "case_id")
    ids = [_check_id(i, "item_id") for i in dict.fromkeys(item_ids)]
    if not ids:
        return None
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(case_items.c.id, case_items.c.case_id, case_items.c.media_blob_id).where(
                case_items.c.id.in_(ids)
            )
        ).all()
    found = {int(r.id): r for r in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"no case item {missing[0]}", code="unknown_item")
    foreign = [i for i in ids if int(found[i].case_id) != case_id]
    if foreign:
        raise ReviewError(f"case item {foreign[0]} is not in case {case_id}", code="bad_item_id")
    need = [i for i in ids if found[i].media_blob_id is None]
    if not need:
        return int(found[ids[0]].media_blob_id)
    blob_id = int(store.put(case_id, data, media_type=media_type, filename=None, actor=actor))
    with scope(engine) as conn:
        for item_id in need:
            try:
                with conn.begin_nested():
                    attach_media(conn, item_id, blob_id, actor=actor)
            except Conflict:  # another writer attached its copy first; theirs stays
                continue
    return blob_id
