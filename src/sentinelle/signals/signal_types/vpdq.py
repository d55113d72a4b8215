"""vPDQ: a video as the PDQ hashes of its frames, matched by the video-level rule.

A bank entry of type ``vpdq`` is one frame hash (same 64-hex form as PDQ); the entries of
one video share ``media_ref``. Computed by :mod:`sentinelle.signals.vpdq`; matched by
:meth:`~sentinelle.index.matcher.Matcher.match_video` (80 % of frames both ways). Not
written to HMA, ThreatExchange or VICS files, which have no per-frame form.
"""

from __future__ import annotations

from .base import SignalType


class VPDQType(SignalType):
    name = "vpdq"
    description = "vPDQ video hash: per-frame PDQ, video-level 80 % rule (default threshold 31)"
    hex_length = 64
    exact = False
    default_threshold = 31
    index = "vpdq"
    computed_from = ("video",)
