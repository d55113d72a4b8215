"""HMA (OpenMediaMatch) compatibility routes: the exact JSON shapes HMA clients
such as ROOST's Coop read, over the real app and a real database."""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sentinelle.service.app import create_app
from sentinelle.service.keys import create_key
from sentinelle.service.settings import Settings
from sentinelle.signals.hasher import hash_bytes

PHOTOS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "photos" / "bsds500"
VIDEOS = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "vpdq" / "videos"


def _photo(i: int = 0) -> bytes:
    files = sorted(PHOTOS.glob("*.jpg"))
    if not files:
        pytest.fail(f"shared photos not found in {PHOTOS}")
    return files[i].read_bytes()


def _pdq_of(data: bytes) -> str:
    r = hash_bytes(data, signals=("pdq",))
    (s,) = r.signals
    return s.hash  # type: ignore[union-attr]


def _flip_bits(hexhash: str, n: int) -> str:
    v = int(hexhash, 16)
    for b in range(n):
        v ^= 1 << (b * 7)
    return f"{v:064x}"


class Hma:
    def __init__(self, client: TestClient, token: dict[str, str]) -> None:
        self.c = client
        self.t = token
        self.state = client.app.state.sentinelle  # type: ignore[attr-defined]

    def req(self, method: str, url: str, who: str = "admin", **kw):  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {self.t[who]}"} if who else {}
        return self.c.request(method, url, headers=headers, **kw)

    def sync(self) -> None:
        """What the background sync thread does every second."""
        self.state.matcher.refresh()


def _make(db_url: str, **settings: object) -> Hma:
    app = create_app(
        Settings(database_url=db_url, rate_limit=0, **settings), start_background=False
    )
    client = TestClient(app)
    engine = app.state.sentinelle.engine
    tokens = {s: create_key(engine, f"k-{s}", [s])[1] for s in ("scan", "curate", "admin")}
    return Hma(client, tokens)


@pytest.fixture()
def hma(db_url: str):  # type: ignore[no-untyped-def]
    h = _make(db_url)
    with h.c:
        yield h


def _message(resp) -> str:  # type: ignore[no-untyped-def]
    body = resp.json()
    assert isinstance(body["message"], str) and body["message"]
    assert body["error"]["message"] == body["message"]
    return body["message"]


# --------------------------------------------------------------- banks
def test_bank_routes_shapes(hma: Hma) -> None:
    # Coop sends enabled_ratio as a string
    r = hma.req("POST", "/c/banks", json={"name": "COOP_ORG1_MY_BANK", "enabled_ratio": "1"})
    assert r.status_code == 201
    assert r.json() == {"name": "COOP_ORG1_MY_BANK", "matching_enabled_ratio": 1.0}
    r = hma.req("POST", "/c/banks", json={"name": "COOP_ORG1_MY_BANK"})
    assert r.status_code == 403 and _message(r) == "Bank already exists"
    r = hma.req("POST", "/c/banks", json={"name": "OFF", "enabled": False})
    assert r.json() == {"name": "OFF", "matching_enabled_ratio": 0.0}
    assert hma.req("POST", "/c/banks", json={"enabled": True}).status_code == 400
    assert (
        hma.req("POST", "/c/banks", json={"name": "X", "enabled_ratio": "abc"}).status_code == 400
    )
    assert hma.req("POST", "/c/banks", json={"name": "X", "enabled_ratio": 7}).status_code == 400
    assert hma.req("POST", "/c/banks", content=b"{bad").status_code == 400
    assert hma.req("POST", "/c/banks", json=[1]).status_code == 400

    r = hma.req("GET", "/c/banks")
    assert r.status_code == 200
    assert r.json() == [
        {"name": "COOP_ORG1_MY_BANK", "matching_enabled_ratio": 1.0},
        {"name": "OFF", "matching_enabled_ratio": 0.0},
    ]
    assert hma.req("GET", "/c/bank/OFF").json() == {"name": "OFF", "matching_enabled_ratio": 0.0}
    r = hma.req("GET", "/c/bank/COOP_ORG1_RENAMED")
    assert r.status_code == 404 and "not found" in _message(r)

    r = hma.req("PUT", "/c/bank/OFF", json={"enabled_ratio": 1.0})
    assert r.json() == {"name": "OFF", "matching_enabled_ratio": 1.0}
    r = hma.req("PUT", "/c/bank/OFF", json={"name": "ON"})
    assert r.status_code == 200 and r.json()["name"] == "ON"
    assert hma.req("GET", "/c/bank/OFF").status_code == 404
    r = hma.req("PUT", "/c/bank/ON", json={"name": "COOP_ORG1_MY_BANK"})
    assert r.status_code == 403
    assert hma.req("PUT", "/c/bank/NOPE", json={"enabled": True}).status_code == 404

    # delete: HMA answers {"message": "Done"}, also for a missing bank; needs admin here
    assert hma.req("DELETE", "/c/bank/ON", who="curate").status_code == 403
    r = hma.req("DELETE", "/c/bank/ON")
    assert r.status_code == 200 and r.json() == {"message": "Done"}
    assert hma.req("DELETE", "/c/bank/ON").json() == {"message": "Done"}
    assert [b["name"] for b in hma.req("GET", "/c/banks").json()] == ["COOP_ORG1_MY_BANK"]


def test_static_config_routes(hma: Hma) -> None:
    assert hma.req("GET", "/c/signal_type").json() == [
        {"name": "pdq", "enabled_ratio": 1.0},
        {"name": "video_md5", "enabled_ratio": 1.0},
    ]
    assert {c["name"] for c in hma.req("GET", "/c/content_type").json()} == {"photo", "video"}
    assert "ncmec" in hma.req("GET", "/c/exchanges/apis").json()
    assert hma.req("GET", "/c/exchanges").json() == []
    assert hma.req("GET", "/c/exchange/COOP_ORG1_MY_BANK").status_code == 404


# --------------------------------------------------------- signals/match
def test_signal_add_and_raw_lookup(hma: Hma) -> None:
    rng = random.Random(1)
    hma.req("POST", "/c/banks", json={"name": "TEST_BANK"})
    pdqs = [f"{rng.getrandbits(256):064x}" for _ in range(3)]
    ids = []
    for p in pdqs:
        r = hma.req("POST", "/c/bank/TEST_BANK/signal", json={"pdq": p})
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"id", "signals"} and r.json()["signals"] == {"pdq": p}
        ids.append(r.json()["id"])
    md5 = hashlib.md5(b"benign").hexdigest()
    r = hma.req("POST", "/c/bank/TEST_BANK/signal", json={"video_md5": md5.upper()})
    assert r.json()["signals"] == {"video_md5": md5}
    md5_id = r.json()["id"]
    hma.sync()

    r = hma.req(
        "GET", "/m/raw_lookup", who="scan", params={"signal_type": "pdq", "signal": pdqs[1]}
    )
    assert r.status_code == 200 and r.json() == {"matches": [ids[1]]}
    near = _flip_bits(pdqs[2], 5)
    r = hma.req(
        "GET",
        "/m/raw_lookup",
        who="scan",
        params={"signal_type": "pdq", "signal": near, "include_distance": "true"},
    )
    assert r.json() == {"matches": [{"bank_content_id": ids[2], "distance": "5"}]}
    r = hma.req(
        "GET", "/m/raw_lookup", who="scan", params={"signal_type": "video_md5", "signal": md5}
    )
    assert r.json() == {"matches": [md5_id]}
    r = hma.req(
        "GET",
        "/m/raw_lookup",
        who="scan",
        params={"signal_type": "pdq", "signal": pdqs[0], "banks": "OTHER"},
    )
    assert r.json() == {"matches": []}
    far = f"{rng.getrandbits(256):064x}"
    r = hma.req("GET", "/m/raw_lookup", who="scan", params={"signal_type": "pdq", "signal": far})
    assert r.json() == {"matches": []}

    # lookup grouped by bank (the shape Coop reads)
    r = hma.req("GET", "/m/lookup", who="scan", params={"signal_type": "pdq", "signal": near})
    assert r.status_code == 200
    assert r.json() == {"TEST_BANK": [{"bank_content_id": ids[2], "distance": "5"}]}
    r = hma.req("GET", "/m/lookup", who="scan", params={"signal_type": "pdq", "signal": far})
    assert r.json() == {}

    # bad inputs: 400 with HMA's message
    bad = [
        {"signal_type": "pdq"},
        {"signal": pdqs[0]},
        {"signal_type": "nope", "signal": pdqs[0]},
        {"signal_type": "pdq", "signal": "xyz"},
        {"signal_type": "pdq", "signal": pdqs[0], "include_distance": "maybe"},
    ]
    for params in bad:
        r = hma.req("GET", "/m/raw_lookup", who="scan", params=params)
        assert r.status_code == 400, params
        _message(r)
    assert hma.req("GET", "/m/lookup", who="scan").status_code == 400
    for body in ({}, {"nope": pdqs[0]}, {"pdq": "zz"}, {"pdq": 5}):
        r = hma.req("POST", "/c/bank/TEST_BANK/signal", json=body)
        assert r.status_code == 400, body
    assert hma.req("POST", "/c/bank/NOPE/signal", json={"pdq": pdqs[0]}).status_code == 404


def test_index_status(hma: Hma) -> None:
    hma.req("POST", "/c/banks", json={"name": "B"})
    hma.req("POST", "/c/bank/B/signal", json={"pdq": "ab" * 32})
    r = hma.req("GET", "/m/index/status", who="scan")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"pdq", "video_md5"}
    assert set(body["pdq"]) == {"present", "built_to", "size"}
    assert body["pdq"]["present"] is True and body["pdq"]["size"] == 1
    assert body["pdq"]["built_to"] <= time.time() + 1
    r = hma.req("GET", "/m/index/status", who="scan", params={"signal_type": "pdq"})
    assert set(r.json()) == {"pdq"}
    assert (
        hma.req("GET", "/m/index/status", who="scan", params={"signal_type": "x"}).status_code
        == 400
    )


# ---------------------------------------------------------------- media
def test_hash_upload(hma: Hma) -> None:
    photo = _photo(0)
    r = hma.req("POST", "/h/hash", who="scan", files={"photo": ("a.jpg", photo, "image/jpeg")})
    assert r.status_code == 200, r.text
    assert r.json() == {"pdq": _pdq_of(photo)}
    video = sorted(VIDEOS.glob("*.mp4"))[0].read_bytes()
    r = hma.req("POST", "/h/hash", who="scan", files={"video": ("v.mp4", video, "video/mp4")})
    assert r.status_code == 200, r.text
    assert r.json() == {"video_md5": hashlib.md5(video).hexdigest()}

    # mislabelled, unknown field, two files, not multipart, garbage, truncated
    r = hma.req("POST", "/h/hash", who="scan", files={"video": ("a.jpg", photo, "video/mp4")})
    assert r.status_code == 422 and "not a video" in _message(r)
    r = hma.req("POST", "/h/hash", who="scan", files={"audio": ("a.jpg", photo)})
    assert r.status_code == 400 and "content_type" in _message(r)
    r = hma.req(
        "POST", "/h/hash", who="scan", files=[("photo", ("a", photo)), ("photo", ("b", photo))]
    )
    assert r.status_code == 400
    assert hma.req("POST", "/h/hash", who="scan", content=photo).status_code == 400
    r = hma.req("POST", "/h/hash", who="scan", files={"photo": ("x", b"\x00garbage" * 50)})
    assert r.status_code == 422
    r = hma.req("POST", "/h/hash", who="scan", files={"photo": ("x", photo[: len(photo) // 3])})
    assert 400 <= r.status_code < 500
    r = hma.req(
        "POST",
        "/h/hash",
        who="scan",
        params={"types": "video_md5"},
        files={"photo": ("a.jpg", photo)},
    )
    assert r.status_code == 400
    # URL fetching is off by default
    r = hma.req("GET", "/h/hash", who="scan", params={"url": "http://127.0.0.1/x.jpg"})
    assert r.status_code == 403 and _message(r)
    assert hma.req("GET", "/h/hash", who="scan").status_code == 400


def test_content_upload_lookup_and_lifecycle(hma: Hma) -> None:
    hma.req("POST", "/c/banks", json={"name": "COOP_ORG1_MY_BANK"})
    photo = _photo(1)
    r = hma.req(
        "POST",
        "/c/bank/COOP_ORG1_MY_BANK/content",
        who="curate",
        files={"photo": ("p.jpg", photo, "image/jpeg")},
        data={"content_id": "item-42", "note": "from a test"},
    )
    assert r.status_code == 200, r.text
    cid = r.json()["id"]
    assert r.json()["signals"] == {"pdq": _pdq_of(photo)}
    hma.sync()

    # POST /m/lookup with the same file: {signal_type: {bank: [matches]}}
    r = hma.req("POST", "/m/lookup", who="scan", files={"photo": ("q.jpg", photo)})
    assert r.status_code == 200, r.text
    assert r.json() == {"pdq": {"COOP_ORG1_MY_BANK": [{"bank_content_id": cid, "distance": "0"}]}}
    other = _photo(5)
    r = hma.req("POST", "/m/lookup", who="scan", files={"photo": ("q.jpg", other)})
    assert r.json() == {"pdq": {}}

    # content view, disable / re-enable, delete
    r = hma.req(
        "GET", f"/c/bank/COOP_ORG1_MY_BANK/content/{cid}", params={"include_signals": "true"}
    )
    c = r.json()
    assert r.status_code == 200
    assert c["id"] == cid and c["disable_until_ts"] == 1 and c["note"] == "from a test"
    assert c["bank"] == {"name": "COOP_ORG1_MY_BANK", "matching_enabled_ratio": 1.0}
    assert c["signals"] == {"pdq": _pdq_of(photo)} and c["metadata"] == {"content_id": "item-42"}
    assert "signals" not in hma.req("GET", f"/c/bank/COOP_ORG1_MY_BANK/content/{cid}").json()

    until = int(time.time()) + 3600
    r = hma.req("PUT", f"/c/bank/COOP_ORG1_MY_BANK/content/{cid}", json={"disable_until_ts": until})
    assert r.status_code == 200 and r.json()["disable_until_ts"] == until
    hma.sync()
    r = hma.req("POST", "/m/lookup", who="scan", files={"photo": ("q.jpg", photo)})
    assert r.json() == {"pdq": {}}
    r = hma.req("PUT", f"/c/bank/COOP_ORG1_MY_BANK/content/{cid}", json={"disable_until_ts": 1})
    assert r.json()["disable_until_ts"] == 1
    for bad in (-1, until + 10 * 365 * 24 * 3600, "soon", 1.5):
        r = hma.req(
            "PUT", f"/c/bank/COOP_ORG1_MY_BANK/content/{cid}", json={"disable_until_ts": bad}
        )
        assert r.status_code == 400, bad
    assert hma.req("GET", "/c/bank/COOP_ORG1_MY_BANK/content/999999").status_code == 404
    assert hma.req("GET", f"/c/bank/NOPE/content/{cid}").status_code == 404

    r = hma.req("DELETE", f"/c/bank/COOP_ORG1_MY_BANK/content/{cid}", who="curate")
    assert r.status_code == 200 and r.json() == {"deleted": 1}
    hma.sync()
    r = hma.req("POST", "/m/lookup", who="scan", files={"photo": ("q.jpg", photo)})
    assert r.json() == {"pdq": {}}
    assert hma.req("DELETE", f"/c/bank/COOP_ORG1_MY_BANK/content/{cid}").status_code == 404

    # neither url nor file; bad metadata; unknown bank
    assert hma.req("POST", "/c/bank/COOP_ORG1_MY_BANK/content").status_code == 400
    assert hma.req("POST", "/c/bank/NOPE/content", files={"photo": ("p", photo)}).status_code == 404
    r = hma.req(
        "POST",
        "/c/bank/COOP_ORG1_MY_BANK/content",
        files={"photo": ("p", photo)},
        data={"note": "n" * 300},
    )
    assert r.status_code == 400


def test_multi_signal_content_is_one_group(hma: Hma) -> None:
    hma.req("POST", "/c/banks", json={"name": "B"})
    md5 = hashlib.md5(b"x").hexdigest()
    r = hma.req("POST", "/c/bank/B/signal", json={"pdq": "cd" * 32, "video_md5": md5})
    cid = r.json()["id"]
    c = hma.req("GET", f"/c/bank/B/content/{cid}", params={"include_signals": "1"}).json()
    assert c["signals"] == {"pdq": "cd" * 32, "video_md5": md5}
    assert (
        hma.req("PUT", f"/c/bank/B/content/{cid}", json={"disable_until_ts": 0}).json()[
            "disable_until_ts"
        ]
        == 0
    )
    assert hma.req("DELETE", f"/c/bank/B/content/{cid}").json() == {"deleted": 2}


def test_auth_and_allow_list(db_url: str) -> None:
    h = _make(db_url)
    with h.c:
        assert h.req("GET", "/c/banks", who="").status_code == 401
        assert h.req("GET", "/m/raw_lookup", who="").status_code == 401
        assert h.req("GET", "/c/banks", who="scan").status_code == 403
        assert h.req("POST", "/c/banks", who="scan", json={"name": "X"}).status_code == 403
        r = h.req(
            "GET", "/m/raw_lookup", who="curate", params={"signal_type": "pdq", "signal": "ab" * 32}
        )
        assert r.status_code == 403
    # the operator allow-lists 10.0.0.0/8: a client there needs no key for /c, /h, /m
    h2 = _make(db_url, hma_allowlist=("10.0.0.0/8",))
    listed = TestClient(h2.c.app, client=("10.1.2.3", 40000))
    outside = TestClient(h2.c.app, client=("192.0.2.7", 40000))
    with h2.c:
        r = listed.post("/c/banks", json={"name": "B"})
        assert r.status_code == 201
        assert listed.get("/c/banks").json() == [{"name": "B", "matching_enabled_ratio": 1.0}]
        r = listed.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": "ab" * 32})
        assert r.status_code == 200
        assert listed.delete("/c/bank/B").status_code == 403  # admin needs a real key
        assert listed.get("/v1/banks").status_code == 401  # only the HMA routes
        assert outside.get("/c/banks").status_code == 401
