"""Errors of the CyberTipline reporting package.

Every failure a user or the API can trigger is a :class:`ReportError` with a stable
``code``. The codes, grouped by who must act:

* input: ``invalid_input`` (a builder field is wrong), ``invalid_report`` (the XML
  does not validate against the XSD; ``issues`` lists every problem),
  ``unsafe_xml`` (a DOCTYPE/entity or malformed XML was refused), ``xsd_unavailable``;
* configuration: ``no_credentials``, ``production_not_configured``;
* the API: ``auth_failed`` (responseCode 2000/3xxx, HTTP 401/403), ``rejected``
  (4xxx), ``report_not_found`` (5001), ``already_finished`` (5102),
  ``already_retracted`` (5101), ``api_error`` (any other code), ``transient``
  (server error or connection failure, retries exhausted), ``bad_response``
  (unparseable answer), ``ambiguous_outcome`` (a submit/upload whose answer was
  lost: NOT retried automatically, so nothing is filed twice);
* local state: ``unknown_report``, ``invalid_state``, ``missing_file``.
"""

from __future__ import annotations

from typing import Any

from ..errors import SentinelleError


class ReportError(SentinelleError):
    """A CyberTipline report could not be built, validated, sent or advanced."""

    code = "report_error"

    def __init__(
        self,
        message: str,
        code: str | None = None,
        *,
        issues: list[dict[str, Any]] | None = None,
        response_code: int | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message, code)
        self.issues = issues or []
        self.response_code = response_code
        self.http_status = http_status

    def to_dict(self) -> dict[str, Any]:  # type: ignore[override]
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.issues:
            out["issues"] = self.issues
        if self.response_code is not None:
            out["response_code"] = self.response_code
        return out
