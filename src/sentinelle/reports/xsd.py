"""Safe XML parsing and validation against the CyberTipline XSD.

Two rules hold for every XML document this package reads -- reports it built,
documents a caller hands in, and every answer from the API:

* the parser never resolves entities, loads a DTD or touches the network, and a
  document carrying a DOCTYPE is refused outright (``unsafe_xml``): the API's
  answers never need one, so its presence can only mean tampering;
* a report is sent only after :func:`validate` found no problem.

The schema comes from a file (tests: ``../shared/schemas/cyber_tipline.xsd``) or,
in production, from the API's ``GET /xsd``, cached on disk so that validation
keeps working while the API is unreachable (:func:`load_schema_cached`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from .errors import ReportError

#: Largest XML document accepted from anywhere (the API's answers are a few hundred bytes).
MAX_XML_BYTES = 8 * 1024 * 1024
CACHE_ENV = "SENTINELLE_CYBERTIP_XSD_CACHE"


def _parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers are not thread-safe.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
    )


def parse_xml(data: bytes) -> etree._Element:
    """Parse ``data`` safely; raise ``ReportError(unsafe_xml)`` on anything suspicious."""
    if not isinstance(data, bytes | bytearray):
        raise ReportError("XML must be given as bytes", "unsafe_xml")
    if len(data) > MAX_XML_BYTES:
        raise ReportError(f"XML document larger than {MAX_XML_BYTES} bytes", "unsafe_xml")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ReportError("XML with a DOCTYPE or entity declaration is refused", "unsafe_xml")
    try:
        root = etree.fromstring(bytes(data), _parser())
    except etree.XMLSyntaxError as e:
        raise ReportError(f"malformed XML: {e}", "unsafe_xml") from None
    if root.getroottree().docinfo.doctype:
        raise ReportError("XML with a DOCTYPE is refused", "unsafe_xml")
    return root


@dataclass(frozen=True)
class XsdIssue:
    """One schema violation: where (line, column, element path) and what."""

    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_schema(source: str | os.PathLike[str] | bytes) -> etree.XMLSchema:
    """Compile an XSD from a path or from its bytes (``xsd_unavailable`` on failure)."""
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as e:
        raise ReportError(f"cannot read XSD {source}: {e.strerror}", "xsd_unavailable") from None
    try:
        return etree.XMLSchema(parse_xml(data))
    except (ReportError, etree.XMLSchemaParseError) as e:
        raise ReportError(f"not a usable XSD: {e}", "xsd_unavailable") from None


def validate(xml: bytes, schema: etree.XMLSchema) -> list[XsdIssue]:
    """Every problem of ``xml`` against ``schema`` (empty list: valid).

    Malformed or unsafe XML is reported as one issue rather than raised, so a
    caller always gets the full, structured picture.
    """
    try:
        root = parse_xml(xml)
    except ReportError as e:
        return [XsdIssue(0, 0, "", e.message)]
    if schema.validate(root):
        return []
    return [XsdIssue(err.line, err.column, err.path or "", err.message) for err in schema.error_log]


def require_valid(xml: bytes, schema: etree.XMLSchema, what: str = "report") -> None:
    """Raise ``ReportError(invalid_report)`` listing every issue unless ``xml`` is valid."""
    issues = validate(xml, schema)
    if issues:
        raise ReportError(
            f"{what} does not validate against the CyberTipline XSD "
            f"({len(issues)} problem(s)); first: {issues[0]}",
            "invalid_report",
            issues=[i.to_dict() for i in issues],
        )


def default_cache_path(environment: str) -> Path:
    """``$SENTINELLE_CYBERTIP_XSD_CACHE`` or ``~/.cache/sentinelle/cybertip-<env>.xsd``."""
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "sentinelle" / f"cybertip-{environment}.xsd"


def load_schema_cached(fetch, cache_path: Path, *, refresh: bool = False) -> etree.XMLSchema:  # type: ignore[no-untyped-def]
    """The API's schema: fetched with ``fetch()`` (-> bytes) and cached at ``cache_path``.

    With ``refresh`` the API is asked first and the cache is the fallback; without
    it the cache is used when present. A fetched XSD is compiled before it replaces
    the cache (written atomically), so a broken answer never poisons it.
    """
    if not refresh and cache_path.is_file():
        return load_schema(cache_path)
    try:
        data = fetch()
        schema = load_schema(data)
    except ReportError:
        if cache_path.is_file():
            return load_schema(cache_path)
        raise
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_path.parent, prefix=".xsd-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, cache_path)
    return schema
