"""What the console shows for stored codes: statuses, verdicts, roles, kinds, error codes.

The database and the service layers speak in stable codes (``awaiting_approval``,
``confirm``, ``legal``, ``bad_hold``); the pages show a label in the viewer's
language instead, through the Jinja2 global ``label(group, code)`` (installed by
:func:`install`). A code without a label is shown as it is: custom decision
categories, for instance, are the reviewer's own words.

Error messages: the service layers raise English messages with a stable code.
English pages show the message itself (it names the exact detail); other
languages show :data:`ERROR_MESSAGES` for the code, or a generic sentence, next
to the code (:func:`error_message`).
"""

from __future__ import annotations

from typing import Any

from ..review.intake import KIND_PRIORITY
from .i18n import DEFAULT_LOCALE, N_, current_locale, gettext

LABELS: dict[str, dict[str, str]] = {
    "case_status": {
        "open": N_("open"),
        "assigned": N_("assigned"),
        "awaiting_approval": N_("awaiting approval"),
        "closed": N_("closed"),
    },
    "item_status": {
        "pending": N_("pending"),
        "awaiting_approval": N_("awaiting approval"),
        "confirmed": N_("confirmed"),
        "rejected": N_("rejected"),
    },
    "verdict": {"confirm": N_("confirm"), "reject": N_("reject")},
    "decision_state": {
        "pending": N_("awaiting second review"),
        "final": N_("final"),
        "returned": N_("returned"),
    },
    "kind": {
        "hash_match": N_("hash match"),
        "guard_block": N_("guard block"),
        "guard_escalation": N_("guard escalation"),
        "provenance": N_("provenance"),
    },
    "role": {
        "reviewer": N_("reviewer"),
        "specialist": N_("specialist"),
        "legal": N_("legal"),
        "admin": N_("admin"),
    },
    "hold_kind": {"legal": N_("legal hold"), "retention": N_("retention hold")},
    "evidence_state": {
        "held": N_("held"),
        "due": N_("due for deletion"),
        "unheld": N_("not held"),
        "destroyed": N_("destroyed"),
    },
    "deletion_kind": {
        "request": N_("on request"),
        "forced": N_("forced"),
        "scheduled": N_("scheduled"),
    },
    "report_state": {
        "draft": N_("draft"),
        "validated": N_("validated"),
        "submitting": N_("submitting"),
        "submit_unknown": N_("submission unconfirmed"),
        "submitted": N_("submitted"),
        "files_uploaded": N_("files uploaded"),
        "fileinfo_sent": N_("file details sent"),
        "finished": N_("finished"),
        "retracted": N_("retracted"),
        "expired": N_("expired"),
    },
    "environment": {"test": N_("test"), "production": N_("production")},
}

#: What each industry classification code means, shown next to the code (bare terms).
CATEGORY_LABELS = {
    "A1": N_("prepubescent minor / sex act"),
    "A2": N_("prepubescent minor / lascivious exhibition"),
    "B1": N_("pubescent minor / sex act"),
    "B2": N_("pubescent minor / lascivious exhibition"),
}
LABELS["category"] = CATEGORY_LABELS

#: Error codes the console's pages can show, in words (other languages than English).
ERROR_MESSAGES = {
    "account_disabled": N_("This account is disabled."),
    "account_locked": N_("This account is locked for a while after too many failed attempts."),
    "login_rate_limited": N_("Too many login attempts from this address; wait a minute."),
    "already_decided": N_("This item has already been decided."),
    "awaiting_approval": N_("This item's decision is waiting for a second review."),
    "bad_assignee": N_("Pick a colleague from the list who can review cases."),
    "bad_case_id": N_("The case number must be a whole number."),
    "bad_category": N_(
        "Category: A1, A2, B1, B2 or a custom label (letters, digits, space, . _ : -; at most 64)."
    ),
    "bad_confirmation": N_("Type the case number to confirm the destruction."),
    "bad_days": N_("The number of days must be a whole number from 1 to 36500."),
    "bad_display_name": N_("Display name: at most 200 characters."),
    "bad_evidence": N_("These evidence details are not valid."),
    "bad_hold": N_("This hold change is not valid (a reason is required)."),
    "bad_notes": N_("Notes are too long."),
    "bad_kind": N_("Choose the allow list or the deny list."),
    "bad_language": N_("Choose one of the listed languages."),
    "bad_note": N_("The note is too long."),
    "bad_phrase": N_(
        "The phrase must contain a letter or a digit and stay within the length limit."
    ),
    "phrase_exists": N_("This phrase is already on a list."),
    "phrase_not_found": N_("This phrase is not on the lists any more."),
    "too_many_phrases": N_("The lists are full; remove a phrase first."),
    "bad_password": N_("The password does not meet the length rules."),
    "bad_reason": N_("The reason is too long."),
    "bad_role": N_("Choose one of the listed roles."),
    "bad_setting": N_("A setting is not valid: use whole numbers within the limits shown."),
    "bad_username": N_(
        "User name: 2 to 64 characters, a-z 0-9 . _ - (starting with a letter or a digit)."
    ),
    "bad_verdict": N_("Choose a decision: confirm or reject."),
    "case_closed": N_("This case is closed."),
    "csrf_failed": N_("The form expired; try again."),
    "evidence_destroyed": N_("This evidence has been destroyed."),
    "exposure_cap_reached": N_(
        "You reached today's exposure cap; it resets at 00:00 UTC. Media stays blurred."
    ),
    "forbidden": N_("Your role does not allow this."),
    "invalid_credentials": N_("Wrong user name or password."),
    "invalid_session": N_("Your session ended; log in again."),
    "conflict": N_("This conflicts with the current state; reload the page."),
    "evidence_unavailable": N_("The evidence store is not available."),
    "invalid_totp": N_("Wrong or already used authenticator code."),
    "no_master_key": N_("The evidence key is not configured on this server."),
    "no_media": N_("This item has no media attached."),
    "not_assigned": N_("This case is assigned to someone else."),
    "not_found": N_("This page does not exist."),
    "not_pending": N_("This decision is no longer waiting for a second review."),
    "password_mismatch": N_("The two new passwords differ; type the same one twice."),
    "password_unchanged": N_("The new password must differ from the current one."),
    "self_approval": N_("A second review must be done by someone else."),
    "self_change": N_("You cannot change your own account this way; ask another administrator."),
    "totp_required": N_("Enter the code from your authenticator app."),
    "under_hold": N_("This evidence is under an active hold."),
    "unknown_case": N_("This case does not exist."),
    "unknown_decision": N_("This decision does not exist."),
    "unknown_deletion": N_("This deletion record does not exist."),
    "unknown_hold": N_("This hold does not exist."),
    "unknown_item": N_("This item does not exist."),
    "unknown_report": N_("This report does not exist."),
    "unknown_user": N_("This user does not exist or is disabled."),
    "user_exists": N_("A user with this name already exists."),
}
GENERIC_ERROR = N_("The action could not be completed.")


def label(group: str, code: Any, default: str | None = None) -> str:
    """The label of ``code`` in ``group`` in the active language; ``default`` (already
    translated) or the code itself when it has none."""
    if code is None:
        return ""
    text = LABELS.get(group, {}).get(str(code))
    if text is not None:
        return gettext(text)
    return default if default is not None else str(code)


def error_message(code: str | None, message: str | None) -> str:
    """An error's text for the page: the message itself in English, else by ``code``."""
    if current_locale() == DEFAULT_LOCALE and message:
        return message
    text = ERROR_MESSAGES.get(code or "", GENERIC_ERROR)
    return gettext(text)


#: Reasons the evidence store writes itself (sentinelle.evidence.store.destroy_case).
_FORCED_RELEASE = "forced destruction: "


def release_reason(text: str | None) -> str:
    """A hold's release reason; the prefix the system adds is translated."""
    if text and text.startswith(_FORCED_RELEASE):
        reason = text[len(_FORCED_RELEASE) :]
        return gettext("forced destruction: %(reason)s") % {"reason": reason}
    return text or ""


def priority_help() -> str:
    """Tooltip for a case's priority, built from the intake's own table."""
    parts = ", ".join(f"{label('kind', k)} {p}" for k, p in KIND_PRIORITY.items())
    return gettext(
        "A case's priority is the highest of its signals (%(parts)s). The queue shows "
        "higher priority first, then the longest waiting."
    ) % {"parts": parts}


def install(env: Any) -> None:
    """Add ``label``, ``error_message``, ``priority_tooltip``, ``release_reason`` to Jinja2."""
    env.globals.update(
        label=label,
        error_message=error_message,
        priority_tooltip=priority_help,
        release_reason=release_reason,
    )
