"""CyberTipline report builder and XSD validation (issue 6, item 5).

Every report and fileDetails document built here is validated against NCMEC's
schema in ../shared/schemas/cyber_tipline.xsd; hostile XML is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from lxml import etree

from sentinelle.reports.builder import (
    INCIDENT_CHILD_PORNOGRAPHY,
    AccountAction,
    Address,
    ChatImIncident,
    DeviceId,
    Email,
    FileInput,
    IncidentSummary,
    IpCaptureEvent,
    LawEnforcement,
    Person,
    Phone,
    ReportedPerson,
    Reporter,
    ReportInput,
    WebPageIncident,
    annotations_for_verdict,
    build_file_details_xml,
    build_report_xml,
    validate_report,
)
from sentinelle.reports.errors import ReportError
from sentinelle.reports.xsd import load_schema, load_schema_cached, parse_xml, validate

T0 = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def xsd_path(shared: Path) -> Path:
    return shared / "schemas" / "cyber_tipline.xsd"


@pytest.fixture(scope="module")
def schema(xsd_path: Path) -> etree.XMLSchema:
    return load_schema(xsd_path)


def reporter() -> Reporter:
    return Reporter(
        reporting_person=Person(
            "Ana",
            "Reviewer",
            phones=(Phone("5550100", type="Work", country_calling_code="+1", extension="12"),),
            emails=(Email("safety@example.org", type="Work", verified=True),),
            addresses=(Address("1 Main St", "Springfield", "12345", "VA", country="US"),),
        ),
        contact_person=Person("Lee", "Legal", emails=(Email("legal@example.org"),)),
        company_template="Example Corp reports all apparent CSAM.",
        legal_url="https://example.org/legal",
    )


def full_report(**kw: object) -> ReportInput:
    base = dict(
        incident=IncidentSummary(
            INCIDENT_CHILD_PORNOGRAPHY,
            T0,
            platform="Example Photos",
            annotations=frozenset({"sextortion"}),
            incident_datetime_description="upload time",
        ),
        reporter=reporter(),
        reported_people=(
            ReportedPerson(
                esp_identifier="account-42",
                esp_service="Example Photos",
                screen_name="user42",
                display_names=("User 42",),
                profile_urls=("https://example.org/u/42",),
                ip_capture_events=(
                    IpCaptureEvent("192.0.2.10", "Upload", T0, possible_proxy=False, port=443),
                    IpCaptureEvent("2001:db8::5", "Login", T0 - dt.timedelta(hours=1)),
                ),
                device_ids=(DeviceId("IDFA", "0000-1111", "Login", T0),),
                prior_ct_reports=(123456,),
                account_permanently_disabled=AccountAction(T0, user_notified=False),
                additional_info="matched a known hash",
            ),
        ),
        internet_details=(
            WebPageIncident(("https://example.org/p/1",), third_party_hosted_content=False),
            ChatImIncident(chat_client="Example Chat"),
        ),
        law_enforcement=LawEnforcement("Example PD", "CASE-1", reported_to_le=False),
        additional_info="Detected by Sentinelle hash matching.",
    )
    base.update(kw)
    return ReportInput(**base)  # type: ignore[arg-type]


def test_full_report_is_valid_and_in_schema_order(schema: etree.XMLSchema) -> None:
    xml = build_report_xml(full_report())
    assert validate(xml, schema) == []
    root = parse_xml(xml)
    assert [c.tag for c in root] == [
        "incidentSummary",
        "internetDetails",
        "internetDetails",
        "lawEnforcement",
        "reporter",
        "personOrUserReported",
        "additionalInfo",
    ]
    summary = root.find("incidentSummary")
    assert [c.tag for c in summary] == [
        "incidentType",
        "platform",
        "reportAnnotations",
        "incidentDateTime",
        "incidentDateTimeDescription",
    ]
    assert summary.findtext("incidentDateTime") == "2024-05-01T12:30:00+00:00"
    events = root.findall("personOrUserReported/ipCaptureEvent")
    assert [e.findtext("ipAddress") for e in events] == ["192.0.2.10", "2001:db8::5"]
    assert events[0].findtext("eventName") == "Upload"
    assert root.find("reporter/reportingPerson/email").get("verified") == "true"


def test_minimal_report_is_valid(schema: etree.XMLSchema) -> None:
    xml = build_report_xml(
        ReportInput(
            IncidentSummary(INCIDENT_CHILD_PORNOGRAPHY, T0),
            Reporter(Person(emails=(Email("a@example.org"),))),
        )
    )
    assert validate(xml, schema) == []


def test_file_details_hash_of_bytes_as_received(shared: Path, schema: etree.XMLSchema) -> None:
    data = (shared / "corpora/photos/kodak24").glob("*.png").__next__().read_bytes()
    f = FileInput.from_bytes(
        data,
        file_name="upload.png",
        original_file_name="IMG_0001.png",
        uploaded_to_esp_timestamp=T0,
        file_viewed_by_esp=True,
        publicly_available=False,
        file_relevance="Reported",
        annotations=annotations_for_verdict("ai_generated"),
        industry_classification="A1",
        ip_capture_event=IpCaptureEvent("198.51.100.7", "Upload", T0),
        details=(("HASH", (("PDQ", "f" * 64),)),),
        additional_info=("matched bank demo, distance 4",),
    )
    xml = build_file_details_xml(4564654, "b0754af766b426f2928a02c651ed4b99", f)
    assert validate(xml, schema) == []
    root = parse_xml(xml)
    hashes = {h.get("hashType"): h.text for h in root.findall("originalFileHash")}
    assert hashes == {
        "MD5": hashlib.md5(data).hexdigest(),
        "SHA1": hashlib.sha1(data).hexdigest(),
        "SHA256": hashlib.sha256(data).hexdigest(),
    }
    assert root.findtext("fileViewedByEsp") == "true"
    assert root.findtext("industryClassification") == "A1"
    assert root.find("fileAnnotations/generativeAi").text == "true"
    assert root.findtext("reportId") == "4564654"


@pytest.mark.parametrize(
    ("verdict", "generative"),
    [
        ("ai_generated", True),
        ("ai_edited", True),
        ("camera_signed", False),
        ("no_evidence", False),
        ("conflicting", False),
        (None, False),
    ],
)
def test_generative_ai_annotation_from_provenance(
    verdict: str | None, generative: bool, schema: etree.XMLSchema
) -> None:
    f = FileInput.from_bytes(b"benign", annotations=annotations_for_verdict(verdict))
    root = parse_xml(build_file_details_xml(1, "f1", f))
    assert (root.find("fileAnnotations/generativeAi") is not None) is generative
    assert validate(build_file_details_xml(1, "f1", f), schema) == []


def test_file_input_round_trips_through_json() -> None:
    f = FileInput.from_bytes(
        b"x",
        file_name="a.jpg",
        uploaded_to_esp_timestamp=T0,
        annotations=frozenset({"generativeAi", "viral"}),
        ip_capture_event=IpCaptureEvent("192.0.2.1", "Upload", T0),
        details=(("HASH", (("PDQ", "ab"),)),),
        additional_info=("n",),
        blob_id=7,
    )
    assert FileInput.from_dict(f.to_dict()) == f
    with pytest.raises(ReportError) as e:
        FileInput.from_dict({"bogus": 1})
    assert e.value.code == "invalid_input"


@pytest.mark.parametrize(
    "make",
    [
        lambda: full_report(
            incident=IncidentSummary(INCIDENT_CHILD_PORNOGRAPHY, T0.replace(tzinfo=None))
        ),
        lambda: full_report(incident=IncidentSummary("Something else", T0)),
        lambda: full_report(
            incident=IncidentSummary(INCIDENT_CHILD_PORNOGRAPHY, T0, annotations=frozenset({"x"}))
        ),
        lambda: full_report(
            reported_people=(ReportedPerson(ip_capture_events=(IpCaptureEvent("999.1.1.1"),)),)
        ),
        lambda: full_report(
            reported_people=(
                ReportedPerson(ip_capture_events=(IpCaptureEvent("192.0.2.1", "Hack"),)),
            )
        ),
        lambda: full_report(reporter=Reporter(Person("No", "Email"))),
        lambda: full_report(additional_info="bell \x07 character"),
    ],
    ids=[
        "naive-datetime",
        "incident-type",
        "annotation",
        "ip",
        "ip-event",
        "no-email",
        "ctrl-char",
    ],
)
def test_bad_input_is_a_clear_error(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ReportError) as e:
        build_report_xml(make())
    assert e.value.code == "invalid_input"


@pytest.mark.parametrize(
    "f",
    [
        FileInput(industry_classification="C3"),
        FileInput(file_relevance="Maybe"),
        FileInput(annotations=frozenset({"unknownFlag"})),
        FileInput(details=(("XMP", (("a", "b"),)),)),
    ],
)
def test_bad_file_input_is_a_clear_error(f: FileInput) -> None:
    with pytest.raises(ReportError) as e:
        build_file_details_xml(1, "f", f)
    assert e.value.code == "invalid_input"


def test_validation_lists_every_problem_with_location(xsd_path: Path) -> None:
    xml = build_report_xml(full_report())
    broken = xml.replace(b"<incidentType>", b"<incidentKind>").replace(
        b"</incidentType>", b"</incidentKind>"
    )
    broken = broken.replace(b"<port>443</port>", b"<port>https</port>")
    problems = validate_report(broken, xsd_path)
    assert len(problems) == 2
    assert all(p.startswith("line ") for p in problems)
    assert any("incidentKind" in p for p in problems)
    assert any("port" in p for p in problems)
    assert validate_report(xml, xsd_path) == []


def test_hostile_xml_is_refused_not_expanded(tmp_path: Path, schema: etree.XMLSchema) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE report [<!ENTITY s SYSTEM "file://{secret}">]>'
        "<report><additionalInfo>&s;</additionalInfo></report>"
    ).encode()
    issues = validate(xxe, schema)
    assert len(issues) == 1 and "DOCTYPE" in issues[0].message
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>'
    )
    for doc in (xxe, laughs, b"<report><unclosed></report>", b""):
        with pytest.raises(ReportError) as e:
            parse_xml(doc)
        assert e.value.code == "unsafe_xml"
    assert "TOP-SECRET" not in repr(issues)


def test_schema_cache_fetches_once_and_survives_a_broken_api(
    tmp_path: Path, xsd_path: Path
) -> None:
    calls = []
    good = xsd_path.read_bytes()

    def fetch() -> bytes:
        calls.append(1)
        return good

    cache = tmp_path / "c" / "cybertip-test.xsd"
    s1 = load_schema_cached(fetch, cache)
    assert cache.read_bytes() == good and len(calls) == 1
    load_schema_cached(fetch, cache)  # from the cache
    assert len(calls) == 1
    s2 = load_schema_cached(lambda: b"<not-a-schema/>", cache, refresh=True)  # falls back
    assert cache.read_bytes() == good
    xml = build_report_xml(full_report())
    assert s1.validate(parse_xml(xml)) and s2.validate(parse_xml(xml))

    def down() -> bytes:
        raise ReportError("unreachable", "transient")

    with pytest.raises(ReportError) as e:
        load_schema_cached(down, tmp_path / "none.xsd")
    assert e.value.code == "transient"
    with pytest.raises(ReportError) as e:
        load_schema_cached(lambda: b"<x/>", tmp_path / "none.xsd")
    assert e.value.code == "xsd_unavailable"
