"""SHA-256 of the file's bytes: the identity of a file (``media_ref``, evidence, reports)."""

from __future__ import annotations

from .base import CryptoSignalType


class SHA256Type(CryptoSignalType):
    name = "sha256"
    description = "SHA-256 of the file's bytes (exact match)"
    hex_length = 64
    hma_names = ("sha256",)
    threatexchange_names = ("video_sha256", "sha256")
    vics_field = "SHA256"
    vics_names = ("sha256",)
