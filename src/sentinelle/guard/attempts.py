"""Attempt log and account escalation for the generation guard.

::

    log = AttemptLog(engine)                       # config from the environment
    rec = log.record_prompt(prompt_result, account_id="acct-42")   # None unless blocked
    rec.flagged                                    # this block crossed the threshold

**What is stored.** Every *block* (prompt or image) becomes a ``guard_attempts`` row:
the caller-supplied account id (optional), time, categories, policy id, the prompt's
keyed hash and, for images, the image's SHA-256. The prompt hash is an HMAC-SHA256
under the installation's key (:mod:`sentinelle.guard.hashkey`), not a plain SHA-256,
which could be reversed by hashing combinations of lexicon words; it keeps the column
name ``prompt_sha256`` and still groups repeated attempts. The prompt text itself is
stored only when the operator sets ``SENTINELLE_GUARD_LOG_PROMPTS=true``; image bytes
never are. Allowed and review decisions are not logged here.

**Escalation.** When an account reaches ``SENTINELLE_GUARD_ESCALATE_BLOCKS`` blocks
(default 3) within the last ``SENTINELLE_GUARD_ESCALATE_WINDOW_S`` seconds (default one
day, a sliding window), it is flagged: a ``guard_flags`` row, and a
``guard_escalation`` signal to the review console
(:func:`sentinelle.review.intake.record_signal`), which opens or extends a case for the
account. An account is flagged at most once per window: the flag sets
``guard_accounts.flagged_until = now + window``. Each block with an account id is also
sent to the review console as a ``guard_block`` signal.

**Concurrency.** Everything for one block happens in one transaction that first
upserts the account's ``guard_accounts`` row (``INSERT ... ON CONFLICT DO UPDATE``).
On PostgreSQL that statement row-locks the account until commit, so a concurrent
block of the same account waits, then counts (READ COMMITTED: a fresh snapshot per
statement) including the first one's attempt -- no lost counts, no double flag.
SQLite transactions here start with ``BEGIN IMMEDIATE`` (the database write lock),
which serialises them the same way. Different accounts never wait on each other on
PostgreSQL.

**Review signals** go out after the commit, each on its own: if the review module is
missing (not installed yet) a warning is logged once and the flag row still lands
with ``signal = "unavailable"``; if it fails, ``signal = "failed"`` and a warning
(never prompt text) is logged.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from .config import GuardConfig, GuardInputError
from .hashkey import prompt_hmac, stored_hash_key
from .tables import guard_accounts as GA
from .tables import guard_attempts as AT
from .tables import guard_flags as FL

log = logging.getLogger("sentinelle.guard.attempts")

MAX_ACCOUNT_ID = 200
_review_missing_logged = threading.Event()


def check_account_id(account_id: str | None) -> str | None:
    """``account_id`` stripped, or None when absent/blank; ``bad_account_id`` when too
    long or holding control characters."""
    if account_id is None:
        return None
    a = account_id.strip()
    if not a:
        return None
    if len(a) > MAX_ACCOUNT_ID:
        raise GuardInputError(
            f"account_id is longer than {MAX_ACCOUNT_ID} characters", "bad_account_id"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in a):
        raise GuardInputError("account_id holds control characters", "bad_account_id")
    return a


@dataclass(frozen=True)
class BlockRecord:
    """What logging one block did."""

    attempt_id: int
    account_id: str | None
    blocks_in_window: int  # 0 without an account id
    flagged: bool  # THIS block flagged the account
    flag_id: int | None
    case_id: int | None  # review case of the guard_block signal, when recorded


class AttemptLog:
    """Writes blocks and flags to the database (thread-safe; one per process is enough)."""

    def __init__(self, engine: Engine, config: GuardConfig | None = None) -> None:
        self.engine = engine
        self.config = config or GuardConfig.from_env()
        self._hash_key: bytes | None = self.config.hash_key
        self._key_lock = threading.Lock()

    def prompt_digest(self, text: str) -> str:
        """What the log keeps instead of a prompt: HMAC-SHA256 (hex) under the
        installation's key (the operator's, else the database's; fetched once)."""
        if self._hash_key is None:
            with self._key_lock:
                if self._hash_key is None:
                    self._hash_key = stored_hash_key(self.engine)
        return prompt_hmac(self._hash_key, text)

    # ------------------------------------------------------------- recording
    def record_prompt(
        self, result: Any, *, account_id: str | None = None, now: datetime | None = None
    ) -> BlockRecord | None:
        """Log a prompt guard result when it is a block (else return None).

        ``result``: a :class:`~sentinelle.guard.PromptResult` (or its dict)."""
        d = result.to_dict() if hasattr(result, "to_dict") else dict(result)
        if d.get("decision") != "block":
            return None
        text = d.get("text") or ""
        return self.record_block(
            source="prompt",
            account_id=account_id,
            categories=d.get("categories") or {},
            policy_id=d.get("policy_id"),
            prompt_text=text,
            now=now,
        )

    def record_image(
        self,
        result: Any,
        *,
        account_id: str | None = None,
        prompt_text: str | None = None,
        now: datetime | None = None,
    ) -> BlockRecord | None:
        """Log an :class:`~sentinelle.guard.image.ImageResult` when it is a block."""
        if result.decision != "block":
            return None
        cats: dict[str, float] = {"explicit": round(float(result.explicit), 4)}
        if result.prompt:
            cats.update(result.prompt.get("categories") or {})
        cats["minor_signals"] = float(len(result.minor_signals))
        return self.record_block(
            source="image",
            account_id=account_id,
            categories=cats,
            policy_id=result.policy_id,
            prompt_text=prompt_text,
            media_sha256=result.sha256,
            now=now,
        )

    def record_block(
        self,
        *,
        source: str,
        account_id: str | None,
        categories: Mapping[str, float],
        policy_id: str | None,
        prompt_text: str | None = None,
        prompt_sha256: str | None = None,
        media_sha256: str | None = None,
        now: datetime | None = None,
    ) -> BlockRecord:
        """Log one block, count the account's blocks in the window, flag it if it just
        crossed the threshold, then send the review signals (see the module docstring).
        ``now`` is for replaying past events (default: the current UTC time).
        ``prompt_sha256``: an already computed :meth:`prompt_digest` (the keyed HMAC, not
        a plain SHA-256); by default it is computed from ``prompt_text``."""
        account = check_account_id(account_id)
        now = (now or datetime.now(UTC)).astimezone(UTC)
        if prompt_text is not None and prompt_sha256 is None:
            prompt_sha256 = self.prompt_digest(prompt_text)
        cats = {str(k): float(v) for k, v in categories.items()}
        window = timedelta(seconds=self.config.escalate_window_s)
        flag: tuple[int, int, datetime] | None = None
        count = 0

        conn = self.engine.connect()
        if self.engine.dialect.name == "sqlite":
            conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn, conn.begin():
            flagged_until = None
            if account is not None:
                ins = (
                    pg_dialect if self.engine.dialect.name == "postgresql" else sqlite_dialect
                ).insert(GA)
                flagged_until = conn.execute(
                    ins.values(
                        account_id=account, blocks_total=1, last_block_at=now, flagged_until=None
                    )
                    .on_conflict_do_update(
                        index_elements=["account_id"],
                        set_={"blocks_total": GA.c.blocks_total + 1, "last_block_at": now},
                    )
                    .returning(GA.c.flagged_until)
                ).scalar_one()
            attempt_id = conn.execute(
                insert(AT)
                .values(
                    account_id=account,
                    source=source,
                    decision="block",
                    prompt_sha256=prompt_sha256,
                    media_sha256=media_sha256,
                    categories=json.dumps(cats, sort_keys=True),
                    policy_id=policy_id,
                    prompt_text=prompt_text if self.config.log_prompts else None,
                    created_at=now,
                )
                .returning(AT.c.id)
            ).scalar_one()
            if account is not None:
                count, first = conn.execute(
                    select(func.count(), func.min(AT.c.created_at)).where(
                        AT.c.account_id == account,
                        AT.c.decision == "block",
                        # No upper bound: a concurrent block stamped a moment later
                        # (or by an instance whose clock runs ahead) but committed
                        # before we got the lock still counts.
                        AT.c.created_at > now - window,
                    )
                ).one()
                due = flagged_until is None or flagged_until <= now
                if count >= self.config.escalate_blocks and due:
                    conn.execute(
                        update(GA)
                        .where(GA.c.account_id == account)
                        .values(flagged_until=now + window)
                    )
                    flag_id = conn.execute(
                        insert(FL)
                        .values(
                            account_id=account,
                            blocks=count,
                            window_s=self.config.escalate_window_s,
                            first_block_at=first or now,
                            created_at=now,
                            case_id=None,
                            signal="pending",
                        )
                        .returning(FL.c.id)
                    ).scalar_one()
                    flag = (flag_id, count, first or now)

        case_id = None
        if account is not None:
            res = _record_signal(
                self.engine,
                account_id=account,
                kind="guard_block",
                summary={
                    "categories": cats,
                    "prompt_sha256": prompt_sha256,
                    "policy_id": policy_id,
                },
                media_sha256=media_sha256,
                occurred_at=now,
            )
            case_id = res[0] if isinstance(res, tuple) else None
        if flag is not None:
            res = _record_signal(
                self.engine,
                account_id=account,  # type: ignore[arg-type]
                kind="guard_escalation",
                summary={"blocks": flag[1], "window_s": self.config.escalate_window_s},
                occurred_at=now,
            )
            with self.engine.begin() as c:
                c.execute(
                    update(FL)
                    .where(FL.c.id == flag[0])
                    .values(
                        signal="recorded" if isinstance(res, tuple) else res,
                        case_id=res[0] if isinstance(res, tuple) else None,
                    )
                )
            log.warning(
                "guard: account flagged for review",
                extra={"fields": {"flag_id": flag[0], "blocks": flag[1]}},
            )
        return BlockRecord(
            attempt_id=int(attempt_id),
            account_id=account,
            blocks_in_window=int(count),
            flagged=flag is not None,
            flag_id=None if flag is None else int(flag[0]),
            case_id=case_id,
        )

    # --------------------------------------------------------------- reading
    def attempts(self, account_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest blocks first (optionally of one account), as JSON-able dicts."""
        q = select(AT).order_by(AT.c.id.desc()).limit(max(1, min(limit, 10_000)))
        if account_id is not None:
            q = q.where(AT.c.account_id == account_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            {
                **{k: v for k, v in r.items() if k not in ("categories", "created_at")},
                "categories": json.loads(r["categories"]),
                "created_at": r["created_at"].isoformat(),
            }
            for r in rows
        ]

    def flags(self, account_id: str | None = None) -> list[dict[str, Any]]:
        """Escalation flags, newest first (optionally of one account)."""
        q = select(FL).order_by(FL.c.id.desc())
        if account_id is not None:
            q = q.where(FL.c.account_id == account_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            {
                **dict(r),
                "first_block_at": r["first_block_at"].isoformat(),
                "created_at": r["created_at"].isoformat(),
            }
            for r in rows
        ]


def _record_signal(engine: Engine, **kwargs: Any) -> tuple[int, int] | str:
    """Call the review console's ``record_signal``; its ``(case_id, item_id)``, or
    ``"unavailable"`` (module missing; warned once) / ``"failed"`` (warned)."""
    try:
        from ..review.intake import record_signal
    except ImportError as e:
        if not _review_missing_logged.is_set():
            _review_missing_logged.set()
            log.warning(
                "guard: review intake unavailable; flags are kept in guard_flags only",
                extra={"fields": {"error": f"{type(e).__name__}: {e}"}},
            )
        return "unavailable"
    try:
        return record_signal(engine, **kwargs)
    except Exception as e:  # noqa: BLE001 - the block itself is already logged
        log.warning(
            "guard: review signal failed",
            extra={"fields": {"kind": kwargs.get("kind"), "error": type(e).__name__}},
        )
        return "failed"
