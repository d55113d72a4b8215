"""Errors of the evidence store, holds and retention."""

from __future__ import annotations

from ..errors import SentinelleError


class EvidenceError(SentinelleError):
    """An evidence, hold or retention operation was refused.

    Codes: ``no_master_key`` (neither ``SENTINELLE_MASTER_KEY`` nor
    ``SENTINELLE_MASTER_KEY_FILE`` set), ``bad_master_key`` (not base64 of 32
    bytes, unreadable file, both variables set), ``unknown_blob``,
    ``evidence_destroyed`` (the case was crypto-shredded), ``decrypt_failed``
    (wrong master key or altered ciphertext), ``under_hold`` (destruction refused
    while a hold is active), ``no_evidence`` (nothing stored for that case),
    ``bad_evidence`` (bad case id, media type, file name or empty/oversized data),
    ``unknown_hold``, ``bad_hold`` (released hold, extension that shortens a hold,
    missing reason...), ``unknown_jurisdiction``.
    """

    code = "evidence_error"
