"""Report drafts as the console shows them, with their XSD validation result.

The drafts themselves are made and kept by :mod:`sentinelle.reports` (a
confirmation opens one through :func:`sentinelle.reports.drafts.create_draft`).
Here they are only read and checked, without changing their state:
:func:`draft_view` validates the report XML and every file's ``fileDetails``
against the CyberTipline XSD, the same checks
:meth:`sentinelle.reports.lifecycle.ReportManager.validate` runs before a
submission.

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


@dataclass(frozen=True)
class DraftView:
    id: int
    case_id: int | None
    state: str
    environment: str
    xml: str
    files: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


@lru_cache(maxsize=4)
def _schema_from(path: str, mtime: float) -> Any:
    from ..reports.xsd import load_schema

    return load_schema(path)


def report_schema() -> Any:
    """The compiled XSD (``xsd_unavailable`` when none is configured or cached)."""
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
    return _schema_from(str(path), path.stat().st_mtime)


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
    schema = report_schema()
    problems = [str(i) for i in validate(xml, schema)]
    files = []
    for f in manager.files(report_id):
        files.append({"position": f.position, "sha256": f.sha256, "state": f.state})
        try:
            fx = build_file_details_xml(1, "pending", f.info)
        except ReportError as e:
            problems.append(f"file {f.position}: {e.message}")
            continue
        problems += [f"file {f.position}: {i}" for i in validate(fx, schema)]
    return DraftView(
        id=int(info["id"]),
        case_id=info.get("case_id"),
        state=str(info.get("state")),
        environment=str(info.get("environment")),
        xml=xml.decode("utf-8", "replace"),
        files=files,
        problems=problems,
    )
