"""Build CyberTipline ``<report>`` and ``<fileDetails>`` XML from plain dataclasses.

The dataclasses mirror the parts of NCMEC's schema (``cyber_tipline.xsd``) an
electronic service provider fills in; the builder writes elements in exactly the
order the XSD's ``xs:sequence`` demands, so a report built here either validates
or fails on a value, never on structure. Layout of a submission::

    <report>                       POST /submit  -> reportId
      incidentSummary              incidentType, platform, reportAnnotations, incidentDateTime
      internetDetails*             webPageIncident | emailIncident | chatImIncident
      lawEnforcement?
      reporter                     reportingPerson (with email), contactPerson, legalURL...
      personOrUserReported*        espIdentifier, screenName, ipCaptureEvent*, deviceId*...
      additionalInfo?
    <fileDetails>                  POST /fileinfo, once per uploaded file
      reportId, fileId, fileName, originalFileName, uploadedToEspTimestamp,
      fileViewedByEsp, publiclyAvailable, fileAnnotations (generativeAi...),
      industryClassification (A1/A2/B1/B2), originalFileHash*, ipCaptureEvent, details*

Files are described by :class:`FileInput`; :meth:`FileInput.from_bytes` computes
``originalFileHash`` from the bytes exactly as received (before any re-encoding).
Datetimes must be timezone-aware: an ambiguous local time in a legal report is a
mistake, so naive ones are refused (``invalid_input``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from os import PathLike
from typing import Any

from lxml import etree

from .errors import ReportError

# -- vocabularies of the schema -----------------------------------------------------------

INCIDENT_CHILD_PORNOGRAPHY = "Child Pornography (possession, manufacture, and distribution)"
INCIDENT_TYPES = frozenset(
    {
        INCIDENT_CHILD_PORNOGRAPHY,
        "Child Sex Trafficking",
        "Child Sex Tourism",
        "Child Sexual Molestation",
        "Misleading Domain Name",
        "Misleading Words or Digital Images on the Internet",
        "Online Enticement of Children for Sexual Acts",
        "Unsolicited Obscene Material Sent to a Child",
    }
)
#: ``reportAnnotations`` flags (each present element means "true").
REPORT_ANNOTATIONS = (
    "sextortion",
    "csamSolicitation",
    "minorToMinorInteraction",
    "spam",
    "sadisticOnlineExploitation",
)
#: ``fileAnnotations`` flags, in schema order.
FILE_ANNOTATIONS = (
    "animeDrawingVirtualHentai",
    "potentialMeme",
    "viral",
    "possibleSelfProduction",
    "physicalHarm",
    "violenceGore",
    "bestiality",
    "liveStreaming",
    "infant",
    "generativeAi",
)
#: Industry classification (the Tech Coalition / NCMEC A1/A2/B1/B2 scheme).
INDUSTRY_CLASSES = ("A1", "A2", "B1", "B2")
IP_EVENTS = ("Login", "Registration", "Purchase", "Upload", "Other", "Unknown")
FILE_RELEVANCE = ("Reported", "Supplemental Reported")
#: Provenance verdicts (``sentinelle.provenance``) that mean "made or edited by generative AI".
GENERATIVE_VERDICTS = frozenset({"ai_generated", "ai_edited"})


def _bad(message: str) -> ReportError:
    return ReportError(message, "invalid_input")


# -- value objects -------------------------------------------------------------------------


@dataclass(frozen=True)
class Phone:
    number: str
    type: str | None = None  # Mobile, Home, Business, Work, Fax, Internet, Recovery
    country_calling_code: str | None = None  # "+1"
    extension: str | None = None
    verified: bool | None = None


@dataclass(frozen=True)
class Email:
    address: str
    type: str | None = None  # Home, Work, Business, Recovery
    verified: bool | None = None
    verification_date: dt.datetime | None = None


@dataclass(frozen=True)
class Address:
    address: str | None = None
    city: str | None = None
    zip_code: str | None = None
    state: str | None = None  # two-letter US state code
    non_usa_state: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2
    type: str | None = None  # Home, Business, Billing, Shipping, Technical


@dataclass(frozen=True)
class Person:
    first_name: str | None = None
    last_name: str | None = None
    phones: tuple[Phone, ...] = ()
    emails: tuple[Email, ...] = ()
    addresses: tuple[Address, ...] = ()
    age: int | None = None
    date_of_birth: dt.date | None = None


@dataclass(frozen=True)
class IpCaptureEvent:
    """An IP address the reported user used, and when (``ipCaptureEvent``)."""

    ip_address: str
    event_name: str | None = None  # Login, Registration, Purchase, Upload, Other, Unknown
    date_time: dt.datetime | None = None
    possible_proxy: bool | None = None
    port: int | None = None


@dataclass(frozen=True)
class DeviceId:
    id_type: str
    id_value: str
    event_name: str | None = None
    date_time: dt.datetime | None = None


@dataclass(frozen=True)
class AccountAction:
    """``accountTemporarilyDisabled`` / ``accountPermanentlyDisabled``."""

    disabled_date: dt.datetime | None = None
    user_notified: bool | None = None
    user_notified_date: dt.datetime | None = None
    reenabled_date: dt.datetime | None = None  # temporary only


@dataclass(frozen=True)
class IncidentSummary:
    incident_type: str
    incident_datetime: dt.datetime
    platform: str | None = None
    escalate_to_high_priority: str | None = None  # a reason; only when escalating
    annotations: frozenset[str] = frozenset()  # subset of REPORT_ANNOTATIONS
    incident_datetime_description: str | None = None


@dataclass(frozen=True)
class WebPageIncident:
    urls: tuple[str, ...] = ()
    additional_info: str | None = None
    third_party_hosted_content: bool | None = None


@dataclass(frozen=True)
class EmailIncident:
    email_addresses: tuple[Email, ...] = ()
    content: str | None = None
    additional_info: str | None = None


@dataclass(frozen=True)
class ChatImIncident:
    chat_client: str | None = None
    chat_room_name: str | None = None
    content: str | None = None
    additional_info: str | None = None


InternetDetail = WebPageIncident | EmailIncident | ChatImIncident


@dataclass(frozen=True)
class LawEnforcement:
    agency_name: str
    case_number: str | None = None
    officer_contact: Person | None = None
    reported_to_le: bool | None = None
    served_legal_process_domestic: bool | None = None


@dataclass(frozen=True)
class Reporter:
    """The reporting company: ``reportingPerson`` needs at least one email."""

    reporting_person: Person
    contact_person: Person | None = None
    company_template: str | None = None
    terms_of_service: str | None = None
    legal_url: str | None = None


@dataclass(frozen=True)
class ReportedPerson:
    """``personOrUserReported``: the platform account the report is about."""

    person: Person | None = None
    esp_identifier: str | None = None
    esp_service: str | None = None
    compromised_account: bool | None = None
    screen_name: str | None = None
    display_names: tuple[str, ...] = ()
    profile_urls: tuple[str, ...] = ()
    profile_bio: str | None = None
    ip_capture_events: tuple[IpCaptureEvent, ...] = ()
    device_ids: tuple[DeviceId, ...] = ()
    third_party_user_reported: bool | None = None
    prior_ct_reports: tuple[int, ...] = ()
    group_identifier: str | None = None
    account_temporarily_disabled: AccountAction | None = None
    account_permanently_disabled: AccountAction | None = None
    additional_info: str | None = None


@dataclass(frozen=True)
class FileInput:
    """One file of a report: everything ``fileDetails`` says about it except the ids.

    ``hashes`` maps ``hashType`` to the hex digest of the bytes *as received*;
    ``details`` holds extra name/value pairs per metadata type (``HASH``: e.g.
    ``{"PDQ": "f8f8..."}``, ``EXIF``). ``media_type``, ``size`` and ``blob_id`` are
    local bookkeeping (``blob_id``: the encrypted copy in the evidence store), never
    sent.
    """

    file_name: str | None = None
    original_file_name: str | None = None
    hashes: tuple[tuple[str, str], ...] = ()
    uploaded_to_esp_timestamp: dt.datetime | None = None
    location_of_file: str | None = None
    file_viewed_by_esp: bool | None = None
    exif_viewed_by_esp: bool | None = None
    publicly_available: bool | None = None
    file_relevance: str | None = None
    annotations: frozenset[str] = frozenset()
    industry_classification: str | None = None
    ip_capture_event: IpCaptureEvent | None = None
    details: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    additional_info: tuple[str, ...] = ()
    media_type: str | None = None
    size: int | None = None
    blob_id: int | None = None

    @classmethod
    def from_bytes(cls, data: bytes, **kwargs: Any) -> FileInput:
        """Describe ``data``: MD5, SHA1 and SHA256 of the bytes exactly as received."""
        hashes = (
            ("MD5", hashlib.md5(data).hexdigest()),
            ("SHA1", hashlib.sha1(data).hexdigest()),
            ("SHA256", hashlib.sha256(data).hexdigest()),
        )
        return cls(hashes=hashes, size=len(data), **kwargs)

    def hash(self, hash_type: str) -> str | None:
        return dict(self.hashes).get(hash_type)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored with a draft; :meth:`from_dict` reverses it)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None or v == () or v == frozenset():
                continue
            if isinstance(v, dt.datetime):
                v = v.isoformat()
            elif isinstance(v, frozenset):
                v = sorted(v)
            elif isinstance(v, IpCaptureEvent):
                v = {
                    "ip_address": v.ip_address,
                    "event_name": v.event_name,
                    "date_time": v.date_time.isoformat() if v.date_time else None,
                    "possible_proxy": v.possible_proxy,
                    "port": v.port,
                }
            elif f.name == "hashes":
                v = [list(p) for p in v]
            elif f.name == "details":
                v = [[t, [list(p) for p in pairs]] for t, pairs in v]
            elif f.name == "additional_info":
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileInput:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise _bad(f"unknown file field(s): {', '.join(sorted(unknown))}")
        kw = dict(d)
        try:
            for name in ("uploaded_to_esp_timestamp",):
                if kw.get(name):
                    kw[name] = dt.datetime.fromisoformat(kw[name])
            if "annotations" in kw:
                kw["annotations"] = frozenset(kw["annotations"])
            if "hashes" in kw:
                kw["hashes"] = tuple((str(t), str(h)) for t, h in kw["hashes"])
            if "details" in kw:
                kw["details"] = tuple(
                    (str(t), tuple((str(n), str(v)) for n, v in pairs))
                    for t, pairs in kw["details"]
                )
            if "additional_info" in kw:
                kw["additional_info"] = tuple(str(x) for x in kw["additional_info"])
            if kw.get("ip_capture_event"):
                ev = dict(kw["ip_capture_event"])
                if ev.get("date_time"):
                    ev["date_time"] = dt.datetime.fromisoformat(ev["date_time"])
                kw["ip_capture_event"] = IpCaptureEvent(**ev)
        except (TypeError, ValueError) as e:
            raise _bad(f"bad stored file description: {e}") from None
        return cls(**kw)


@dataclass(frozen=True)
class ReportInput:
    """Everything one ``<report>`` says (files travel separately, see :class:`FileInput`)."""

    incident: IncidentSummary
    reporter: Reporter
    reported_people: tuple[ReportedPerson, ...] = ()
    internet_details: tuple[InternetDetail, ...] = ()
    law_enforcement: LawEnforcement | None = None
    files: tuple[FileInput, ...] = field(default=())
    additional_info: str | None = None


def annotations_for_verdict(verdict: str | None) -> frozenset[str]:
    """``{"generativeAi"}`` when a provenance verdict says the file is AI-made or AI-edited."""
    return frozenset({"generativeAi"}) if verdict in GENERATIVE_VERDICTS else frozenset()


# -- XML writing ---------------------------------------------------------------------------


def _ts(value: dt.datetime, what: str) -> str:
    if not isinstance(value, dt.datetime):
        raise _bad(f"{what} must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise _bad(f"{what} must be timezone-aware (got a naive datetime)")
    return value.isoformat()


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def _opt(parent: etree._Element, tag: str, value: object, what: str = "") -> None:
    """Add ``<tag>`` only when ``value`` is set; formats bools, ints, dates."""
    if value is None:
        return
    if isinstance(value, bool):
        _sub(parent, tag, _bool(value))
    elif isinstance(value, dt.datetime):
        _sub(parent, tag, _ts(value, what or tag))
    elif isinstance(value, dt.date):
        _sub(parent, tag, value.isoformat())
    else:
        _sub(parent, tag, str(value))


def _check_choice(value: str | None, allowed: Iterable[str], what: str) -> None:
    allowed = tuple(allowed)
    if value is not None and value not in allowed:
        raise _bad(f"{what} must be one of {', '.join(allowed)} (got {value!r})")


def _phone(parent: etree._Element, tag: str, p: Phone) -> None:
    _sub(
        parent,
        tag,
        p.number,
        type=p.type,
        verified=None if p.verified is None else _bool(p.verified),
        countryCallingCode=p.country_calling_code,
        extension=p.extension,
    )


def _email(parent: etree._Element, tag: str, e: Email) -> None:
    _sub(
        parent,
        tag,
        e.address,
        type=e.type,
        verified=None if e.verified is None else _bool(e.verified),
        verificationDate=(
            _ts(e.verification_date, "email verificationDate") if e.verification_date else None
        ),
    )


def _address(parent: etree._Element, tag: str, a: Address) -> None:
    el = _sub(parent, tag, type=a.type)
    _opt(el, "address", a.address)
    _opt(el, "city", a.city)
    _opt(el, "zipCode", a.zip_code)
    _opt(el, "state", a.state)
    _opt(el, "nonUsaState", a.non_usa_state)
    _opt(el, "country", a.country)


def _person(parent: etree._Element, tag: str, p: Person, *, contact: bool = False) -> None:
    el = _sub(parent, tag)
    _opt(el, "firstName", p.first_name)
    _opt(el, "lastName", p.last_name)
    for ph in p.phones:
        _phone(el, "phone", ph)
    for em in p.emails:
        _email(el, "email", em)
    for ad in p.addresses:
        _address(el, "address", ad)
    if not contact:  # contactPerson has no age / dateOfBirth
        _opt(el, "age", p.age)
        _opt(el, "dateOfBirth", p.date_of_birth)


def _ip_event(parent: etree._Element, ev: IpCaptureEvent) -> None:
    try:
        ipaddress.ip_address(ev.ip_address)
    except ValueError:
        raise _bad(f"not an IP address: {ev.ip_address!r}") from None
    _check_choice(ev.event_name, IP_EVENTS, "ipCaptureEvent eventName")
    el = _sub(parent, "ipCaptureEvent")
    _sub(el, "ipAddress", ev.ip_address)
    _opt(el, "eventName", ev.event_name)
    _opt(el, "dateTime", ev.date_time, "ipCaptureEvent dateTime")
    _opt(el, "possibleProxy", ev.possible_proxy)
    if ev.port is not None and not 0 <= ev.port <= 65535:
        raise _bad(f"port out of range: {ev.port}")
    _opt(el, "port", ev.port)


def _device(parent: etree._Element, d: DeviceId) -> None:
    _check_choice(d.event_name, IP_EVENTS, "deviceId eventName")
    el = _sub(parent, "deviceId")
    _sub(el, "idType", d.id_type)
    _sub(el, "idValue", d.id_value)
    _opt(el, "eventName", d.event_name)
    _opt(el, "dateTime", d.date_time, "deviceId dateTime")


def _account_action(parent: etree._Element, tag: str, a: AccountAction, temporary: bool) -> None:
    def ts(v: dt.datetime | None, what: str) -> str | None:
        return _ts(v, what) if v else None

    _sub(
        parent,
        tag,
        "true",
        disabledDate=ts(a.disabled_date, "disabledDate"),
        userNotified=None if a.user_notified is None else _bool(a.user_notified),
        userNotifiedDate=ts(a.user_notified_date, "userNotifiedDate"),
        reenabledDate=ts(a.reenabled_date, "reenabledDate") if temporary else None,
    )


def _incident(parent: etree._Element, s: IncidentSummary) -> None:
    _check_choice(s.incident_type, sorted(INCIDENT_TYPES), "incidentType")
    unknown = set(s.annotations) - set(REPORT_ANNOTATIONS)
    if unknown:
        raise _bad(f"unknown report annotation(s): {', '.join(sorted(unknown))}")
    el = _sub(parent, "incidentSummary")
    _sub(el, "incidentType", s.incident_type)
    _opt(el, "platform", s.platform)
    _opt(el, "escalateToHighPriority", s.escalate_to_high_priority)
    if s.annotations:
        ann = _sub(el, "reportAnnotations")
        for name in REPORT_ANNOTATIONS:
            if name in s.annotations:
                _sub(ann, name, "true")
    _sub(el, "incidentDateTime", _ts(s.incident_datetime, "incidentDateTime"))
    _opt(el, "incidentDateTimeDescription", s.incident_datetime_description)


def _internet(parent: etree._Element, d: InternetDetail) -> None:
    el = _sub(parent, "internetDetails")
    if isinstance(d, WebPageIncident):
        attrs = {}
        if d.third_party_hosted_content is not None:
            attrs["thirdPartyHostedContent"] = _bool(d.third_party_hosted_content)
        w = _sub(el, "webPageIncident", **attrs)
        for url in d.urls:
            _sub(w, "url", url)
        _opt(w, "additionalInfo", d.additional_info)
    elif isinstance(d, EmailIncident):
        w = _sub(el, "emailIncident")
        for em in d.email_addresses:
            _email(w, "emailAddress", em)
        _opt(w, "content", d.content)
        _opt(w, "additionalInfo", d.additional_info)
    elif isinstance(d, ChatImIncident):
        w = _sub(el, "chatImIncident")
        _opt(w, "chatClient", d.chat_client)
        _opt(w, "chatRoomName", d.chat_room_name)
        _opt(w, "content", d.content)
        _opt(w, "additionalInfo", d.additional_info)
    else:
        raise _bad(f"unsupported internet detail {type(d).__name__}")


def _law(parent: etree._Element, le: LawEnforcement) -> None:
    el = _sub(parent, "lawEnforcement")
    _sub(el, "agencyName", le.agency_name)
    _opt(el, "caseNumber", le.case_number)
    if le.officer_contact is not None:
        _person(el, "officerContact", le.officer_contact, contact=True)
    _opt(el, "reportedToLe", le.reported_to_le)
    _opt(el, "servedLegalProcessDomestic", le.served_legal_process_domestic)


def _reporter(parent: etree._Element, r: Reporter) -> None:
    if not r.reporting_person.emails:
        raise _bad("reporter.reporting_person needs at least one email address")
    el = _sub(parent, "reporter")
    _person(el, "reportingPerson", r.reporting_person)
    if r.contact_person is not None:
        _person(el, "contactPerson", r.contact_person, contact=True)
    _opt(el, "companyTemplate", r.company_template)
    _opt(el, "termsOfService", r.terms_of_service)
    _opt(el, "legalURL", r.legal_url)


def _reported(parent: etree._Element, p: ReportedPerson) -> None:
    el = _sub(parent, "personOrUserReported")
    if p.person is not None:
        _person(el, "personOrUserReportedPerson", p.person)
    _opt(el, "espIdentifier", p.esp_identifier)
    _opt(el, "espService", p.esp_service)
    _opt(el, "compromisedAccount", p.compromised_account)
    _opt(el, "screenName", p.screen_name)
    for name in p.display_names:
        _sub(el, "displayName", name)
    for url in p.profile_urls:
        _sub(el, "profileUrl", url)
    _opt(el, "profileBio", p.profile_bio)
    for ev in p.ip_capture_events:
        _ip_event(el, ev)
    for d in p.device_ids:
        _device(el, d)
    _opt(el, "thirdPartyUserReported", p.third_party_user_reported)
    for rid in p.prior_ct_reports:
        _sub(el, "priorCTReports", str(int(rid)))
    _opt(el, "groupIdentifier", p.group_identifier)
    if p.account_temporarily_disabled is not None:
        _account_action(el, "accountTemporarilyDisabled", p.account_temporarily_disabled, True)
    if p.account_permanently_disabled is not None:
        _account_action(el, "accountPermanentlyDisabled", p.account_permanently_disabled, False)
    _opt(el, "additionalInfo", p.additional_info)


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def build_report_xml(report: ReportInput) -> bytes:
    """The ``<report>`` document for ``POST /submit`` (UTF-8 bytes with declaration).

    Raises ``ReportError(invalid_input)`` for values the schema cannot hold (naive
    datetimes, unknown enumerations, bad IP addresses); validate the result with
    :func:`validate_report` before sending it anyway.
    """
    root = etree.Element("report")
    try:
        _incident(root, report.incident)
        for d in report.internet_details:
            _internet(root, d)
        if report.law_enforcement is not None:
            _law(root, report.law_enforcement)
        _reporter(root, report.reporter)
        for p in report.reported_people:
            _reported(root, p)
        _opt(root, "additionalInfo", report.additional_info)
    except (ValueError, TypeError) as e:  # lxml: control characters, non-string text
        raise _bad(f"value cannot be written to XML: {e}") from None
    return _serialize(root)


def build_file_details_xml(report_id: int, file_id: str, f: FileInput) -> bytes:
    """The ``<fileDetails>`` document for ``POST /fileinfo`` of one uploaded file."""
    try:
        return _file_details(report_id, file_id, f)
    except (ValueError, TypeError) as e:
        raise _bad(f"value cannot be written to XML: {e}") from None


def _file_details(report_id: int, file_id: str, f: FileInput) -> bytes:
    if not str(file_id).strip():
        raise _bad("fileId must not be empty")
    _check_choice(f.file_relevance, FILE_RELEVANCE, "fileRelevance")
    _check_choice(f.industry_classification, INDUSTRY_CLASSES, "industryClassification")
    unknown = set(f.annotations) - set(FILE_ANNOTATIONS)
    if unknown:
        raise _bad(f"unknown file annotation(s): {', '.join(sorted(unknown))}")
    root = etree.Element("fileDetails")
    _sub(root, "reportId", str(int(report_id)))
    _sub(root, "fileId", str(file_id))
    _opt(root, "fileName", f.file_name)
    _opt(root, "originalFileName", f.original_file_name)
    _opt(root, "uploadedToEspTimestamp", f.uploaded_to_esp_timestamp, "uploadedToEspTimestamp")
    _opt(root, "locationOfFile", f.location_of_file)
    _opt(root, "fileViewedByEsp", f.file_viewed_by_esp)
    _opt(root, "exifViewedByEsp", f.exif_viewed_by_esp)
    _opt(root, "publiclyAvailable", f.publicly_available)
    _opt(root, "fileRelevance", f.file_relevance)
    if f.annotations:
        ann = _sub(root, "fileAnnotations")
        for name in FILE_ANNOTATIONS:
            if name in f.annotations:
                _sub(ann, name, "true")
    _opt(root, "industryClassification", f.industry_classification)
    for hash_type, value in f.hashes:
        _sub(root, "originalFileHash", value, hashType=hash_type)
    if f.ip_capture_event is not None:
        _ip_event(root, f.ip_capture_event)
    for meta_type, pairs in f.details:
        _check_choice(meta_type, ("EXIF", "HASH"), "details type")
        det = _sub(root, "details", type=meta_type)
        for name, value in pairs:
            pair = _sub(det, "nameValuePair")
            _sub(pair, "name", name)
            _sub(pair, "value", value)
    for info in f.additional_info:
        _sub(root, "additionalInfo", info)
    return _serialize(root)


def validate_report(xml: bytes, xsd_path: str | PathLike[str]) -> list[str]:
    """Every schema problem of ``xml`` (a report or fileDetails) as ``"line N: ..."`` strings.

    An empty list means valid. :func:`sentinelle.reports.xsd.validate` gives the same
    problems as structured :class:`~sentinelle.reports.xsd.XsdIssue` records.
    """
    from .xsd import load_schema, validate

    return [str(i) for i in validate(xml, load_schema(xsd_path))]
