"""StopNCII client against the local StopNCII server: withdrawals, #2004, feedback, submit."""

from __future__ import annotations

import hashlib
import time

from stopncii_server import KEYS, SUBSCRIPTION, StopNCIIServer
from xhelpers import bank_hashes, no_sleep

from sentinelle.exchanges import feedback, runner
from sentinelle.exchanges.credentials import make_ref
from sentinelle.exchanges.runner import build_api
from sentinelle.exchanges.transport import HttpTransport

CREDS = f"{KEYS['FetchHashes']},{SUBSCRIPTION},{KEYS['SubmitHashes']},{KEYS['SubmitFeedback']}"


def pdq(i: int) -> str:
    return hashlib.sha256(f"landscape-{i}".encode()).hexdigest()


def setup(xstore, srv, monkeypatch, page_size=4):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("H11_STOPNCII_KEYS", CREDS)
    return xstore.add(
        "sncii",
        "stopncii",
        config={"base_url": srv.url + "/v1", "page_size": page_size},
        credential_ref=make_ref(env="H11_STOPNCII_KEYS"),
    )


def fetch(xstore, **kw):  # type: ignore[no-untyped-def]
    with HttpTransport(sleep=no_sleep, backoff_s=0) as http:
        return runner.run_fetch(xstore, "sncii", http=http, sleep=no_sleep, **kw)


def test_fetch_withdrawals_and_unknown_types(xstore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with StopNCIIServer() as srv:
        for i in range(10):
            srv.put("ImagePDQ", pdq(i), 1000 + i)
        srv.put("VideoTMK", "ab" * 100, 1011)
        srv.put("Text", "some words", 1012)
        srv.put("ImagePDQ", pdq(50), 1013, status="Undefined")  # unknown enum value: kept
        setup(xstore, srv, monkeypatch)
        out = fetch(xstore)
        assert out.error is None and out.up_to_date and out.pages == 4
        assert out.counts.unknown_types == 2
        want = {("pdq", pdq(i)) for i in range(10)} | {("pdq", pdq(50))}
        assert bank_hashes(xstore, "sncii") == want
        # a withdrawal (hashStatus) and a record whose every case was withdrawn
        srv.put("ImagePDQ", pdq(3), 2000, status="Withdrawn")
        srv.put("ImagePDQ", pdq(4), 2001, status="Active", cases={"a": "Withdrawn", "b": "Deleted"})
        srv.put("ImagePDQ", pdq(5), 2002, status="Active", cases={"a": "Withdrawn", "b": "Active"})
        out = fetch(xstore)
        assert out.error is None and out.counts.entries_deleted == 2
        have = bank_hashes(xstore, "sncii")
        assert ("pdq", pdq(3)) not in have and ("pdq", pdq(4)) not in have
        assert ("pdq", pdq(5)) in have
        entry = next(e for e in xstore.banks.iter_entries("sncii") if e.hash == pdq(0))
        assert entry.source_org == "stopncii:sncii/StopNCII" and "Nude" in entry.note


def test_truncated_json_does_not_wedge_the_exchange(xstore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """HMA #2004: an HTTP 200 with a malformed JSON body stopped fetching for days."""
    with StopNCIIServer() as srv:
        for i in range(12):
            srv.put("ImagePDQ", pdq(i), 1000 + i)
        setup(xstore, srv, monkeypatch)
        fetch(xstore, max_pages=1)
        before = xstore.get("sncii").checkpoint
        srv.fail_next("truncated", times=3, path="FetchHashes")
        out = fetch(xstore, page_retries=2)
        assert out.error_code == "bad_json" and "invalid JSON" in out.error
        info = xstore.get("sncii")
        assert info.checkpoint == before and info.state == "degraded"
        assert len(bank_hashes(xstore, "sncii")) == 4  # nothing partial
        srv.fail_next("truncated", times=1, path="FetchHashes")
        out = fetch(xstore)  # one bad answer, then good ones: the fetch goes through
        assert out.error is None and len(bank_hashes(xstore, "sncii")) == 12
        assert len(xstore.quarantined("sncii")) == 4


def test_expired_page_token_falls_back_and_nonmonotonic_timestamps(xstore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with StopNCIIServer(nonmonotonic=True) as srv:
        for i in range(9):
            srv.put("ImagePDQ", pdq(i), 1000 + i)
        setup(xstore, srv, monkeypatch)
        fetch(xstore, max_pages=1)
        srv.tokens_valid_after = time.time()  # the saved token has expired
        out = fetch(xstore)
        assert out.error is None and len(bank_hashes(xstore, "sncii")) == 9
        # the overshooting first page did not move the checkpoint past real data
        assert xstore.get("sncii").checkpoint["start"] == 1008
        srv.put("ImagePDQ", pdq(20), 1030)
        out = fetch(xstore)
        assert ("pdq", pdq(20)) in bank_hashes(xstore, "sncii")


def test_feedback_and_submit(xstore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sentinelle.jobs import queue

    with StopNCIIServer() as srv:
        srv.put("ImagePDQ", pdq(1), 1000)
        setup(xstore, srv, monkeypatch)
        fetch(xstore)
        entry = next(xstore.banks.iter_entries("sncii"))
        assert feedback.on_decision(xstore.engine, entry.id, "confirm", decision_id=9) == 1
        job = queue.list_jobs(xstore.engine, status="pending")[0]
        assert feedback.send(xstore.engine, job.payload)["sent"] is True
        assert srv.feedback == [{"hashValue": pdq(1), "feedbackValue": "Blocked", "tags": []}]
        with HttpTransport() as http:
            api = build_api(xstore.get("sncii"), http)
            assert api.submit([("pdq", pdq(7)), ("sha1", "a" * 40)]) == 1
        assert srv.submitted[0]["signalType"] == "ImagePDQ"
        assert srv.submitted[0]["hashValue"] == pdq(7)


def test_wrong_keys_are_an_auth_error(xstore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with StopNCIIServer() as srv:
        setup(xstore, srv, monkeypatch)
        monkeypatch.setenv("H11_STOPNCII_KEYS", f"wrong,{SUBSCRIPTION}")
        out = fetch(xstore)
        assert out.error_code == "exchange_auth" and "wrong" not in out.error


def test_token_that_never_works_ends_the_fetch(xstore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with StopNCIIServer() as srv:
        for i in range(9):
            srv.put("ImagePDQ", pdq(i), 1000 + i)
        setup(xstore, srv, monkeypatch)
        srv.token_ttl_s = -1  # every token is refused at once
        out = fetch(xstore)
        assert out.error_code == "exchange_unavailable" and "token" in out.error
