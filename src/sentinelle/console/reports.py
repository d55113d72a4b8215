"""Report drafts as the console shows them, with their XSD validation result.

The drafts themselves are made and kept by :mod:`sentinelle.reports` (a
confirmation opens one through :func:`sentinelle.reports.drafts.create_draft`).
Here they are only read and checked, without changing their state:
:func:`draft_view` validates the report XML and every file's ``fileDetails``
against the CyberTipline XSD, the same checks
:meth:`sentinelle.reports.lifecycle.ReportManager.validate` runs before a
submission. The page shows each ``fileDetails`` document exactly as it was
validated (with placeholder report and file ids: the real ones exist only once
the report is opened at the CyberTipline) and names the XSD used.

The XSD comes from ``SENTINELLE_CYBERTIP_XSD`` (a file path), else from the
cached copy of the API's ``/xsd`` (:func:`sentinelle.reports.xsd.default_cache_path`);
without either, the page says ``xsd_unavailable`` rather than guessing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ..reports.errors import ReportError

XSD_ENV = "SENTINELLE_CYBERTIP_XSD"
#: Placeholders written into a file's ``fileDetails`` for validation before submission.
PLACEHOLDER_REPORT_ID = 1
PLACEHOLDER_FILE_ID = "pending"


@dataclass(frozen=True)
class XsdSource:
    """Which CyberTipline XSD the console validates against, and where it came from."""

    path: Path
    origin: str  # "SENTINELLE_CYBERTIP_XSD" or "cached from the API's /xsd"


@dataclass(frozen=True)
class DraftView:
    """A report draft as the console shows it.

    ``files`` holds one dict per file: ``position``, ``sha256``, ``state`` and
    ``xml``, the ``fileDetails`` document that was validated (``None`` when it
    could not be built; the reason is in ``problems``).
    """

    id: int
    case_id: int | None
    state: str
    environment: str
    xml: str
    files: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)
    xsd: XsdSource | None = None

    @property
    def valid(self) -> bool:
        return not self.problems


@lru_cache(maxsize=4)
def _schema_from(path: str, mtime: float) -> Any:
    from ..reports.xsd import load_schema

    return load_schema(path)


def xsd_source() -> XsdSource:
    """The XSD to validate with: ``$SENTINELLE_CYBERTIP_XSD``, else the cached copy of
    the API's ``/xsd`` (``xsd_unavailable`` when neither file exists)."""
    from ..reports.xsd import default_cache_path

    explicit = os.environ.get(XSD_ENV, "").strip()
    env = os.environ.get("SENTINELLE_CYBERTIP_ENV", "").strip() or "test"
    path = Path(explicit) if explicit else default_cache_path(env)
    if not path.is_file():
        raise ReportError(
            f"no CyberTipline XSD: set {XSD_ENV} to the schema file, or fetch the API's /xsd "
            f"once (cached at {path})",
            "xsd_unavailable",
        )
    return XsdSource(path=path, origin=XSD_ENV if explicit else "cached from the API's /xsd")


def report_schema(source: XsdSource | None = None) -> Any:
    """The compiled XSD (``xsd_unavailable`` when none is configured or cached)."""
    src = source or xsd_source()
    return _schema_from(str(src.path), src.path.stat().st_mtime)


def drafts_for_case(engine: Engine, case_id: int) -> list[dict[str, Any]]:
    """The reports (any state) opened for ``case_id``, oldest first."""
    from ..reports.lifecycle import ReportManager

    return [r for r in ReportManager(engine).list() if r.get("case_id") == case_id]


def draft_view(engine: Engine, report_id: int) -> DraftView:
    """A report, its XML and every XSD problem of it and of its files' details."""
    from ..reports.builder import build_file_details_xml
    from ..reports.lifecycle import ReportManager
    from ..reports.xsd import validate

    manager = ReportManager(engine)
    info = manager.get(report_id)
    xml = manager.xml(report_id)
    source = xsd_source()
    schema = report_schema(source)
    problems = [str(i) for i in validate(xml, schema)]
    files = []
    for f in manager.files(report_id):
        entry: dict[str, Any] = {
            "position": f.position,
            "sha256": f.sha256,
            "state": f.state,
            "xml": None,
        }
        files.append(entry)
        try:
            fx = build_file_details_xml(PLACEHOLDER_REPORT_ID, PLACEHOLDER_FILE_ID, f.info)
        except ReportError as e:
            problems.append(f"file {f.position}: {e.message}")
            continue
        entry["xml"] = fx.decode("utf-8", "replace")
        problems += [f"file {f.position}: {i}" for i in validate(fx, schema)]
    return DraftView(
        id=int(info["id"]),
        case_id=info.get("case_id"),
        state=str(info.get("state")),
        environment=str(info.get("environment")),
        xml=xml.decode("utf-8", "replace"),
        files=files,
        problems=problems,
        xsd=source,
    )
