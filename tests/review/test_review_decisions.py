"""Decisions, second review, webhooks, report drafts, false-positive statistics,
console settings and reviewer exposure (issue 6). Real databases, a real HTTP
webhook receiver."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from sentinelle.actions import config as action_config
from sentinelle.actions import webhooks
from sentinelle.jobs import queue, worker
from sentinelle.review import accounts, cases, decisions, exposure
from sentinelle.review.config import get_config, set_config
from sentinelle.review.errors import ReviewError
from sentinelle.review.intake import record_signal
from sentinelle.service.settings import Settings
from sentinelle.service.state import build_state

PW = "correct horse battery"
SECRET = "decision-hook-secret-" + "z" * 16


@pytest.fixture()
def state(db_url: str):
    st = build_state(Settings(database_url=db_url))
    yield st
    st.close()


@pytest.fixture()
def people(state):  # type: ignore[no-untyped-def]
    e = state.engine
    return {
        role: accounts.create_user(e, name, PW, role)
        for name, role in [
            ("rita", "reviewer"),
            ("sam", "specialist"),
            ("lea", "legal"),
            ("ada", "admin"),
        ]
    } | {"reviewer2": accounts.create_user(e, "rob", PW, "reviewer")}


def _hit(
    engine, account: str = "acct", bank: str = "ncmec", entry: int = 1, sha: str | None = None
) -> tuple[int, int]:
    return record_signal(
        engine,
        account_id=account,
        kind="hash_match",
        media_sha256=sha,
        summary={
            "bank": bank,
            "entry_id": entry,
            "distance": 8,
            "signal_type": "pdq",
            "hash": "0" * 64,
        },
    )


def test_confirm_and_reject_close_the_case_and_feed_fp_stats(state, people) -> None:  # type: ignore[no-untyped-def]
    e, rev = state.engine, people["reviewer"]
    cid, i1 = _hit(e, entry=1)
    _, i2 = _hit(e, entry=2)
    _, i3 = record_signal(e, account_id="acct", kind="guard_block", summary={"policy_id": "p"})

    with pytest.raises(ReviewError) as ei:
        decisions.decide(e, i1, rev, verdict="confirm")  # no category
    assert ei.value.code == "bad_category" and ei.value.status == 422
    for kwargs, code in [
        ({"verdict": "maybe"}, "bad_verdict"),
        ({"verdict": "confirm", "category": "<script>"}, "bad_category"),
        ({"verdict": "confirm", "category": "x" * 65}, "bad_category"),
        ({"verdict": "reject", "notes": "n" * 20_000}, "bad_notes"),
    ]:
        with pytest.raises(ReviewError) as ei:
            decisions.decide(e, i1, rev, **kwargs)
        assert ei.value.code == code
    with pytest.raises(ReviewError) as ei:
        decisions.decide(e, i1, people["legal"], verdict="reject")
    assert ei.value.code == "forbidden"
    with pytest.raises(ReviewError) as ei:
        decisions.decide(e, 999_999, rev, verdict="reject")
    assert ei.value.code == "unknown_item"

    r1 = decisions.decide(e, i1, rev, verdict="confirm", category="a1", notes="clear match")
    assert (r1.decision.state, r1.decision.category, r1.decision.reviewer) == (
        "final",
        "A1",
        "rita",
    )
    assert r1.case_status == "assigned"  # items left; the decider took the case
    with pytest.raises(ReviewError) as ei:  # someone else holds it now
        decisions.decide(e, i2, people["reviewer2"], verdict="reject")
    assert ei.value.code == "not_assigned"
    with pytest.raises(ReviewError) as ei:
        decisions.decide(e, i1, rev, verdict="reject")
    assert ei.value.code == "already_decided" and ei.value.status == 409
    decisions.decide(e, i2, rev, verdict="reject", notes="a landscape")
    r3 = decisions.decide(e, i3, rev, verdict="confirm", category="sextortion: prompt")
    assert r3.decision.category == "sextortion: prompt" and r3.case_status == "closed"

    view = cases.load_case(e, cid)
    assert [i.status for i in view.items] == ["confirmed", "rejected", "confirmed"]
    assert view.case.closed_at is not None
    # the next signal for the account opens a new case
    new_cid, _ = _hit(e, entry=1)
    assert new_cid != cid

    # the same entry rejected in two more cases -> top of the false-positive list
    for acct in ("b", "c"):
        _, item = _hit(e, account=acct, entry=2)
        decisions.decide(e, item, rev, verdict="reject")
    stats = decisions.false_positive_stats(e)
    assert [(s.bank, s.entry_id, s.rejections, s.confirmations) for s in stats] == [
        ("ncmec", 2, 3, 0)
    ]
    assert stats[0].false_positive_rate == 1.0 and stats[0].last_rejected_at is not None
    _, item = _hit(e, account="d", entry=1)
    decisions.decide(e, item, rev, verdict="reject")
    all_stats = {s.entry_id: s for s in decisions.false_positive_stats(e, bank="ncmec")}
    assert all_stats[1].to_dict()["false_positive_rate"] == 0.5  # 1 confirm, 1 reject
    assert decisions.false_positive_stats(e, bank="other") == []
    assert [s.entry_id for s in decisions.false_positive_stats(e, min_rejections=2)] == [2]


def test_second_review_approve_return_and_recategorize(state, people) -> None:  # type: ignore[no-untyped-def]
    e, rev, spec = state.engine, people["reviewer"], people["specialist"]
    with pytest.raises(ReviewError):
        set_config(e, "second_review", "perhaps", actor="user:ada")
    with pytest.raises(ReviewError):
        set_config(e, "no_such_key", 1, actor="user:ada")
    set_config(e, "second_review", True, actor="user:ada")
    assert get_config(e)["second_review"] is True

    cid, i1 = _hit(e, entry=5)
    r = decisions.decide(e, i1, rev, verdict="confirm", category="B1")
    assert r.decision.state == "pending" and r.case_status == "awaiting_approval"
    assert r.webhooks_queued == 0 and r.report_draft_id is None  # nothing until approved
    assert decisions.false_positive_stats(e, min_rejections=0) == []
    assert [d.id for d in decisions.pending_approvals(e)] == [r.decision.id]
    with pytest.raises(ReviewError) as ei:
        decisions.decide(e, i1, rev, verdict="reject")
    assert ei.value.code == "awaiting_approval"
    with pytest.raises(ReviewError) as ei:
        decisions.approve(e, r.decision.id, rev)  # reviewers cannot approve
    assert ei.value.code == "forbidden"

    # a specialist's own decision needs someone else
    _, i2 = _hit(e, account="other", entry=6)
    own = decisions.decide(e, i2, spec, verdict="reject")
    with pytest.raises(ReviewError) as ei:
        decisions.approve(e, own.decision.id, spec)
    assert ei.value.code == "self_approval"

    # returned: the item is pending again and can be decided afresh
    back = decisions.approve(e, r.decision.id, spec, accept=False, notes="look again")
    assert back.decision.state == "returned" and back.case_status == "assigned"
    with pytest.raises(ReviewError) as ei:
        decisions.approve(e, r.decision.id, spec)
    assert ei.value.code == "not_pending"
    r = decisions.decide(e, i1, rev, verdict="confirm", category="B1")
    ok = decisions.approve(e, r.decision.id, spec, category="A1", notes="younger than noted")
    assert (ok.decision.state, ok.decision.category, ok.decision.approver) == (
        "final",
        "A1",
        "sam",
    )
    assert ok.case_status == "closed"
    stats = decisions.false_positive_stats(e, min_rejections=0)
    assert [(s.entry_id, s.confirmations) for s in stats] == [(5, 1)]

    with pytest.raises(ReviewError) as ei:
        decisions.recategorize(e, ok.decision.id, rev, "B2")
    assert ei.value.code == "forbidden"
    d = decisions.recategorize(e, ok.decision.id, spec, "b2")
    assert d.category == "B2"
    view = cases.load_case(e, cid)
    assert [x.state for x in view.items[0].decisions] == ["returned", "final"]

    from sentinelle.audit import list_events, verify_chain

    actions = {ev.action for ev in list_events(e, limit=500)}
    assert {
        "decision.create",
        "decision.approve",
        "decision.recategorize",
        "config.change",
    } <= actions
    assert verify_chain(e).ok


class _Receiver:
    """A real local HTTP server that checks signatures like a customer would."""

    def __init__(self) -> None:
        self.events: list[tuple[bool, dict]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = webhooks.verify_signature(
                    SECRET,
                    self.headers.get("X-Sentinelle-Timestamp", ""),
                    body,
                    self.headers.get("X-Sentinelle-Signature", ""),
                )
                outer.events.append((ok, json.loads(body)))
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):  # type: ignore[no-untyped-def]
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_final_decisions_trigger_bank_webhooks(state, people) -> None:  # type: ignore[no-untyped-def]
    e, rev = state.engine, people["reviewer"]
    state.store.create_bank("ncmec")
    recv = _Receiver()
    try:
        action_config.set_actions(e, "ncmec", webhook_urls=[recv.url], webhook_secret=SECRET)
        _, item = _hit(e, entry=11)
        res = decisions.decide(e, item, rev, verdict="reject", notes="private notes")
        assert res.webhooks_queued == 1 and res.errors == []
        (job,) = queue.list_jobs(e, kind="webhook")
        worker.run_until_idle(state, [webhooks.JOB_KIND])
        assert queue.get_job(e, job.id).status == "done"  # type: ignore[union-attr]
        ((valid, event),) = recv.events
        assert valid and event["type"] == "decision" and event["bank"] == "ncmec"
        assert event["decision"] == {
            "id": res.decision.id,
            "case_id": res.decision.case_id,
            "item_id": item,
            "verdict": "reject",
            "category": None,
            "entry_id": 11,
            "signal": "hash_match",
        }
        assert "private notes" not in json.dumps(event)  # notes stay in the console
        # a bank without webhooks and a non-match item queue nothing
        _, other = _hit(e, account="x", bank="no-hooks", entry=3)
        assert decisions.decide(e, other, rev, verdict="reject").webhooks_queued == 0
    finally:
        recv.close()


def test_first_confirmation_opens_a_report_draft(state, people, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("sentinelle.reports.drafts")
    from sentinelle.reports.tables import reports

    e, rev = state.engine, people["reviewer"]
    # no reporter configured: the decision stands, the draft error is reported
    monkeypatch.delenv("SENTINELLE_REPORTER_EMAIL", raising=False)
    cid0, i0 = _hit(e, account="first", entry=20, sha="01" * 32)
    r0 = decisions.decide(e, i0, rev, verdict="confirm", category="A1")
    assert r0.report_draft_id is None and r0.errors and "no_reporter" in r0.errors[0]
    assert r0.decision.state == "final" and r0.case_status == "closed"

    monkeypatch.setenv("SENTINELLE_REPORTER_EMAIL", "safety@example.org")
    cid, i_nomedia = _hit(e, entry=23)
    _, i1 = _hit(e, entry=21, sha="02" * 32)
    _, i2 = _hit(e, entry=22, sha="03" * 32)
    r = decisions.decide(e, i_nomedia, rev, verdict="confirm", category="A1")
    assert r.report_draft_id is None and r.errors == []  # nothing to report without media
    r1 = decisions.decide(e, i1, rev, verdict="confirm", category="A1")
    r2 = decisions.decide(e, i2, rev, verdict="confirm", category="A2")
    assert isinstance(r1.report_draft_id, int), r1.errors
    assert r2.report_draft_id is None and r2.errors == []  # one draft per case, not per item
    with e.connect() as c:
        n = c.execute(sa.select(sa.func.count()).select_from(reports)).scalar()
    assert n == 1


# ------------------------------------------------------------------ exposure
def test_exposure_cap_breaks_and_settings(state, people) -> None:  # type: ignore[no-untyped-def]
    e, rev = state.engine, people["reviewer"]
    s = exposure.get_settings(e, rev.id)
    assert (s.blur_level, s.grayscale, s.mute_audio) == (24, True, True)  # protective defaults
    s = exposure.update_settings(
        e, rev.id, blur_level=40, grayscale=False, daily_cap=5, break_after_items=3
    )
    assert (s.blur_level, s.grayscale, s.daily_cap) == (40, False, 5)
    for bad in (
        {"blur_level": 101},
        {"grayscale": "yes"},
        {"daily_cap": -1},
        {"colour": 1},
        {"break_after_minutes": True},
    ):
        with pytest.raises(ReviewError) as ei:
            exposure.update_settings(e, rev.id, **bad)
        assert ei.value.code == "bad_setting"

    t0 = datetime(2024, 7, 1, 9, tzinfo=UTC)
    st = exposure.record_exposure(e, rev.id, viewed=2, now=t0)
    assert (st.items_viewed, st.cap, st.remaining, st.break_due) == (2, 5, 3, False)
    st = exposure.record_exposure(e, rev.id, viewed=1, revealed=1, now=t0 + timedelta(minutes=5))
    assert st.break_due and st.reveals == 1 and st.items_since_break == 3
    st = exposure.take_break(e, rev.id, now=t0 + timedelta(minutes=6))
    assert not st.break_due and st.items_viewed == 3
    st = exposure.record_exposure(e, rev.id, viewed=1, now=t0 + timedelta(minutes=20))
    assert not st.break_due
    # time alone makes a break due (console default 50 minutes)
    st = exposure.exposure_status(e, rev.id, now=t0 + timedelta(minutes=71))
    assert st.break_due and st.minutes_since_break >= 50
    st = exposure.record_exposure(e, rev.id, viewed=1, now=t0 + timedelta(minutes=72))
    assert st.over_cap and st.remaining == 0
    # the console cap is stricter than a user's own looser one
    set_config(e, "daily_exposure_cap", 2, actor="user:ada")
    exposure.update_settings(e, rev.id, daily_cap=50)
    assert exposure.exposure_status(e, rev.id, now=t0).cap == 2
    # a new UTC day starts from zero
    st = exposure.record_exposure(e, rev.id, viewed=1, now=t0 + timedelta(days=1))
    assert st.items_viewed == 1 and st.day == "2024-07-02" and not st.over_cap
    # check_can_view uses the real clock: today's counter
    exposure.record_exposure(e, rev.id, viewed=2)
    with pytest.raises(ReviewError) as ei:
        exposure.check_can_view(e, rev.id)
    assert ei.value.code == "exposure_cap_reached" and ei.value.status == 429
    # another reviewer is unaffected
    assert exposure.check_can_view(e, people["reviewer2"].id).items_viewed == 0
    with pytest.raises(ReviewError):
        exposure.record_exposure(e, rev.id, viewed=-1)
