"""Report state machine: draft -> ... -> finished | retracted | expired, on real databases.

A shared, injectable clock drives both the manager and the local NCMEC server, so
NCMEC's expiry (24 h after opening, 1 h after the last change, whichever is later)
is tested without waiting.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from cybertip_server import CyberTipServer

from sentinelle.reports import lifecycle as lc
from sentinelle.reports.builder import (
    INCIDENT_CHILD_PORNOGRAPHY,
    Email,
    FileInput,
    IncidentSummary,
    IpCaptureEvent,
    Person,
    ReportedPerson,
    Reporter,
    ReportInput,
    annotations_for_verdict,
)
from sentinelle.reports.client import CyberTipConfig, CyberTiplineClient
from sentinelle.reports.errors import ReportError
from sentinelle.reports.tables import report_requests
from sentinelle.reports.xsd import load_schema
from sentinelle.store.db import open_engine

USER, PASSWORD = "esp-user", "esp-secret"
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += dt.timedelta(**kw)


@pytest.fixture(scope="module")
def server(shared: Path):  # type: ignore[no-untyped-def]
    with CyberTipServer(
        shared / "schemas/cyber_tipline.xsd", username=USER, password=PASSWORD
    ) as s:
        yield s


@pytest.fixture(scope="module")
def schema(shared: Path):  # type: ignore[no-untyped-def]
    return load_schema(shared / "schemas/cyber_tipline.xsd")


@pytest.fixture()
def clock(server: CyberTipServer) -> Clock:
    c = Clock()
    server.clock = c
    return c


@pytest.fixture(scope="module")
def photos(shared: Path) -> dict[str, bytes]:
    """Benign Kodak photos standing in for reported files, by SHA-256."""
    files = sorted((shared / "corpora/photos/kodak24").glob("*.png"))[:2]
    return {hashlib.sha256(p.read_bytes()).hexdigest(): p.read_bytes() for p in files}


def manager(engine, server, schema, clock, photos=None, **kw):  # type: ignore[no-untyped-def]
    client = CyberTiplineClient(
        CyberTipConfig(base_url=server.url, username=USER, password=PASSWORD, timeout_s=5),
        sleep=lambda s: None,
    )
    store = photos or {}
    kw.setdefault("finish_hooks", [])
    return lc.ReportManager(
        engine,
        client,
        schema=schema,
        clock=clock,
        loader=lambda f: store.get(f.sha256),
        actor="user:legal1",
        **kw,
    )


def report_input(
    photos: dict[str, bytes] | None = None, verdict: str = "ai_generated"
) -> ReportInput:
    files = tuple(
        FileInput.from_bytes(
            data,
            file_name=f"upload-{i}.png",
            media_type="image/png",
            uploaded_to_esp_timestamp=T0,
            file_viewed_by_esp=True,
            industry_classification="A1",
            annotations=annotations_for_verdict(verdict if i == 0 else None),
            ip_capture_event=IpCaptureEvent("192.0.2.1", "Upload", T0),
        )
        for i, data in enumerate((photos or {}).values())
    )
    return ReportInput(
        IncidentSummary(INCIDENT_CHILD_PORNOGRAPHY, T0, platform="Example"),
        Reporter(Person("A", "B", emails=(Email("safety@example.org"),))),
        reported_people=(ReportedPerson(esp_identifier="acct-7"),),
        files=files,
    )


def audit_actions(engine) -> list[str]:  # type: ignore[no-untyped-def]
    from sentinelle.audit import list_events

    return [e.action for e in list_events(engine)]


def test_expiry_rule() -> None:
    opened = T0
    assert lc.expires_at(opened, opened) == T0 + dt.timedelta(hours=24)
    late_change = T0 + dt.timedelta(hours=23, minutes=30)
    assert lc.expires_at(opened, late_change) == late_change + dt.timedelta(hours=1)


def test_full_lifecycle_with_receipt_audit_and_hook(db_url, server, schema, clock, photos) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(db_url)
    finished = []
    m = manager(
        engine, server, schema, clock, photos, finish_hooks=[lambda e, d: finished.append(d)]
    )
    rid = m.create(report_input(photos), case_id=11)
    assert m.get(rid)["state"] == lc.DRAFT
    assert m.validate(rid) == [] and m.get(rid)["state"] == lc.VALIDATED
    ncmec_id = m.submit(rid)
    info = m.get(rid)
    assert info["state"] == lc.SUBMITTED and info["ncmec_report_id"] == ncmec_id
    assert info["expires_at"] == (T0 + dt.timedelta(hours=24)).isoformat()
    clock.advance(minutes=5)
    assert m.advance(rid) == lc.FINISHED
    info = m.get(rid)
    assert [f["state"] for f in info["files"]] == ["described", "described"]
    assert info["receipt"]["ncmec_report_id"] == ncmec_id
    assert sorted(info["receipt"]["file_ids"]) == sorted(server.reports[ncmec_id].files)
    assert [r["endpoint"] for r in info["requests"]] == [
        "submit",
        "upload",
        "upload",
        "fileinfo",
        "fileinfo",
        "finish",
    ]
    assert all(r["status"] == "ok" for r in info["requests"])
    # What NCMEC holds: the hashes of the bytes as received, and the AI annotation.
    srv = server.reports[ncmec_id]
    assert srv.status == "finished"
    details = b"".join(f.details or b"" for f in srv.files.values())
    for sha in photos:
        assert sha.encode() in details
    assert details.count(b"<generativeAi>true</generativeAi>") == 1
    assert finished and finished[0].case_id == 11 and finished[0].ncmec_report_id == ncmec_id
    actions = audit_actions(engine)
    assert "report.submit" in actions and "report.finish" in actions
    from sentinelle.audit import verify_chain

    assert verify_chain(engine).ok


def test_never_submits_twice(db_url, server, schema, clock) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(db_url)
    m = manager(engine, server, schema, clock)
    rid = m.create(report_input())
    m.validate(rid)
    before = server.count("submit")
    m.submit(rid)
    with pytest.raises(ReportError) as e:
        m.submit(rid)
    assert e.value.code == "invalid_state"
    assert server.count("submit") == before + 1


def test_lost_submit_answer_waits_for_a_person(db_url, server, schema, clock) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(db_url)
    m = manager(engine, server, schema, clock)
    rid = m.create(report_input())
    m.validate(rid)
    server.fail_next("submit", "lost")
    n = len(server.reports)
    with pytest.raises(ReportError) as e:
        m.submit(rid)
    assert e.value.code == "ambiguous_outcome"
    assert m.get(rid)["state"] == lc.SUBMIT_UNKNOWN
    assert m.get(rid)["requests"][-1]["status"] == "unknown"
    assert m.tick().needs_attention == [rid]
    with pytest.raises(ReportError):
        m.submit(rid)  # not from submit_unknown
    assert len(server.reports) == n + 1
    # A person found the id NCMEC assigned (out of band): the report goes on.
    opened = max(server.reports)
    assert m.resolve_unknown(rid, ncmec_report_id=opened) == lc.SUBMITTED
    assert m.advance(rid) == lc.FINISHED
    assert server.reports[opened].status == "finished"


def test_rejected_submit_returns_to_validated(db_url, server, schema, clock) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(db_url)
    m = manager(engine, server, schema, clock)
    rid = m.create(report_input())
    m.validate(rid)
    server.fail_next("submit", "server_error", 10)
    with pytest.raises(ReportError) as e:
        m.submit(rid)
    assert e.value.code == "transient"
    info = m.get(rid)
    assert info["state"] == lc.VALIDATED and "transient" in info["last_error"]
    server._faults.clear()
    m.submit(rid)
    assert m.get(rid)["state"] == lc.SUBMITTED


def test_invalid_draft_stays_draft_with_issues(db_url, server, schema, clock) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(db_url)
    m = manager(engine, server, schema, clock)
    rid = m.create_from_xml(b"<report><additionalInfo>x</additionalInfo></report>")
    issues = m.validate(rid)
    assert issues and "incidentSummary" in issues[0].message
    assert m.get(rid)["state"] == lc.DRAFT
    with pytest.raises(ReportError) as e:
        m.run(rid)
    assert e.value.code == "invalid_report" and e.value.issues
    assert server.count("submit") == sum(1 for c in server.calls if c[0] == "submit")


def test_transient_fileinfo_failure_is_retried_and_journaled(
    db_url, server, schema, clock, photos
) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(db_url)
    m = manager(engine, server, schema, clock, photos)
    rid = m.create(report_input(photos))
    server.fail_next("fileinfo", "server_error", 1)
    assert m.run(rid) == lc.FINISHED
    with engine.connect() as conn:
        attempts = (
            conn.execute(
                sa.select(report_requests.c.attempts)
                .where(report_requests.c.report_id == rid, report_requests.c.endpoint == "fileinfo")
                .order_by(report_requests.c.id)
            )
            .scalars()
            .all()
        )
    assert attempts == [2, 1]


def test_lost_finish_answer_still_counts_as_finished(db_url, server, schema, clock) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(db_url)
    m = manager(engine, server, schema, clock)
    rid = m.create(report_input())
    m.validate(rid)
    m.submit(rid)
    server.fail_next("finish", "lost")
    assert m.advance(rid) == lc.FINISHED
    info = m.get(rid)
    assert info["receipt"] is not None and "already finished" in info["last_error"]


def test_tick_finishes_complete_reports(db_url, server, schema, clock, photos) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(db_url)
    m = manager(engine, server, schema, clock, photos)
    rid = m.create(report_input(photos))
    m.validate(rid)
    m.submit(rid)
    clock.advance(minutes=1)
    result = m.tick()
    assert result.finished == [rid]
    assert m.get(rid)["state"] == lc.FINISHED


def test_tick_retracts_before_expiry(db_url, server, schema, clock, photos) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(db_url)
    m = manager(engine, server, schema, clock, photos={})  # file bytes unavailable
    rid = m.create(report_input(photos))
    m.validate(rid)
    ncmec_id = m.submit(rid)
    clock.advance(hours=1)
    r1 = m.tick()
    assert r1.errors == {rid: "missing_file"} and r1.advanced == [rid]
    assert m.get(rid)["state"] == lc.SUBMITTED
    clock.advance(hours=22, minutes=51)  # 9 minutes before NCMEC deletes it
    r2 = m.tick()
    assert r2.retracted == [rid]
    info = m.get(rid)
    assert info["state"] == lc.RETRACTED and info["retract_reason"] == "expiry"
    assert server.reports[ncmec_id].status == "retracted"
    assert "report.retract" in audit_actions(engine)
    # The duty to report remains: a fresh draft with the same content.
    new = m.resubmit(rid)
    assert m.get(new)["state"] == lc.DRAFT and m.get(new)["supersedes_id"] == rid
    assert m.xml(new) == m.xml(rid) and len(m.files(new)) == 2


def test_file_activity_extends_the_deadline(db_url, server, schema, clock, photos) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(db_url)
    m = manager(engine, server, schema, clock, photos)
    rid = m.create(report_input(photos))
    m.validate(rid)
    m.submit(rid)
    clock.advance(hours=23, minutes=40)
    m.upload_files(rid)
    assert m.get(rid)["expires_at"] == (clock.now + dt.timedelta(hours=1)).isoformat()
    clock.advance(minutes=30)  # past 24 h after opening, within 1 h of the last change
    assert m.advance(rid) == lc.FINISHED


def test_deadline_passed_means_expired_without_calls(db_url, server, schema, clock) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(db_url)
    m = manager(engine, server, schema, clock)
    rid = m.create(report_input())
    m.validate(rid)
    ncmec_id = m.submit(rid)
    clock.advance(hours=25)
    calls = len(server.calls)
    assert m.tick().expired == [rid]
    assert len(server.calls) == calls
    assert m.get(rid)["state"] == lc.EXPIRED
    with pytest.raises(ReportError) as e:
        m.retract(rid)
    assert e.value.code == "invalid_state"
    # NCMEC agrees: the report no longer exists there.
    with pytest.raises(ReportError) as e:
        m.client.finish(ncmec_id)  # type: ignore[union-attr]
    assert e.value.code == "report_not_found"


def test_interrupted_submit_becomes_unknown(db_url, server, schema, clock) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(db_url)
    m = manager(engine, server, schema, clock)
    rid = m.create(report_input())
    m.validate(rid)
    with engine.begin() as conn:  # a worker died between the state change and the answer
        conn.execute(
            sa.update(lc.reports)
            .where(lc.reports.c.id == rid)
            .values(state=lc.SUBMITTING, submit_started_at=clock.now)
        )
    assert m.tick().needs_attention == []
    clock.advance(minutes=20)
    assert m.tick().needs_attention == [rid]
    assert m.resolve_unknown(rid) == lc.VALIDATED


def test_missing_or_altered_file_bytes_are_refused(db_url, server, schema, clock, photos) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(db_url)
    altered = {sha: data + b"!" for sha, data in photos.items()}
    m = manager(engine, server, schema, clock, altered)
    rid = m.create(report_input(photos))
    m.validate(rid)
    m.submit(rid)
    before = server.count("upload")
    with pytest.raises(ReportError) as e:
        m.advance(rid)
    assert e.value.code == "missing_file" and server.count("upload") == before
    assert "SHA256" in m.get(rid)["last_error"]


def test_unknown_report_and_manual_retract(db_url, server, schema, clock) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(db_url)
    m = manager(engine, server, schema, clock)
    with pytest.raises(ReportError) as e:
        m.get(12345)
    assert e.value.code == "unknown_report"
    rid = m.create(report_input())
    m.validate(rid)
    ncmec_id = m.submit(rid)
    m.retract(rid, reason="reviewer error")
    assert server.reports[ncmec_id].status == "retracted"
    assert m.get(rid)["state"] == lc.RETRACTED
    assert [r["id"] for r in m.list([lc.RETRACTED])] == [rid]


def test_draft_from_a_reviewed_case_is_valid_and_reaches_a_hold(
    db_url, server, schema, clock, photos
) -> None:  # type: ignore[no-untyped-def]
    """Case (benign bank match + AI provenance) -> confirm A1 -> draft -> finished -> hold."""
    from sentinelle.reports.drafts import create_draft
    from sentinelle.review import accounts, decisions
    from sentinelle.review.intake import record_signal

    engine = open_engine(db_url)
    sha, data = next(iter(photos.items()))
    occurred = T0 - dt.timedelta(hours=2)
    case_id, item_id = record_signal(
        engine,
        account_id="acct-99",
        kind="hash_match",
        summary={
            "bank": "demo",
            "entry_id": 1,
            "distance": 4,
            "signal_type": "pdq",
            "hash": "f" * 64,
        },
        media_sha256=sha,
        occurred_at=occurred,
    )
    record_signal(
        engine,
        account_id="acct-99",
        kind="provenance",
        summary={"verdict": "ai_generated", "confidence": 0.9},
        media_sha256=sha,
    )
    reviewer = accounts.create_user(engine, "rev1", "a-long-enough-passphrase", "specialist")
    decisions.decide(engine, item_id, reviewer, verdict="confirm", category="A1")
    # fileViewedByEsp comes from the audited reveal only (console: tests in
    # test_review_integration.py); record the reveal the console would write.
    from sentinelle.audit import record_event

    record_event(engine, actor="user:rev1", action="media.reveal", target=f"item:{item_id}")

    rid = create_draft(
        engine,
        case_id,
        reporter=Reporter(Person("A", "B", emails=(Email("safety@example.org"),))),
        platform="Example",
        file_bytes={sha: data},
        actor="user:legal1",
    )
    m = manager(engine, server, schema, clock, photos, finish_hooks=[lc.preservation_hook])
    info = m.get(rid)
    assert info["case_id"] == case_id and info["state"] == lc.DRAFT and len(info["files"]) == 1
    (f,) = m.files(rid)
    assert f.info.industry_classification == "A1" and f.info.file_viewed_by_esp is True
    assert "generativeAi" in f.info.annotations
    assert f.info.hash("MD5") == hashlib.md5(data).hexdigest()
    assert b"<espIdentifier>acct-99</espIdentifier>" in m.xml(rid)
    assert m.validate(rid) == []
    assert m.run(rid) == lc.FINISHED
    from sentinelle.evidence.tables import preservation_holds

    with engine.connect() as conn:
        hold = conn.execute(
            sa.select(preservation_holds).where(preservation_holds.c.report_id == rid)
        ).one()
    assert hold.case_id == case_id and hold.jurisdiction == "US"


def test_case_without_confirmed_media_has_nothing_to_report() -> None:
    from sentinelle.reports.drafts import case_report_input

    reporter = Reporter(Person(emails=(Email("a@example.org"),)))
    case = {
        "id": 1,
        "account_id": "a",
        "items": [
            {
                "id": 1,
                "kind": "hash_match",
                "status": "rejected",
                "media_sha256": "0" * 64,
                "occurred_at": T0,
            },
        ],
    }
    with pytest.raises(ReportError) as e:
        case_report_input(case, reporter=reporter)
    assert e.value.code == "nothing_to_report"


def test_cli_validate_submit_status_tick(
    db_url, tmp_path, server, shared, photos, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from sentinelle.cli.main import app

    server.clock = lc.utcnow
    db = db_url
    paths = []
    for i, data in enumerate(photos.values()):
        p = tmp_path / f"f{i}.png"
        p.write_bytes(data)
        paths.append(p)
    engine = open_engine(db)
    rid = lc.ReportManager(engine).create(report_input(photos))
    env = {
        "SENTINELLE_DATABASE_URL": db,
        "SENTINELLE_CYBERTIP_URL": server.url,
        "SENTINELLE_CYBERTIP_USERNAME": USER,
        "SENTINELLE_CYBERTIP_PASSWORD": PASSWORD,
        "SENTINELLE_CYBERTIP_XSD_CACHE": str(tmp_path / "xsd-cache.xsd"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("SENTINELLE_CYBERTIP_XSD", raising=False)
    runner = CliRunner()
    r = runner.invoke(app, ["report", "validate", str(rid), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["valid"] is True
    assert (tmp_path / "xsd-cache.xsd").is_file()  # fetched from /xsd and cached
    r = runner.invoke(app, ["report", "submit", str(rid)])  # no file bytes available
    assert r.exit_code == 1 and "missing_file" in r.output
    r = runner.invoke(app, ["report", "tick", *sum((["--file", str(p)] for p in paths), [])])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["finished"] == [rid]
    r = runner.invoke(app, ["report", "status", str(rid)])
    assert json.loads(r.stdout)["state"] == "finished"
    r = runner.invoke(app, ["report", "retract", str(rid)])
    assert r.exit_code == 1 and "invalid_state" in r.output
    r = runner.invoke(app, ["report", "status", "999"])
    assert r.exit_code == 1 and "unknown_report" in r.output
    monkeypatch.setenv("SENTINELLE_CYBERTIP_ENV", "production")
    r = runner.invoke(app, ["report", "ping"])
    assert r.exit_code == 0 and "production" in r.output  # explicit env + credentials
    monkeypatch.delenv("SENTINELLE_CYBERTIP_USERNAME")
    r = runner.invoke(app, ["report", "ping"])
    assert r.exit_code == 1 and "production_not_configured" in r.output
