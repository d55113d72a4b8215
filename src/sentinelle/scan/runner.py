"""Parallel, resumable scanning: walk -> hash (worker processes) -> match -> JSONL.

* Hashing runs in worker processes so a decoder that crashes or hangs takes down only
  its worker; the file gets an error record and the scan goes on.
* Every finished file is appended (and flushed) to ``<out>.partial`` at once; when the
  scan completes the partial file atomically replaces ``<out>``. An interrupted scan
  therefore loses nothing: the next run reads both files and skips every file whose
  size and mtime are unchanged. Files whose banks changed since they were scanned are
  re-matched from their stored signals without being hashed again.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import MediaError
from ..media.limits import DEFAULT_LIMITS, Limits
from ..signals.types import HashResult
from .records import dumps, error_record, make_record, read_records, result_from_record
from .walker import FileRef, walk

if TYPE_CHECKING:  # pragma: no cover
    from ..media.shared import SharedImage
    from ..provenance.evidence import DetectorConfig


class MatcherLike(Protocol):
    version: int

    def match(self, result: HashResult) -> list[Any]: ...

    def match_fast(self, result: HashResult) -> list[Any] | None: ...


@dataclass(frozen=True)
class ScanOptions:
    workers: int = max(1, os.cpu_count() or 1)
    exact: bool = False
    dihedral: bool = False
    trimmed: bool = True
    rescan: bool = False  # ignore previous results
    limits: Limits = DEFAULT_LIMITS
    provenance: bool = True  # add a provenance verdict per file (sentinelle.provenance)
    trust_anchors_pem: str | None = None  # C2PA trust anchors for the provenance verdict
    # Sources for the verdict; None = all. The default skips the pixel-level watermark
    # decoder, which costs more than hashing itself (bench/provenance).
    provenance_sources: tuple[str, ...] | None = ("c2pa", "metadata", "camera", "detector")
    # The operator's ONNX detector (None: $SENTINELLE_PROVENANCE_DETECTOR, if set).
    detector: DetectorConfig | None = None

    @property
    def config(self) -> str:
        parts = ["exact" if self.exact else "fast"]
        if self.trimmed:
            parts.append("trim")
        if self.dihedral:
            parts.append("dihedral")
        if self.provenance:
            parts.append("prov" if self.provenance_sources else "prov-full")
            if self.detector is not None:
                parts.append("det")
        return "+".join(parts)

    @property
    def query_variants(self) -> tuple[str, ...]:
        v = []
        if self.trimmed:
            v.append("trimmed")
        if self.dihedral:
            v.append("dihedral")
        return tuple(v)


@dataclass
class ScanSummary:
    files: int = 0
    hashed: int = 0
    unchanged: int = 0
    rematched: int = 0
    verified_exact: int = 0  # fast-path near misses re-hashed with the reference path
    matched: int = 0
    errors: int = 0
    per_bank: Counter[str] = field(default_factory=Counter)
    error_codes: Counter[str] = field(default_factory=Counter)

    def add(self, rec: dict[str, Any]) -> None:
        self.files += 1
        if rec.get("error"):
            self.errors += 1
            self.error_codes[rec["error"]["code"]] += 1
        if rec.get("matches"):
            self.matched += 1
            for bank in {m["bank"] for m in rec["matches"]}:
                self.per_bank[bank] += 1


SIGNALS = ("md5", "sha1", "sha256", "pdq", "vpdq")


@dataclass
class ScannedFile(HashResult):
    """A :class:`HashResult` plus the file's provenance record (``None``: not computed)."""

    provenance: dict[str, Any] | None = None


def _provenance_of(
    path: str,
    limits: Limits,
    trust_anchors_pem: str | None,
    sources: tuple[str, ...] | None = None,
    detector: DetectorConfig | None = None,
    media: SharedImage | None = None,
) -> dict[str, Any]:
    """The provenance record of one file.

    ``media``: the image as hashing read and decoded it; provenance then reads no
    byte and decodes no pixel again (JPEG headers need no decode at all; a source
    that wants pixels gets the full-resolution decode, shared).
    """
    from ..provenance import analyze_bytes, analyze_file
    from ..provenance.analyze import DEFAULT_MAX_BYTES

    cap = min(limits.max_file_bytes, DEFAULT_MAX_BYTES)
    kw: dict[str, Any] = {
        "trust_anchors_pem": trust_anchors_pem,
        "max_bytes": cap,
        "sources": sources,
        "detector": detector,
    }
    if media is not None and media.data is not None:
        res = analyze_bytes(media.data, path=path, decoder=media.full_image, **kw)
    else:
        res = analyze_file(path, **kw)
    rec = res.to_dict()
    rec.pop("path", None)
    return rec


def _hash_worker(
    path: str,
    exact: bool,
    variants: tuple[str, ...],
    limits: Limits,
    provenance: bool = False,
    trust_anchors_pem: str | None = None,
    provenance_sources: tuple[str, ...] | None = None,
    detector: DetectorConfig | None = None,
) -> HashResult:
    """Runs in a worker process. A hard wall-clock alarm backs up the decoders' own checks.

    With ``provenance`` the result is a :class:`ScannedFile` carrying the provenance
    record, computed in the same (crash-isolated, time-limited) worker from the bytes
    and decodes hashing made (:class:`~sentinelle.media.shared.SharedImage`).
    """
    result, media = _hash_only(path, exact, variants, limits)
    if not provenance:
        return result
    prov: dict[str, Any] | None

    def _alarm(signum: int, frame: object) -> None:
        raise TimeoutError("provenance analysis timed out")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limits.decode_timeout_s * 1.5 + 1.0)
    try:
        prov = _provenance_of(path, limits, trust_anchors_pem, provenance_sources, detector, media)
    except Exception:  # noqa: BLE001 - provenance must never lose the hash record
        prov = None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    fields = {k: getattr(result, k) for k in HashResult.__dataclass_fields__}
    return ScannedFile(**fields, provenance=prov)


def _hash_only(
    path: str, exact: bool, variants: tuple[str, ...], limits: Limits
) -> tuple[HashResult, SharedImage | None]:
    from ..signals.hasher import hash_file_shared

    def _alarm(signum: int, frame: object) -> None:
        raise MediaError(
            f"decoding took longer than {limits.decode_timeout_s:g}s", "decode_timeout"
        )

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limits.decode_timeout_s * 1.5 + 1.0)
    try:
        return hash_file_shared(
            path, signals=SIGNALS, exact=exact, query_variants=variants, limits=limits
        )
    except MediaError as e:
        return HashResult(path=path, size=0, error=e), None
    except Exception as e:  # noqa: BLE001 - a worker must always answer with a record
        err = MediaError(f"{type(e).__name__}", "internal_error")
        return HashResult(path=path, size=0, error=err), None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _previous(out: Path) -> dict[str, dict[str, Any]]:
    prev: dict[str, dict[str, Any]] = {}
    for p in (out, out.with_name(out.name + ".partial")):
        for rec in read_records(p):
            prev[rec["path"]] = rec
    return prev


def scan(
    paths: Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    matcher: MatcherLike,
    options: ScanOptions = ScanOptions(),
    *,
    on_progress: Callable[[dict[str, Any], ScanSummary], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ScanSummary:
    """Scan ``paths`` into the JSONL file ``out``; returns the summary counts."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    prev = {} if options.rescan else _previous(out)
    refs = list(walk(paths))
    if on_total:
        on_total(len(refs))
    summary = ScanSummary()
    tmp = partial.with_name(partial.name + ".new")
    with tmp.open("w", encoding="utf-8") as fh:

        def emit(rec: dict[str, Any]) -> None:
            fh.write(dumps(rec) + "\n")
            fh.flush()
            summary.add(rec)
            if on_progress:
                on_progress(rec, summary)

        to_hash: list[FileRef] = []
        for ref in refs:
            if ref.error:
                emit(error_record(ref.path, *ref.error))
                continue
            old = prev.get(ref.path)
            if (
                old
                and not old.get("error")
                and old.get("size") == ref.size
                and old.get("mtime_ns") == ref.mtime_ns
                and old.get("config") == options.config
            ):
                summary.unchanged += 1
                if old.get("bank_version") != matcher.version:
                    old = _rematch(old, matcher)
                    summary.rematched += 1
                emit(old)
            else:
                to_hash.append(ref)
        # The old partial (if any) is now fully carried over into tmp.
        os.replace(tmp, partial)

        def record(ref: FileRef, result: HashResult, pdq_path: str, matches: list[Any]) -> None:
            rec = make_record(
                result,
                mtime_ns=ref.mtime_ns,
                matches=[m.to_dict() for m in matches],
                config=options.config,
                bank_version=matcher.version,
            )
            rec["pdq_path"] = pdq_path
            if options.provenance:
                rec["provenance"] = getattr(result, "provenance", None)
            emit(rec)

        verify: list[FileRef] = []
        verify_prov: dict[str, dict[str, Any] | None] = {}
        for ref, result in _hash_all(to_hash, options):
            summary.hashed += 1
            if options.exact:
                record(ref, result, "exact", matcher.match(result))
                continue
            matches = matcher.match_fast(result)
            if matches is None:  # near a threshold: let the reference hash decide
                verify.append(ref)
                verify_prov[ref.path] = getattr(result, "provenance", None)
                continue
            record(ref, result, "fast", matches)
        # The re-hash needs no second provenance pass: the record does not depend on
        # the hash path, so the first pass's is kept.
        for ref, result in _hash_all(verify, replace(options, exact=True, provenance=False)):
            summary.verified_exact += 1
            if options.provenance:
                fields = {k: getattr(result, k) for k in HashResult.__dataclass_fields__}
                result = ScannedFile(**fields, provenance=verify_prov.get(ref.path))
            record(ref, result, "exact-verified", matcher.match(result))
    os.replace(partial, out)
    return summary


def _rematch(rec: dict[str, Any], matcher: MatcherLike) -> dict[str, Any]:
    result = result_from_record(rec)
    rec = dict(rec)
    rec["matches"] = [m.to_dict() for m in matcher.match(result)]
    rec["bank_version"] = matcher.version
    return rec


def _pool(workers: int) -> ProcessPoolExecutor:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["sentinelle.signals.hasher"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def _hash_all(refs: list[FileRef], options: ScanOptions) -> Iterable[tuple[FileRef, HashResult]]:
    """Hash files in worker processes, yielding results as they finish.

    If a worker dies (a decoder crash), the files that were in flight are retried one
    at a time in a fresh single-worker pool; a file that kills its worker again gets a
    ``decoder_crashed`` error record.
    """
    if not refs:
        return
    args = (
        options.exact,
        options.query_variants,
        options.limits,
        options.provenance,
        options.trust_anchors_pem,
        options.provenance_sources,
        options.detector,
    )
    pending = list(reversed(refs))
    suspects: list[FileRef] = []
    max_in_flight = options.workers * 4
    pool = _pool(options.workers)
    try:
        in_flight: dict[Future[HashResult], FileRef] = {}
        while pending or in_flight:
            while pending and len(in_flight) < max_in_flight:
                ref = pending.pop()
                try:
                    in_flight[pool.submit(_hash_worker, ref.path, *args)] = ref
                except BrokenProcessPool:
                    pending.append(ref)
                    break
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                ref = in_flight.pop(fut)
                try:
                    yield ref, fut.result()
                except BrokenProcessPool:
                    broken = True
                    suspects.append(ref)
            if broken:
                suspects.extend(in_flight.values())
                in_flight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = _pool(options.workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for ref in suspects:
        yield ref, _isolated(ref, args)


def _isolated(ref: FileRef, args: tuple[Any, ...]) -> HashResult:
    with _pool(1) as solo:
        try:
            return solo.submit(_hash_worker, ref.path, *args).result()
        except BrokenProcessPool:
            return HashResult(
                path=ref.path,
                size=ref.size,
                error=MediaError("the decoder crashed on this file", "decoder_crashed"),
            )
