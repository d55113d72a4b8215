"""The exchange routes (status, fetch job, HMA mirror, peer feed auth) and the CLI group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from ncmec_server import Event, ListSource, NCMECServer
from xhelpers import secret_file

from sentinelle.exchanges import publish
from sentinelle.exchanges.credentials import make_ref
from sentinelle.exchanges.store import ExchangeStore
from sentinelle.formats.entry import EntryIn
from sentinelle.service.app import create_app
from sentinelle.service.keys import create_key
from sentinelle.service.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def svc(sqlite_url: str, tmp_path: Path, monkeypatch):  # type: ignore[no-untyped-def]
    key_path = tmp_path / "sign.pem"
    public = publish.generate_key(key_path)
    monkeypatch.setenv(publish.KEY_ENV, str(key_path))
    app = create_app(
        Settings(database_url=sqlite_url, key_cache_s=0.0, rate_limit=0.0), start_background=False
    )
    engine = app.state.sentinelle.engine
    _, curate = create_key(engine, "curator", ["curate"])
    _, admin = create_key(engine, "admin", ["admin"])
    with TestClient(app) as client:
        yield SimpleNamespace(
            client=client,
            engine=engine,
            public=public,
            cur={"Authorization": f"Bearer {curate}"},
            adm={"Authorization": f"Bearer {admin}"},
        )


def test_status_routes_fetch_job_and_hma_mirror(svc, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sentinelle.jobs import queue

    with NCMECServer(
        ListSource([Event(1_700_000_100, "42", "x", fingerprints={"md5": "c" * 32})])
    ) as srv:
        store = ExchangeStore(svc.engine)
        store.add(
            "ncmec",
            "ncmec",
            config={"base_url": srv.url, "start_time": 1_700_000_000},
            credential_ref=make_ref(file=secret_file(tmp_path, "esp-user:s3cret-pw")),
        )
        c = svc.client
        assert c.get("/v1/exchanges").status_code == 401
        r = c.get("/v1/exchanges", headers=svc.cur)
        assert r.status_code == 200 and r.json()["exchanges"][0]["name"] == "ncmec"
        assert "s3cret" not in r.text and r.json()["exchanges"][0]["credentials"].startswith(
            "file:"
        )
        assert c.get("/v1/exchanges/nope", headers=svc.cur).status_code == 404
        assert c.post("/v1/exchanges/ncmec/fetch", headers=svc.cur).status_code == 403
        r = c.post("/v1/exchanges/ncmec/fetch", headers=svc.adm)
        assert r.status_code == 202
        assert queue.get_job(svc.engine, r.json()["job_id"]).kind == "exchange_fetch"
        assert c.get("/c/exchanges", headers=svc.cur).json() == ["ncmec"]
        st = c.get("/c/exchange/ncmec/status", headers=svc.cur).json()
        assert st["up_to_date"] is False and st["fetched_items"] == 0


def test_peer_feed_route_needs_a_subscriber_key_and_signs(svc) -> None:  # type: ignore[no-untyped-def]
    store = ExchangeStore(svc.engine)
    store.banks.create_bank("shared")
    store.banks.add_entries("shared", [EntryIn("md5", "d" * 32)])
    pub = publish.Publisher(svc.engine)
    pub.share_bank("shared", category="A1")
    pub.on_confirmed(next(store.banks.iter_entries("shared")).id)
    key = pub.add_subscriber("peer-b")
    c = svc.client
    assert c.get("/v1/exchange/feeds/shared").status_code == 401
    assert (
        c.get("/v1/exchange/feeds/shared", headers=svc.adm).status_code == 401
    )  # not a subscriber
    h = {"Authorization": f"Bearer {key}"}
    assert c.get("/v1/exchange/feeds/other", headers=h).status_code == 404
    r = c.get("/v1/exchange/feeds/shared?after=0", headers=h)
    assert r.status_code == 200
    publish.verify(publish.parse_public_key(svc.public), r.content, r.headers)
    doc = json.loads(r.content)
    assert [i["hash"] for i in doc["items"]] == ["d" * 32] and doc["items"][0]["category"] == "A1"
    r = c.post(
        "/v1/exchange/feeds/shared/opinions",
        headers=h,
        json={"items": [{"signal_type": "md5", "hash": "d" * 32, "opinion": "false_positive"}]},
    )
    assert r.status_code == 200 and r.json() == {"recorded": 1}
    bad = c.post(
        "/v1/exchange/feeds/shared/opinions",
        headers=h,
        json={"items": [{"signal_type": "md5", "hash": "d" * 32, "opinion": "meh"}]},
    )
    assert bad.status_code == 400
    r = c.get("/v1/exchange/feeds/shared/disagreements", headers=svc.cur)
    assert r.json()["entries"][0]["false_positive"] == 1


def test_cli_add_list_status(sqlite_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINELLE_")}
    env.update(SENTINELLE_DATABASE_URL=sqlite_url, H11_CLI_CREDS="esp-user:s3cret-pw")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "sentinelle.cli.main", "exchange", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )

    p = cli(
        "add",
        "ncmec-test",
        "--type",
        "ncmec",
        "--base-url",
        "http://127.0.0.1:9",
        "--setting",
        "window_s=7200",
        "--credentials-env",
        "H11_CLI_CREDS",
    )
    assert p.returncode == 0, p.stderr
    p = cli("add", "x", "--type", "nope")
    assert p.returncode == 1 and "unknown_type" in p.stderr
    p = cli("add", "y", "--type", "ncmec", "--setting", "bogus=1")
    assert p.returncode != 0 and "bogus" in p.stderr
    p = cli("list", "--json")
    data = json.loads(p.stdout)
    assert data[0]["config"]["window_s"] == 7200 and data[0]["credentials"] == "env:H11_CLI_CREDS"
    assert "s3cret" not in p.stdout
    p = cli("fetch", "ncmec-test")  # nothing listens on port 9: a clear error, exit 1
    assert p.returncode == 1 and json.loads(p.stdout)["error_code"] == "exchange_unavailable"
    assert cli("disable", "ncmec-test").returncode == 0
    p = cli("status", "ncmec-test", "--json")
    assert json.loads(p.stdout)["state"] == "disabled"
