"""PDQ: Meta's 256-bit perceptual image hash, matched by Hamming distance.

Computed by :mod:`sentinelle.signals.pdq` (reference-exact and fast paths, dihedral and
trimmed query variants); served by :class:`~sentinelle.index.pdq_index.PDQIndex`. The
default threshold 31 is the one HMA and ThreatExchange use.
"""

from __future__ import annotations

from .base import SignalType


class PDQType(SignalType):
    name = "pdq"
    description = "PDQ perceptual image hash (Hamming distance, default threshold 31)"
    hex_length = 64
    exact = False
    default_threshold = 31
    index = "pdq"
    computed_from = ("image",)
    hma_names = ("pdq",)
    threatexchange_names = ("pdq",)
    vics_names = ("pdq",)
