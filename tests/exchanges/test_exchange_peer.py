"""Sentinelle-to-Sentinelle sharing between two real instances with separate databases.

Instance A (a real ``sentinelle serve`` process on its own SQLite file) publishes
the hashes its reviewer confirms; instance B (this process, on SQLite and on
PostgreSQL) subscribes with A's public key and an API key, verifies every page,
matches a transformed copy of the same benign image, and B's reviewer's
rejection comes back to A as a disagreement.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from local_http import Answer, LocalServer, Request
from peer_setup import start
from xhelpers import bank_hashes, no_sleep

from sentinelle.cli.demo_media import TRANSFORMS, render_scene
from sentinelle.exchanges import feedback, publish, runner
from sentinelle.exchanges.credentials import make_ref
from sentinelle.exchanges.store import ExchangeStore
from sentinelle.exchanges.transport import HttpTransport
from sentinelle.formats.entry import EntryIn
from sentinelle.index.matcher import Matcher
from sentinelle.jobs import queue
from sentinelle.review import accounts, decisions
from sentinelle.review.intake import record_signal
from sentinelle.signals.pdq import pdq_from_image
from sentinelle.store.db import open_engine

PW = "correct horse battery staple 42"


def fetch(store: ExchangeStore, name: str = "peer-a", **kw):  # type: ignore[no-untyped-def]
    with HttpTransport(sleep=no_sleep, backoff_s=0) as http:
        return runner.run_fetch(store, name, http=http, sleep=no_sleep, page_retries=0, **kw)


def confirm_or_reject(engine, bank: str, entry_id: int, pdq: str, verdict: str) -> None:  # type: ignore[no-untyped-def]
    user = accounts.create_user(engine, f"rev-{verdict}", PW, "reviewer")
    _, item = record_signal(
        engine,
        account_id=f"acct-{verdict}",
        kind="hash_match",
        summary={
            "bank": bank,
            "entry_id": entry_id,
            "distance": 0,
            "signal_type": "pdq",
            "hash": pdq,
        },
    )
    r = decisions.decide(
        engine, item, user, verdict=verdict, category="B1" if verdict == "confirm" else None
    )
    assert r.errors == [], r.errors


def test_two_instances_share_match_and_disagree(db_url: str, tmp_path: Path) -> None:
    runner.register()  # the decision hook (also loaded by sentinelle.plugins)
    key_path = tmp_path / "a-signing.pem"
    public = publish.generate_key(key_path)
    a_url = f"sqlite:///{tmp_path / 'a.db'}"
    a_engine = open_engine(a_url)
    a_store = ExchangeStore(a_engine)
    original = render_scene(7)
    pdq_a, _ = pdq_from_image(original)
    a_store.banks.create_bank("confirmed-a")
    a_store.banks.add_entries("confirmed-a", [EntryIn("pdq", pdq_a)])
    pub = publish.Publisher(a_engine)
    pub.share_bank("confirmed-a", category="B1", expiry_days=30)
    api_key = pub.add_subscriber("instance-b")
    a_entry = next(a_store.banks.iter_entries("confirmed-a"))
    # A's reviewer confirms a match on the entry: it joins A's feed
    confirm_or_reject(a_engine, "confirmed-a", a_entry.id, pdq_a, "confirm")
    inst = start(a_url, tmp_path, SENTINELLE_PEER_SIGNING_KEY_FILE=str(key_path))
    b_engine = open_engine(db_url)
    try:
        b = ExchangeStore(b_engine)
        b.add(
            "peer-a",
            "sentinelle",
            config={"base_url": inst.url, "feed": "confirmed-a", "public_key": public},
            credential_ref=make_ref(env="H11_PEER_KEY"),
        )
        import os

        os.environ["H11_PEER_KEY"] = api_key
        out = fetch(b)
        assert out.error is None and out.counts.entries_added == 1, out.to_dict()
        assert bank_hashes(b, "peer-a") == {("pdq", pdq_a)}
        entry = next(b.banks.iter_entries("peer-a"))
        assert entry.category == "B1"
        # B matches a transformed copy of the same benign image
        copy = TRANSFORMS["resized"](original.copy())  # 6 bits away
        pdq_copy, _ = pdq_from_image(copy)
        assert pdq_copy != pdq_a
        m = Matcher(b.banks)
        m.load()
        found = m.match_pdq([pdq_copy])[0]
        assert [x.entry_id for x in found] == [entry.id]
        # B's reviewer rejects it: a false-positive opinion flows back to A
        confirm_or_reject(b_engine, "peer-a", entry.id, pdq_copy, "reject")
        jobs = [
            j
            for j in queue.list_jobs(b_engine, status="pending")
            if j.kind == feedback.FEEDBACK_JOB
        ]
        assert len(jobs) == 1 and api_key not in json.dumps(jobs[0].payload)
        assert feedback.send(b_engine, jobs[0].payload)["sent"] is True
        dis = pub.disagreements("confirmed-a")
        assert dis == [
            {
                "signal_type": "pdq",
                "hash": pdq_a,
                "entry_id": a_entry.id,
                "false_positive": 1,
                "confirmed": 0,
            }
        ]
        # a revoked key no longer reads the feed
        pub.revoke_subscriber("instance-b")
        out = fetch(b)
        assert out.error_code == "exchange_auth"
    finally:
        os.environ.pop("H11_PEER_KEY", None)
        inst.stop()
        b_engine.dispose()
        a_engine.dispose()


class FakePeer(LocalServer):
    """Serves pages built by a real Publisher, optionally tampered with."""

    def __init__(self, publisher: publish.Publisher, key) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.publisher, self.key, self.tamper = publisher, key, ""

    def handle(self, req: Request) -> Answer:
        after = int(req.q("after", "0") or 0)
        body, headers = self.publisher.page(
            "feed", after, int(req.q("limit", "10") or 10), self.key
        )
        if self.tamper == "body":
            body = body.replace(b'"op":"add"', b'"op":"remove"', 1)
        elif self.tamper == "sequence":
            doc = json.loads(body)
            doc["after"] = after + 1
            body = publish.canonical(doc)
            headers = publish.sign(self.key, body)
        return Answer(200, "application/json", body, headers)


@pytest.mark.parametrize("tamper", ["body", "sequence", "other_key"])
def test_bad_signature_sequence_or_key_is_rejected(xstore, tmp_path, tamper) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pub_engine = open_engine(f"sqlite:///{tmp_path / 'pub.db'}")
    try:
        bs = ExchangeStore(pub_engine).banks
        bs.create_bank("feed")
        hashes = [hashlib.sha256(f"tree-{i}".encode()).hexdigest() for i in range(5)]
        bs.add_entries("feed", [EntryIn("pdq", h) for h in hashes])
        pub = publish.Publisher(pub_engine)
        pub.share_bank("feed")
        for e in bs.iter_entries("feed"):
            pub.on_confirmed(e.id)
        key = Ed25519PrivateKey.generate()
        signer = Ed25519PrivateKey.generate() if tamper == "other_key" else key
        with FakePeer(pub, signer) as srv:
            xstore.add(
                "peer",
                "sentinelle",
                config={
                    "base_url": srv.url,
                    "feed": "feed",
                    "page_size": 2,
                    "public_key": publish.public_key_text(key.public_key()),
                },
                credential_ref=make_ref(env="H11_PEER_KEY2"),
            )
            import os

            os.environ["H11_PEER_KEY2"] = "anything"
            srv.tamper = ""
            srv.key = key
            ok = fetch(xstore, "peer", max_pages=1)
            assert ok.error is None and len(bank_hashes(xstore, "peer")) == 2
            srv.key, srv.tamper = signer, tamper if tamper != "other_key" else ""
            out = fetch(xstore, "peer")
            want = {
                "body": "bad_signature",
                "sequence": "bad_sequence",
                "other_key": "bad_signature",
            }[tamper]
            assert out.error_code == want
            assert len(bank_hashes(xstore, "peer")) == 2  # nothing of the bad page
            assert xstore.get("peer").checkpoint == {"after": 2}
            srv.key, srv.tamper = key, ""
            out = fetch(xstore, "peer")
            assert out.error is None and len(bank_hashes(xstore, "peer")) == 5
    finally:
        os.environ.pop("H11_PEER_KEY2", None)
        pub_engine.dispose()


def test_expiry_withdraws_shared_hashes(xstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from sentinelle.store.models import utcnow

    pub_engine = open_engine(f"sqlite:///{tmp_path / 'pub.db'}")
    try:
        bs = ExchangeStore(pub_engine).banks
        bs.create_bank("feed")
        bs.add_entries("feed", [EntryIn("md5", "a" * 32)])
        pub = publish.Publisher(pub_engine)
        info = pub.share_bank("feed", expiry_days=1)
        pub.on_confirmed(next(bs.iter_entries("feed")).id)
        assert pub.expire(info.id) == 0
        assert pub.expire(info.id, now=utcnow() + timedelta(days=2)) == 1
        key = Ed25519PrivateKey_generate()
        body, _ = pub.page("feed", 0, 10, key)
        ops = [i["op"] for i in json.loads(body)["items"]]
        assert ops == ["add", "remove"]
    finally:
        pub_engine.dispose()


def Ed25519PrivateKey_generate():  # type: ignore[no-untyped-def]  # noqa: N802
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


def test_any_registered_signal_type_travels(xstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Peer feeds carry whatever the signal-type registry knows (e.g. model hashes)."""
    import os

    from sentinelle.signals.signal_types import signal_type_names

    names = [n for n in signal_type_names() if n not in ("pdq", "vpdq")]
    pub_engine = open_engine(f"sqlite:///{tmp_path / 'pub.db'}")
    try:
        bs = ExchangeStore(pub_engine).banks
        bs.create_bank("feed")
        lengths = {"md5": 32, "sha1": 40}
        want = {(n, hashlib_hex(n, lengths.get(n, 64))) for n in names}
        bs.add_entries("feed", [EntryIn(n, h) for n, h in want])
        pub = publish.Publisher(pub_engine)
        pub.share_bank("feed")
        for e in bs.iter_entries("feed"):
            pub.on_confirmed(e.id)
        key = Ed25519PrivateKey_generate()
        with FakePeer(pub, key) as srv:
            os.environ["H11_PEER_KEY3"] = "anything"
            xstore.add(
                "peer",
                "sentinelle",
                config={
                    "base_url": srv.url,
                    "feed": "feed",
                    "public_key": publish.public_key_text(key.public_key()),
                },
                credential_ref=make_ref(env="H11_PEER_KEY3"),
            )
            out = fetch(xstore, "peer")
        assert out.error is None and out.counts.unknown_types == 0
        assert bank_hashes(xstore, "peer") == want
    finally:
        os.environ.pop("H11_PEER_KEY3", None)
        pub_engine.dispose()


def hashlib_hex(name: str, n: int) -> str:
    import hashlib

    return hashlib.sha512(name.encode()).hexdigest()[:n]
