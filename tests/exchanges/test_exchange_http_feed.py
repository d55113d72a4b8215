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


def _publish(srv, hashes) -> None:  # type: ignore[no-untyped-def]
    srv.publish("".join(h + "\n" for h in hashes))


def test_large_feed_is_parsed_and_applied_in_chunks(xstore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A 30,000-line list is read 1,000 lines at a time (never whole), applied as one
    snapshot; a bad line deep in the file rolls every chunk back."""
    from sentinelle.exchanges import http_feed
    from sentinelle.formats import pdq_list

    monkeypatch.setattr(http_feed, "CHUNK_LINES", 1000)
    sizes: list[int] = []
    real_parse = pdq_list.parse

    def counting_parse(stream, limits=None):  # type: ignore[no-untyped-def]
        out = real_parse(stream, limits) if limits else real_parse(stream)
        sizes.append(len(out))
        return out

    monkeypatch.setattr(pdq_list, "parse", counting_parse)
    with FeedServer() as srv:
        xstore.add(
            "feed", "http_feed", config={"base_url": srv.url + "/feed.txt", "format": "pdq-list"}
        )
        _publish(srv, (pdq(i) for i in range(30_000)))
        out = fetch(xstore)
        assert out.error is None and out.counts.entries_added == 30_000
        assert len(sizes) == 30 and max(sizes) == 1000
        assert xstore.record_count("feed") == 30_000
        # the next snapshot drops 0..4999 and adds 30000..34999, across chunks
        sizes.clear()
        _publish(srv, (pdq(i) for i in range(5_000, 35_000)))
        out = fetch(xstore)
        assert out.error is None
        assert out.counts.entries_added == 5_000 and out.counts.entries_deleted == 5_000
        assert max(sizes) == 1000
        assert bank_hashes(xstore, "feed") == {("pdq", pdq(i)) for i in range(5_000, 35_000)}
        assert len(xstore.banks.tombstones("feed")) == 5_000
        # line 23,456 is bad: 23 good chunks were applied inside the transaction, all
        # of them roll back, and the error names the line in the whole file
        lines = [pdq(i) for i in range(40_000, 70_000)]
        lines[23_455] = "not-a-hash"
        _publish(srv, lines)
        out = fetch(xstore)
        assert out.error_code == "bad_feed_file" and "line 23456" in out.error, out.error
        assert bank_hashes(xstore, "feed") == {("pdq", pdq(i)) for i in range(5_000, 35_000)}
        assert xstore.record_count("feed") == 30_000


def test_large_feed_memory_stays_flat(xstore) -> None:  # type: ignore[no-untyped-def]
    """Peak Python allocations while fetching a 120,000-line (7.8 MB) list stay far
    below what holding the parsed list needs (parsing it whole peaks above 80 MB)."""
    import tracemalloc

    with FeedServer() as srv:
        xstore.add(
            "feed", "http_feed", config={"base_url": srv.url + "/feed.txt", "format": "pdq-list"}
        )
        _publish(srv, (pdq(i) for i in range(120_000)))
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            out = fetch(xstore)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert out.error is None and out.counts.entries_added == 120_000
        assert peak < 40 * 1024 * 1024, f"peak {peak / 2**20:.1f} MB"
