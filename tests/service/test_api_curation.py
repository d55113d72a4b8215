"""Bank management API: real app, real database (SQLite file and PostgreSQL)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sentinelle.jobs import queue, worker
from sentinelle.service.api import bank_import as imports
from sentinelle.service.app import create_app
from sentinelle.service.keys import create_key
from sentinelle.service.settings import Settings


def _pdq(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def _md5(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


class Api:
    """A TestClient plus keys of each scope."""

    def __init__(self, client: TestClient, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens
        self.state = client.app.state.sentinelle  # type: ignore[attr-defined]

    def h(self, who: str = "curate") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, url: str, who: str = "curate", **kw):  # type: ignore[no-untyped-def]
        return self.client.get(url, headers=self.h(who), **kw)

    def post(self, url: str, who: str = "curate", **kw):  # type: ignore[no-untyped-def]
        return self.client.post(url, headers=self.h(who), **kw)

    def patch(self, url: str, who: str = "curate", **kw):  # type: ignore[no-untyped-def]
        return self.client.patch(url, headers=self.h(who), **kw)

    def delete(self, url: str, who: str = "curate", **kw):  # type: ignore[no-untyped-def]
        return self.client.delete(url, headers=self.h(who), **kw)


def _make_api(db_url: str, tmp_path: Path, **extra: object) -> Api:
    settings = Settings(
        database_url=db_url,
        rate_limit=0,
        extra={"spool_dir": str(tmp_path / "spool"), **extra},
    )
    app = create_app(settings, start_background=False)
    client = TestClient(app)
    state = app.state.sentinelle
    tokens = {}
    for scope in ("scan", "curate", "admin"):
        _, tokens[scope] = create_key(state.engine, f"test-{scope}", [scope])
    return Api(client, tokens)


@pytest.fixture()
def api(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    a = _make_api(db_url, tmp_path, import_sync_max_bytes=2048)
    with a.client:
        yield a


def _err(resp) -> dict:  # type: ignore[no-untyped-def]
    body = resp.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"])
    return body["error"]


# ----------------------------------------------------------------- banks
def test_bank_crud(api: Api) -> None:
    r = api.post("/v1/banks", json={"name": "KNOWN", "description": "d", "thresholds": {"pdq": 20}})
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["name"] == "KNOWN" and b["description"] == "d" and b["enabled"] is True
    assert b["thresholds"]["pdq"] == 20 and b["total"] == 0

    assert api.post("/v1/banks", json={"name": "KNOWN"}).status_code == 409
    assert _err(api.post("/v1/banks", json={"name": "KNOWN"}))["code"] == "bank_exists"

    r = api.get("/v1/banks")
    assert r.status_code == 200 and [x["name"] for x in r.json()["banks"]] == ["KNOWN"]
    assert api.get("/v1/banks/KNOWN").json()["id"] == b["id"]
    assert api.get("/v1/banks/NOPE").status_code == 404
    assert _err(api.get("/v1/banks/NOPE"))["code"] == "unknown_bank"

    r = api.patch(
        "/v1/banks/KNOWN",
        json={"description": "new", "enabled": False, "thresholds": {"pdq": 25}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["description"] == "new" and r.json()["enabled"] is False
    assert r.json()["thresholds"]["pdq"] == 25
    # a bad threshold changes nothing (validated before any write)
    r = api.patch("/v1/banks/KNOWN", json={"description": "x", "thresholds": {"md5": 3}})
    assert r.status_code == 400 and _err(r)["code"] == "bad_threshold"
    assert api.get("/v1/banks/KNOWN").json()["description"] == "new"
    assert api.patch("/v1/banks/NOPE", json={"enabled": True}).status_code == 404
    assert api.patch("/v1/banks/KNOWN", json={"colour": "red"}).status_code == 422

    # deleting a bank needs admin
    assert api.delete("/v1/banks/KNOWN").status_code == 403
    assert api.delete("/v1/banks/KNOWN", who="admin").status_code == 200
    assert api.get("/v1/banks/KNOWN").status_code == 404
    assert api.delete("/v1/banks/KNOWN", who="admin").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": " padded "},
        {"name": "x" * 201},
        {"name": "T", "thresholds": {"pdq": 999}},
        {"name": "T", "thresholds": {"nope": 1}},
        {"name": "T", "thresholds": {"pdq": "abc"}},
        {},
        {"name": 5},
    ],
)
def test_bank_create_rejects_bad_input(api: Api, body: dict) -> None:
    r = api.post("/v1/banks", json=body)
    assert 400 <= r.status_code < 500, r.text
    _err(r)


def test_auth_and_scopes(api: Api) -> None:
    c = api.client
    assert c.get("/v1/banks").status_code == 401
    assert _err(c.get("/v1/banks"))["code"] == "missing_key"
    assert c.get("/v1/banks", headers={"Authorization": "Bearer snt_1_nope"}).status_code == 401
    assert api.get("/v1/banks", who="scan").status_code == 403
    assert api.post("/v1/banks", who="scan", json={"name": "X"}).status_code == 403
    assert api.get("/v1/banks", who="admin").status_code == 200
    assert api.get("/v1/jobs/1", who="scan").status_code == 403


def test_malformed_json_is_4xx(api: Api) -> None:
    h = {**api.h(), "Content-Type": "application/json"}
    for raw in (b"{", b"[1,2", b"\xff\xfe", b"null", b'"str"'):
        r = api.client.post("/v1/banks", content=raw, headers=h)
        assert r.status_code == 422, (raw, r.text)
        _err(r)
    api.post("/v1/banks", json={"name": "B"})
    r = api.client.post("/v1/banks/B/entries", content=b"{oops", headers=h)
    assert r.status_code == 422


# --------------------------------------------------------------- entries
def test_entries_lifecycle(api: Api) -> None:
    rng = random.Random(1)
    api.post("/v1/banks", json={"name": "B"})
    pdq = _pdq(rng)
    r = api.post(
        "/v1/banks/B/entries",
        json={"signal_type": "pdq", "hash": pdq.upper(), "category": "test", "note": "n"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["report"]["added"] == 1
    (eid,) = r.json()["ids"]
    e = api.get(f"/v1/entries/{eid}").json()
    assert e["hash"] == pdq and e["bank"] == "B" and e["category"] == "test" and e["active"]

    many = [{"signal_type": "md5", "hash": _md5(rng)} for _ in range(30)]
    many.append({"signal_type": "pdq", "hash": pdq})  # duplicate of the first
    r = api.post("/v1/banks/B/entries", json={"entries": many})
    assert r.status_code == 201
    rep = r.json()["report"]
    assert rep["added"] == 30 and rep["duplicates"] == 1 and rep["total"] == 31
    assert r.json()["ids"][-1] == eid and None not in r.json()["ids"]

    # patch metadata and state
    r = api.patch(f"/v1/entries/{eid}", json={"note": "changed", "category": None})
    assert r.status_code == 200 and r.json()["note"] == "changed" and r.json()["category"] is None
    r = api.post(f"/v1/entries/{eid}/disable")
    assert r.json()["enabled"] is False and r.json()["active"] is False
    r = api.post(f"/v1/entries/{eid}/enable")
    assert r.json()["enabled"] is True and r.json()["active"] is True
    r = api.post(f"/v1/entries/{eid}/disable", json={"until": "2999-01-01T00:00:00Z"})
    assert r.json()["enabled"] is True and r.json()["active"] is False
    assert r.json()["disabled_until"].startswith("2999-01-01")
    r = api.patch(f"/v1/entries/{eid}", json={"disabled_until": None})
    assert r.json()["active"] is True
    assert api.patch(f"/v1/entries/{eid}", json={"hash": _pdq(rng)}).status_code == 422
    assert api.patch(f"/v1/entries/{eid}", json={"enabled": None}).status_code == 422

    # delete tombstones: re-adding the hash is skipped
    r = api.delete(f"/v1/entries/{eid}", params={"reason": "false positive"})
    assert r.status_code == 200
    assert api.get(f"/v1/entries/{eid}").status_code == 404
    assert api.delete(f"/v1/entries/{eid}").status_code == 404
    r = api.post("/v1/banks/B/entries", json={"signal_type": "pdq", "hash": pdq})
    assert r.json()["report"]["skipped_tombstoned"] == 1 and r.json()["ids"] == [None]

    for url in ("/v1/entries/999999", "/v1/entries/999999/enable", "/v1/entries/999999/disable"):
        resp = api.get(url) if url.endswith("999") else api.post(url)
        assert resp.status_code == 404 and _err(resp)["code"] == "unknown_entry"
    assert api.get("/v1/entries/abc").status_code == 422
    assert (
        api.post(
            "/v1/banks/NOPE/entries", json={"signal_type": "md5", "hash": _md5(rng)}
        ).status_code
        == 404
    )


def test_bad_hashes_list_every_line(api: Api) -> None:
    rng = random.Random(2)
    api.post("/v1/banks", json={"name": "B"})
    entries = [
        {"signal_type": "pdq", "hash": _pdq(rng)},
        {"signal_type": "pdq", "hash": "zz" * 32},
        {"signal_type": "md5", "hash": "abc"},
        {"signal_type": "nope", "hash": _md5(rng)},
        {"signal_type": "md5", "hash": _md5(rng)},
    ]
    r = api.post("/v1/banks/B/entries", json={"entries": entries})
    assert r.status_code == 422
    err = _err(r)
    assert err["code"] == "import_rejected"
    assert [e["line"] for e in err["errors"]] == [2, 3, 4]
    assert api.get("/v1/banks/B").json()["total"] == 0  # nothing written
    assert api.post("/v1/banks/B/entries", json={"entries": []}).status_code == 422
    too_many = [{"signal_type": "md5", "hash": _md5(rng)}] * 10_001
    assert api.post("/v1/banks/B/entries", json={"entries": too_many}).status_code in (413, 422)


def test_entries_pagination(api: Api) -> None:
    rng = random.Random(3)
    api.post("/v1/banks", json={"name": "B"})
    body = [{"signal_type": "pdq", "hash": _pdq(rng)} for _ in range(25)]
    body += [{"signal_type": "md5", "hash": _md5(rng)} for _ in range(5)]
    api.post("/v1/banks/B/entries", json={"entries": body})
    seen: list[int] = []
    cursor = 0
    while True:
        r = api.get("/v1/banks/B/entries", params={"limit": 10, "after": cursor})
        assert r.status_code == 200
        page = r.json()
        seen += [e["id"] for e in page["entries"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert len(seen) == 30 and seen == sorted(seen) and len(set(seen)) == 30
    r = api.get("/v1/banks/B/entries", params={"signal_type": "md5", "limit": 100})
    assert len(r.json()["entries"]) == 5 and r.json()["next_cursor"] is None
    assert {e["signal_type"] for e in r.json()["entries"]} == {"md5"}
    assert api.get("/v1/banks/B/entries", params={"signal_type": "x"}).status_code == 400
    assert api.get("/v1/banks/B/entries", params={"limit": 0}).status_code == 422
    assert api.get("/v1/banks/B/entries", params={"limit": 5000}).status_code == 422
    assert api.get("/v1/banks/B/entries", params={"after": -1}).status_code == 422
    assert api.get("/v1/banks/NOPE/entries").status_code == 404


# ---------------------------------------------------------- import/export
def _csv(rng: random.Random, n: int) -> bytes:
    lines = ["signal_type,hash,category"]
    lines += [f"pdq,{_pdq(rng)},cat{i % 3}" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def test_sync_import_and_export_roundtrip(api: Api) -> None:
    rng = random.Random(4)
    api.post("/v1/banks", json={"name": "B"})
    data = _csv(rng, 10)  # < 2048 bytes: imported inside the request
    r = api.post("/v1/banks/B/import", params={"format": "csv"}, content=data)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "done" and r.json()["report"]["added"] == 10
    # multipart upload works too, and re-importing is idempotent
    r = api.post(
        "/v1/banks/B/import", params={"format": "csv"}, files={"file": ("b.csv", data, "text/csv")}
    )
    assert r.status_code == 200 and r.json()["report"]["duplicates"] == 10

    r = api.get("/v1/banks/B/export", params={"format": "pdq-list"})
    assert r.status_code == 200
    exported = set(r.text.split())
    assert exported == {line.split(",")[1] for line in data.decode().splitlines()[1:]}
    r = api.get("/v1/banks/B/export", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "cat1" in r.text
    for fmt in ("vics", "md5-list", "threatexchange"):
        assert api.get("/v1/banks/B/export", params={"format": fmt}).status_code == 200
    assert _err(api.get("/v1/banks/B/export", params={"format": "xml"}))["code"] == "unknown_format"
    assert api.get("/v1/banks/NOPE/export").status_code == 404


def test_sync_import_rejects_bad_lines(api: Api) -> None:
    rng = random.Random(5)
    api.post("/v1/banks", json={"name": "B"})
    lines = ["signal_type,hash", f"pdq,{_pdq(rng)}", "pdq,nothex", f"md5,{_md5(rng)}", "md5,12"]
    r = api.post("/v1/banks/B/import", params={"format": "csv"}, content="\n".join(lines).encode())
    assert r.status_code == 422
    err = _err(r)
    assert err["code"] == "import_rejected" and [e["line"] for e in err["errors"]] == [3, 5]
    assert api.get("/v1/banks/B").json()["total"] == 0
    # binary garbage, unknown format, empty body, unknown bank
    r = api.post("/v1/banks/B/import", params={"format": "pdq-list"}, content=os.urandom(300))
    assert r.status_code == 422
    assert api.post("/v1/banks/B/import", params={"format": "xml"}, content=b"x").status_code == 400
    assert api.post("/v1/banks/B/import", params={"format": "csv"}, content=b"").status_code == 400
    assert api.post("/v1/banks/B/import", content=b"x").status_code == 422  # format missing
    r = api.post("/v1/banks/NOPE/import", params={"format": "csv"}, content=b"x")
    assert r.status_code == 404
    r = api.post("/v1/banks/B/import", params={"format": "vics"}, content=b"{not json")
    assert r.status_code == 422
    assert (
        api.post(
            "/v1/banks/B/import", who="scan", params={"format": "csv"}, content=b"x"
        ).status_code
        == 403
    )


def _spool_files(api: Api) -> list[Path]:
    return sorted(imports.spool_dir(api.state.settings).glob("import-*"))


def test_async_import_job(api: Api) -> None:
    rng = random.Random(6)
    api.post("/v1/banks", json={"name": "B"})
    data = _csv(rng, 200)  # > 2048 bytes: becomes a job
    r = api.post("/v1/banks/B/import", params={"format": "csv"}, content=data)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    spooled = _spool_files(api)
    assert len(spooled) == 1 and (spooled[0].stat().st_mode & 0o777) == 0o600
    j = api.get(f"/v1/jobs/{job_id}").json()
    assert j["status"] == "pending" and j["kind"] == "bank_import" and j["outcome"] is None
    assert "payload" not in j and "locked_by" not in j
    assert worker.run_until_idle(api.state, kinds=["bank_import"]) == 1
    j = api.get(f"/v1/jobs/{job_id}").json()
    assert j["status"] == "done" and j["outcome"] == "succeeded"
    assert j["result"]["report"]["added"] == 200
    assert api.get("/v1/banks/B").json()["total"] == 200
    assert _spool_files(api) == []  # cleaned up
    assert api.get("/v1/jobs/999999").status_code == 404
    assert api.get("/v1/jobs/abc").status_code == 422


def test_async_import_rejected_writes_nothing(api: Api) -> None:
    rng = random.Random(7)
    api.post("/v1/banks", json={"name": "B"})
    good = _csv(rng, 150).decode().splitlines()
    good.insert(40, "pdq,not-a-hash")
    good.append("sha1,abcd")
    r = api.post("/v1/banks/B/import", params={"format": "csv"}, content="\n".join(good).encode())
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    worker.run_until_idle(api.state, kinds=["bank_import"])
    j = api.get(f"/v1/jobs/{job_id}").json()
    assert j["status"] == "done" and j["outcome"] == "rejected"
    err = j["result"]["error"]
    assert err["code"] == "import_rejected"
    assert [e["line"] for e in err["errors"]] == [41, len(good)]
    assert api.get("/v1/banks/B").json()["total"] == 0
    assert _spool_files(api) == []


def test_async_import_survives_a_crashed_worker(api: Api) -> None:
    """A worker that dies mid-import (kill -9: no commit, no cleanup) leaves the
    bank untouched; the job is reclaimed after its lease and completes."""
    from datetime import timedelta

    from sentinelle.store.models import utcnow

    rng = random.Random(8)
    api.post("/v1/banks", json={"name": "B"})
    r = api.post("/v1/banks/B/import", params={"format": "csv"}, content=_csv(rng, 120))
    job_id = r.json()["job_id"]
    crashed = queue.claim(api.state.engine, "dead-instance", ["bank_import"], lease_s=30)
    assert crashed is not None and crashed.id == job_id
    assert api.get("/v1/banks/B").json()["total"] == 0
    later = utcnow() + timedelta(seconds=60)
    assert worker.run_once(api.state, kinds=["bank_import"], now=later)
    j = api.get(f"/v1/jobs/{job_id}").json()
    assert j["outcome"] == "succeeded" and j["attempts"] == 2
    assert api.get("/v1/banks/B").json()["total"] == 120


def test_import_too_large(db_url: str, tmp_path: Path) -> None:
    a = _make_api(db_url, tmp_path)
    object.__setattr__(a.state.settings, "max_import_bytes", 1000)
    with a.client:
        a.post("/v1/banks", json={"name": "B"})
        r = a.post("/v1/banks/B/import", params={"format": "pdq-list"}, content=b"a" * 5000)
        assert r.status_code == 413
        _err(r)
    assert list((tmp_path / "spool").glob("import-*")) == []
