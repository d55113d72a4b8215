"""`EntryIn`: one bank entry as read from an import file, before it is stored.

Every format parser produces a list of these; ``BankStore.add_entries`` consumes
them. Hashes are validated and lowercased by the parsers (see
:func:`normalize_entry`), so a list of ``EntryIn`` is always storable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..errors import InvalidHashError
from ..signals.signal_types import find_signal_type, signal_type_names

# Which signal types a bank entry may have, their hex lengths, exactness and default
# thresholds: the signal type registry (:mod:`sentinelle.signals.signal_types`). ``vpdq``
# entries are single video-frame PDQ hashes grouped by ``media_ref``.

LOWER_HEX = re.compile(r"[0-9a-f]+")
MAX_TEXT_FIELD = 4096  # metadata fields (note, category, ...) longer than this are rejected
#: Victim-identification flags of VICS / ICSE data (``None`` = the source did not say).
FLAG_FIELDS = ("victim_identified", "offender_identified", "is_distributed")
_TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
_FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})


@dataclass(slots=True, unsafe_hash=True)
class EntryIn:
    """One hash to enroll in a bank, with optional provenance metadata.

    ``line`` is where the entry came from in its import file (for error
    messages); it takes no part in equality. Treat instances as immutable (not
    ``frozen`` only because frozen construction is 2x slower, which shows when
    importing tens of millions of hashes).
    """

    signal_type: str
    hash: str
    variant: str = "plain"
    media_ref: str | None = None
    source_org: str | None = None
    external_id: str | None = None
    category: str | None = None
    note: str | None = None
    added_at: datetime | None = None
    enabled: bool = True
    disabled_until: datetime | None = None
    # victim-identification facts of VICS / INTERPOL ICSE data (None = not stated)
    series: str | None = None
    victim_identified: bool | None = None
    offender_identified: bool | None = None
    is_distributed: bool | None = None
    line: int | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str, str]:
        """Uniqueness key inside one bank."""
        return (self.signal_type, self.hash, self.variant)


def normalize_signal_hash(signal_type: str, value: str) -> tuple[str, str]:
    """Validate ``(signal_type, value)``; return them normalized (lowercase).

    Raises :class:`InvalidHashError` for an unknown signal type or a bad hash.
    """
    name = (signal_type or "").strip().lower()
    st = find_signal_type(name)
    if st is None:
        raise InvalidHashError(
            f"unknown signal type {signal_type!r} "
            f"(expected one of {', '.join(signal_type_names())})"
        )
    return name, st.validate(value)


def to_utc(value: datetime | None) -> datetime | None:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_datetime(text: str) -> datetime:
    """ISO-8601 text (``Z`` suffix allowed) -> aware UTC datetime; ValueError if bad."""
    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    dt = to_utc(datetime.fromisoformat(t))
    assert dt is not None
    return dt


def parse_flag(value: object, name: str) -> bool | None:
    """A VICS/ICSE yes/no value -> bool; ``None``/empty -> None; ValueError otherwise.

    Accepts JSON booleans, 0/1, and the words IPED maps (y/yes/t/true, n/no/f/false,
    any case).
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        w = value.strip().lower()
        if w == "":
            return None
        if w in _TRUE_WORDS:
            return True
        if w in _FALSE_WORDS:
            return False
        raise ValueError(f"{name} must be true or false, got {value[:20]!r}")
    raise ValueError(f"{name} must be true or false, got a {type(value).__name__}")


def _already_normal(e: EntryIn) -> bool:
    """Fast path for the common bare entry (as list formats produce)."""
    st = find_signal_type(e.signal_type)
    return (
        st is not None
        and type(e.hash) is str
        and len(e.hash) == st.hex_length
        and LOWER_HEX.fullmatch(e.hash) is not None
        and e.variant == "plain"
        and e.media_ref is None
        and e.source_org is None
        and e.external_id is None
        and e.category is None
        and e.note is None
        and e.added_at is None
        and e.disabled_until is None
        and e.enabled is True
        and e.series is None
        and e.victim_identified is None
        and e.offender_identified is None
        and e.is_distributed is None
    )


def normalize_entry(entry: EntryIn) -> EntryIn:
    """Validate every field of ``entry``; return a normalized copy (or ``entry``
    itself when already normal).

    Raises :class:`InvalidHashError` (hash / signal type) or ``ValueError``
    (other fields) with a message fit for a :class:`~sentinelle.errors.LineError`.
    """
    if _already_normal(entry):
        return entry
    st, h = normalize_signal_hash(entry.signal_type, entry.hash)
    variant = (entry.variant or "plain").strip()
    if not variant or len(variant) > 64:
        raise ValueError("variant must be 1-64 characters")
    texts = {}
    for name in ("media_ref", "source_org", "external_id", "category", "note", "series"):
        v = getattr(entry, name)
        if v is not None:
            if not isinstance(v, str):
                v = str(v)
            if len(v) > MAX_TEXT_FIELD:
                raise ValueError(f"{name} longer than {MAX_TEXT_FIELD} characters")
            if "\x00" in v:
                raise ValueError(f"{name} contains a NUL character")
            v = v if v != "" else None
        texts[name] = v
    flags: dict[str, bool | None] = {}
    for name in FLAG_FIELDS:
        v = getattr(entry, name)
        if v is not None and not isinstance(v, bool):
            raise ValueError(f"{name} must be true, false or absent")
        flags[name] = v
    return EntryIn(
        signal_type=st,
        hash=h,
        variant=variant,
        added_at=to_utc(entry.added_at),
        enabled=bool(entry.enabled),
        disabled_until=to_utc(entry.disabled_until),
        line=entry.line,
        **texts,
        **flags,
    )
