"""The life of a CyberTipline report: a state machine in the database.

::

    draft --validate--> validated --submit--> submitted --upload--> files_uploaded
                                  |                                        |
                                  +--(answer lost)--> submit_unknown       fileinfo
                                                                           v
                                              finished (receipt) <--finish-- fileinfo_sent

    submitted / files_uploaded / fileinfo_sent --retract--> retracted
                                               --(deadline passed)--> expired

NCMEC deletes an unfinished report 24 h after it was opened or 1 h after its last
change (file upload or file details), whichever is later: :func:`expires_at`.
:meth:`ReportManager.tick` (run by ``sentinelle report tick`` every few minutes, or
by the service's job worker) drives every open report forward: it uploads files,
sends their details, finishes complete reports and retracts -- ``retract_margin``
before the deadline -- those it cannot complete, so nothing silently vanishes;
a report that was retracted for time can be cloned and resubmitted
(:meth:`ReportManager.resubmit`).

Never filing twice. Each API call is journaled in ``report_requests`` *before* it is
made and completed after; ``submit`` first moves the report to ``submitting`` with a
compare-and-swap, so two workers cannot both submit it. When a submit's answer is
lost the report goes to ``submit_unknown`` and waits for a person
(:meth:`ReportManager.resolve_unknown`), because the API offers no way to look a
report up. Transitions, receipts and audit entries (``report.submit``,
``report.finish``, ``report.retract``) commit in one transaction.

Finishing fires the finish hooks; the default one starts the legal preservation
hold (``sentinelle.evidence.preservation.start_hold``) when that module exists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from lxml import etree
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from ..audit.chain import record_event, write_transaction
from ..store.models import utcnow
from .builder import FileInput, ReportInput, build_file_details_xml, build_report_xml
from .client import ApiCallError, ApiResponse, CyberTiplineClient
from .errors import ReportError
from .tables import receipts, report_files, report_requests, reports
from .xsd import XsdIssue, require_valid, validate

log = logging.getLogger("sentinelle.reports")

OPEN_TTL = dt.timedelta(hours=24)
CHANGE_TTL = dt.timedelta(hours=1)

DRAFT = "draft"
VALIDATED = "validated"
SUBMITTING = "submitting"
SUBMIT_UNKNOWN = "submit_unknown"
SUBMITTED = "submitted"
FILES_UPLOADED = "files_uploaded"
FILEINFO_SENT = "fileinfo_sent"
FINISHED = "finished"
RETRACTED = "retracted"
EXPIRED = "expired"
#: States in which NCMEC holds an open (unfinished) report.
OPEN_STATES = (SUBMITTED, FILES_UPLOADED, FILEINFO_SENT)
FINAL_STATES = (FINISHED, RETRACTED, EXPIRED)

FILE_PENDING = "pending"
FILE_UPLOADED = "uploaded"
FILE_DESCRIBED = "described"


def expires_at(opened_at: dt.datetime, last_change_at: dt.datetime) -> dt.datetime:
    """When NCMEC deletes an unfinished report: the later of open + 24 h, change + 1 h."""
    return max(opened_at + OPEN_TTL, last_change_at + CHANGE_TTL)


@dataclass(frozen=True)
class FileRecord:
    """A file of a report as stored (no bytes)."""

    id: int
    report_id: int
    position: int
    info: FileInput
    sha256: str
    blob_id: int | None
    media_type: str | None
    state: str
    ncmec_file_id: str | None


#: Returns a file's bytes as received (e.g. from the evidence store), or None if unavailable.
FileLoader = Callable[[FileRecord], bytes | None]


@dataclass(frozen=True)
class FinishedReport:
    """What finish hooks receive."""

    report_id: int
    case_id: int | None
    ncmec_report_id: int
    environment: str
    file_ids: tuple[str, ...]
    blob_ids: tuple[int, ...]
    finished_at: dt.datetime
    actor: str


@dataclass
class TickResult:
    """What one :meth:`ReportManager.tick` did, by local report id."""

    finished: list[int] = field(default_factory=list)
    retracted: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    advanced: list[int] = field(default_factory=list)
    needs_attention: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "finished": self.finished,
            "retracted": self.retracted,
            "expired": self.expired,
            "advanced": self.advanced,
            "needs_attention": self.needs_attention,
            "errors": {str(k): v for k, v in self.errors.items()},
        }


def _audit(conn: Connection, actor: str, action: str, report_id: int, details: dict) -> None:
    record_event(conn, actor=actor, action=action, target=f"report:{report_id}", details=details)


def preservation_hook(engine: Engine, done: FinishedReport) -> None:
    """Start the legal preservation hold at the finish receipt (R4's ``start_hold``).

    The jurisdiction is ``$SENTINELLE_REPORT_JURISDICTION`` (default ``US``: a
    CyberTipline report is a US report; 18 U.S.C. 2258A(h) asks for one year).
    """
    from ..evidence.preservation import start_hold

    if done.case_id is None:
        return
    start_hold(
        engine,
        case_id=done.case_id,
        report_id=done.report_id,
        jurisdiction=os.environ.get("SENTINELLE_REPORT_JURISDICTION", "").strip() or "US",
        started_at=done.finished_at,
        actor=done.actor,
    )


class ReportManager:
    """Moves reports through their states; every dependency is injectable.

    ``client`` talks to the API, ``schema`` (an ``lxml.etree.XMLSchema``) validates
    every document before it leaves, ``clock`` returns aware UTC datetimes,
    ``loader`` returns a file's bytes (default: the encrypted evidence store).
    """

    def __init__(
        self,
        engine: Engine,
        client: CyberTiplineClient | None = None,
        *,
        schema: etree.XMLSchema | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        loader: FileLoader | None = None,
        actor: str = "system",
        retract_margin: dt.timedelta = dt.timedelta(minutes=10),
        stale_submit: dt.timedelta = dt.timedelta(minutes=15),
        finish_hooks: Sequence[Callable[[Engine, FinishedReport], None]] | None = None,
    ) -> None:
        self.engine = engine
        self.client = client
        self.schema = schema
        self.clock = clock
        self.loader = loader or self._evidence_loader
        self.actor = actor
        self.retract_margin = retract_margin
        self.stale_submit = stale_submit
        self.finish_hooks = list(finish_hooks) if finish_hooks is not None else [preservation_hook]

    # -- plumbing -----------------------------------------------------------------------

    def _tx(self) -> AbstractContextManager[Connection]:
        """A write transaction of its own (SQLite: ``BEGIN IMMEDIATE``), committed on exit."""
        return write_transaction(self.engine)

    def _need_client(self) -> CyberTiplineClient:
        if self.client is None:
            raise ReportError("no CyberTipline client configured", "no_credentials")
        return self.client

    def _need_schema(self) -> etree.XMLSchema:
        if self.schema is None:
            raise ReportError("no CyberTipline XSD loaded", "xsd_unavailable")
        return self.schema

    def _row(self, conn: Connection, report_id: int) -> Any:
        row = conn.execute(sa.select(reports).where(reports.c.id == report_id)).first()
        if row is None:
            raise ReportError(f"no report {report_id}", "unknown_report")
        return row

    def _move(
        self, conn: Connection, report_id: int, from_states: Sequence[str], to: str, **values: Any
    ) -> None:
        """Compare-and-swap the state; ``invalid_state`` if someone else moved it first."""
        res = conn.execute(
            sa.update(reports)
            .where(reports.c.id == report_id, reports.c.state.in_(list(from_states)))
            .values(state=to, updated_at=self.clock(), **values)
        )
        if res.rowcount != 1:
            current = self._row(conn, report_id).state
            raise ReportError(
                f"report {report_id} is {current}, expected {' or '.join(from_states)}",
                "invalid_state",
            )

    def _note_error(self, report_id: int, err: ReportError) -> None:
        with self._tx() as conn:
            conn.execute(
                sa.update(reports)
                .where(reports.c.id == report_id)
                .values(last_error=f"[{err.code}] {err.message}"[:4000], updated_at=self.clock())
            )

    def _api(
        self,
        report_id: int,
        endpoint: str,
        call: Callable[[], ApiResponse],
        *,
        file_row_id: int | None = None,
    ) -> ApiResponse:
        """Journal the call before and after it (status sending -> ok | failed | unknown)."""
        client = self._need_client()
        with self._tx() as conn:
            req_id = conn.execute(
                sa.insert(report_requests).values(
                    report_id=report_id,
                    report_file_id=file_row_id,
                    endpoint=endpoint,
                    environment=client.environment,
                    status="sending",
                    attempts=0,
                    started_at=self.clock(),
                )
            ).inserted_primary_key[0]
        try:
            resp = call()
        except ReportError as e:
            status = "unknown" if e.code == "ambiguous_outcome" else "failed"
            with self._tx() as conn:
                conn.execute(
                    sa.update(report_requests)
                    .where(report_requests.c.id == req_id)
                    .values(
                        status=status,
                        attempts=getattr(e, "attempts", 1),
                        http_status=e.http_status,
                        response_code=e.response_code,
                        response_description=(getattr(e, "description", None) or e.message)[:4000],
                        server_request_id=getattr(e, "server_request_id", None),
                        error_code=e.code,
                        completed_at=self.clock(),
                    )
                )
            raise
        with self._tx() as conn:
            conn.execute(
                sa.update(report_requests)
                .where(report_requests.c.id == req_id)
                .values(
                    status="ok",
                    attempts=resp.attempts,
                    http_status=resp.http_status,
                    response_code=resp.response_code,
                    response_description=(resp.description or "")[:4000] or None,
                    ncmec_report_id=resp.report_id,
                    ncmec_file_id=resp.file_id,
                    server_request_id=resp.server_request_id,
                    completed_at=self.clock(),
                )
            )
        return resp

    # -- reading ------------------------------------------------------------------------

    def files(self, report_id: int) -> list[FileRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(report_files)
                .where(report_files.c.report_id == report_id)
                .order_by(report_files.c.position)
            ).all()
        return [
            FileRecord(
                id=r.id,
                report_id=r.report_id,
                position=r.position,
                info=FileInput.from_dict(json.loads(r.info_json)),
                sha256=r.sha256,
                blob_id=r.blob_id,
                media_type=r.media_type,
                state=r.state,
                ncmec_file_id=r.ncmec_file_id,
            )
            for r in rows
        ]

    def get(self, report_id: int) -> dict[str, Any]:
        """The report row, its files, API journal and receipt as a JSON-able dict."""
        with self.engine.connect() as conn:
            row = self._row(conn, report_id)
            reqs = conn.execute(
                sa.select(report_requests)
                .where(report_requests.c.report_id == report_id)
                .order_by(report_requests.c.id)
            ).all()
            receipt = conn.execute(
                sa.select(receipts).where(receipts.c.report_id == report_id)
            ).first()
        out = _jsonable(row._asdict())
        out.pop("report_xml", None)
        out["files"] = [
            {
                "id": f.id,
                "position": f.position,
                "state": f.state,
                "sha256": f.sha256,
                "ncmec_file_id": f.ncmec_file_id,
                "file_name": f.info.file_name,
            }
            for f in self.files(report_id)
        ]
        out["requests"] = [_jsonable(r._asdict()) for r in reqs]
        out["receipt"] = (
            {**_jsonable(receipt._asdict()), "file_ids": json.loads(receipt.file_ids)}
            if receipt
            else None
        )
        return out

    def xml(self, report_id: int) -> bytes:
        with self.engine.connect() as conn:
            return self._row(conn, report_id).report_xml.encode()

    def list(self, states: Sequence[str] | None = None) -> list[dict[str, Any]]:
        q = sa.select(
            reports.c.id,
            reports.c.case_id,
            reports.c.state,
            reports.c.environment,
            reports.c.ncmec_report_id,
            reports.c.expires_at,
            reports.c.updated_at,
        ).order_by(reports.c.id)
        if states:
            q = q.where(reports.c.state.in_(list(states)))
        with self.engine.connect() as conn:
            return [_jsonable(r._asdict()) for r in conn.execute(q)]

    # -- drafting -----------------------------------------------------------------------

    def create(
        self,
        report: ReportInput,
        *,
        case_id: int | None = None,
        created_by: str | None = None,
        environment: str | None = None,
        supersedes_id: int | None = None,
    ) -> int:
        """Store a draft: the ``<report>`` XML and one row per file (no bytes)."""
        xml = build_report_xml(report)
        return self.create_from_xml(
            xml,
            report.files,
            case_id=case_id,
            created_by=created_by,
            environment=environment,
            supersedes_id=supersedes_id,
        )

    def create_from_xml(
        self,
        xml: bytes,
        files: Sequence[FileInput] = (),
        *,
        case_id: int | None = None,
        created_by: str | None = None,
        environment: str | None = None,
        supersedes_id: int | None = None,
        conn: Connection | None = None,
    ) -> int:
        for f in files:
            if not f.hash("SHA256"):
                raise ReportError(
                    "every file needs the SHA256 of its bytes (use FileInput.from_bytes)",
                    "invalid_input",
                )
        now = self.clock()
        env = environment or (self.client.environment if self.client else "test")

        def write(c: Connection) -> int:
            rid = c.execute(
                sa.insert(reports).values(
                    case_id=case_id,
                    supersedes_id=supersedes_id,
                    environment=env,
                    state=DRAFT,
                    report_xml=xml.decode("utf-8"),
                    created_by=created_by or self.actor,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            for pos, f in enumerate(files):
                c.execute(
                    sa.insert(report_files).values(
                        report_id=rid,
                        position=pos,
                        info_json=json.dumps(f.to_dict(), sort_keys=True),
                        sha256=f.hash("SHA256"),
                        size=f.size,
                        media_type=f.media_type,
                        blob_id=f.blob_id,
                        state=FILE_PENDING,
                    )
                )
            return int(rid)

        if conn is not None:
            return write(conn)
        with self._tx() as c:
            return write(c)

    def validate(self, report_id: int) -> list[XsdIssue]:
        """Check the report and every file's details against the XSD.

        Valid: ``draft -> validated``. Invalid: the report is (back in) ``draft`` and
        the issues are returned (and kept in ``last_error``).
        """
        schema = self._need_schema()
        xml = self.xml(report_id)
        issues = validate(xml, schema)
        for f in self.files(report_id):
            # fileDetails with placeholder ids: checks every value the file will carry.
            try:
                fx = build_file_details_xml(1, "pending", f.info)
            except ReportError as e:
                issues.append(XsdIssue(0, 0, f"file[{f.position}]", e.message))
                continue
            issues += [
                XsdIssue(i.line, i.column, f"file[{f.position}]{i.path}", i.message)
                for i in validate(fx, schema)
            ]
        with self._tx() as conn:
            row = self._row(conn, report_id)
            if row.state not in (DRAFT, VALIDATED):
                raise ReportError(f"report {report_id} is {row.state}", "invalid_state")
            if issues:
                self._move(
                    conn,
                    report_id,
                    (DRAFT, VALIDATED),
                    DRAFT,
                    validated_at=None,
                    last_error=f"{len(issues)} XSD problem(s); first: {issues[0]}"[:4000],
                )
            else:
                self._move(
                    conn,
                    report_id,
                    (DRAFT, VALIDATED),
                    VALIDATED,
                    validated_at=self.clock(),
                    last_error=None,
                )
        return issues

    # -- the API steps ------------------------------------------------------------------

    def submit(self, report_id: int) -> int:
        """``validated -> submitted``: open the report at NCMEC; returns its ``reportId``."""
        client = self._need_client()
        schema = self._need_schema()
        xml = self.xml(report_id)
        require_valid(xml, schema)
        with self._tx() as conn:
            self._move(
                conn,
                report_id,
                (VALIDATED,),
                SUBMITTING,
                submit_started_at=self.clock(),
                environment=client.environment,
            )
        try:
            resp = self._api(report_id, "submit", lambda: client.submit(xml))
        except ReportError as e:
            ambiguous = e.code == "ambiguous_outcome"
            with self._tx() as conn:
                self._move(
                    conn,
                    report_id,
                    (SUBMITTING,),
                    SUBMIT_UNKNOWN if ambiguous else VALIDATED,
                    last_error=f"[{e.code}] {e.message}"[:4000],
                )
            raise
        now = self.clock()
        assert resp.report_id is not None
        with self._tx() as conn:
            self._move(
                conn,
                report_id,
                (SUBMITTING,),
                SUBMITTED,
                ncmec_report_id=resp.report_id,
                opened_at=now,
                last_change_at=now,
                expires_at=expires_at(now, now),
                last_error=None,
            )
            _audit(
                conn,
                self.actor,
                "report.submit",
                report_id,
                {"ncmec_report_id": resp.report_id, "environment": client.environment},
            )
        return resp.report_id

    def _touch(self, conn: Connection, report_id: int) -> None:
        """A file upload or details submission: NCMEC's 1-hour clock restarts."""
        row = self._row(conn, report_id)
        now = self.clock()
        conn.execute(
            sa.update(reports)
            .where(reports.c.id == report_id)
            .values(last_change_at=now, expires_at=expires_at(row.opened_at, now), updated_at=now)
        )

    def _open_row(self, report_id: int, states: Sequence[str]) -> Any:
        with self.engine.connect() as conn:
            row = self._row(conn, report_id)
        if row.state not in states:
            raise ReportError(
                f"report {report_id} is {row.state}, expected {' or '.join(states)}",
                "invalid_state",
            )
        return row

    def upload_files(self, report_id: int) -> int:
        """Upload every pending file; ``submitted -> files_uploaded`` when none is left."""
        client = self._need_client()
        row = self._open_row(report_id, (SUBMITTED,))
        done = 0
        for f in self.files(report_id):
            if f.state != FILE_PENDING:
                continue
            data = self.loader(f)
            if data is None:
                raise ReportError(
                    f"bytes of file {f.position} ({f.sha256[:12]}...) are not available",
                    "missing_file",
                )
            if hashlib.sha256(data).hexdigest() != f.sha256:
                raise ReportError(
                    f"file {f.position} does not match the SHA256 recorded in the report",
                    "missing_file",
                )
            name = f.info.file_name or f"file-{f.position}"
            resp = self._api(
                report_id,
                "upload",
                lambda d=data, n=name, m=f.media_type: client.upload(  # type: ignore[misc]
                    row.ncmec_report_id, d, n, m
                ),
                file_row_id=f.id,
            )
            md5 = hashlib.md5(data).hexdigest()
            if resp.hash and resp.hash.lower() != md5:
                raise ReportError(
                    f"NCMEC stored file {resp.file_id} with MD5 {resp.hash}, expected {md5}",
                    "upload_corrupted",
                )
            with self._tx() as conn:
                conn.execute(
                    sa.update(report_files)
                    .where(report_files.c.id == f.id)
                    .values(
                        state=FILE_UPLOADED,
                        ncmec_file_id=resp.file_id,
                        upload_md5=resp.hash,
                        uploaded_at=self.clock(),
                    )
                )
                self._touch(conn, report_id)
            done += 1
        with self._tx() as conn:
            self._move(conn, report_id, (SUBMITTED,), FILES_UPLOADED)
        return done

    def send_fileinfo(self, report_id: int) -> int:
        """Send ``fileDetails`` of every uploaded file; ``-> fileinfo_sent`` when done."""
        client = self._need_client()
        schema = self._need_schema()
        row = self._open_row(report_id, (FILES_UPLOADED,))
        done = 0
        for f in self.files(report_id):
            if f.state != FILE_UPLOADED:
                continue
            xml = build_file_details_xml(row.ncmec_report_id, f.ncmec_file_id or "", f.info)
            require_valid(xml, schema, "fileDetails")
            self._api(report_id, "fileinfo", lambda x=xml: client.fileinfo(x), file_row_id=f.id)
            with self._tx() as conn:
                conn.execute(
                    sa.update(report_files)
                    .where(report_files.c.id == f.id)
                    .values(state=FILE_DESCRIBED, described_at=self.clock())
                )
                self._touch(conn, report_id)
            done += 1
        with self._tx() as conn:
            self._move(conn, report_id, (FILES_UPLOADED,), FILEINFO_SENT)
        return done

    def finish(self, report_id: int, *, force: bool = False) -> dict[str, Any]:
        """``fileinfo_sent -> finished``; stores the receipt and fires the finish hooks.

        ``force`` finishes from any open state (files not yet sent are left out).
        A 5102 answer ("already finished": our earlier answer was lost) also counts
        as finished; the receipt then lists the file ids we know of.
        """
        client = self._need_client()
        row = self._open_row(report_id, OPEN_STATES if force else (FILEINFO_SENT,))
        files = self.files(report_id)
        note = None
        try:
            resp = self._api(report_id, "finish", lambda: client.finish(row.ncmec_report_id))
            file_ids = resp.file_ids
            raw = resp.raw.decode("utf-8", "replace")
        except ApiCallError as e:
            if e.code == "report_not_found":
                self._mark_expired(report_id, e)
            if e.code != "already_finished":
                self._note_error(report_id, e)
                raise
            file_ids = tuple(f.ncmec_file_id for f in files if f.ncmec_file_id)
            raw = None
            note = "finish answer lost; NCMEC reported the report as already finished"
        now = self.clock()
        with self._tx() as conn:
            self._move(conn, report_id, OPEN_STATES, FINISHED, finished_at=now, last_error=note)
            conn.execute(
                sa.insert(receipts).values(
                    report_id=report_id,
                    environment=row.environment,
                    ncmec_report_id=row.ncmec_report_id,
                    file_ids=json.dumps(list(file_ids)),
                    response_xml=raw,
                    received_at=now,
                )
            )
            _audit(
                conn,
                self.actor,
                "report.finish",
                report_id,
                {
                    "ncmec_report_id": row.ncmec_report_id,
                    "environment": row.environment,
                    "files": len(file_ids),
                },
            )
        done = FinishedReport(
            report_id=report_id,
            case_id=row.case_id,
            ncmec_report_id=row.ncmec_report_id,
            environment=row.environment,
            file_ids=tuple(file_ids),
            blob_ids=tuple(f.blob_id for f in files if f.blob_id is not None),
            finished_at=now,
            actor=self.actor,
        )
        for hook in self.finish_hooks:
            try:
                hook(self.engine, done)
            except Exception as e:  # a hook must not undo a filed report; say so loudly
                log.error("finish hook %s failed for report %s: %s", hook, report_id, e)
                self._note_error(report_id, ReportError(f"finish hook failed: {e}", "hook_failed"))
        return {"ncmec_report_id": row.ncmec_report_id, "file_ids": list(file_ids)}

    def _mark_expired(self, report_id: int, err: ReportError) -> None:
        with self._tx() as conn:
            self._move(
                conn,
                report_id,
                OPEN_STATES,
                EXPIRED,
                last_error=f"[{err.code}] {err.message}"[:4000],
            )

    def retract(self, report_id: int, reason: str = "manual") -> None:
        """Cancel an open report at NCMEC (``-> retracted``); only before ``finish``."""
        client = self._need_client()
        row = self._open_row(report_id, OPEN_STATES)
        try:
            self._api(report_id, "retract", lambda: client.retract(row.ncmec_report_id))
        except ApiCallError as e:
            if e.code == "report_not_found":
                self._mark_expired(report_id, e)
                raise
            if e.code != "already_retracted":
                self._note_error(report_id, e)
                raise
        with self._tx() as conn:
            self._move(
                conn,
                report_id,
                OPEN_STATES,
                RETRACTED,
                retracted_at=self.clock(),
                retract_reason=reason[:200],
            )
            _audit(
                conn,
                self.actor,
                "report.retract",
                report_id,
                {"ncmec_report_id": row.ncmec_report_id, "reason": reason[:200]},
            )

    def advance(self, report_id: int) -> str:
        """Run the remaining steps of an open report up to ``finished``; returns the state."""
        while True:
            with self.engine.connect() as conn:
                state = self._row(conn, report_id).state
            try:
                if state == SUBMITTED:
                    self.upload_files(report_id)
                elif state == FILES_UPLOADED:
                    self.send_fileinfo(report_id)
                elif state == FILEINFO_SENT:
                    self.finish(report_id)
                else:
                    return state
            except ApiCallError as e:
                if e.code == "report_not_found" and state in (SUBMITTED, FILES_UPLOADED):
                    self._mark_expired(report_id, e)  # NCMEC already deleted it
                elif e.code not in ("report_not_found",):
                    self._note_error(report_id, e)
                raise
            except ReportError as e:
                self._note_error(report_id, e)
                raise

    def run(self, report_id: int) -> str:
        """Validate (if needed), submit and advance to ``finished`` in one go."""
        with self.engine.connect() as conn:
            state = self._row(conn, report_id).state
        if state == DRAFT:
            issues = self.validate(report_id)
            if issues:
                raise ReportError(
                    f"report {report_id} does not validate: {issues[0]}",
                    "invalid_report",
                    issues=[i.to_dict() for i in issues],
                )
            state = VALIDATED
        if state == VALIDATED:
            self.submit(report_id)
        return self.advance(report_id)

    # -- recovery -----------------------------------------------------------------------

    def resolve_unknown(self, report_id: int, *, ncmec_report_id: int | None = None) -> str:
        """A person settles a ``submit_unknown`` report.

        With the ``reportId`` NCMEC did open (found out of band) the report continues
        as ``submitted``; without one it returns to ``validated`` ("NCMEC never got
        it"), ready to be submitted again.
        """
        now = self.clock()
        with self._tx() as conn:
            if ncmec_report_id is None:
                self._move(conn, report_id, (SUBMIT_UNKNOWN,), VALIDATED, last_error=None)
                _audit(conn, self.actor, "report.resolve", report_id, {"opened": False})
                return VALIDATED
            self._move(
                conn,
                report_id,
                (SUBMIT_UNKNOWN,),
                SUBMITTED,
                ncmec_report_id=int(ncmec_report_id),
                opened_at=now,
                last_change_at=now,
                expires_at=expires_at(now, now),
                last_error=None,
            )
            _audit(
                conn,
                self.actor,
                "report.resolve",
                report_id,
                {"opened": True, "ncmec_report_id": int(ncmec_report_id)},
            )
        return SUBMITTED

    def resubmit(self, report_id: int) -> int:
        """A new draft with the same XML and files (after a retraction or expiry)."""
        with self.engine.connect() as conn:
            row = self._row(conn, report_id)
        if row.state not in (RETRACTED, EXPIRED):
            raise ReportError(
                f"report {report_id} is {row.state}; only retracted or expired reports "
                "are resubmitted",
                "invalid_state",
            )
        return self.create_from_xml(
            row.report_xml.encode(),
            [f.info for f in self.files(report_id)],
            case_id=row.case_id,
            created_by=self.actor,
            environment=row.environment,
            supersedes_id=report_id,
        )

    def tick(self, now: dt.datetime | None = None) -> TickResult:
        """One pass of the scheduler over every unfinished report (see module docs)."""
        now = now or self.clock()
        result = TickResult()
        with self._tx() as conn:
            stale = conn.execute(
                sa.select(reports.c.id).where(
                    reports.c.state == SUBMITTING,
                    reports.c.submit_started_at < now - self.stale_submit,
                )
            ).scalars()
            for rid in list(stale):
                self._move(
                    conn,
                    rid,
                    (SUBMITTING,),
                    SUBMIT_UNKNOWN,
                    last_error="submit interrupted; the outcome is unknown",
                )
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(reports.c.id, reports.c.state, reports.c.expires_at)
                .where(reports.c.state.in_([*OPEN_STATES, SUBMIT_UNKNOWN]))
                .order_by(reports.c.expires_at)
            ).all()
        for r in rows:
            if r.state == SUBMIT_UNKNOWN:
                result.needs_attention.append(r.id)
                continue
            if now >= r.expires_at:
                err = ReportError(
                    "NCMEC's deadline passed before the report was finished", "expired"
                )
                try:
                    self._mark_expired(r.id, err)
                    result.expired.append(r.id)
                except ReportError as e:
                    result.errors[r.id] = e.code
                continue
            try:
                state = self.advance(r.id)
            except ReportError as e:
                result.errors[r.id] = e.code
                state = None
            if state == FINISHED:
                result.finished.append(r.id)
                continue
            if state == EXPIRED:
                result.expired.append(r.id)
                continue
            with self.engine.connect() as conn:
                row = self._row(conn, r.id)
            if row.state not in OPEN_STATES:
                continue
            result.advanced.append(r.id)
            if row.expires_at - now <= self.retract_margin:
                try:
                    self.retract(r.id, reason="expiry")
                    result.retracted.append(r.id)
                    result.advanced.remove(r.id)
                except ReportError as e:
                    result.errors[r.id] = e.code
        return result

    # -- default file source ------------------------------------------------------------

    def _evidence_loader(self, f: FileRecord) -> bytes | None:
        """Bytes from the encrypted evidence store (``blob_id``), if it is available."""
        if f.blob_id is None:
            return None
        from ..evidence import EvidenceStore, load_master_key

        store = EvidenceStore(self.engine, load_master_key())
        data, _media_type = store.get(f.blob_id, actor=self.actor)
        return data


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in d.items()}
