"""NCMEC client against the local NCMEC v2 server: windows, paging, deletions, feedback, faults."""

from __future__ import annotations

import pytest
import xhelpers
from ncmec_server import Event, ListSource, NCMECServer
from xhelpers import T0, bank_hashes, no_sleep, secret_file

from sentinelle.exchanges import runner
from sentinelle.exchanges.credentials import make_ref
from sentinelle.exchanges.transport import HttpTransport


@pytest.fixture(autouse=True)
def clock(ncmec_clock):  # type: ignore[no-untyped-def]
    return ncmec_clock


def md5(i: int) -> str:
    return xhelpers.md5(i, "benign")


def pdq(i: int) -> str:
    return xhelpers.pdq(i, "benign")


def events(n: int, t0: int = T0) -> list[Event]:
    return [
        Event(t0 + i * 60 // 20, "42", f"img{i}", fingerprints={"md5": md5(i), "pdq": pdq(i)})
        for i in range(n)
    ]


def add(xstore, srv, tmp_path, name="ncmec", **cfg):  # type: ignore[no-untyped-def]
    path = secret_file(tmp_path, f"{srv.username}:{srv.password}")
    config = {"base_url": srv.url, "start_time": T0 - 10, "window_s": 3600, **cfg}
    return xstore.add(name, "ncmec", config=config, credential_ref=make_ref(file=path))


def fetch(xstore, name="ncmec", **kw):  # type: ignore[no-untyped-def]
    http = HttpTransport(sleep=no_sleep, backoff_s=0)
    try:
        return runner.run_fetch(xstore, name, http=http, sleep=no_sleep, **kw)
    finally:
        http.close()


def test_fetch_pages_windows_and_resume(xstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with NCMECServer(ListSource(events(250)), page_size=40) as srv:
        add(xstore, srv, tmp_path)
        first = fetch(xstore, max_pages=3)
        assert first.error is None and first.pages == 3 and not first.up_to_date
        # 1200 entries per one-hour window fit; 3 pages of 40
        assert first.counts.records_seen == 120 and first.counts.entries_added == 240
        info = xstore.get("ncmec")
        assert info.checkpoint["next"]  # mid-window: the link is kept with its window
        assert info.checkpoint["to"] is not None
        rest = fetch(xstore)
        assert rest.error is None and rest.up_to_date
        want = {("md5", md5(i)) for i in range(250)} | {("pdq", pdq(i)) for i in range(250)}
        assert bank_hashes(xstore, "ncmec") == want
        info = xstore.get("ncmec")
        assert info.counts["entries_added"] == 500 and info.state == "up_to_date"
        assert info.counts["unknown_types"] == 0
        again = fetch(xstore)  # nothing new: no duplicate entries
        assert again.counts.entries_added == 0
        assert len(bank_hashes(xstore, "ncmec")) == 500
        entry = next(xstore.banks.iter_entries("ncmec"))
        assert entry.source_org == "ncmec:ncmec/member 42"
        assert entry.category == "A1" and entry.external_id.startswith("42-img")


def test_updates_deletions_tombstones_and_unknown_types(xstore, tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    evs = events(5)
    evs.append(
        Event(
            T0 + 30,
            "43",
            "vid1",
            kind="video",
            fingerprints={
                "md5": md5(99),
                "videntifier": "href:/v2/vid1/videntifier",
                "pdna": "ff" * 72,
            },
        )
    )
    src = ListSource(evs)
    with NCMECServer(src, page_size=3) as srv:
        add(xstore, srv, tmp_path)
        out = fetch(xstore)
        assert out.error is None
        assert out.counts.unknown_types == 2  # large-fingerprint link and PhotoDNA
        assert ("md5", md5(99)) in bank_hashes(xstore, "ncmec")
        # img1 is updated (new pdq), img2 is deleted, at later times
        later = int(clock["now"]) + 10
        src.add(Event(later, "42", "img1", fingerprints={"md5": md5(1), "pdq": pdq(101)}))
        src.add(Event(later + 1, "42", "img2", deleted=True))
        clock["now"] += 3600
        out = fetch(xstore)
        assert out.error is None, out.error
        have = bank_hashes(xstore, "ncmec")
        assert ("pdq", pdq(1)) not in have and ("pdq", pdq(101)) in have
        assert ("md5", md5(2)) not in have and ("pdq", pdq(2)) not in have
        tombs = {(st, h) for st, h, _, reason in xstore.banks.tombstones("ncmec")}
        assert ("md5", md5(2)) in tombs
        # a file import of the deleted hash does not bring it back
        from sentinelle.formats.entry import EntryIn

        rep = xstore.banks.add_entries("ncmec", [EntryIn("md5", md5(2))])
        assert rep.skipped_tombstoned == 1
        assert ("md5", md5(2)) not in bank_hashes(xstore, "ncmec")


def test_shared_hash_stays_until_every_record_is_gone(xstore, tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    src = ListSource(
        [
            Event(T0 + 1, "42", "a", fingerprints={"md5": md5(1)}),
            Event(T0 + 2, "43", "b", fingerprints={"md5": md5(1)}),
        ]
    )
    with NCMECServer(src) as srv:
        add(xstore, srv, tmp_path)
        fetch(xstore)
        src.add(Event(int(clock["now"]) + 5, "42", "a", deleted=True))
        clock["now"] += 600
        fetch(xstore)
        assert ("md5", md5(1)) in bank_hashes(xstore, "ncmec")
        src.add(Event(int(clock["now"]) + 5, "43", "b", deleted=True))
        clock["now"] += 600
        out = fetch(xstore)
        assert out.counts.entries_deleted == 1
        assert ("md5", md5(1)) not in bank_hashes(xstore, "ncmec")


@pytest.mark.parametrize("fault", ["truncated", "html", "garbage", "500", "429"])
def test_bad_page_is_retried_and_nothing_partial_is_written(xstore, tmp_path, fault) -> None:  # type: ignore[no-untyped-def]
    with NCMECServer(ListSource(events(30)), page_size=10) as srv:
        add(xstore, srv, tmp_path)
        fetch(xstore, max_pages=1)
        srv.fail_next(fault, path="/v2/entries")
        out = fetch(xstore)
        assert out.error is None and out.up_to_date, out.error
        assert len(bank_hashes(xstore, "ncmec")) == 60
        quarantined = xstore.quarantined("ncmec")
        if fault in ("truncated", "html", "garbage"):
            assert len(quarantined) == 1 and quarantined[0]["sha256"]
        else:
            assert quarantined == []


def test_persistently_malformed_page_stops_with_clear_error(xstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with NCMECServer(ListSource(events(30)), page_size=10) as srv:
        add(xstore, srv, tmp_path)
        fetch(xstore, max_pages=1)
        cp = xstore.get("ncmec").checkpoint
        srv.fail_next("truncated", times=3, path="/v2/entries")
        out = fetch(xstore, page_retries=2)
        assert out.error_code == "bad_xml" and "invalid XML" in out.error
        info = xstore.get("ncmec")
        assert info.state == "degraded" and info.last_error == out.error
        assert info.checkpoint == cp and info.counts["malformed"] == 3
        assert len(bank_hashes(xstore, "ncmec")) == 20
        out = fetch(xstore)  # the server recovered: the next good page applies
        assert out.error is None and len(bank_hashes(xstore, "ncmec")) == 60
        assert xstore.get("ncmec").state == "up_to_date"


def test_malformed_entry_is_skipped_and_counted(xstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    evs = events(3)
    evs.append(Event(T0 + 5, "42", "", fingerprints={"md5": md5(7)}))  # no id
    evs.append(Event(T0 + 6, "42", "bad", fingerprints={"md5": "not-hex"}))
    with NCMECServer(ListSource(evs)) as srv:
        add(xstore, srv, tmp_path)
        out = fetch(xstore)
        assert out.error is None
        assert out.counts.malformed == 2
        assert len(bank_hashes(xstore, "ncmec")) == 6


def test_next_link_for_another_window_is_refused(xstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with NCMECServer(ListSource(events(30)), page_size=10) as srv:
        add(xstore, srv, tmp_path)
        fetch(xstore, max_pages=1)
        # simulate a client-side window change (HMA #1744): the link no longer fits
        info = xstore.get("ncmec")
        cp = dict(info.checkpoint)
        cp["to"] = cp["to"] + 600
        import json

        import sqlalchemy as sa

        from sentinelle.exchanges.tables import exchanges

        with xstore.engine.begin() as conn:
            conn.execute(exchanges.update().values(checkpoint=json.dumps(cp)))
        out = fetch(xstore, page_retries=0)
        assert out.error_code == "bad_next"
        assert len(bank_hashes(xstore, "ncmec")) == 20
        assert sa is not None


def test_wrong_credentials_and_missing_secret(xstore, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with NCMECServer(ListSource(events(3))) as srv:
        xstore.add(
            "n1",
            "ncmec",
            config={"base_url": srv.url},
            credential_ref=make_ref(env="H11_NCMEC_CREDS"),
        )
        monkeypatch.setenv("H11_NCMEC_CREDS", "esp-user:wrong-password")
        out = fetch(xstore, "n1")
        assert out.error_code == "exchange_auth"
        assert "wrong-password" not in (out.error or "")
        assert "wrong-password" not in (xstore.get("n1").last_error or "")
        monkeypatch.delenv("H11_NCMEC_CREDS")
        out = fetch(xstore, "n1")
        assert out.error_code == "missing_credentials" and "H11_NCMEC_CREDS" in out.error


def test_feedback_is_sent_to_the_entry(xstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sentinelle.exchanges import feedback

    with NCMECServer(ListSource(events(2))) as srv:
        add(xstore, srv, tmp_path)
        fetch(xstore)
        entry = next(e for e in xstore.banks.iter_entries("ncmec") if e.signal_type == "pdq")
        n = feedback.on_decision(xstore.engine, entry.id, "reject", decision_id=1)
        assert n == 1
        from sentinelle.jobs import queue

        job = queue.list_jobs(xstore.engine, status="pending")[0]
        assert job.kind == "exchange_feedback" and "s3cret" not in str(job.payload)
        feedback.send(xstore.engine, job.payload)
        assert srv.feedback == [
            {
                "member": "42",
                "entry": entry.external_id.split("-", 1)[1],
                "type": "PDQ",
                "kind": "negative",
                "reason": NCMECServer.REASONS[0][0],
            }
        ]
        md5_entry = next(e for e in xstore.banks.iter_entries("ncmec") if e.signal_type == "md5")
        feedback.on_decision(xstore.engine, md5_entry.id, "confirm", decision_id=2)
        job = [
            j
            for j in queue.list_jobs(xstore.engine, status="pending")
            if j.payload["verdict"] == "confirm"
        ][0]
        feedback.send(xstore.engine, job.payload)
        assert srv.feedback[-1]["kind"] == "affirmative" and srv.feedback[-1]["type"] == "MD5"


def test_lost_checkpoint_resumes_near_progress_not_from_scratch(xstore, tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    from sentinelle.exchanges.tables import exchanges

    with NCMECServer(ListSource(events(300)), page_size=50) as srv:
        add(xstore, srv, tmp_path)
        fetch(xstore)
        clock["now"] += 40 * 86400  # weeks later, many empty windows behind us
        fetch(xstore)
        before = srv.entry_requests
        with xstore.engine.begin() as conn:  # the checkpoint is lost (unreadable)
            conn.execute(exchanges.update().values(checkpoint="{not json"))
        out = fetch(xstore)
        assert out.error is None and out.counts.entries_added == 0
        # an hour of overlap re-read, not the ~15 windows from the start
        assert srv.entry_requests - before <= 3
        assert len(bank_hashes(xstore, "ncmec")) == 600
