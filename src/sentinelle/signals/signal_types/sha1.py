"""SHA-1 of the file's bytes (VICS and some hotline lists)."""

from __future__ import annotations

from .base import CryptoSignalType


class SHA1Type(CryptoSignalType):
    name = "sha1"
    description = "SHA-1 of the file's bytes (exact match)"
    hex_length = 40
    hma_names = ("sha1",)
    vics_field = "SHA1"
    vics_names = ("sha1", "sha-1")
