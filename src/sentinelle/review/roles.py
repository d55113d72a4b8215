"""Roles and the permission matrix (least privilege).

Four roles. Each holds only what its job needs:

=============  ==================================================================
role           may
=============  ==================================================================
``reviewer``   work the queue, view cases, reveal media, decide, pass a case on
``specialist`` (child-safety specialist) everything a reviewer may, plus approve
               second reviews, re-categorise decisions, assign cases to others,
               view report drafts
``legal``      (legal / reporter) view cases and decisions, draft and submit
               CyberTipline reports, preservation holds (place, extend,
               release), audit and metrics; reveals media ONLY when granted
               ``media.reveal``
``admin``      manage users and console configuration, view audit and metrics,
               view preservation and destroy evidence on request (the only
               role that may); does NOT see the queue, cases or media unless
               granted
=============  ==================================================================

A user may carry extra *grants* (``users.grants``), limited to
:data:`GRANTABLE`, e.g. ``media.reveal`` for a legal user who must view a file
for a report. Check with :func:`has_permission` / :func:`require`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import PermissionDenied, ReviewError

ROLES = ("reviewer", "specialist", "legal", "admin")

PERMISSIONS = (
    "queue.view",
    "case.view",
    "case.assign",  # take a case for oneself
    "case.assign_others",
    "case.pass",
    "media.reveal",
    "decision.view",
    "decision.create",
    "decision.approve",
    "decision.recategorize",
    "report.view",
    "report.draft",
    "report.submit",
    "evidence.view",  # preservation page: holds, deletion log, proofs
    "evidence.manage",  # place / extend / release holds
    "evidence.destroy",  # destruction on request (forcing past a hold too)
    "user.manage",
    "config.change",
    "audit.view",
    "metrics.export",
)

_REVIEWER = frozenset(
    {
        "queue.view",
        "case.view",
        "case.assign",
        "case.pass",
        "media.reveal",
        "decision.view",
        "decision.create",
    }
)

MATRIX: dict[str, frozenset[str]] = {
    "reviewer": _REVIEWER,
    "specialist": _REVIEWER
    | {"case.assign_others", "decision.approve", "decision.recategorize", "report.view"},
    "legal": frozenset(
        {
            "queue.view",
            "case.view",
            "decision.view",
            "report.view",
            "report.draft",
            "report.submit",
            "evidence.view",
            "evidence.manage",
            "audit.view",
            "metrics.export",
        }
    ),
    "admin": frozenset(
        {
            "user.manage",
            "config.change",
            "audit.view",
            "metrics.export",
            "evidence.view",
            "evidence.destroy",
        }
    ),
}

#: Permissions an administrator may add to one user on top of the role.
GRANTABLE = frozenset({"media.reveal", "queue.view", "case.view", "decision.view"})


def check_role(role: Any) -> str:
    if role not in ROLES:
        raise ReviewError(f"role must be one of {list(ROLES)}", code="bad_role")
    return str(role)


def check_grants(grants: Iterable[Any]) -> frozenset[str]:
    out = frozenset(grants)
    bad = sorted(str(g) for g in out - GRANTABLE)
    if bad:
        raise ReviewError(f"cannot grant {bad}; grantable: {sorted(GRANTABLE)}", code="bad_grant")
    return out


def permissions_for(role: str, grants: Iterable[str] = ()) -> frozenset[str]:
    """Every permission of ``role`` plus ``grants``."""
    return MATRIX.get(role, frozenset()) | (frozenset(grants) & GRANTABLE)


def has_permission(user: Any, permission: str) -> bool:
    """``user``: anything with ``role``, ``grants`` and ``disabled`` (e.g. accounts.User)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    if getattr(user, "disabled", False):
        return False
    return permission in permissions_for(user.role, getattr(user, "grants", ()))


def require(user: Any, permission: str) -> None:
    """Raise :class:`PermissionDenied` (403, ``forbidden``) unless ``user`` may."""
    if not has_permission(user, permission):
        raise PermissionDenied(f"role {user.role!r} may not {permission}")
