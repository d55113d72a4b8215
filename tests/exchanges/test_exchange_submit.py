"""Submitting our own hashes: ThreatExchange descriptors (round trip through the group),
StopNCII (see test_exchange_stopncii), NCMEC refused with a clear error; audited."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from te_server import TOKEN, TEServer
from xhelpers import bank_hashes, no_sleep

from sentinelle.exchanges import runner
from sentinelle.exchanges.api import ExchangeError
from sentinelle.exchanges.credentials import make_ref
from sentinelle.exchanges.store import ExchangeStore
from sentinelle.exchanges.transport import HttpTransport
from sentinelle.formats.entry import EntryIn
from sentinelle.store.db import open_engine

REPO = Path(__file__).resolve().parents[2]
PG = "1012185296055235"


def pdq(i: int) -> str:
    return hashlib.sha256(f"meadow-{i}".encode()).hexdigest()


def cli(db_url: str, *args: str, **env_extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINELLE_")}
    env.update(SENTINELLE_DATABASE_URL=db_url, **env_extra)
    return subprocess.run(
        [sys.executable, "-m", "sentinelle.cli.main", "exchange", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def audit_actions(store: ExchangeStore) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT action, target FROM audit_log ORDER BY id")).all()
    return [(r.action, r.target) for r in rows]


def test_threatexchange_submit_round_trip_through_the_cli(sqlite_url, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store = ExchangeStore(open_engine(sqlite_url))
    store.banks.create_bank("own")
    store.banks.add_entries(
        "own",
        [
            EntryIn("pdq", pdq(1)),
            EntryIn("pdq", pdq(2)),
            EntryIn("md5", "c" * 32),
            EntryIn("sha1", "d" * 40),  # ThreatExchange takes no SHA-1 descriptor
        ],
    )
    with TEServer() as srv:
        srv.put(PG, "HASH_PDQ", pdq(99), 1000)  # the group exists, with one update
        store.add(
            "te",
            "threatexchange",
            config={
                "base_url": srv.url,
                "privacy_group": PG,
                "submit_tags": "benign_test, sentinelle",
            },
            credential_ref=make_ref(env="H11_TE_TOKEN"),
        )
        p = cli(sqlite_url, "submit", "te", "--bank", "own", H11_TE_TOKEN=TOKEN)
        assert p.returncode == 0, p.stderr
        assert "submitted 3 of 4" in p.stderr
        assert TOKEN not in p.stdout + p.stderr
        sent = {(f["type"], f["indicator"]) for f in srv.submitted}
        assert sent == {("HASH_PDQ", pdq(1)), ("HASH_PDQ", pdq(2)), ("HASH_MD5", "c" * 32)}
        for f in srv.submitted:
            assert f["privacy_type"] == "HAS_PRIVACY_GROUP" and f["privacy_members"] == PG
            assert f["share_level"] == "AMBER" and f["status"] == "MALICIOUS"
            assert f["tags"] == "benign_test,sentinelle"
        assert ("exchange.submit", "exchange:te") in audit_actions(store)
        # the descriptors are now in the group: a fetch brings them back
        monkeypatch.setenv("H11_TE_TOKEN", TOKEN)
        with HttpTransport(sleep=no_sleep, backoff_s=0) as http:
            out = runner.run_fetch(store, "te", http=http, sleep=no_sleep)
        assert out.error is None
        assert bank_hashes(store, "te") == {
            ("pdq", pdq(99)),
            ("pdq", pdq(1)),
            ("pdq", pdq(2)),
            ("md5", "c" * 32),
        }
    store.engine.dispose()


def test_threatexchange_submit_errors_are_clear(xstore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("H11_TE_TOKEN", TOKEN)
    with TEServer() as srv, HttpTransport(sleep=no_sleep, backoff_s=0) as http:
        srv.put(PG, "HASH_PDQ", pdq(0), 1000)
        for name, cfg in (
            ("te-level", {"submit_share_level": "PURPLE"}),
            ("te-group", {"privacy_group": "777"}),  # not a group the server knows
        ):
            xstore.add(
                name,
                "threatexchange",
                config={"base_url": srv.url, "privacy_group": PG, **cfg},
                credential_ref=make_ref(env="H11_TE_TOKEN"),
            )
        api = runner.build_api(xstore.get("te-level"), http)
        with pytest.raises(ExchangeError) as e:
            api.submit([("pdq", pdq(5))])
        assert e.value.code == "bad_config" and "AMBER" in e.value.message
        api = runner.build_api(xstore.get("te-group"), http)
        with pytest.raises(ExchangeError) as e:
            api.submit([("pdq", pdq(5))])
        assert e.value.code == "exchange_http" and "HTTP 400" in e.value.message
        assert TOKEN not in e.value.message
        assert srv.submitted == []


def test_ncmec_submit_is_refused_with_a_clear_error(sqlite_url) -> None:  # type: ignore[no-untyped-def]
    store = ExchangeStore(open_engine(sqlite_url))
    store.banks.create_bank("own")
    store.banks.add_entries("own", [EntryIn("md5", "e" * 32)])
    store.add("ncmec", "ncmec", config={"base_url": "http://127.0.0.1:9"})
    p = cli(sqlite_url, "submit", "ncmec", "--bank", "own")
    assert p.returncode == 1
    assert "not_supported" in p.stderr and "CyberTipline" in p.stderr
    assert ("exchange.submit", "exchange:ncmec") not in audit_actions(store)
    store.engine.dispose()
