"""Deployment-level allow and deny phrase lists: fixes an operator makes without a release.

An operator who sees a false block (``explain`` names the word that fired) adds an *allow*
phrase; one who sees a missed term adds a *deny* phrase. Both are per language (an ISO
639-1 code of a lexicon language, or ``*`` for every language), stored in the database
(migration ``0010_guard_phrase_lists``), and stored *normalised*
(:func:`sentinelle.guard.normalize.normalize`: case, accents, invisible characters,
spaces), because they are applied to the prompt's normalised view:

* a **deny** phrase found in a prompt (whole words, in the base view or, so that the usual
  tricks do not get around it, in the skeleton view) blocks it, whatever the lexicons say;
  its evidence has category ``deny`` and rule ``deny:v<N>``;
* an **allow** phrase found in a prompt written plainly switches off the lexicon hits
  inside it (``pieds nus``: barefoot), like a lexicon ``[safe]`` phrase. It never switches
  off a hit whose word shows deliberate obfuscation (``n.u.s``, ``nüüüs``, mixed scripts,
  leetspeak: :meth:`sentinelle.guard.normalize.View.is_disguised`), an age under 18, or
  a deny phrase.

A language-specific phrase applies when the prompt may be written in that language
(:func:`sentinelle.guard.langid.plausible`). Every change bumps one version counter in
the same transaction and writes an audit entry (``guard.phrase.add`` /
``guard.phrase.remove``); the guard's ``policy_id`` ends with ``;phrases=v<N>``, so each
logged decision names the list version that produced it. :class:`PhraseCache` lets a
long-running service see changes within ``SENTINELLE_GUARD_PHRASES_TTL`` seconds
(default 5) without a query per prompt.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..audit.chain import record_event, write_transaction
from ..store.models import utcnow
from .config import GuardInputError
from .lexicon import default_lexicons
from .normalize import View, normalize, skeleton

KINDS = ("allow", "deny")
ANY_LANGUAGE = "*"
MAX_PHRASE = 200
MAX_NOTE = 500
MAX_ENTRIES = 10_000
TTL_ENV = "SENTINELLE_GUARD_PHRASES_TTL"


@dataclass(frozen=True)
class PhraseEntry:
    """One stored phrase."""

    id: int
    language: str
    phrase: str
    kind: str
    note: str | None
    created_by: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "language": self.language,
            "phrase": self.phrase,
            "kind": self.kind,
            "note": self.note,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }


def _word_pattern(text: str) -> re.Pattern[str] | None:
    """Whole-word regex for a normalised phrase (substring for scripts without spaces)."""
    if not text:
        return None
    esc = re.escape(text).replace(r"\ ", r"\s+")
    first, last = text[0], text[-1]
    lead = r"(?<![^\W_])" if first.isalnum() and not _unspaced(first) else ""
    tail = r"(?![^\W_])" if last.isalnum() and not _unspaced(last) else ""
    return re.compile(lead + esc + tail)


def _unspaced(c: str) -> bool:
    o = ord(c)
    return 0x0600 <= o <= 0x06FF or 0x3040 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF


@dataclass(frozen=True)
class _Compiled:
    entry: PhraseEntry
    base: re.Pattern[str] | None
    skel: re.Pattern[str] | None


@dataclass(frozen=True)
class PhraseLists:
    """The lists at one version, compiled for matching."""

    version: int = 0
    entries: tuple[PhraseEntry, ...] = ()
    _allow: tuple[_Compiled, ...] = field(default=(), repr=False)
    _deny: tuple[_Compiled, ...] = field(default=(), repr=False)

    @classmethod
    def build(cls, version: int, entries: Iterable[PhraseEntry]) -> PhraseLists:
        entries = tuple(entries)
        allow: list[_Compiled] = []
        deny: list[_Compiled] = []
        for e in entries:
            base = _word_pattern(e.phrase)
            skel = _word_pattern(skeleton(e.phrase)) if e.kind == "deny" else None
            (allow if e.kind == "allow" else deny).append(_Compiled(e, base, skel))
        return cls(version, entries, tuple(allow), tuple(deny))

    @property
    def tag(self) -> str:
        """The ``policy_id`` suffix naming this version."""
        return f";phrases=v{self.version}"

    def allowed_spans(self, base: View, languages: frozenset[str]) -> list[tuple[int, int]]:
        """Original spans of the allow phrases found in ``base`` (plain writing only)."""
        out: list[tuple[int, int]] = []
        for c in self._allow:
            if c.base is None or not _applies(c.entry, languages):
                continue
            for m in c.base.finditer(base.text):
                out.append(base.original_span(m.start(), m.end()))
        return out

    def denied(
        self, base: View, skel: View, languages: frozenset[str]
    ) -> list[tuple[PhraseEntry, tuple[int, int]]]:
        """``(entry, original span)`` of every deny phrase found in the prompt."""
        out: list[tuple[PhraseEntry, tuple[int, int]]] = []
        for c in self._deny:
            if not _applies(c.entry, languages):
                continue
            found = None
            for pattern, view in ((c.base, base), (c.skel, skel)):
                m = pattern.search(view.text) if pattern is not None else None
                if m is not None:
                    found = view.original_span(m.start(), m.end())
                    break
            if found is not None:
                out.append((c.entry, found))
        return out


def _applies(entry: PhraseEntry, languages: frozenset[str]) -> bool:
    return entry.language == ANY_LANGUAGE or entry.language in languages


# --- validation --------------------------------------------------------------------------


def check_language(language: str) -> str:
    """A lexicon language code or ``*`` (raises :class:`GuardInputError` ``bad_language``)."""
    lang = (language or "").strip().lower()
    if lang == ANY_LANGUAGE or lang in default_lexicons().languages:
        return lang
    known = ", ".join(default_lexicons().languages)
    raise GuardInputError(
        f"language must be one of {known} or '*', not {language!r}", "bad_language"
    )


def normalize_phrase(phrase: str) -> str:
    """The stored form of a phrase (raises :class:`GuardInputError` ``bad_phrase``)."""
    if not isinstance(phrase, str):
        raise GuardInputError("phrase must be a string", "bad_phrase")
    if len(phrase) > MAX_PHRASE * 4:
        raise GuardInputError(f"phrase is longer than {MAX_PHRASE} characters", "bad_phrase")
    text = " ".join(normalize(phrase).split())
    if not any(c.isalnum() for c in text):
        raise GuardInputError("phrase must contain a letter or digit", "bad_phrase")
    if len(text) > MAX_PHRASE:
        raise GuardInputError(f"phrase is longer than {MAX_PHRASE} characters", "bad_phrase")
    return text


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise GuardInputError(f"kind must be allow or deny, not {kind!r}", "bad_kind")
    return kind


# --- storage -----------------------------------------------------------------------------


def _tables():  # type: ignore[no-untyped-def]
    from .tables import guard_phrase_version, guard_phrases

    return guard_phrases, guard_phrase_version


def _entry(r: Any) -> PhraseEntry:
    return PhraseEntry(r.id, r.language, r.phrase, r.kind, r.note, r.created_by, r.created_at)


def current_version(conn: Connection | Engine) -> int:
    """The lists' version counter (0 before the first change)."""
    _, ver = _tables()
    with _connect(conn) as c:
        v = c.execute(sa.select(ver.c.version).where(ver.c.id == 1)).scalar()
    return int(v or 0)


def list_entries(
    engine: Engine, *, kind: str | None = None, language: str | None = None
) -> list[PhraseEntry]:
    """Stored phrases, by kind, language and phrase."""
    phrases, _ = _tables()
    q = sa.select(phrases).order_by(phrases.c.kind, phrases.c.language, phrases.c.phrase)
    if kind is not None:
        q = q.where(phrases.c.kind == _check_kind(kind))
    if language is not None:
        q = q.where(phrases.c.language == check_language(language))
    with engine.connect() as c:
        return [_entry(r) for r in c.execute(q)]


def load(engine: Engine) -> PhraseLists:
    """The lists as stored now, compiled."""
    phrases, ver = _tables()
    with engine.connect() as c:
        v = c.execute(sa.select(ver.c.version).where(ver.c.id == 1)).scalar()
        rows = [_entry(r) for r in c.execute(sa.select(phrases).order_by(phrases.c.id))]
    return PhraseLists.build(int(v or 0), rows)


def _bump(conn: Connection, actor: str) -> int:
    _, ver = _tables()
    now = utcnow()
    n = conn.execute(
        sa.update(ver)
        .where(ver.c.id == 1)
        .values(version=ver.c.version + 1, updated_by=actor, updated_at=now)
    ).rowcount
    if not n:
        conn.execute(sa.insert(ver).values(id=1, version=1, updated_by=actor, updated_at=now))
    return int(conn.execute(sa.select(ver.c.version).where(ver.c.id == 1)).scalar_one())


def add(
    engine: Engine,
    *,
    kind: str,
    language: str,
    phrase: str,
    actor: str,
    note: str | None = None,
) -> tuple[PhraseEntry, int]:
    """Add a phrase; returns the entry and the new version. Audited (``guard.phrase.add``).

    Raises :class:`GuardInputError`: ``bad_kind``, ``bad_language``, ``bad_phrase``,
    ``bad_note``, ``phrase_exists`` (already in a list for this language),
    ``too_many_phrases``."""
    kind = _check_kind(kind)
    lang = check_language(language)
    text = normalize_phrase(phrase)
    if note is not None and len(note) > MAX_NOTE:
        raise GuardInputError(f"note is longer than {MAX_NOTE} characters", "bad_note")
    phrases, _ = _tables()
    with write_transaction(engine) as conn:
        version = _bump(conn, actor)  # the first statement writes: SQLite's lock is ours
        old = conn.execute(
            sa.select(phrases).where(phrases.c.language == lang, phrases.c.phrase == text)
        ).first()
        if old is not None:
            raise GuardInputError(
                f"{text!r} is already in the {old.kind} list for {lang}", "phrase_exists"
            )
        count = conn.execute(sa.select(sa.func.count()).select_from(phrases)).scalar_one()
        if count >= MAX_ENTRIES:
            raise GuardInputError(f"the lists hold {MAX_ENTRIES} phrases", "too_many_phrases")
        now = utcnow()
        new_id = conn.execute(
            sa.insert(phrases)
            .values(
                language=lang, phrase=text, kind=kind, note=note, created_by=actor, created_at=now
            )
            .returning(phrases.c.id)
        ).scalar_one()
        record_event(
            conn,
            actor=actor,
            action="guard.phrase.add",
            target=f"guard_phrase:{new_id}",
            details={"kind": kind, "language": lang, "version": version},
        )
    return PhraseEntry(new_id, lang, text, kind, note, actor, now), version


def remove(
    engine: Engine,
    *,
    actor: str,
    kind: str | None = None,
    language: str | None = None,
    phrase: str | None = None,
    entry_id: int | None = None,
) -> tuple[PhraseEntry, int]:
    """Remove a phrase, named by ``kind``, ``language`` and ``phrase`` or by ``entry_id``;
    returns it and the new version. Audited (``guard.phrase.remove``). Raises
    :class:`GuardInputError` ``phrase_not_found``."""
    phrases, _ = _tables()
    if entry_id is not None:
        where = [phrases.c.id == int(entry_id)]
        what = f"phrase {entry_id}"
    else:
        kind = _check_kind(kind or "")
        lang = check_language(language or "")
        text = normalize_phrase(phrase or "")
        where = [phrases.c.language == lang, phrases.c.phrase == text, phrases.c.kind == kind]
        what = f"{text!r} in the {kind} list for {lang}"
    with write_transaction(engine) as conn:
        version = _bump(conn, actor)
        row = conn.execute(sa.select(phrases).where(*where)).first()
        if row is None:
            raise GuardInputError(f"no {what}", "phrase_not_found")
        conn.execute(sa.delete(phrases).where(phrases.c.id == row.id))
        record_event(
            conn,
            actor=actor,
            action="guard.phrase.remove",
            target=f"guard_phrase:{row.id}",
            details={"kind": row.kind, "language": row.language, "version": version},
        )
    return _entry(row), version


class _connect:
    """``with`` a connection from an engine, or the caller's connection as is."""

    def __init__(self, conn: Connection | Engine) -> None:
        self._given = conn if isinstance(conn, Connection) else None
        self._engine = conn if isinstance(conn, Engine) else None
        self._own: Connection | None = None

    def __enter__(self) -> Connection:
        if self._given is not None:
            return self._given
        assert self._engine is not None
        self._own = self._engine.connect()
        return self._own

    def __exit__(self, *exc: object) -> None:
        if self._own is not None:
            self._own.close()


class PhraseCache:
    """The current lists of one database for a long-running process: the version is
    re-read at most every ``ttl`` seconds, the lists only when it changed."""

    def __init__(self, engine: Engine, ttl: float | None = None) -> None:
        self.engine = engine
        if ttl is None:
            try:
                ttl = float(os.environ.get(TTL_ENV, "5"))
            except ValueError:
                ttl = 5.0
        self.ttl = max(0.0, ttl)
        self._lists = PhraseLists()
        self._checked = -1e18
        self._lock = threading.Lock()

    def current(self) -> PhraseLists:
        now = time.monotonic()
        if now - self._checked < self.ttl:
            return self._lists
        with self._lock:
            if now - self._checked >= self.ttl:
                if current_version(self.engine) != self._lists.version or self._checked < 0:
                    self._lists = load(self.engine)
                self._checked = now
        return self._lists

    def invalidate(self) -> None:
        """Re-read on the next call (after a change made by this process)."""
        self._checked = -1e18
