"""Bank import/export formats: round trips and hostile input (no database)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import numpy as np
import pytest

from sentinelle.errors import BankImportError
from sentinelle.formats import (
    FORMATS,
    EntryIn,
    InputLimits,
    csv_format,
    get_format,
    md5_list,
    pdq_list,
    threatexchange,
    vics,
)

RNG = np.random.default_rng(42)


def rhex(nbytes: int) -> str:
    return RNG.integers(0, 256, nbytes, dtype=np.uint8).tobytes().hex()


PDQ = [rhex(32) for _ in range(4)]
MD5 = [rhex(16) for _ in range(3)]
SHA1 = rhex(20)
SHA256 = rhex(32)


def strip(entries: list[EntryIn]) -> list[EntryIn]:
    """Entries with ``line`` dropped (it takes no part in equality anyway)."""
    return [EntryIn(**{k: getattr(e, k) for k in e.__slots__ if k != "line"}) for e in entries]


def roundtrip(fmt: str, entries: list[EntryIn]) -> list[EntryIn]:
    buf = io.BytesIO()
    get_format(fmt).write(entries, buf)
    return get_format(fmt).parse(io.BytesIO(buf.getvalue()))


def lines_of(exc: pytest.ExceptionInfo[BankImportError]) -> list[int]:
    return [e.line for e in exc.value.errors]


def test_registry_has_every_format() -> None:
    assert set(FORMATS) == {"csv", "vics", "icse", "pdq-list", "md5-list", "threatexchange"}
    for mod in FORMATS.values():
        assert callable(mod.parse) and callable(mod.write)
    with pytest.raises(BankImportError, match="unknown format"):
        get_format("xml")


# ----------------------------------------------------------------------- csv
def test_csv_full_metadata_roundtrip() -> None:
    t = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    entries = [
        EntryIn("pdq", PDQ[0], category="A1", source_org="NGO", external_id="x-1", note="n"),
        EntryIn("pdq", PDQ[1], variant="crop10", media_ref="m1", added_at=t),
        EntryIn("md5", MD5[0], enabled=False, disabled_until=t, note='multi\nline, "quoted"'),
        EntryIn("sha1", SHA1),
        EntryIn("sha256", SHA256, category="B2"),
        EntryIn("vpdq", PDQ[2], variant="frame3", media_ref="vid"),
    ]
    assert roundtrip("csv", entries) == entries


def test_csv_header_variants_and_unknown_columns() -> None:
    text = (
        "\ufeffType , HASH,filename,category\n"
        f"MD5,{MD5[0].upper()},a.jpg,A1\n"
        "\n"
        f"pdq,{PDQ[0]},b.jpg,\n"
    )
    got = csv_format.parse(io.StringIO(text))
    assert strip(got) == [EntryIn("md5", MD5[0], category="A1"), EntryIn("pdq", PDQ[0])]
    assert [e.line for e in got] == [2, 4]
    single = csv_format.parse(io.BytesIO(f"md5\n{MD5[0]}\n{MD5[1]}\n".encode()))
    assert strip(single) == [EntryIn("md5", MD5[0]), EntryIn("md5", MD5[1])]
    pdq_only = csv_format.parse(io.BytesIO(f"pdq,size\n{PDQ[0]},12\n".encode()))
    assert strip(pdq_only) == [EntryIn("pdq", PDQ[0])]


@pytest.mark.parametrize(
    ("data", "lines", "needle"),
    [
        (b"", [], "header row is required"),
        (b"foo,bar\n1,2\n", [1], "header must have"),
        (b"hash,hash,type\n", [1], "duplicate column"),
        (f"type,hash\nmd5,{'a' * 31}\n".encode(), [2], "32 hex"),
        (f"type,hash\nmd5,{'g' * 32}\n".encode(), [2], "not hexadecimal"),
        (f"type,hash\nphotodna,{'a' * 32}\n".encode(), [2], "unknown signal type"),
        (f"type,hash\nmd5,{'a' * 32},extra\n".encode(), [2], "expected 2 fields"),
        (f"type,hash,enabled\nmd5,{'a' * 32},maybe\n".encode(), [2], "true/false"),
        (f"type,hash,added_at\nmd5,{'a' * 32},yesterday\n".encode(), [2], "ISO-8601"),
        (f"type,hash\nmd5,{'a' * 32}\n".encode() + b"md5,\xff\xfe\n", [3], "UTF-8"),
        (f"type,hash\nmd5,{'a' * 32}\n".encode() + b"md5,a\x00b\n", [3], "NUL"),
        (b'type,hash\nmd5,"unterminated\n', [2], "CSV syntax"),
    ],
)
def test_csv_bad_inputs(data: bytes, lines: list[int], needle: str) -> None:
    with pytest.raises(BankImportError) as exc:
        csv_format.parse(io.BytesIO(data))
    assert lines_of(exc) == lines
    assert needle in str(exc.value)


def test_csv_reports_every_bad_line_at_once() -> None:
    rows = ["type,hash", f"md5,{MD5[0]}", "md5,zz", f"pdq,{PDQ[0]}", "sha1,short", "pdq,"]
    with pytest.raises(BankImportError) as exc:
        csv_format.parse(io.StringIO("\n".join(rows) + "\n"))
    assert lines_of(exc) == [3, 5, 6]
    assert exc.value.code == "import_rejected"
    assert len(exc.value.to_dict()["errors"]) == 3


def test_csv_huge_field_is_rejected_not_crashing() -> None:
    limits = InputLimits(max_line_bytes=1000)
    data = b"type,hash,note\n" + b"md5," + MD5[0].encode() + b',"' + b"x" * 5000 + b'"\n'
    with pytest.raises(BankImportError) as exc:
        csv_format.parse(io.BytesIO(data), limits)
    assert lines_of(exc) == [2]


# ---------------------------------------------------------------- hash lists
def test_pdq_list_comments_quality_and_roundtrip() -> None:
    text = f"# exported\n\n{PDQ[0]}\n  {PDQ[1].upper()},100 \n{PDQ[2]}\t87\n{PDQ[3]} 5\n"
    got = pdq_list.parse(io.StringIO(text))
    assert [e.hash for e in got] == PDQ
    assert [e.line for e in got] == [3, 4, 5, 6]
    assert roundtrip("pdq-list", strip(got)) == strip(got)


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("abc\n", [1]),
        (f"{PDQ[0]}\n{'x' * 64}\n", [2]),
        (f"{PDQ[0]},101\n", [1]),
        (f"{PDQ[0]},q\n", [1]),
        (f"{PDQ[0]} 50 extra\n", [1]),
        (f"{MD5[0]}\n{PDQ[0]}\n{SHA1}\n", [1, 3]),
    ],
)
def test_pdq_list_bad_inputs(text: str, lines: list[int]) -> None:
    with pytest.raises(BankImportError) as exc:
        pdq_list.parse(io.StringIO(text))
    assert lines_of(exc) == lines


def test_md5_list_roundtrip_and_bad_inputs() -> None:
    got = md5_list.parse(io.BytesIO(("\n".join(MD5) + "\r\n").encode()))
    assert [e.hash for e in got] == MD5
    entries = [EntryIn("md5", h) for h in MD5] + [EntryIn("pdq", PDQ[0])]
    assert roundtrip("md5-list", entries) == entries[:3]  # pdq is not representable
    with pytest.raises(BankImportError) as exc:
        md5_list.parse(io.StringIO(f"{MD5[0]},1\n{PDQ[0]}\n\n#x\n{MD5[1]}\n"))
    assert lines_of(exc) == [1, 2]


def test_binary_garbage_is_rejected() -> None:
    junk = bytes(range(256)) * 8
    for fmt in FORMATS:
        with pytest.raises(BankImportError):
            get_format(fmt).parse(io.BytesIO(junk))


def test_input_limits() -> None:
    text = "\n".join(PDQ) + "\n"
    with pytest.raises(BankImportError, match="too large"):
        pdq_list.parse(io.StringIO(text), InputLimits(max_lines=3))
    with pytest.raises(BankImportError, match="too large"):
        pdq_list.parse(io.StringIO(text), InputLimits(max_bytes=100))
    with pytest.raises(BankImportError, match="too large"):
        vics.parse(io.BytesIO(b'{"value": []}' + b" " * 200), InputLimits(max_bytes=100))
    # a line longer than the per-line limit is one bad line, not a crash
    with pytest.raises(BankImportError) as exc:
        pdq_list.parse(
            io.BytesIO(b"a" * 5000 + b"\n" + PDQ[0].encode()), InputLimits(max_line_bytes=1000)
        )
    assert lines_of(exc) == [1]


# ------------------------------------------------------------- threatexchange
def test_threatexchange_mapping_and_roundtrip() -> None:
    text = (
        "# from threatexchange dataset -P\n"
        f"pdq {PDQ[0]}\n"
        f"video_md5 {MD5[0]} 'my collab' {{'tags': ['x']}}\n"
        f"photo_md5 {MD5[1]}\n"
        f"video_sha256 {SHA256}\n"
    )
    got = threatexchange.parse(io.StringIO(text))
    assert [(e.signal_type, e.hash, e.line) for e in got] == [
        ("pdq", PDQ[0], 2),
        ("md5", MD5[0], 3),
        ("md5", MD5[1], 4),
        ("sha256", SHA256, 5),
    ]
    entries = strip(got)
    assert roundtrip("threatexchange", entries) == entries
    buf = io.StringIO()
    assert threatexchange.write([EntryIn("sha1", SHA1), EntryIn("md5", MD5[0])], buf) == 1
    assert buf.getvalue() == f"video_md5 {MD5[0]}\n"


def test_threatexchange_reads_what_python_threatexchange_prints() -> None:
    """Signal names and hash validation agree with the installed threatexchange package."""
    pytest.importorskip("threatexchange")
    from threatexchange.signal_type.md5 import VideoMD5Signal
    from threatexchange.signal_type.pdq.signal import PdqSignal

    line = f"{PdqSignal.get_name()} {PdqSignal.validate_signal_str(PDQ[0])}\n"
    line += f"{VideoMD5Signal.get_name()} {VideoMD5Signal.validate_signal_str(MD5[0])}\n"
    assert [(e.signal_type, e.hash) for e in threatexchange.parse(io.StringIO(line))] == [
        ("pdq", PDQ[0]),
        ("md5", MD5[0]),
    ]


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        (f"url {MD5[0]}\n", [1]),
        ("pdq\n", [1]),
        (f"pdq {MD5[0]}\nvideo_md5 {PDQ[0]}\n", [1, 2]),
        (f"{PDQ[0]}\n", [1]),
    ],
)
def test_threatexchange_bad_inputs(text: str, lines: list[int]) -> None:
    with pytest.raises(BankImportError) as exc:
        threatexchange.parse(io.StringIO(text))
    assert lines_of(exc) == lines


# ---------------------------------------------------------------------- vics
def vics_doc(media: list, key: str = "@odata.context") -> bytes:
    return json.dumps({key: vics.CONTEXT, "value": [{"Media": media, "Case No.": "1"}]}).encode()


def test_vics_parse_fields_and_alternative_hashes() -> None:
    media = [
        {
            "MediaID": 7,
            "Category": 1,
            "MD5": MD5[0].upper(),
            "SHA1": SHA1,
            "MediaSize": "123",
            "AlternativeHashes": [
                {"HashName": "PDQ", "HashValue": PDQ[0]},
                {"HashName": "PhotoDNA", "HashValue": "AAAA"},
                {"HashName": "SHA256", "HashValue": SHA256},
            ],
        },
        {"MediaID": "8", "Category": "A2", "MD5": MD5[1], "AlternativeHashes": []},
    ]
    stats = vics.ParseStats()
    got = vics.parse(io.BytesIO(vics_doc(media)), stats=stats)
    assert stats.ignored_hashes == 1 and stats.media == 2
    assert [(e.signal_type, e.hash, e.external_id, e.category, e.line) for e in got] == [
        ("md5", MD5[0], "7", "1", 1),
        ("sha1", SHA1, "7", "1", 1),
        ("pdq", PDQ[0], "7", "1", 1),
        ("sha256", SHA256, "7", "1", 1),
        ("md5", MD5[1], "8", "A2", 2),
    ]
    assert {e.media_ref for e in got[:4]} == {"vics:7"}
    # old-style key and flat value arrays are accepted too
    flat = json.dumps({"odata.metadata": "x", "value": media}).encode()
    assert vics.parse(io.BytesIO(flat)) == got


def test_vics_roundtrip_groups_by_media() -> None:
    entries = [
        EntryIn("md5", MD5[0], media_ref="vics:1", external_id="1", category="A1"),
        EntryIn("sha1", SHA1, media_ref="vics:1", external_id="1", category="A1"),
        EntryIn("pdq", PDQ[0], media_ref="vics:1", external_id="1", category="A1"),
        EntryIn("pdq", PDQ[1], media_ref="vics:2", external_id="2", category="B1"),
        EntryIn("sha256", SHA256, media_ref="vics:2", external_id="2", category="B1"),
    ]
    buf = io.BytesIO()
    assert vics.write(entries, buf) == 5
    doc = json.loads(buf.getvalue())
    assert doc["@odata.context"].endswith("#Media")
    assert len(doc["value"][0]["Media"]) == 2
    assert doc["value"][0]["Media"][0]["MD5"] == MD5[0]
    back = strip(vics.parse(io.BytesIO(buf.getvalue())))
    assert sorted(back, key=lambda e: e.key) == sorted(entries, key=lambda e: e.key)


@pytest.mark.parametrize(
    ("data", "lines", "needle"),
    [
        (b'{"value": [', [1], "syntax error"),
        (b'{\n "value": [\n  {"Media": [}\n]}', [3], "syntax error"),
        (b"[1, 2]", [], "top level"),
        (b'{"value": {"Media": []}}', [], "top level"),
        (b'{"value": [{"Media": {}}]}', [], "must be an array"),
        (vics_doc([{"MediaID": 1, "MD5": MD5[0]}, "oops"]), [2], "not an object"),
        (vics_doc([{"MediaID": 1}, {"MediaID": 2, "MD5": MD5[0]}]), [1], "no MD5"),
        (vics_doc([{"MD5": "abc"}, {"MD5": MD5[0]}, {"SHA1": 5}]), [1, 3], "Media #"),
        (vics_doc([{"MD5": MD5[0], "AlternativeHashes": [{"HashValue": "x"}]}]), [1], "HashName"),
        (vics_doc([{"MD5": MD5[0], "AlternativeHashes": "pdq"}]), [1], "array"),
        (vics_doc([{"AlternativeHashes": [{"HashName": "PDQ", "HashValue": MD5[0]}]}]), [1], "64"),
        (b'{"value": [' * 100000, [], "nesting"),
        (b'{"value": ["\xff"]}', [1], "UTF-8"),
        (b'{"value": [1' + b"1" * 5000 + b"]}", [], "rejected"),
    ],
)
def test_vics_bad_inputs(data: bytes, lines: list[int], needle: str) -> None:
    with pytest.raises(BankImportError) as exc:
        vics.parse(io.BytesIO(data))
    assert lines_of(exc) == lines
    assert needle in str(exc.value)


def test_csv_export_neutralises_spreadsheet_formulas() -> None:
    import io as _io

    from sentinelle.formats import FORMATS
    from sentinelle.formats.entry import EntryIn as _E

    e = _E(signal_type="md5", hash="a" * 32, note='=HYPERLINK("http://x")', category="-1+2")
    buf = _io.StringIO()
    FORMATS["csv"].write([e], buf)
    text = buf.getvalue()
    assert "'=HYPERLINK" in text and "'-1+2" in text
    (back,) = FORMATS["csv"].parse(_io.StringIO(text))
    assert back.note == e.note and back.category == e.category
