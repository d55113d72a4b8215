"""Plain HTTP hash-list feed: conditional GET, snapshot replace, bad files quarantined."""

from __future__ import annotations

import hashlib

from feed_server import FeedServer
from xhelpers import bank_hashes, no_sleep

from sentinelle.exchanges import runner
from sentinelle.exchanges.credentials import make_ref
from sentinelle.exchanges.transport import HttpTransport


def pdq(i: int) -> str:
    return hashlib.sha256(f"object-{i}".encode()).hexdigest()


def fetch(xstore, **kw):  # type: ignore[no-untyped-def]
    with HttpTransport(sleep=no_sleep, backoff_s=0) as http:
        return runner.run_fetch(xstore, "feed", http=http, sleep=no_sleep, page_retries=0, **kw)


def test_conditional_get_and_snapshot_replace(xstore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with FeedServer(token="feed-token-1") as srv:
        monkeypatch.setenv("H11_FEED_TOKEN", "feed-token-1")
        xstore.add(
            "feed",
            "http_feed",
            config={
                "base_url": srv.url + "/feed.txt",
                "format": "pdq-list",
                "category": "B1",
                "owner": "partner-a",
            },
            credential_ref=make_ref(env="H11_FEED_TOKEN"),
        )
        srv.publish("\n".join(pdq(i) for i in range(5)) + "\n")
        out = fetch(xstore)
        assert out.error is None and out.counts.entries_added == 5
        assert srv.full_downloads == 1
        out = fetch(xstore)  # unchanged: 304, nothing downloaded or applied
        assert out.error is None and out.pages == 0 and srv.full_downloads == 1
        srv.publish("\n".join(pdq(i) for i in range(2, 8)) + "\n")
        out = fetch(xstore)
        assert out.counts.entries_added == 3 and out.counts.entries_deleted == 2
        assert bank_hashes(xstore, "feed") == {("pdq", pdq(i)) for i in range(2, 8)}
        entry = next(xstore.banks.iter_entries("feed"))
        assert entry.category == "B1" and entry.source_org == "http_feed:feed/partner-a"
        tombs = {h for _, h, _, _ in xstore.banks.tombstones("feed")}
        assert tombs == {pdq(0), pdq(1)}
        # a hash the feed dropped and later republishes comes back (its own tombstone)
        srv.publish("\n".join(pdq(i) for i in range(0, 8)) + "\n")
        out = fetch(xstore)
        assert out.counts.entries_added == 2 and xstore.banks.tombstones("feed") == []


def test_bad_file_is_quarantined_and_nothing_applies(xstore) -> None:  # type: ignore[no-untyped-def]
    with FeedServer() as srv:
        xstore.add(
            "feed", "http_feed", config={"base_url": srv.url + "/feed.txt", "format": "pdq-list"}
        )
        srv.publish("\n".join(pdq(i) for i in range(3)) + "\n")
        fetch(xstore)
        srv.publish(pdq(10) + "\nnot-a-hash\n" + pdq(11) + "\n")
        out = fetch(xstore)
        assert out.error_code == "bad_feed_file" and "line 2" in out.error
        assert bank_hashes(xstore, "feed") == {("pdq", pdq(i)) for i in range(3)}
        srv.publish("<html>login</html>", content_type="text/html")
        out = fetch(xstore)
        assert out.error_code == "wrong_content_type"
        srv.publish(pdq(20) + "\n")
        out = fetch(xstore)
        assert out.error is None and bank_hashes(xstore, "feed") == {("pdq", pdq(20))}


def test_oversized_file_is_refused(xstore) -> None:  # type: ignore[no-untyped-def]
    with FeedServer() as srv:
        xstore.add(
            "feed", "http_feed", config={"base_url": srv.url + "/feed.txt", "max_bytes": 1000}
        )
        srv.publish("\n".join(pdq(i) for i in range(100)) + "\n")
        out = fetch(xstore)
        assert out.error_code == "page_too_large"
        assert bank_hashes(xstore, "feed") == set()
