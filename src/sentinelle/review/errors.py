"""Errors of the review console. Each carries a stable ``code`` and an HTTP status.

==========================  ======  ===================================================
code                        status  meaning
==========================  ======  ===================================================
``invalid_credentials``     401     unknown user or wrong password (never says which)
``totp_required``           401     the account has TOTP: send the 6-digit code too
``invalid_totp``            401     wrong, expired or already used TOTP code
``account_locked``          403     too many failed logins; retry after ``locked_until``
``account_disabled``        403     the account was disabled by an administrator
``invalid_session``         401     unknown, revoked or expired session token
``forbidden``               403     the user's role does not grant this permission
``unknown_user``            404     no such user
``unknown_case``            404     no such case
``unknown_item``            404     no such case item
``unknown_decision``        404     no such decision
``user_exists``             409     user name taken
``already_decided``         409     the item already has a final decision
``awaiting_approval``       409     the item's decision waits for a second reviewer
``not_pending``             409     the decision is not waiting for approval
``not_assigned``            409     the case is assigned to someone else
``self_approval``           403     a reviewer cannot approve their own decision
``exposure_cap_reached``    429     the user's daily exposure cap is reached
``bad_*`` (e.g. bad_role)   422     invalid input
==========================  ======  ===================================================
"""

from __future__ import annotations

from ..errors import SentinelleError


class ReviewError(SentinelleError):
    """Base class; ``status`` is the HTTP status a route should answer with."""

    code = "review_error"
    status = 400

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message, code)
        if status is not None:
            self.status = status
        elif self.code.startswith("bad_"):
            self.status = 422


class AuthError(ReviewError):
    """Login or session failure."""

    code = "invalid_credentials"
    status = 401


class PermissionDenied(ReviewError):
    code = "forbidden"
    status = 403


class NotFound(ReviewError):
    code = "not_found"
    status = 404


class Conflict(ReviewError):
    code = "conflict"
    status = 409
