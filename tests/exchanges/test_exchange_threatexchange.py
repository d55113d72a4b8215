"""ThreatExchange client against the local Graph API server: updates, deletions, reactions."""

from __future__ import annotations

import hashlib

from te_server import TOKEN, TEServer
from xhelpers import bank_hashes, no_sleep

from sentinelle.exchanges import feedback, runner
from sentinelle.exchanges.credentials import make_ref
from sentinelle.exchanges.transport import HttpTransport

PG = "1012185296055235"


def pdq(i: int) -> str:
    return hashlib.sha256(f"river-{i}".encode()).hexdigest()


def fetch(xstore, **kw):  # type: ignore[no-untyped-def]
    with HttpTransport(sleep=no_sleep, backoff_s=0) as http:
        return runner.run_fetch(xstore, "te", http=http, sleep=no_sleep, page_retries=0, **kw)


def setup(xstore, srv, monkeypatch, pg=PG):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("H11_TE_TOKEN", TOKEN)
    xstore.add(
        "te",
        "threatexchange",
        config={"base_url": srv.url, "privacy_group": pg, "page_size": 3},
        credential_ref=make_ref(env="H11_TE_TOKEN"),
    )


def test_threat_updates_descriptors_and_deletions(xstore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with TEServer() as srv:
        for i in range(7):
            srv.put(PG, "HASH_PDQ", pdq(i), 1000 + i, tags=("media_type_photo", "benign_test"))
        srv.put(PG, "HASH_MD5", "b" * 32, 1010)
        srv.put(PG, "URI", "https://example.org/x", 1011)
        setup(xstore, srv, monkeypatch)
        out = fetch(xstore)
        assert out.error is None and out.up_to_date, out.error
        assert out.counts.unknown_types == 1 and out.pages == 3
        assert bank_hashes(xstore, "te") == {("pdq", pdq(i)) for i in range(7)} | {
            ("md5", "b" * 32)
        }
        e = next(e for e in xstore.banks.iter_entries("te") if e.hash == pdq(0))
        assert e.category == "MALICIOUS" and "benign_test" in e.note
        assert "access_token" not in str(xstore.get("te").checkpoint)
        srv.put(PG, "HASH_PDQ", pdq(1), 2000, delete=True)  # should_delete
        srv.put(PG, "HASH_PDQ", pdq(2), 2001, descriptors=False)  # pytx #834
        srv.put(PG, "HASH_PDQ", pdq(3), 2002, owner=None)  # owner no longer visible
        out = fetch(xstore)
        assert out.error is None and out.counts.entries_deleted == 3
        assert {pdq(1), pdq(2), pdq(3)}.isdisjoint(h for _, h in bank_hashes(xstore, "te"))


def test_reactions_and_errors(xstore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sentinelle.jobs import queue

    with TEServer() as srv:
        srv.put(PG, "HASH_PDQ", pdq(0), 1000, did="777")
        setup(xstore, srv, monkeypatch)
        fetch(xstore)
        entry = next(xstore.banks.iter_entries("te"))
        assert feedback.on_decision(xstore.engine, entry.id, "reject", decision_id=3) == 1
        job = queue.list_jobs(xstore.engine, status="pending")[0]
        assert TOKEN not in str(job.payload)
        feedback.send(xstore.engine, job.payload)
        assert srv.reactions == [("777", "NOT_HELPFUL")]
        srv.disabled.add(PG)  # threat_updates not enabled: 500s, then a clear error
        out = fetch(xstore)
        assert out.error_code == "exchange_unavailable" and "access_token" not in out.error
        monkeypatch.setenv("H11_TE_TOKEN", "1234567890|wrongwrongwrong")
        out = fetch(xstore)
        assert out.error_code == "exchange_http" and "wrongwrong" not in out.error
