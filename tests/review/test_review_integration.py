"""Issue 6 end to end: scan -> case with encrypted media and provenance -> decision ->
XSD-valid report draft -> the worker's report tick finishes it -> audit trail verifies.

Real service (``create_app``), real databases (SQLite and PostgreSQL via ``db_url``),
the local CyberTipline server (``tests/support/cybertip_server.py``) on a real socket, the real
CLI. Media: a benign Kodak photo from ``../shared`` (re-encoded copies of it); the
"AI-generated" copy is the same photo saved as PNG with generator metadata text.
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cybertip_server import CyberTipServer
from fastapi.testclient import TestClient
from lxml import etree
from PIL import Image, PngImagePlugin
from typer.testing import CliRunner

from sentinelle.evidence import EvidenceStore, load_master_key
from sentinelle.evidence.tables import evidence_blobs, preservation_holds
from sentinelle.formats.enroll import entries_from_paths
from sentinelle.jobs import worker
from sentinelle.reports import lifecycle as lc
from sentinelle.reports import scheduler
from sentinelle.reports.builder import build_file_details_xml
from sentinelle.reports.client import CyberTipConfig, CyberTiplineClient
from sentinelle.reports.tables import reports
from sentinelle.reports.xsd import load_schema, validate
from sentinelle.review import accounts, decisions
from sentinelle.review.cases import load_case
from sentinelle.review.errors import ReviewError
from sentinelle.review.filing import file_scan
from sentinelle.review.media import attach_media, preserve_media
from sentinelle.review.tables import case_items, cases
from sentinelle.service.app import create_app
from sentinelle.service.keys import create_key
from sentinelle.service.settings import Settings

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
PHOTO = SHARED / "corpora" / "photos" / "kodak24" / "kodim03.png"
OTHER = SHARED / "corpora" / "photos" / "kodak24" / "kodim05.png"
XSD = SHARED / "schemas" / "cyber_tipline.xsd"
USER, PASSWORD = "esp-user", "esp-secret"


def _jpeg(path: Path) -> bytes:
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _ai_png(path: Path) -> bytes:
    """The photo as PNG carrying generator parameters (provenance: ai_generated)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a lighthouse\nSteps: 20, Sampler: Euler a, Seed: 1, Model: sd15")
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


@dataclass
class World:
    client: TestClient
    state: Any
    engine: sa.Engine
    headers: dict[str, str]

    def scan(self, data: bytes, account_id: str | None, name: str = "up.bin") -> dict[str, Any]:
        fields = {"account_id": account_id} if account_id else {}
        r = self.client.post(
            "/v1/scan", files={"file": (name, data)}, data=fields, headers=self.headers
        )
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    monkeypatch.setenv("SENTINELLE_MASTER_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
    monkeypatch.delenv("SENTINELLE_MASTER_KEY_FILE", raising=False)
    monkeypatch.setenv("SENTINELLE_REPORTER_EMAIL", "reports@example.org")
    monkeypatch.setenv("SENTINELLE_CYBERTIP_XSD", str(XSD))
    for name in ("URL", "USERNAME", "PASSWORD", "PASSWORD_FILE", "ENV", "TICK_S"):
        monkeypatch.delenv(f"SENTINELLE_CYBERTIP_{name}", raising=False)


@pytest.fixture()
def world(db_url: str, env: None) -> Iterator[World]:
    app = create_app(Settings(database_url=db_url, rate_limit=0.0), start_background=False)
    state = app.state.sentinelle
    state.store.create_bank("known", description="benign test bank")
    entries, failed = entries_from_paths([PHOTO], category="test", source_org="tests")
    assert not failed
    state.store.add_entries("known", entries)
    state.matcher.refresh()
    _, key = create_key(state.engine, "scanner", ["scan"])
    yield World(TestClient(app), state, state.engine, {"Authorization": f"Bearer {key}"})
    state.engine.dispose()


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _items(engine: sa.Engine, case_id: int) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(case_items).where(case_items.c.case_id == case_id).order_by(case_items.c.id)
        ).all()


# --------------------------------------------------------------- scan -> case
def test_matching_scan_files_encrypted_media_and_provenance(world: World) -> None:
    upload = _ai_png(PHOTO)
    body = world.scan(upload, "acct-7")
    assert body["matches"] and body["provenance"]["verdict"] == "ai_generated"
    review = body["review"]
    assert review["error"] is None and review["media_preserved"] is True
    assert review["media_error"] is None and review["provenance_item_id"] is not None
    case_id = review["case_id"]
    rows = _items(world.engine, case_id)
    match = [r for r in rows if r.kind == "hash_match"]
    prov = [r for r in rows if r.kind == "provenance"]
    assert [r.id for r in match] == review["item_ids"] and [r.id for r in prov] == [
        review["provenance_item_id"]
    ]
    sha = hashlib.sha256(upload).hexdigest()
    assert {r.media_sha256 for r in rows} == {sha}  # the bytes as received
    # media: on the match items only, encrypted under the case key
    assert all(r.media_blob_id is not None for r in match) and prov[0].media_blob_id is None
    with world.engine.connect() as conn:
        blob = conn.execute(
            sa.select(evidence_blobs).where(evidence_blobs.c.id == match[0].media_blob_id)
        ).one()
    assert blob.case_id == case_id and blob.media_type == "image/png"
    assert upload[:64] not in blob.ciphertext and upload[-64:] not in blob.ciphertext
    assert b"Steps: 20" not in blob.ciphertext  # the metadata text is not visible either
    store = EvidenceStore(world.engine, load_master_key())
    assert store.get(int(blob.id), actor="user:test") == (upload, "image/png")
    # the case view shows the verdict twice: on the match and as its own item
    view = load_case(world.engine, case_id)
    assert view.hash_matches[0].summary["provenance"]["verdict"] == "ai_generated"
    assert [p.summary["verdict"] for p in view.provenance] == ["ai_generated"]

    # the same file again joins the pending items: no new item, no second blob
    again = world.scan(upload, "acct-7")["review"]
    assert again["item_ids"] == review["item_ids"] and again["media_preserved"] is True
    assert again["provenance_item_id"] == review["provenance_item_id"]
    assert _count(world.engine, evidence_blobs) == 1 and len(_items(world.engine, case_id)) == 2


def test_no_match_means_no_case_and_no_blob(world: World) -> None:
    body = world.scan(_jpeg(OTHER), "acct-8")
    assert body["matches"] == [] and body["review"] is None
    assert _count(world.engine, cases) == 0 and _count(world.engine, evidence_blobs) == 0
    # a match without an account id files nothing either
    body = world.scan(_jpeg(PHOTO), None)
    assert body["matches"] and "review" not in body
    assert _count(world.engine, cases) == 0 and _count(world.engine, evidence_blobs) == 0


def test_without_master_key_items_are_filed_without_media(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENTINELLE_MASTER_KEY")
    upload = _jpeg(PHOTO)
    review = world.scan(upload, "acct-9")["review"]
    assert review["error"] is None and review["case_id"] is not None
    assert review["media_preserved"] is False and review["media_error"] == "no_master_key"
    assert review["provenance_item_id"] is None  # a JPEG copy: no_evidence, no extra item
    (row,) = _items(world.engine, review["case_id"])
    assert row.media_blob_id is None and row.media_sha256 == hashlib.sha256(upload).hexdigest()
    assert _count(world.engine, evidence_blobs) == 0


def test_bad_master_key_is_reported_not_raised(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTINELLE_MASTER_KEY", "not base64 !!")
    review = world.scan(_jpeg(PHOTO), "acct-10")["review"]
    assert review["case_id"] is not None and review["media_preserved"] is False
    assert review["media_error"] == "bad_master_key"


# --------------------------------------------------------------- attach rules
def test_attach_media_rules(world: World) -> None:
    body = world.scan(_jpeg(PHOTO), "acct-11")["review"]
    (item,) = body["item_ids"]
    other = world.scan(_ai_png(PHOTO), "acct-12")["review"]
    store = EvidenceStore(world.engine, load_master_key())
    with world.engine.connect() as conn:
        mine = conn.execute(
            sa.select(case_items.c.media_blob_id).where(case_items.c.id == item)
        ).scalar_one()
    assert attach_media(world.engine, item, mine) is False  # same blob again: no-op

    def code(fn: Any, *a: Any, **kw: Any) -> str:
        with pytest.raises(ReviewError) as e:
            fn(*a, **kw)
        return e.value.code

    foreign = store.put(other["case_id"], b"\x00x", media_type="image/png", actor="system")
    assert code(attach_media, world.engine, item, foreign) == "bad_media_blob_id"
    second = store.put(body["case_id"], b"\x00x", media_type="image/png", actor="system")
    assert code(attach_media, world.engine, item, second) == "media_already_attached"
    assert code(attach_media, world.engine, 10_000, second) == "unknown_item"
    assert code(attach_media, world.engine, item, 10_000) == "unknown_blob"
    assert code(attach_media, world.engine, item, True) == "bad_media_blob_id"
    assert code(attach_media, world.engine, "1", second) == "bad_item_id"
    args = (world.engine, store, body["case_id"])
    assert code(preserve_media, *args, [other["item_ids"][0]], b"x", media_type="image/png") == (
        "bad_item_id"
    )
    assert preserve_media(*args, [], b"x", media_type="image/png") is None


def test_file_scan_never_raises_on_intake_failure(world: World) -> None:
    class Odd:  # a match whose entry id is not a number: the intake refuses it
        bank, entry_id, distance, signal, entry_hash = "known", "x", 0, "pdq", "0" * 64

    out = file_scan(
        world.engine, account_id="acct-13", matches=[Odd()], data=b"data", media_type=None
    )
    assert out.error == "review_intake_failed" and out.case_id is None
    assert _count(world.engine, cases) == 0 and _count(world.engine, evidence_blobs) == 0


# --------------------------------------------------------------- decision -> report
@pytest.fixture(scope="module")
def server() -> Iterator[CyberTipServer]:
    with CyberTipServer(XSD, username=USER, password=PASSWORD) as s:
        yield s


@pytest.fixture()
def tick_env(monkeypatch: pytest.MonkeyPatch, server: CyberTipServer) -> Iterator[None]:
    monkeypatch.setenv("SENTINELLE_CYBERTIP_URL", server.url)
    monkeypatch.setenv("SENTINELLE_CYBERTIP_USERNAME", USER)
    monkeypatch.setenv("SENTINELLE_CYBERTIP_PASSWORD", PASSWORD)
    yield
    with worker._registry_lock:  # leave the process-wide registry as we found it
        worker._periodic.pop(scheduler.TASK_NAME, None)


def test_confirmed_scan_becomes_a_valid_report_finished_by_the_worker_tick(
    world: World, server: CyberTipServer, tick_env: None, db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    upload = _ai_png(PHOTO)
    review = world.scan(upload, "acct-20")["review"]
    case_id = review["case_id"]
    reviewer = accounts.create_user(world.engine, "rev", "a long passphrase here", "specialist")
    res = decisions.decide(
        world.engine, review["item_ids"][0], reviewer, verdict="confirm", category="A1"
    )
    assert res.errors == [] and res.report_draft_id is not None
    rid = res.report_draft_id
    with world.engine.connect() as conn:
        row = conn.execute(sa.select(reports).where(reports.c.id == rid)).one()
    assert row.case_id == case_id and row.state == lc.DRAFT
    xml = row.report_xml.encode()
    assert validate(xml, load_schema(XSD)) == []
    root = etree.fromstring(xml)
    assert root.findtext(".//{*}espIdentifier") == "acct-20"
    (f,) = lc.ReportManager(world.engine).files(rid)  # fileDetails travel via /fileinfo
    sha = hashlib.sha256(upload).hexdigest()
    assert f.sha256 == sha and f.info.hash("SHA256") == sha and f.blob_id is not None
    assert "generativeAi" in f.info.annotations and f.info.industry_classification == "A1"
    details = build_file_details_xml(1, "file-1", f.info)
    assert validate(details, load_schema(XSD)) == []

    # a legal user submits; the job worker's periodic tick does the rest
    client = CyberTiplineClient(
        CyberTipConfig(base_url=server.url, username=USER, password=PASSWORD, timeout_s=5)
    )
    manager = lc.ReportManager(world.engine, client, schema=load_schema(XSD), actor="user:lena")
    assert manager.validate(rid) == []
    ncmec_id = manager.submit(rid)
    assert scheduler.register_periodic_task() is True
    assert worker._periodic[scheduler.TASK_NAME].interval_s == scheduler.DEFAULT_TICK_S
    worker.run_periodic(world.state, force=True)
    assert manager.get(rid)["state"] == lc.FINISHED
    stored = server.reports[ncmec_id]
    assert stored.status == "finished" and len(stored.files) == 1
    (got,) = stored.files.values()  # decrypted from the evidence store, byte for byte:
    assert (got.md5, got.size) == (hashlib.md5(upload).hexdigest(), len(upload))
    sent = etree.fromstring(got.details)  # the fileDetails NCMEC received (XSD-checked there)
    assert [(h.get("hashType"), h.text) for h in sent.iter("{*}originalFileHash")] == [
        ("SHA256", sha)
    ]
    assert list(sent.iter("{*}generativeAi")), "the AI verdict must annotate the file"
    with world.engine.connect() as conn:
        hold = conn.execute(
            sa.select(preservation_holds).where(preservation_holds.c.report_id == rid)
        ).one()
    assert hold.case_id == case_id

    # the audit trail verifies, through the CLI; one tampered row makes it fail
    from sentinelle.cli.main import app as cli

    monkeypatch.setenv("SENTINELLE_DATABASE_URL", db_url)
    run = CliRunner().invoke
    r = run(cli, ["audit", "verify", "--json"])
    assert r.exit_code == 0 and '"ok": true' in r.output, r.output
    actions = _audit_actions(world.engine)
    for a in ("evidence.store", "case.media_attach", "decision.create", "report.finish"):
        assert a in actions, a
    _tamper(world.engine, "UPDATE audit_log SET actor = 'user:mallory' WHERE action = :a",
            a="case.media_attach")  # fmt: skip
    r = run(cli, ["audit", "verify"])
    assert r.exit_code == 1 and "DAMAGED" in r.output


def _audit_actions(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT action FROM audit_log ORDER BY id")).scalars())


def _tamper(engine: sa.Engine, stmt: str, **params: Any) -> None:
    """What an attacker with schema rights would do: triggers off, then edit."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            for name in ("audit_log_no_update", "audit_log_no_delete"):
                conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {name}"))
    with engine.begin() as conn:
        assert conn.execute(sa.text(stmt), params).rowcount >= 1


# --------------------------------------------------------------- tick registration
def test_tick_is_registered_only_when_configured(
    env: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        assert scheduler.register_periodic_task() is False
        assert scheduler.TASK_NAME not in worker._periodic
        monkeypatch.setenv("SENTINELLE_CYBERTIP_URL", "http://127.0.0.1:9/ispws")
        for bad in ("abc", "1", "nan", "-60"):
            monkeypatch.setenv("SENTINELLE_CYBERTIP_TICK_S", bad)
            assert scheduler.register_periodic_task() is False
        assert "bad_config" in caplog.text
        monkeypatch.setenv("SENTINELLE_CYBERTIP_TICK_S", "30")
        monkeypatch.setenv("SENTINELLE_CYBERTIP_URL", "https://report.cybertip.org/ispws")
        assert scheduler.register_periodic_task() is False  # production host needs production
        assert "production_not_configured" in caplog.text
        monkeypatch.setenv("SENTINELLE_CYBERTIP_URL", "http://127.0.0.1:9/ispws")
        assert scheduler.register_periodic_task() is True
        assert worker._periodic[scheduler.TASK_NAME].interval_s == 30.0
    finally:
        with worker._registry_lock:
            worker._periodic.pop(scheduler.TASK_NAME, None)


def test_tick_skips_while_another_instance_holds_the_lock(
    world: World, server: CyberTipServer, tick_env: None
) -> None:
    ticker = scheduler.ReportTicker()
    assert ticker(world.state) is not None  # nothing open: an empty tick
    if world.engine.dialect.name != "postgresql":
        return  # one host: the per-process lock is exercised by the PostgreSQL half
    with world.engine.connect() as other:
        assert other.execute(scheduler._LOCK_SQL).scalar() is True
        other.commit()
        assert ticker(world.state) is None  # another instance is ticking
        other.execute(scheduler._UNLOCK_SQL)
        other.commit()
    assert ticker(world.state) is not None


# --------------------------------------------------------------- drafts mapping
@pytest.mark.parametrize(
    ("extra", "match_summary", "annotated"),
    [
        ([], {"provenance": {"verdict": "ai_edited", "confidence": 0.6}}, True),
        ([], {"provenance": {"verdict": "no_evidence"}}, False),
        ([], {"provenance": "ai_generated"}, False),  # malformed: ignored, no crash
        ([("pending", "ai_generated")], {}, True),
        ([("rejected", "ai_generated")], {}, False),  # a reviewer rejected the verdict
        ([("confirmed", "camera_signed")], {}, False),
    ],
)
def test_generative_ai_annotation_sources(
    extra: list[tuple[str, str]], match_summary: dict[str, Any], annotated: bool
) -> None:
    from sentinelle.reports.builder import Email, Person, Reporter
    from sentinelle.reports.drafts import case_report_input

    sha = "ab" * 32
    items = [
        {
            "id": 1,
            "kind": "hash_match",
            "summary": {"bank": "b", "entry_id": 1, "signal_type": "pdq", "hash": "0" * 64}
            | match_summary,
            "media_sha256": sha,
            "occurred_at": "2024-05-01T12:00:00+00:00",
            "status": "confirmed",
            "category": "B1",
        }
    ]
    for i, (status, verdict) in enumerate(extra, start=2):
        items.append(
            {
                "id": i,
                "kind": "provenance",
                "summary": {"verdict": verdict},
                "media_sha256": sha.upper(),
                "occurred_at": "2024-05-01T12:00:00+00:00",
                "status": status,
            }
        )
    report = case_report_input(
        {"id": 1, "account_id": "a", "items": items},
        reporter=Reporter(Person(emails=(Email("r@example.org"),))),
    )
    (f,) = report.files
    assert ("generativeAi" in f.annotations) is annotated


# ---------------------------------------------------- fileViewedByEsp = a real reveal
def _viewed_flags(engine: sa.Engine, case_id: int) -> list[bool | None]:
    """``fileViewedByEsp`` of every file of the case's draft (and the XML agrees)."""
    with engine.connect() as conn:
        rid, xml = conn.execute(
            sa.select(reports.c.id, reports.c.report_xml).where(reports.c.case_id == case_id)
        ).one()
    assert validate(xml.encode(), load_schema(XSD)) == []
    return [f.info.file_viewed_by_esp for f in lc.ReportManager(engine).files(rid)]


@pytest.mark.parametrize(
    ("reveal", "viewed"),
    [
        (None, False),  # decided on the blurred preview only
        ("video", False),  # another item's media was revealed, not this file
        ("match", True),  # the reviewer revealed this file, then decided
    ],
)
def test_file_viewed_by_esp_only_after_an_audited_reveal(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reveal: str | None,
    viewed: bool,
) -> None:
    """Through the console: optional reveal -> confirm -> the draft's fileViewedByEsp."""
    from console_support import PASSWORD as CONSOLE_PASSWORD
    from console_support import build_console, console_env, login_csrf, page_csrf

    console_env(monkeypatch)
    cw = build_console(db_url, tmp_path)
    try:
        with TestClient(cw.app, base_url="http://127.0.0.1") as c:
            token = login_csrf(c.get("/console/login").text)
            r = c.post(
                "/console/login",
                data={"username": "rita", "password": CONSOLE_PASSWORD, "csrf_token": token},
                follow_redirects=False,
            )  # fmt: skip
            assert r.status_code == 303, r.text
            hx = {"X-CSRF-Token": page_csrf(c.get("/console/settings").text), "HX-Request": "true"}
            if reveal is not None:
                item = cw.match_item if reveal == "match" else cw.video_item
                r = c.post(f"/console/items/{item}/reveal", headers=hx)
                assert r.status_code == 200 and 'data-state="revealed"' in r.text
            r = c.post(
                f"/console/items/{cw.match_item}/decide",
                headers=hx,
                data={"verdict": "confirm", "category": "A1"},
            )
            assert r.status_code == 200 and 'data-status="confirmed"' in r.text, r.text
        assert _viewed_flags(cw.engine, cw.case_id) == [viewed]
    finally:
        cw.engine.dispose()


def test_file_viewed_by_esp_mapping_follows_the_media_not_the_decision() -> None:
    """A reveal of any item carrying the same media marks the file; a decision alone not."""
    from sentinelle.reports.builder import Email, Person, Reporter
    from sentinelle.reports.drafts import case_report_input

    sha, other = "ab" * 32, "cd" * 32

    def item(i: int, media: str, **kw: Any) -> dict[str, Any]:
        return {"id": i, "kind": "hash_match", "summary": {}, "media_sha256": media,
                "occurred_at": "2024-05-01T12:00:00+00:00", "status": "confirmed",
                "category": "A1"} | kw  # fmt: skip

    items = [
        item(1, sha, decided=True),  # decided, never revealed
        item(2, sha.upper(), status="pending", viewed=True),  # same media, revealed
        item(3, other, decided=True, viewed="yes"),  # not a bool: not a reveal
    ]
    report = case_report_input(
        {"id": 1, "account_id": "a", "items": items},
        reporter=Reporter(Person(emails=(Email("r@example.org"),))),
    )
    assert [(f.hash("SHA256"), f.file_viewed_by_esp) for f in report.files] == [
        (sha, True),
        (other, False),
    ]
