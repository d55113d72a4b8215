"""Provenance triage: tell AI-generated media from camera media, and explain why.

No single signal is reliable, so every *source* (C2PA manifests, generator metadata,
invisible watermarks, camera traits, an optional learned detector) reports
:class:`Evidence` items and :mod:`.verdict` weighs them into one
:class:`ProvenanceResult`::

    from sentinelle.provenance import analyze_file
    result = analyze_file("photo.jpg")
    result.verdict      # "ai_generated" | "ai_edited" | "camera_signed" | "no_evidence"
                        # | "conflicting"
    result.confidence   # 0..1
    result.evidence     # [Evidence(source, finding, strength, indicates, forgeable, ...)]

See docs/PROVENANCE.md for what each source catches and misses.
"""

from __future__ import annotations

from .analyze import analyze_bytes, analyze_file
from .evidence import DetectorConfig, Evidence, ProvenanceResult, SourceContext

__all__ = [
    "DetectorConfig",
    "Evidence",
    "ProvenanceResult",
    "SourceContext",
    "analyze_bytes",
    "analyze_file",
]
