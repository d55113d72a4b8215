"""VICS 2.0 and INTERPOL ICSE imports keep Series, VictimIdentified, OffenderIdentified
and IsDistributed; hostile inputs end in structured errors (issue 12)."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from sentinelle.errors import BankImportError
from sentinelle.formats import FORMATS, csv_format, icse, vics
from sentinelle.formats._io import InputLimits
from sentinelle.formats.entry import EntryIn, normalize_entry, parse_flag

# Fixed values: parametrize ids are built from them, and pytest-xdist workers must collect
# the same ids.
MD5 = [hashlib.md5(f"vics-{i}".encode()).hexdigest() for i in range(4)]
SHA1 = [hashlib.sha1(f"vics-{i}".encode()).hexdigest() for i in range(4)]
CASES_CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases"


def vics_doc(media: list, key: str = "@odata.context", context: str = CASES_CONTEXT) -> bytes:
    return json.dumps({key: context, "value": [{"CaseID": "x", "Media": media}]}).encode()


def icse_doc(rows: list[list[str]], header: tuple[str, ...] = icse.HEADER) -> bytes:
    return ("\n".join(";".join(r) for r in [list(header), *rows]) + "\n").encode()


# --------------------------------------------------------------------- VICS
def test_vics_keeps_series_and_victim_flags() -> None:
    media = [
        {
            "MediaID": 1,
            "Category": 1,
            "MD5": MD5[0].upper(),
            "SHA1": SHA1[0],
            "Series": "Blue Room (2014)",
            "VictimIdentified": True,
            "OffenderIdentified": False,
            "IsDistributed": True,
        },
        {"MediaID": 2, "Category": 2, "MD5": MD5[1], "Series": "Blue Room (2014)"},
        {"MediaID": 3, "MD5": MD5[2], "VictimIdentified": "false", "IsDistributed": 0},
    ]
    got = vics.parse(io.BytesIO(vics_doc(media)))
    by_hash = {e.hash: e for e in got}
    first = by_hash[MD5[0]]
    assert (first.series, first.victim_identified, first.offender_identified) == (
        "Blue Room (2014)",
        True,
        False,
    )
    assert first.is_distributed is True
    assert by_hash[SHA1[0]].series == "Blue Room (2014)"  # every hash of the Media
    second = by_hash[MD5[1]]
    assert second.series == "Blue Room (2014)" and second.victim_identified is None
    third = by_hash[MD5[2]]
    assert third.series is None
    assert (third.victim_identified, third.is_distributed) == (False, False)


def test_vics_series_name_kept_verbatim_and_numeric_series_as_text() -> None:
    name = "  Série «été» #7 / ünïcode  "
    got = vics.parse(
        io.BytesIO(vics_doc([{"MD5": MD5[0], "Series": name}, {"MD5": MD5[1], "Series": 42}]))
    )
    assert [e.series for e in got] == [name, "42"]


def test_vics_writer_round_trips_the_facts() -> None:
    entries = [
        EntryIn(
            "md5",
            MD5[0],
            media_ref="vics:1",
            external_id="1",
            category="2",
            series="S1",
            victim_identified=False,
            offender_identified=True,
            is_distributed=True,
        ),
        EntryIn(
            "sha1",
            SHA1[0],
            media_ref="vics:1",
            external_id="1",
            category="2",
            series="S1",
            victim_identified=False,
            offender_identified=True,
            is_distributed=True,
        ),
        EntryIn("md5", MD5[1], media_ref="vics:2", external_id="2"),
    ]
    buf = io.BytesIO()
    assert vics.write(entries, buf) == 3
    doc = json.loads(buf.getvalue())
    m1 = doc["value"][0]["Media"][0]
    assert m1["Category"] == 2  # VICS categories are integers
    assert (m1["Series"], m1["VictimIdentified"], m1["OffenderIdentified"]) == ("S1", False, True)
    assert m1["IsDistributed"] is True
    m2 = doc["value"][0]["Media"][1]
    assert "Series" not in m2 and "VictimIdentified" not in m2 and "Category" not in m2
    back = vics.parse(io.BytesIO(buf.getvalue()))
    assert sorted(back, key=lambda e: e.key) == sorted(entries, key=lambda e: e.key)


@pytest.mark.parametrize(
    ("media", "needle"),
    [
        ({"MD5": MD5[0], "Series": {"name": "x"}}, "Series must be a string"),
        ({"MD5": MD5[0], "Series": ["a"]}, "Series must be a string"),
        ({"MD5": MD5[0], "Series": True}, "Series must be a string"),
        ({"MD5": MD5[0], "Series": "x" * 600}, "at most 512"),
        ({"MD5": MD5[0], "Series": "a\x00b"}, "NUL"),
        ({"MD5": MD5[0], "VictimIdentified": "maybe"}, "VictimIdentified must be true or false"),
        ({"MD5": MD5[0], "OffenderIdentified": 2}, "OffenderIdentified must be true or false"),
        ({"MD5": MD5[0], "IsDistributed": [True]}, "IsDistributed must be true or false"),
        ({"MD5": MD5[0], "IsDistributed": 1.0}, "IsDistributed"),
    ],
)
def test_vics_wrong_types_are_structured_errors(media: dict, needle: str) -> None:
    good = {"MD5": MD5[1], "Series": "fine"}
    with pytest.raises(BankImportError) as ei:
        vics.parse(io.BytesIO(vics_doc([good, media])))
    err = ei.value
    assert [e.line for e in err.errors] == [2]
    assert needle in err.errors[0].message
    assert err.to_dict()["errors"][0]["line"] == 2


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b'{"value": [{"Media": [{"MD5": "', "syntax error"),
        (b"[1, 2, 3]", "top level must be an object"),
        (b'{"value": {"Media": []}}', "'value' array"),
        (b'{"value": [{"Media": {"MD5": 1}}]}', "Media must be an array"),
        (b"[" * 100_000 + b"]" * 100_000, "rejected"),
        (b'{"value": [{"MediaID": 1' + b"9" * 5000 + b', "MD5": "00"}]}', "rejected"),
        (b"\xff\xfe{}", "UTF-8"),
    ],
)
def test_vics_malformed_json_is_rejected_cleanly(data: bytes, needle: str) -> None:
    with pytest.raises(BankImportError) as ei:
        vics.parse(io.BytesIO(data))
    assert needle in str(ei.value)


def test_vics_huge_file_is_rejected_before_parsing() -> None:
    big = vics_doc([{"MD5": MD5[0], "Series": "s" * 400}] * 50)
    with pytest.raises(BankImportError, match="input too large"):
        vics.parse(io.BytesIO(big), InputLimits(max_bytes=len(big) - 1))
    with pytest.raises(BankImportError, match="more than 10 Media"):
        vics.parse(io.BytesIO(big), InputLimits(max_lines=10))


# --------------------------------------------------------------------- ICSE
def test_icse_is_a_builtin_format() -> None:
    assert FORMATS["icse"] is icse


def test_icse_parse_keeps_the_victim_facts() -> None:
    rows = [
        [MD5[0], SHA1[0], "", "1001", "Yes", "No", "n", "Series A", "3", "t", "Image", "f"],
        [MD5[1].upper(), "", "AAAA", "1002", "no", "YES", "y", "Series A", "1", "", "Image", ""],
        ["", SHA1[2], "", "", "", "", "", "", "", "", "Video", ""],
    ]
    stats = icse.ParseStats()
    got = icse.parse(io.BytesIO(icse_doc(rows)), stats=stats)
    assert stats.media == 3 and stats.ignored_hashes == 1
    assert [(e.signal_type, e.hash) for e in got] == [
        ("md5", MD5[0]),
        ("sha1", SHA1[0]),
        ("md5", MD5[1]),
        ("sha1", SHA1[2]),
    ]
    a, a2, b, c = got
    assert a.media_ref == a2.media_ref == "icse:1001" and a.external_id == "1001"
    assert (a.is_distributed, a.victim_identified, a.offender_identified) == (True, False, False)
    assert a.series == "Series A"
    assert (b.is_distributed, b.victim_identified, b.offender_identified) == (False, True, True)
    assert (
        c.series is None and c.victim_identified is None and c.media_ref == f"icse:sha1:{SHA1[2]}"
    )
    assert [e.line for e in got] == [2, 2, 3, 4]


def test_icse_bom_and_crlf() -> None:
    data = b"\xef\xbb\xbf" + icse_doc([[MD5[0], SHA1[0], "", "9", "", "yes"] + [""] * 6]).replace(
        b"\n", b"\r\n"
    )
    got = icse.parse(io.BytesIO(data))
    assert [e.signal_type for e in got] == ["md5", "sha1"] and got[0].victim_identified is True


def test_icse_header_in_any_order_with_extra_columns() -> None:
    header = ("Series name", "Extra", "md5 ", "VICTIM IDENTIFIED")
    got = icse.parse(io.BytesIO(icse_doc([["S", "x", MD5[0], "true"]], header)))
    assert got[0].series == "S" and got[0].victim_identified is True


def test_icse_round_trip() -> None:
    entries = [
        EntryIn(
            "md5",
            MD5[0],
            media_ref="icse:7",
            external_id="7",
            series="=cmd|x",
            victim_identified=True,
            offender_identified=False,
            is_distributed=None,
        ),
        EntryIn(
            "sha1",
            SHA1[0],
            media_ref="icse:7",
            external_id="7",
            series="=cmd|x",
            victim_identified=True,
            offender_identified=False,
            is_distributed=None,
        ),
        EntryIn("pdq", "0" * 64, media_ref="icse:7"),  # ICSE cannot hold PDQ
    ]
    buf = io.BytesIO()
    assert icse.write(entries, buf) == 2
    text = buf.getvalue().decode()
    assert text.splitlines()[0] == ";".join(icse.HEADER)
    assert "'=cmd|x" in text  # spreadsheet formula neutralised
    back = icse.parse(io.BytesIO(buf.getvalue()))
    assert sorted(back, key=lambda e: e.key) == sorted(entries[:2], key=lambda e: e.key)


@pytest.mark.parametrize(
    ("data", "lines", "needle"),
    [
        (b"", [], "empty file"),
        (b"Image ID;Series name\n1;x\n", [1], "MD5 or SHA1"),
        (b"MD5;MD5\n", [1], "duplicate column"),
        (icse_doc([[MD5[0], SHA1[0], "", "1", "perhaps"] + [""] * 7]), [2], "Is distributed"),
        (icse_doc([[MD5[0], SHA1[0]]]), [2], "expected 12 fields"),
        (icse_doc([["", "", "AAAA", "1"] + [""] * 8]), [2], "no MD5 or SHA1"),
        (icse_doc([["abc", ""] + [""] * 10, [MD5[1], "zz"] + [""] * 10]), [2, 3], "hex"),
        (icse_doc([[MD5[0], "", "", "1", "", "", "", "x" * 5000] + [""] * 4]), [2], "Series"),
        (b"MD5;SHA1\n" + MD5[0].encode() + b";\x00\n", [2], "NUL"),
        (b"MD5;SHA1\n" + MD5[0].encode() + b";\xff\n", [2], "UTF-8"),
        (b'MD5;SHA1\n"' + MD5[0].encode() + b'";"abc\n', [2], "CSV"),
    ],
)
def test_icse_bad_inputs(data: bytes, lines: list[int], needle: str) -> None:
    with pytest.raises(BankImportError) as ei:
        icse.parse(io.BytesIO(data))
    assert needle.lower() in str(ei.value).lower()
    if lines:
        assert [e.line for e in ei.value.errors] == lines


def test_icse_huge_input_rejected() -> None:
    data = icse_doc([[MD5[0], SHA1[0]] + [""] * 10] * 100)
    with pytest.raises(BankImportError, match="input too large"):
        icse.parse(io.BytesIO(data), InputLimits(max_bytes=1000))
    with pytest.raises(BankImportError, match="input too large"):
        icse.parse(io.BytesIO(data), InputLimits(max_lines=50))


# ---------------------------------------------------------------------- CSV
def test_csv_round_trips_the_facts() -> None:
    entries = [
        EntryIn("md5", MD5[0], series="-S", victim_identified=False, is_distributed=True),
        EntryIn("md5", MD5[1]),
    ]
    buf = io.BytesIO()
    csv_format.write(entries, buf)
    header = buf.getvalue().decode().splitlines()[0].split(",")
    assert header[-4:] == ["series", "victim_identified", "offender_identified", "is_distributed"]
    assert csv_format.parse(io.BytesIO(buf.getvalue())) == entries
    with pytest.raises(BankImportError, match="victim_identified must be true or false"):
        csv_format.parse(io.BytesIO(f"md5,victim_identified\n{MD5[0]},sometimes\n".encode()))


def test_normalize_entry_rejects_non_boolean_flags() -> None:
    with pytest.raises(ValueError, match="victim_identified"):
        normalize_entry(EntryIn("md5", MD5[0], victim_identified="yes"))  # type: ignore[arg-type]
    assert parse_flag(" Y ", "x") is True and parse_flag("", "x") is None
