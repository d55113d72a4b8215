"""Hash every file of a case once, in worker processes, into the database; resumable.

:func:`hash_sources` walks the sources (:mod:`.sources`), skips what an earlier run
already stored (same path, size and mtime; an archive whose done-marker is there is
not even opened), hashes the rest in a process pool (:func:`.hashing.hash_item`) and
writes each result as it arrives, in small transactions: an interrupted run loses at
most the files in flight. Memory stays bounded: items stream from the walk, at most
``4 x workers`` are in flight, and the skip check asks the database batch by batch.

A worker that dies (a decoder crash) costs only its files: they are retried one at a
time in a fresh single-worker pool, and a file that kills it again is recorded with
``decoder_crashed``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .hashing import HashOptions, hash_item
from .sources import DEFAULT_SOURCE_LIMITS, Item, SourceLimits, iter_items
from .store import now
from .tables import triage_files, triage_media

RETRY_CODES = frozenset({"decode_timeout", "decoder_crashed", "internal_error", "io_error"})
"""Errors a rerun tries again (transient); the others are properties of the file."""
BATCH = 256


@dataclass
class HashSummary:
    files: int = 0  # physical files and members seen
    hashed: int = 0
    skipped: int = 0  # done by an earlier run
    errors: int = 0
    archives: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)

    def error(self, code: str) -> None:
        self.errors += 1
        self.error_codes[code] = self.error_codes.get(code, 0) + 1


def path_key(path: str) -> str:
    return hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()


def count_disk_files(paths: Iterable[str | os.PathLike[str]]) -> int:
    """Files on disk under ``paths`` (the progress bar's total; archives count once)."""
    from ..scan.walker import walk

    return sum(1 for _ in walk(paths))


def _pool(workers: int) -> ProcessPoolExecutor:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["sentinelle.signals.hasher", "sentinelle.triage.hashing"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def _insert(engine: Engine):  # type: ignore[no-untyped-def]
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


class _Writer:
    """Buffers results and writes them in one transaction per batch."""

    def __init__(self, engine: Engine, case_id: int) -> None:
        self.engine, self.case_id = engine, case_id
        self.files: list[tuple[Item, dict[str, Any] | None]] = []

    def add(self, item: Item, rec: dict[str, Any] | None) -> None:
        self.files.append((item, rec))
        if len(self.files) >= 64:
            self.flush()

    def flush(self) -> None:
        if not self.files:
            return
        batch, self.files = self.files, []
        # one row per path (a source listed twice): the last wins
        batch = list({path_key(i.path): (i, r) for i, r in batch}.values())
        ins = _insert(self.engine)
        media_rows: dict[str, dict[str, Any]] = {}
        for _item, rec in batch:
            if rec and rec.get("sha256") and rec["sha256"] not in media_rows:
                media_rows[rec["sha256"]] = _media_row(self.case_id, rec)
        t = now()
        with self.engine.begin() as c:
            ids: dict[str, int] = {}
            if media_rows:
                c.execute(
                    ins(triage_media)
                    .values(list(media_rows.values()))
                    .on_conflict_do_nothing(index_elements=["case_id", "sha256"])
                )
                for mid, sha in c.execute(
                    select(triage_media.c.id, triage_media.c.sha256).where(
                        triage_media.c.case_id == self.case_id,
                        triage_media.c.sha256.in_(list(media_rows)),
                    )
                ):
                    ids[sha] = mid
            rows = []
            for item, rec in batch:
                err = item.error or (tuple(rec["error"]) if rec and rec.get("error") else None)
                err = err or item.flag
                rows.append(
                    {
                        "case_id": self.case_id,
                        "path_key": path_key(item.path),
                        "kind": item.kind,
                        "path": item.path,
                        "source_path": item.source_path,
                        "member_path": item.member_path,
                        "size": (rec or {}).get("size") or item.size,
                        "mtime_ns": item.mtime_ns,
                        "media_id": ids.get((rec or {}).get("sha256") or ""),
                        "error_code": err[0] if err else None,
                        "error_message": err[1] if err else None,
                        "hashed_at": t,
                    }
                )
            stmt = ins(triage_files).values(rows)
            stmt = stmt.on_conflict_do_update(
                index_elements=["case_id", "path_key"],
                set_={
                    k: stmt.excluded[k]
                    for k in ("kind", "size", "mtime_ns", "media_id", "error_code")
                }
                | {"error_message": stmt.excluded.error_message, "hashed_at": t},
            )
            c.execute(stmt)


def _media_row(case_id: int, rec: dict[str, Any]) -> dict[str, Any]:
    meta = dict(rec.get("meta") or {})
    if rec.get("variants"):
        meta["variants"] = rec["variants"]
    prov = rec.get("provenance")
    err = rec.get("error")
    return {
        "case_id": case_id,
        "sha256": rec["sha256"],
        "md5": rec.get("md5"),
        "sha1": rec.get("sha1"),
        "size": int(rec.get("size") or 0),
        "media_type": rec.get("media_type"),
        "format": rec.get("format"),
        "width": rec.get("width"),
        "height": rec.get("height"),
        "pdq": rec.get("pdq"),
        "pdq_quality": rec.get("pdq_quality"),
        "vpdq": json.dumps(rec["vpdq"], separators=(",", ":")) if rec.get("vpdq") else None,
        "meta": json.dumps(meta, sort_keys=True) if meta else None,
        "provenance_verdict": prov.get("verdict") if prov else None,
        "provenance_confidence": prov.get("confidence") if prov else None,
        "provenance": json.dumps(prov, separators=(",", ":")) if prov else None,
        "error_code": err[0] if err else None,
        "error_message": err[1] if err else None,
        "group_id": None,
        "embedding": None,
    }


def _done_filter(engine: Engine, case_id: int, items: list[Item]) -> list[Item]:
    """The items an earlier run has not finished (same size, mtime; no retryable error)."""
    keys = {path_key(i.path): i for i in items}
    with engine.connect() as c:
        rows = c.execute(
            select(
                triage_files.c.path_key,
                triage_files.c.size,
                triage_files.c.mtime_ns,
                triage_files.c.error_code,
            ).where(triage_files.c.case_id == case_id, triage_files.c.path_key.in_(list(keys)))
        ).all()
    done = {
        k
        for k, size, mtime, code in rows
        if mtime == keys[k].mtime_ns
        and (keys[k].kind != "file" or size == keys[k].size)
        and code not in RETRY_CODES
    }
    return [i for k, i in keys.items() if k not in done]


def _batched(items: Iterator[Item], n: int) -> Iterator[list[Item]]:
    buf: list[Item] = []
    for it in items:
        buf.append(it)
        # an archive marker closes a batch: its members must be written before it
        if len(buf) >= n or it.kind == "archive":
            yield buf
            buf = []
    if buf:
        yield buf


def hash_sources(
    engine: Engine,
    case_id: int,
    paths: Iterable[str | os.PathLike[str]],
    *,
    workers: int = 2,
    options: HashOptions = HashOptions(),
    source_limits: SourceLimits = DEFAULT_SOURCE_LIMITS,
    rescan: bool = False,
    on_file: Callable[[HashSummary], None] | None = None,
    on_disk_file: Callable[[str], None] | None = None,
) -> HashSummary:
    """Hash every file under ``paths`` into case ``case_id``; see the module docstring."""
    summary = HashSummary()
    writer = _Writer(engine, case_id)
    if rescan:
        with engine.begin() as c:
            c.execute(delete(triage_files).where(triage_files.c.case_id == case_id))

    def archive_done(path: str, size: int, mtime_ns: int) -> bool:
        if rescan:
            return False
        with engine.connect() as c:
            r = c.execute(
                select(triage_files.c.id).where(
                    and_(
                        triage_files.c.case_id == case_id,
                        triage_files.c.path_key == path_key(path),
                        triage_files.c.kind == "archive",
                        triage_files.c.size == size,
                        triage_files.c.mtime_ns == mtime_ns,
                    )
                )
            ).first()
        if r is not None:
            summary.archives += 1
        return r is not None

    items = iter_items(paths, source_limits, skip_archive=archive_done, on_disk_file=on_disk_file)
    max_in_flight = max(1, workers) * 4
    pool = _pool(max(1, workers))
    in_flight: dict[Future[dict[str, Any]], Item] = {}
    suspects: list[Item] = []
    markers: list[Item] = []  # archive markers waiting for their members

    def finish(item: Item, rec: dict[str, Any] | None) -> None:
        code = (item.error or ((rec or {}).get("error") or [None]))[0]
        if code:
            summary.error(str(code))
        elif item.flag:
            summary.error(item.flag[0])
        writer.add(item, rec)
        if on_file:
            on_file(summary)

    def drain(block: bool) -> None:
        nonlocal pool
        if not in_flight:
            return
        done, _ = wait(list(in_flight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        broken = False
        for fut in done:
            item = in_flight.pop(fut)
            try:
                rec = fut.result()
            except BrokenProcessPool:
                broken = True
                suspects.append(item)
                continue
            summary.hashed += 1
            finish(item, rec)
        if broken:
            suspects.extend(in_flight.values())
            in_flight.clear()
            pool.shutdown(wait=False, cancel_futures=True)
            pool = _pool(max(1, workers))

    try:
        for batch in _batched(items, BATCH):
            todo = batch if rescan else _done_filter(engine, case_id, batch)
            summary.files += len(batch)
            summary.skipped += len(batch) - len(todo)
            for item in todo:
                if item.kind == "archive":
                    summary.archives += 1
                    markers.append(item)
                    continue
                if item.error is not None:
                    finish(item, None)
                    continue
                while len(in_flight) >= max_in_flight:
                    drain(block=True)
                path = item.path if item.kind == "file" else None
                fut = pool.submit(hash_item, path, item.data, item.path, options)
                in_flight[fut] = item
            drain(block=False)
            if markers and not in_flight and not suspects:
                _write_markers(writer, markers)
        while in_flight:
            drain(block=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for item in suspects:
        finish(item, _isolated(item, options))
        summary.hashed += 1
    _write_markers(writer, markers)
    writer.flush()
    return summary


def _write_markers(writer: _Writer, markers: list[Item]) -> None:
    """Archive done-markers, written only after every member's row."""
    writer.flush()
    for m in markers:
        writer.files.append((m, None))
    markers.clear()
    writer.flush()


def _isolated(item: Item, options: HashOptions) -> dict[str, Any]:
    path = item.path if item.kind == "file" else None
    with _pool(1) as solo:
        try:
            return solo.submit(hash_item, path, item.data, item.path, options).result()
        except BrokenProcessPool:
            return {"error": ["decoder_crashed", "the decoder crashed on this file"], "size": 0}


def reset_groups(engine: Engine, case_id: int) -> None:
    with engine.begin() as c:
        c.execute(
            update(triage_media).where(triage_media.c.case_id == case_id).values(group_id=None)
        )
