"""Errors of the provenance package (each with a stable ``code``)."""

from __future__ import annotations

from ..errors import SentinelleError


class ProvenanceError(SentinelleError):
    """A provenance request cannot be served.

    Codes: ``unknown_source``, ``bad_trust_anchors``, ``file_too_large``, ``io_error``,
    ``empty_file``, ``sign_failed``, ``bad_certificate``, ``bad_key``,
    ``unsupported_format``, ``bad_algorithm``.
    """

    code = "provenance_error"
