"""`ModelHashType`: what the model guard's three signal types have in common."""

from __future__ import annotations

from .base import SignalType


class ModelHashType(SignalType):
    """A SHA-256 computed from a model file by :mod:`sentinelle.modelguard.hashing`
    (exact match; not computed by ``sentinelle hash`` on media)."""

    hex_length = 64
    exact = True
    default_threshold = 0
    index = "exact"
    computed_from = ("model",)
    default_for_hashing = False
