"""The bulk path (stage pages, materialise set-wise) and the C-level NCMEC extraction.

* A staged fetch leaves the bank, the records and the tombstones exactly as the
  page-by-page fetch of the same stream does: updates, deletions, a key twice on a
  page and across pages (last write wins), shared hashes, unknown types, bad
  hashes, an operator tombstone, this exchange's own tombstone revived, a second
  fetch that rewrites earlier keys.
* ``kill -9`` of a staging fetch at random points (a real process on a real SQLite
  file): the next fetch materialises the leftovers first; nothing lost or doubled.
* A malformed page stages nothing and does not move the checkpoint; the good
  pages before it are materialised when the fetch ends.
* The XSLT extraction gives the Python walk's records on odd pages.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import xhelpers
from ncmec_server import NS, Event, ListSource, NCMECServer
from xhelpers import T0, bank_hashes, no_sleep, secret_file

from sentinelle.exchanges import bulk, ncmec, runner, xmlsafe
from sentinelle.exchanges.credentials import make_ref
from sentinelle.exchanges.ncmec import NCMECExchange
from sentinelle.exchanges.store import LeaseLost
from sentinelle.exchanges.transport import HttpTransport

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clock(ncmec_clock):  # type: ignore[no-untyped-def]
    return ncmec_clock


def md5(i: int) -> str:
    return xhelpers.md5(i, "gravel")


def pdq(i: int) -> str:
    return xhelpers.pdq(i, "gravel")


def add(xstore, srv, tmp_path, name):  # type: ignore[no-untyped-def]
    path = secret_file(tmp_path, f"{srv.username}:{srv.password}", f"{name}.creds")
    config = {"base_url": srv.url, "start_time": T0 - 10, "window_s": 3600}
    return xstore.add(name, "ncmec", config=config, credential_ref=make_ref(file=path))


def fetch(xstore, name, **kw):  # type: ignore[no-untyped-def]
    http = HttpTransport(sleep=no_sleep, backoff_s=0)
    try:
        return runner.run_fetch(xstore, name, http=http, sleep=no_sleep, **kw)
    finally:
        http.close()


def first_stream() -> list[Event]:
    evs = []
    for i in range(120):
        fps = {"md5": md5(i % 100), "pdq": pdq(i)}  # 100..119 share md5 with 0..19
        if i % 7 == 0:
            fps["pdna"] = "ab" * 72  # unknown (not banked)
        if i == 50:
            fps["md5"] = "not-hex"  # malformed hash: counted, pdq still banked
        evs.append(Event(T0 + i, "42" if i % 3 else "43", f"e{i}", fingerprints=fps))
    evs.append(Event(T0 + 200, "42", "", fingerprints={"md5": md5(500)}))  # no id: malformed
    evs.append(Event(T0 + 201, "42", "only-pdna", fingerprints={"pdna": "cd" * 72}))
    evs.append(Event(T0 + 202, "44", "v1", kind="video", fingerprints={"md5": md5(600)}))
    # updates: e5 a new pdq (old one goes); e7 twice next to each other (same page)
    evs.append(Event(T0 + 300, "43", "e6", fingerprints={"md5": md5(6), "pdq": pdq(1006)}))
    evs.append(Event(T0 + 301, "43", "e6", fingerprints={"md5": md5(6), "pdq": pdq(2006)}))
    evs.append(Event(T0 + 302, "42", "e5", fingerprints={"md5": md5(5), "pdq": pdq(1005)}))
    # deletions: e10..e14 (their md5 is shared with e110..e114: stays), e20, e21
    for i in (10, 11, 12, 13, 14, 20, 21):
        evs.append(Event(T0 + 400 + i, "42" if i % 3 else "43", f"e{i}", deleted=True))
    # e21's pdq comes back in a new record later in the same fetch (revived)
    evs.append(Event(T0 + 500, "45", "r1", fingerprints={"pdq": pdq(21)}))
    # the operator's tombstone blocks this one
    evs.append(Event(T0 + 501, "45", "r2", fingerprints={"md5": md5(700)}))
    return evs


def second_stream(now: int) -> list[Event]:
    return [
        Event(now + 1, "42", "e1", fingerprints={"md5": md5(1), "pdq": pdq(3001)}),
        Event(now + 2, "42", "e2", deleted=True),
        Event(now + 3, "42", "e110", deleted=True),  # md5(10) now held by nobody
        Event(now + 4, "45", "r1", fingerprints={"pdq": pdq(21), "md5": md5(21)}),
        Event(now + 5, "42", "e20", fingerprints={"md5": md5(20)}),  # comes back
        Event(now + 6, "42", "e4", fingerprints={"pdna": "ee" * 72}),  # emptied
    ]


def snapshot(xstore, name):  # type: ignore[no-untyped-def]
    """What must be equal between the paths. A bank entry's provenance (source_org,
    external_id) is the first record that brought its hash in: page by page that
    can be a record deleted since (a shared hash stays); the bulk path names the
    first final record holding it (its member is checked)."""
    info = xstore.get(name)
    with xstore.engine.connect() as conn:
        rows = {
            (r.signal_type, r.hash, r.source_org.split("/", 1)[-1], r.external_id, r.category)
            for r in conn.execute(
                sa.text(
                    "SELECT signal_type, hash, source_org, external_id, category FROM "
                    "bank_entries WHERE bank_id = :b"
                ),
                {"b": info.bank_id},
            )
        }
        records = set(
            conn.execute(
                sa.text(
                    "SELECT record_key, signal_type, hash, owner, category, tags FROM "
                    "exchange_records WHERE exchange_id = :x"
                ),
                {"x": info.id},
            ).all()
        )
        staged = conn.execute(
            sa.text("SELECT COUNT(*) FROM exchange_staged WHERE exchange_id = :x"), {"x": info.id}
        ).scalar_one()
    assert all(k.startswith(o.removeprefix("member ") + "-") for _, _, o, k, _ in rows)
    entries = {(st, h, c) for st, h, _, _, c in rows}
    tombs = {
        (st, h, reason.replace(name, "X")) for st, h, _, reason in xstore.banks.tombstones(name)
    }
    c = info.counts
    counts = (
        c["records_seen"],
        c["entries_added"] - c["entries_deleted"],
        c["unknown_types"],
        c["malformed"],
        c["skipped_tombstoned"],
    )
    return entries, records, tombs, counts, staged


def test_staged_fetch_equals_page_by_page_fetch(xstore, tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    src = ListSource(first_stream())
    names = {"paged": {"bulk_after_pages": None}, "staged": {"bulk_after_pages": 0}}
    names["chunked"] = {"bulk_after_pages": 2, "stage_max_records": 20}
    with NCMECServer(src, page_size=15) as srv:
        for name in names:
            add(xstore, srv, tmp_path, name)
            with xstore.engine.begin() as conn:  # an operator's tombstone
                conn.execute(
                    sa.text(
                        "INSERT INTO tombstones (bank_id, signal_type, hash, deleted_at, reason) "
                        "VALUES (:b, 'md5', :h, '2026-01-01 00:00:00.000000', 'operator')"
                    ),
                    {"b": xstore.get(name).bank_id, "h": md5(700)},
                )
        for name, kw in names.items():
            out = fetch(xstore, name, **kw)
            assert out.error is None and out.up_to_date, out.error
        snaps = {name: snapshot(xstore, name) for name in names}
        assert snaps["staged"] == snaps["paged"] == snaps["chunked"]
        entries, records, tombs, counts, staged = snaps["paged"]
        assert staged == 0 and counts[2] > 0 and counts[3] == 2 and counts[4] == 1
        have = bank_hashes(xstore, "staged")
        assert ("md5", md5(10)) in have and ("pdq", pdq(10)) not in have
        assert ("pdq", pdq(21)) in have and ("pdq", pdq(2006)) in have
        assert ("pdq", pdq(1006)) not in have and ("pdq", pdq(5)) not in have
        assert ("md5", md5(700)) not in have
        later = int(clock["now"]) + 10
        for ev in second_stream(later):
            src.add(ev)
        clock["now"] += 3600
        for name, kw in names.items():
            again = {**kw, "bulk_after_pages": None if kw["bulk_after_pages"] is None else 0}
            out = fetch(xstore, name, **again)
            assert out.error is None and out.up_to_date, out.error
        snaps = {name: snapshot(xstore, name) for name in names}
        assert snaps["staged"] == snaps["paged"] == snaps["chunked"]
        have = bank_hashes(xstore, "staged")
        assert ("md5", md5(10)) not in have and ("md5", md5(20)) in have
        assert ("pdq", pdq(3001)) in have and ("pdq", pdq(1)) not in have
        assert ("pdq", pdq(4)) not in have and ("pdq", pdq(2)) not in have
        tombs = {(st, h) for st, h, _, _ in xstore.banks.tombstones("staged")}
        assert ("md5", md5(10)) in tombs and ("md5", md5(20)) not in tombs


def test_materialise_is_fenced_on_the_lease(xstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = ListSource(first_stream())
    with NCMECServer(src, page_size=15) as srv:
        add(xstore, srv, tmp_path, "x")
        info = xstore.acquire_lease("x", "me", 60)
        api = runner.build_api(info, HttpTransport(sleep=no_sleep))
        page = next(iter(api.fetch(info.checkpoint)))
        bulk.stage_page(xstore, info, page, "me", 60)
        assert bulk.staged_count(xstore, info) > 0 and bank_hashes(xstore, "x") == set()
        with pytest.raises(LeaseLost):
            bulk.materialise(xstore, info, "someone-else")
        assert bulk.staged_count(xstore, info) > 0 and bank_hashes(xstore, "x") == set()
        res = bulk.materialise(xstore, info, "me")
        assert res.entries_added == len(bank_hashes(xstore, "x")) > 0
        assert bulk.staged_count(xstore, info) == 0
        assert bulk.materialise(xstore, info, "me").entries_added == 0  # nothing twice


def test_malformed_page_stages_nothing_and_keeps_the_checkpoint(xstore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = ListSource(first_stream())
    with NCMECServer(src, page_size=15) as srv:
        add(xstore, srv, tmp_path, "x")
        fetch(xstore, "x", max_pages=2, bulk_after_pages=0)
        info = xstore.get("x")
        cp, before = info.checkpoint, bank_hashes(xstore, "x")
        assert len(before) > 0 and bulk.staged_count(xstore, info) == 0
        srv.fail_next("truncated", times=3, path="/v2/entries")
        out = fetch(xstore, "x", page_retries=2, bulk_after_pages=0)
        assert out.error_code == "bad_xml"
        info = xstore.get("x")
        assert info.checkpoint == cp and bulk.staged_count(xstore, info) == 0
        assert bank_hashes(xstore, "x") == before
        out = fetch(xstore, "x", bulk_after_pages=0)
        assert out.error is None and out.up_to_date


CHILD = """
import sys
from sentinelle.exchanges.runner import run_fetch
def page(r):
    print("page", flush=True)
out = run_fetch(sys.argv[1], "x", lease_s=1.0, on_page=page, bulk_after_pages=1,
                stage_max_records=int(sys.argv[2]))
print("done", out.error, out.up_to_date, flush=True)
"""


class SlowNCMEC(NCMECServer):
    def handle(self, req):  # type: ignore[no-untyped-def]
        time.sleep(0.01)
        return super().handle(req)


@pytest.mark.slow
def test_kill_9_while_staging_or_materialising_loses_nothing(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sentinelle.exchanges.store import ExchangeStore
    from sentinelle.store.db import open_engine

    monkeypatch.setattr(ncmec, "now", time.time)  # the child process uses the real clock
    db_url = f"sqlite:///{tmp_path}/kill.db"
    xstore = ExchangeStore(open_engine(db_url))
    rng = random.Random(5)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    evs = [Event(T0 + i, "42", f"e{i}", fingerprints={"md5": md5(i)}) for i in range(400)]
    evs += [Event(T0 + 500 + i, "42", f"e{i * 5}", deleted=True) for i in range(60)]
    want = {("md5", md5(i)) for i in range(400) if not (i % 5 == 0 and i // 5 < 60)}
    with SlowNCMEC(ListSource(evs), page_size=15) as srv:
        add(xstore, srv, tmp_path, "x")
        kills = 0
        while kills < 8:
            proc = subprocess.Popen(
                [sys.executable, "-c", CHILD, db_url, str(rng.choice([30, 60, 10**6]))],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert proc.stdout is not None
            wait_pages, seen, finished = rng.randint(1, 6), 0, False
            while seen <= wait_pages:
                line = proc.stdout.readline()
                if not line or line.startswith("done"):
                    finished = True
                    break
                seen += 1
            if finished:
                proc.wait(timeout=30)
                break
            time.sleep(rng.uniform(0, 0.03))
            proc.kill()
            proc.wait(timeout=30)
            kills += 1
            time.sleep(1.05)
        assert kills >= 4
        out = fetch(xstore, "x", lease_s=1.0, bulk_after_pages=1)
        assert out.error is None and out.up_to_date
        assert bank_hashes(xstore, "x") == want
        assert xstore.record_count("x") == len(want)
        assert bulk.staged_count(xstore, xstore.get("x")) == 0
    xstore.engine.dispose()


ODD = f"""<?xml version="1.0" encoding="UTF-8"?>
<queryResult xmlns="{NS}"><images>
  <image><member id=" 42 ">  Some Member </member><id> a1 </id>
    <classification> A2 </classification>
    <fingerprints><MD5> {md5(1).upper()} </MD5><pdq/><pdna>ab</pdna><weird>x</weird>
    </fingerprints><fingerprints><md5>{md5(2)}</md5></fingerprints></image>
  <image><member>no id attr</member><id>a2</id></image>
  <image><id>a3</id></image>
  <image><member id="42"/><id>   </id></image>
  <image><member id="42"/><id>a4</id><id>a5</id><classification/><member id="9"/></image>
  <deletedImage><member id="43">M</member><id>d1</id></deletedImage>
  <other><member id="42"/><id>zz</id></other>
  <image><member id="{"9" * 41}"/><id>long</id></image>
  <image><member id="42">x<b>bold</b>tail</member><id><b>in</b>id</id>
    <fingerprints><sha1>{hashlib.sha1(b"q").hexdigest()}</sha1></fingerprints></image>
</images><videos><video><member id="44"/><id>v1</id><fingerprints>
  <md5>{md5(3)}</md5><videntifier rel="self" href="/v"/></fingerprints></video>
  <deletedVideo><member id="44"/><id>v0</id></deletedVideo></videos>
<paging/></queryResult>"""


def test_xslt_extraction_equals_the_python_walk() -> None:
    api = NCMECExchange.__new__(NCMECExchange)
    for body in (ODD.encode(), ODD.replace(f' xmlns="{NS}"', "").encode()):
        root = xmlsafe.parse(body, "test")
        fast = ncmec._extracted_records(str(ncmec._extractor()(root)))
        slow = api._records(root)
        assert fast == slow
        assert fast[1] == 5 and len(fast[0]) == 5
    # a page that could hold the separators takes the Python walk
    body = ODD.replace("Some Member", "Some &#xE000; Member").encode()
    root = xmlsafe.parse(body, "test")
    assert api._page_records(root, body) == api._records(root)
    assert api._records(root)[0][0].extra == {"member": "Some \ue000 Member"}
