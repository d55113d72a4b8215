"""BankStore on real databases: SQLite files and PostgreSQL schemas (``db_url``)."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import inspect

from sentinelle.banks import BankStore
from sentinelle.errors import BankError, BankImportError
from sentinelle.formats import FORMATS, EntryIn
from sentinelle.store.db import current_revision, head_revision, open_engine

RNG = np.random.default_rng(3)
TABLES = {"banks", "bank_thresholds", "bank_entries", "tombstones", "change_log"}


def rhex(nbytes: int) -> str:
    return RNG.integers(0, 256, nbytes, dtype=np.uint8).tobytes().hex()


@pytest.fixture()
def store(db_url: str) -> BankStore:
    s = BankStore(open_engine(db_url))
    yield s
    s.engine.dispose()


def sample_entries() -> list[EntryIn]:
    m = "vics:1"
    return [
        EntryIn("md5", rhex(16), media_ref=m, external_id="1", category="A1"),
        EntryIn("sha1", rhex(20), media_ref=m, external_id="1", category="A1"),
        EntryIn("sha256", rhex(32), media_ref=m, external_id="1", category="A1"),
        EntryIn("pdq", rhex(32), media_ref=m, external_id="1", category="A1"),
        EntryIn("pdq", rhex(32), media_ref="vics:2", external_id="2", category="B2"),
        EntryIn("md5", rhex(16), media_ref="vics:2", external_id="2", category="B2"),
    ]


def fmt_bytes(fmt: str, entries: list[EntryIn]) -> bytes:
    buf = io.BytesIO()
    FORMATS[fmt].write(entries, buf)
    return buf.getvalue()


def keys(store: BankStore, bank: str) -> set[tuple]:
    return {(e.signal_type, e.hash, e.variant) for e in store.iter_entries(bank)}


# ---------------------------------------------------------------- migrations
def test_migrations_are_idempotent(db_url: str) -> None:
    e1 = open_engine(db_url)
    assert current_revision(e1) == head_revision() is not None
    assert set(inspect(e1).get_table_names()) >= TABLES
    BankStore(e1).create_bank("keep")
    e2 = open_engine(db_url)  # second run: nothing to do, data untouched
    assert current_revision(e2) == head_revision()
    assert [b.name for b in BankStore(e2).list_banks()] == ["keep"]
    e1.dispose()
    e2.dispose()


def test_concurrent_migrations_threads_and_processes(db_url: str) -> None:
    code = "import sys; from sentinelle.store.db import open_engine; open_engine(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, db_url], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            open_engine(db_url).dispose()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    outcomes = [(p.wait(120), p.stderr.read()[-2000:]) for p in procs]  # type: ignore[union-attr]
    assert [rc for rc, _ in outcomes] == [0, 0, 0], outcomes
    assert errors == [], errors
    engine = open_engine(db_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_unreachable_or_bad_database_is_a_clean_error(tmp_path) -> None:
    from sentinelle.store.db import DatabaseError

    with pytest.raises(DatabaseError):
        open_engine("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(DatabaseError):
        open_engine("nosuchdb://x")
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(DatabaseError):
        open_engine(f"sqlite:///{tmp_path / 'junk.db'}")


# --------------------------------------------------------------------- banks
def test_bank_lifecycle_and_thresholds(store: BankStore) -> None:
    info = store.create_bank("ncmec", "industry list", thresholds={"pdq": 28})
    assert info.name == "ncmec" and info.enabled and info.total == 0
    assert store.thresholds("ncmec") == {
        "pdq": 28, "vpdq": 31, "md5": 0, "sha1": 0, "sha256": 0,
        "file_sha256": 0, "tensor_sha256": 0, "tensor_part_sha": 0,
    }  # fmt: skip
    store.create_bank("other")
    with pytest.raises(BankError) as exc:
        store.create_bank("ncmec")
    assert exc.value.code == "bank_exists"
    for bad in ("", " x", "a\nb", "x" * 201):
        with pytest.raises(BankError):
            store.create_bank(bad)
    store.set_threshold("ncmec", "vpdq", 20)
    assert store.thresholds("ncmec")["vpdq"] == 20
    for sig, d in (("md5", 1), ("pdq", 300), ("pdq", -1), ("photodna", 3), ("pdq", "5")):
        with pytest.raises(BankError):
            store.set_threshold("ncmec", sig, d)  # type: ignore[arg-type]
    with pytest.raises(BankError) as exc:
        store.get_bank("nope")
    assert exc.value.code == "unknown_bank"
    store.add_entries("ncmec", sample_entries())
    (b1, b2) = store.list_banks()
    assert (b1.name, b2.name) == ("ncmec", "other")
    assert b1.counts == {"md5": 2, "sha1": 1, "sha256": 1, "pdq": 2} and b1.total == 6
    store.set_bank_enabled("ncmec", False)
    assert not store.get_bank("ncmec").enabled
    assert len(store.load_signal("pdq")) == 0
    store.set_bank_enabled("ncmec", True)
    seq = store.current_seq()
    store.delete_bank("ncmec")
    assert [b.name for b in store.list_banks()] == ["other"]
    assert [(c.op, c.entry_id) for c in store.changes_since(seq)] == [("delete", None)]
    with pytest.raises(BankError):
        store.delete_bank("ncmec")


# -------------------------------------------------------------------- imports
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_import_export_reimport_roundtrip(store: BankStore, fmt: str) -> None:
    entries = sample_entries()
    if fmt == "pdq-list":
        entries = [e for e in entries if e.signal_type == "pdq"]
    elif fmt == "md5-list":
        entries = [e for e in entries if e.signal_type == "md5"]
    elif fmt == "threatexchange":
        entries = [e for e in entries if e.signal_type != "sha1"]
    elif fmt == "icse":  # ICSE rows hold MD5 and SHA1 only
        entries = [e for e in entries if e.signal_type in ("md5", "sha1")]
    store.create_bank("src")
    store.create_bank("dst")
    first = store.import_file("src", io.BytesIO(fmt_bytes(fmt, entries)), fmt)
    assert (first.added, first.duplicates, first.total) == (len(entries), 0, len(entries))
    out = io.BytesIO()
    assert store.export("src", fmt, out) == len(entries)
    again = store.import_file("dst", io.BytesIO(out.getvalue()), fmt)
    assert again.added == len(entries)
    assert keys(store, "dst") == keys(store, "src") == {e.key for e in entries}
    if fmt in ("csv", "vics"):  # metadata survives the trip
        meta = {(e.hash, e.category, e.external_id) for e in store.iter_entries("dst")}
        assert meta == {(e.hash, e.category, e.external_id) for e in entries}
    # idempotent: the same file again adds nothing
    same = store.import_file("dst", io.BytesIO(out.getvalue()), fmt)
    assert (same.added, same.duplicates, same.total) == (0, len(entries), len(entries))


def test_import_from_path_and_missing_file(store: BankStore, tmp_path) -> None:
    store.create_bank("b")
    p = tmp_path / "list.txt"
    p.write_text("\n".join(rhex(32) for _ in range(5)) + "\n")
    assert store.import_file("b", p, "pdq-list").added == 5
    assert store.import_file("b", str(p), "pdq-list").duplicates == 5
    with pytest.raises(BankImportError, match="cannot read"):
        store.import_file("b", tmp_path / "missing.txt", "pdq-list")
    with pytest.raises(BankError):
        store.import_file("nope", p, "pdq-list")
    with pytest.raises(BankImportError, match="unknown format"):
        store.import_file("b", p, "xml")


BAD_INPUTS = {
    "csv": b"type,hash\nmd5," + b"a" * 32 + b"\nmd5,zz\n",
    "vics": b'{"value": [{"Media": [{"MD5": "' + b"a" * 32 + b'"}, {"MD5": "x"}]}]}',
    "pdq-list": b"a" * 64 + b"\n" + b"b" * 63 + b"\n",
    "md5-list": b"a" * 32 + b"\n\xff\xfe\n",
    "threatexchange": b"pdq " + b"a" * 64 + b"\nraw_text hello\n",
}


@pytest.mark.parametrize("fmt", sorted(BAD_INPUTS))
def test_bad_import_changes_nothing(store: BankStore, fmt: str) -> None:
    store.create_bank("b")
    store.add_entries("b", [EntryIn("md5", "c" * 32)])
    before = (keys(store, "b"), store.current_seq(), store.get_bank("b").counts)
    with pytest.raises(BankImportError) as exc:
        store.import_file("b", io.BytesIO(BAD_INPUTS[fmt]), fmt)
    assert [e.line for e in exc.value.errors] == [3 if fmt == "csv" else 2]
    assert (keys(store, "b"), store.current_seq(), store.get_bank("b").counts) == before


def test_add_entries_validates_everything_first(store: BankStore) -> None:
    store.create_bank("b")
    good = EntryIn("pdq", rhex(32))
    bad = [
        good,
        EntryIn("pdq", "zz"),
        EntryIn("md5", "A" * 32),  # uppercase is fine: normalized
        EntryIn("photodna", "a" * 32),
        EntryIn("md5", "b" * 32, note="x" * 10_000),
        EntryIn("md5", "d" * 32, variant="v" * 65),
    ]
    with pytest.raises(BankImportError) as exc:
        store.add_entries("b", bad)
    assert [e.line for e in exc.value.errors] == [2, 4, 5, 6]
    assert store.get_bank("b").total == 0 and store.current_seq() == 1  # only the create
    rep = store.add_entries("b", [good, good, EntryIn("md5", "A" * 32)])
    assert (rep.added, rep.duplicates, rep.total) == (2, 1, 3)
    assert store.get_entry(max(e.id for e in store.iter_entries("b"))) is not None
    assert {e.hash for e in store.iter_entries("b", "md5")} == {"a" * 32}


def test_variants_share_media_ref(store: BankStore) -> None:
    store.create_bank("b")
    h = rhex(32)
    rep = store.add_entries(
        "b",
        [
            EntryIn("pdq", h, media_ref="m"),
            EntryIn("pdq", h, variant="crop10", media_ref="m"),
            EntryIn("pdq", rhex(32), variant="crop20", media_ref="m"),
        ],
    )
    assert rep.added == 3
    loaded = store.load_signal("pdq")
    assert sorted(loaded.variants) == ["crop10", "crop20", "plain"]
    assert loaded.media_refs == ["m", "m", "m"]


# ------------------------------------------------------- tombstones, entries
def test_tombstones_block_resurrection(store: BankStore) -> None:
    store.create_bank("b")
    store.create_bank("other")
    hashes = [rhex(32) for _ in range(4)]
    data = ("\n".join(hashes) + "\n").encode()
    store.import_file("b", io.BytesIO(data), "pdq-list")
    victim = next(e for e in store.iter_entries("b") if e.hash == hashes[1])
    store.delete_entry(victim.id, reason="false positive")
    assert store.get_entry(victim.id) is None
    assert [(t[0], t[1], t[3]) for t in store.tombstones("b")] == [
        ("pdq", hashes[1], "false positive")
    ]
    rep = store.import_file("b", io.BytesIO(data), "pdq-list")
    assert (rep.added, rep.duplicates, rep.skipped_tombstoned, rep.total) == (0, 3, 1, 4)
    assert hashes[1] not in {e.hash for e in store.iter_entries("b")}
    # tombstones are per bank
    assert store.import_file("other", io.BytesIO(data), "pdq-list").added == 4
    with pytest.raises(BankError) as exc:
        store.delete_entry(victim.id)
    assert exc.value.code == "unknown_entry"


def test_entry_state_and_load_signal(store: BankStore) -> None:
    store.create_bank("a")
    store.create_bank("b")
    pdqs = [rhex(32) for _ in range(5)]
    store.add_entries("a", [EntryIn("pdq", h) for h in pdqs[:4]])
    store.add_entries("b", [EntryIn("pdq", pdqs[4]), EntryIn("md5", "e" * 32)])
    ids = {e.hash: e.id for e in store.iter_entries("a")}
    loaded = store.load_signal("pdq")
    assert loaded.entry_ids.dtype == np.int64 and loaded.bank_ids.dtype == np.int32
    assert loaded.hashes.dtype == np.uint8 and loaded.hashes.shape == (5, 32)
    assert sorted(bytes(r).hex() for r in loaded.hashes) == sorted(pdqs)
    assert set(loaded.bank_names.values()) == {"a", "b"}
    assert loaded.thresholds == {store.get_bank("a").id: 31, store.get_bank("b").id: 31}
    exact = store.load_signal("md5")
    assert exact.hashes == ["e" * 32] and len(exact) == 1

    store.disable_entry(ids[pdqs[0]])
    future = datetime.now(UTC) + timedelta(days=1)
    e1 = store.disable_entry(ids[pdqs[1]], until=future)
    assert e1.enabled and e1.disabled_until == future.replace(microsecond=future.microsecond)
    assert not e1.is_active()
    active = {bytes(r).hex() for r in store.load_signal("pdq").hashes}
    assert active == set(pdqs[2:])
    # after the until-time the entry counts again
    later = {bytes(r).hex() for r in store.load_signal("pdq", now=future + timedelta(1)).hashes}
    assert later == set(pdqs[1:])
    assert len(store.load_signal("pdq", banks=["b"])) == 1
    with pytest.raises(BankError):
        store.load_signal("pdq", banks=["zzz"])
    with pytest.raises(BankError):
        store.load_signal("photodna")
    store.enable_entry(ids[pdqs[0]])
    store.enable_entry(ids[pdqs[1]])
    assert len(store.load_signal("pdq")) == 5

    upd = store.update_entry(ids[pdqs[2]], category="B1", note="checked")
    assert (upd.category, upd.note) == ("B1", "checked")
    for bad in ({"hash": "00"}, {"note": 5}, {"disabled_until": "tomorrow"}):
        with pytest.raises(BankError):
            store.update_entry(ids[pdqs[2]], **bad)
    with pytest.raises(BankError):
        store.update_entry(10**9, note="x")
    assert store.get_entry(10**9) is None


def test_change_log_follows_every_write(store: BankStore) -> None:
    store.create_bank("a")
    start = store.current_seq()
    store.add_entries("a", [EntryIn("pdq", rhex(32)) for _ in range(3)])
    ids = [e.id for e in store.iter_entries("a")]
    store.update_entry(ids[0], note="x")
    store.disable_entry(ids[1])
    store.enable_entry(ids[1])
    store.delete_entry(ids[2])
    store.set_threshold("a", "pdq", 20)
    ch = store.changes_since(start)
    assert [(c.op, c.entry_id) for c in ch] == [
        ("add", ids[0]),
        ("add", ids[1]),
        ("add", ids[2]),
        ("update", ids[0]),
        ("disable", ids[1]),
        ("enable", ids[1]),
        ("delete", ids[2]),
        ("update", None),
    ]
    seqs = [c.seq for c in ch]
    assert seqs == sorted(seqs) and seqs[-1] == store.current_seq()
    assert store.changes_since(store.current_seq()) == []
    assert len(store.changes_since(start, limit=2)) == 2
    # a re-import that adds nothing logs nothing
    seq = store.current_seq()
    store.add_entries("a", [EntryIn("pdq", e.hash) for e in store.iter_entries("a")])
    assert store.current_seq() == seq


def test_iter_entries_pages_and_filters(store: BankStore) -> None:
    store.create_bank("a")
    store.add_entries(
        "a", [EntryIn("md5", rhex(16)) for _ in range(7)] + [EntryIn("pdq", rhex(32))]
    )
    assert len(list(store.iter_entries("a", batch=2))) == 8
    assert len(list(store.iter_entries("a", "md5", batch=3))) == 7
    first = next(iter(store.iter_entries("a")))
    store.disable_entry(first.id)
    assert len(list(store.iter_entries("a", active_only=True))) == 7
    with pytest.raises(BankError):
        list(store.iter_entries("missing"))


def test_concurrent_writers_keep_a_consistent_log(db_url: str) -> None:
    store = BankStore(open_engine(db_url))
    store.create_bank("a")
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for _ in range(5):
                store.add_entries("a", [EntryIn("pdq", rhex(32)) for _ in range(20)])
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    adds = [c for c in store.changes_since(0) if c.op == "add" and c.entry_id is not None]
    assert len(adds) == 300 == store.get_bank("a").total
    assert len({c.entry_id for c in adds}) == 300
    store.engine.dispose()


@pytest.mark.parametrize("sig", ["pdq", "md5", "sha256"])
def test_fast_loader_agrees_with_plain_loader(store: BankStore, sig: str) -> None:
    """The packed fixed-width fast path returns exactly what the plain row path does."""
    nbytes = {"pdq": 32, "md5": 16, "sha256": 32}[sig]
    store.create_bank("a")
    store.create_bank("b")
    store.add_entries("a", [EntryIn(sig, rhex(nbytes)) for _ in range(30)])
    store.add_entries(
        "b",
        [EntryIn(sig, rhex(nbytes), variant=f"v{i}", media_ref=f"m{i % 3}") for i in range(10)]
        + [EntryIn(sig, rhex(nbytes), media_ref="x")],
    )
    bank_ids = [b.id for b in store.list_banks()]
    now = datetime.now(UTC)
    with store.engine.connect() as conn:
        fast = store._fetch_packed(conn, sig, bank_ids, now)
        plain = store._fetch_active(conn, sig, bank_ids, now)
    assert fast is not None
    ids, bids, hashes, variants, refs = fast
    assert ids.tolist() == plain[0] and bids.tolist() == plain[1]
    if sig == "pdq":
        assert [bytes(r).hex() for r in hashes] == plain[2]
    else:
        assert hashes == plain[2]
    assert variants == plain[3] and refs == plain[4]
    assert len(store.load_signal(sig)) == 41


def test_ids_are_never_reused(store: BankStore) -> None:
    store.create_bank("a")
    store.add_entries("a", [EntryIn("md5", rhex(16)) for _ in range(3)])
    top = max(e.id for e in store.iter_entries("a"))
    store.delete_entry(top)
    store.add_entries("a", [EntryIn("md5", rhex(16))])
    assert max(e.id for e in store.iter_entries("a")) > top
    first = store.get_bank("a").id
    store.delete_bank("a")
    assert store.create_bank("b").id > first
