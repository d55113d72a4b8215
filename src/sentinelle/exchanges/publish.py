"""Sentinelle-to-Sentinelle sharing, publisher side: a signed feed of confirmed hashes per bank.

* **Opt-in per bank.** :meth:`Publisher.share_bank` turns a bank's feed on, with
  a category and an expiry (days). Nothing is shared from a bank that is not.
* **What is shared.** When a reviewer's decision confirming a match on an entry
  of a shared bank becomes final, the entry's ``(signal_type, hash)`` is appended
  to the feed (``peer_feed_items``, an append-only sequence) with the feed's
  category and ``expires_at``. When the expiry passes, a ``remove`` item is
  appended, so subscribers drop it too. Only hashes: never media, never case data.
* **Signed pages.** A page is canonical JSON (sorted keys, no spaces) naming the
  feed, the ``after`` sequence it continues from, its items and ``next``, signed
  with the instance's **Ed25519** key: header ``X-Sentinelle-Signature:
  ed25519=<base64>`` and ``X-Sentinelle-Key-Id`` (first 16 hex of the SHA-256 of
  the raw public key). Subscribers verify every page with the public key they
  were given (:mod:`.peer`) and refuse a page whose signature, key id, feed name
  or sequence does not fit.
* **API keys.** Each subscriber gets its own key (:meth:`Publisher.add_subscriber`,
  shown once, stored as SHA-256). Revoking one stops that subscriber only.
* **Opinions flow back.** Subscribers POST their reviewers' opinions
  (``false_positive`` / ``confirmed``) on shared hashes; :meth:`Publisher.disagreements`
  gives per-entry counts.

The signing key comes from ``SENTINELLE_PEER_SIGNING_KEY_FILE`` (a PEM PKCS#8
Ed25519 private key, ``sentinelle exchange keygen`` writes one) -- never the database.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine

from ..audit import record_event
from ..store.models import Bank, BankEntry, utcnow
from .api import ExchangeError, MalformedPage
from .tables import peer_feed_items, peer_feeds, peer_opinions, peer_subscribers

KEY_ENV = "SENTINELLE_PEER_SIGNING_KEY_FILE"
FEED_VERSION = 1
MAX_PAGE = 5000
OPINIONS = ("false_positive", "confirmed")
B, E = Bank.__table__, BankEntry.__table__
F, FI, S, OP = peer_feeds, peer_feed_items, peer_subscribers, peer_opinions


# --------------------------------------------------------------- keys
def generate_key(path: str | Path) -> str:
    """Write a new Ed25519 private key (PEM, mode 600) to ``path``; return the public key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    p = Path(path)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return public_key_text(key.public_key())


def load_private_key(path: str | Path | None = None) -> Ed25519PrivateKey:
    p = Path(path or os.environ.get(KEY_ENV, "") or "")
    if not str(p) or str(p) == ".":
        raise ExchangeError(f"no signing key: set {KEY_ENV}", "no_signing_key")
    try:
        if p.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
            raise ExchangeError(f"signing key {p} is readable by others (chmod 600)", "unsafe_key")
        key = serialization.load_pem_private_key(p.read_bytes(), password=None)
    except OSError as e:
        raise ExchangeError(
            f"cannot read signing key {p} ({type(e).__name__})", "no_signing_key"
        ) from None
    except ValueError:
        raise ExchangeError(f"{p} is not a PEM private key", "bad_signing_key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ExchangeError(f"{p} is not an Ed25519 key", "bad_signing_key")
    return key


def public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def parse_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError):
        raise ExchangeError("public key must be 32 raw bytes in base64", "bad_public_key") from None


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(key: Ed25519PrivateKey, body: bytes) -> dict[str, str]:
    """Headers carrying the signature of ``body``."""
    return {
        "X-Sentinelle-Signature": "ed25519=" + base64.b64encode(key.sign(body)).decode(),
        "X-Sentinelle-Key-Id": key_id(key.public_key()),
    }


def verify(public: Ed25519PublicKey, body: bytes, headers: Any) -> None:
    """Raise :class:`MalformedPage` unless ``headers`` carry a valid signature of ``body``."""
    kid = headers.get("x-sentinelle-key-id", "")
    if kid != key_id(public):
        raise MalformedPage(
            f"feed signed with key {kid[:20]!r}, not the publisher's", body, "bad_signature"
        )
    sig = headers.get("x-sentinelle-signature", "")
    if not sig.startswith("ed25519="):
        raise MalformedPage("feed page is not signed", body, "bad_signature")
    try:
        public.verify(base64.b64decode(sig[8:], validate=True), body)
    except (InvalidSignature, ValueError):
        raise MalformedPage("feed page signature does not verify", body, "bad_signature") from None


# --------------------------------------------------------------- publisher
@dataclass
class FeedInfo:
    id: int
    bank: str
    bank_id: int
    category: str | None
    expiry_days: int
    enabled: bool


class Publisher:
    """The feeds this instance publishes (tables in the bank database)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def share_bank(
        self,
        bank: str,
        *,
        category: str | None = None,
        expiry_days: int = 90,
        actor: str = "system",
    ) -> FeedInfo:
        if not 1 <= int(expiry_days) <= 3650:
            raise ExchangeError("expiry must be 1-3650 days", "bad_config")
        with self.engine.begin() as conn:
            bid = conn.execute(sa.select(B.c.id).where(B.c.name == bank)).scalar()
            if bid is None:
                raise ExchangeError(f"no bank named {bank!r}", "unknown_bank")
            if conn.execute(sa.select(F.c.id).where(F.c.bank_id == bid)).first():
                conn.execute(
                    F.update()
                    .where(F.c.bank_id == bid)
                    .values(category=category, expiry_days=int(expiry_days), enabled=True)
                )
            else:
                conn.execute(
                    F.insert(),
                    {
                        "bank_id": bid,
                        "category": category,
                        "expiry_days": int(expiry_days),
                        "enabled": True,
                        "created_at": utcnow(),
                    },
                )
            record_event(
                conn,
                actor=actor,
                action="exchange.share",
                target=f"bank:{bank}",
                details={"category": category, "expiry_days": int(expiry_days)},
            )
        return self.feed(bank)

    def unshare_bank(self, bank: str, *, actor: str = "system") -> None:
        info = self.feed(bank)
        with self.engine.begin() as conn:
            conn.execute(F.update().where(F.c.id == info.id).values(enabled=False))
            record_event(
                conn, actor=actor, action="exchange.unshare", target=f"bank:{bank}", details={}
            )

    def feed(self, bank: str) -> FeedInfo:
        with self.engine.connect() as conn:
            r = conn.execute(
                sa.select(F, B.c.name.label("bank"))
                .join(B, B.c.id == F.c.bank_id)
                .where(B.c.name == bank)
            ).first()
        if r is None:
            raise ExchangeError(f"bank {bank!r} is not shared", "not_shared")
        return FeedInfo(
            int(r.id), r.bank, int(r.bank_id), r.category, int(r.expiry_days), bool(r.enabled)
        )

    # ----------------------------------------------------------- subscribers
    def add_subscriber(self, name: str, *, actor: str = "system") -> str:
        """Create a subscriber; returns its API key (shown once, stored hashed)."""
        if not 1 <= len(name) <= 64 or not name.isprintable():
            raise ExchangeError("subscriber name must be 1-64 printable characters", "bad_name")
        key = "snp_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(S.c.id).where(S.c.name == name)).first():
                raise ExchangeError(f"subscriber {name!r} exists", "subscriber_exists")
            conn.execute(
                S.insert(),
                {"name": name, "key_sha256": _digest(key), "enabled": True, "created_at": utcnow()},
            )
            record_event(
                conn,
                actor=actor,
                action="exchange.subscriber_add",
                target=f"subscriber:{name}",
                details={},
            )
        return key

    def revoke_subscriber(self, name: str, *, actor: str = "system") -> None:
        with self.engine.begin() as conn:
            n = conn.execute(S.update().where(S.c.name == name).values(enabled=False)).rowcount
            if not n:
                raise ExchangeError(f"no subscriber {name!r}", "unknown_subscriber")
            record_event(
                conn,
                actor=actor,
                action="exchange.subscriber_revoke",
                target=f"subscriber:{name}",
                details={},
            )

    def authenticate(self, api_key: str | None) -> int | None:
        """The subscriber id of ``api_key`` (None when unknown or revoked)."""
        if not api_key:
            return None
        with self.engine.connect() as conn:
            sid = conn.execute(
                sa.select(S.c.id).where(S.c.key_sha256 == _digest(api_key), S.c.enabled.is_(True))
            ).scalar()
        return None if sid is None else int(sid)

    # ----------------------------------------------------------------- items
    def on_confirmed(self, entry_id: int) -> bool:
        """Share entry ``entry_id`` if its bank's feed is on; True when appended."""
        now = utcnow()
        with self.engine.begin() as conn:
            e = conn.execute(
                sa.select(E.c.bank_id, E.c.signal_type, E.c.hash).where(E.c.id == entry_id)
            ).first()
            if e is None:
                return False
            feed = conn.execute(
                sa.select(F).where(F.c.bank_id == e.bank_id, F.c.enabled.is_(True))
            ).first()
            if feed is None:
                return False
            latest = conn.execute(
                sa.select(FI.c.op, FI.c.expires_at)
                .where(
                    FI.c.feed_id == feed.id, FI.c.signal_type == e.signal_type, FI.c.hash == e.hash
                )
                .order_by(FI.c.seq.desc())
                .limit(1)
            ).first()
            expires = now + timedelta(days=int(feed.expiry_days))
            if (
                latest is not None
                and latest.op == "add"
                and latest.expires_at > now + timedelta(days=int(feed.expiry_days) / 2)
            ):
                return False  # already shared and far from expiry
            conn.execute(
                FI.insert(),
                {
                    "feed_id": feed.id,
                    "entry_id": entry_id,
                    "signal_type": e.signal_type,
                    "hash": e.hash,
                    "category": feed.category,
                    "op": "add",
                    "expires_at": expires,
                    "at": now,
                },
            )
        return True

    def expire(self, feed_id: int, now: datetime | None = None) -> int:
        """Append ``remove`` items for shared hashes whose expiry has passed."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            last = (
                sa.select(FI.c.signal_type, FI.c.hash, sa.func.max(FI.c.seq).label("seq"))
                .where(FI.c.feed_id == feed_id)
                .group_by(FI.c.signal_type, FI.c.hash)
                .subquery()
            )
            rows = conn.execute(
                sa.select(FI.c.signal_type, FI.c.hash, FI.c.entry_id)
                .join(last, FI.c.seq == last.c.seq)
                .where(FI.c.op == "add", FI.c.expires_at <= now)
            ).all()
            if rows:
                conn.execute(
                    FI.insert(),
                    [
                        {
                            "feed_id": feed_id,
                            "entry_id": r.entry_id,
                            "signal_type": r.signal_type,
                            "hash": r.hash,
                            "category": None,
                            "op": "remove",
                            "expires_at": None,
                            "at": now,
                        }
                        for r in rows
                    ],
                )
        return len(rows)

    def page(
        self, bank: str, after: int, limit: int, key: Ed25519PrivateKey
    ) -> tuple[bytes, dict[str, str]]:
        """The signed page of ``bank``'s feed after sequence ``after``: (body, headers)."""
        info = self.feed(bank)
        if not info.enabled:
            raise ExchangeError(f"bank {bank!r} is not shared", "not_shared")
        self.expire(info.id)
        limit = max(1, min(MAX_PAGE, int(limit)))
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(FI)
                .where(FI.c.feed_id == info.id, FI.c.seq > int(after))
                .order_by(FI.c.seq)
                .limit(limit + 1)
            ).all()
        more = len(rows) > limit
        rows = rows[:limit]
        items = [
            {
                "seq": int(r.seq),
                "op": r.op,
                "signal_type": r.signal_type,
                "hash": r.hash,
                "category": r.category,
                "expires_at": None if r.expires_at is None else int(r.expires_at.timestamp()),
            }
            for r in rows
        ]
        doc = {
            "v": FEED_VERSION,
            "feed": bank,
            "after": int(after),
            "next": items[-1]["seq"] if items else int(after),
            "more": more,
            "generated_at": int(utcnow().timestamp()),
            "items": items,
        }
        body = canonical(doc)
        return body, sign(key, body)

    # -------------------------------------------------------------- opinions
    def record_opinions(self, bank: str, subscriber_id: int, items: list[dict[str, Any]]) -> int:
        info = self.feed(bank)
        if not isinstance(items, list) or len(items) > MAX_PAGE:
            raise ExchangeError("items must be a list of at most 5000 opinions", "bad_opinions")
        now = utcnow()
        n = 0
        with self.engine.begin() as conn:
            for it in items:
                if not isinstance(it, dict) or it.get("opinion") not in OPINIONS:
                    raise ExchangeError(
                        "each opinion needs signal_type, hash and opinion "
                        f"({' or '.join(OPINIONS)})",
                        "bad_opinions",
                    )
                st, h = str(it.get("signal_type", ""))[:16], str(it.get("hash", ""))[:64]
                shared = conn.execute(
                    sa.select(FI.c.seq)
                    .where(FI.c.feed_id == info.id, FI.c.signal_type == st, FI.c.hash == h)
                    .limit(1)
                ).first()
                if shared is None:
                    continue  # not a hash this feed ever shared
                key = {
                    "feed_id": info.id,
                    "subscriber_id": subscriber_id,
                    "signal_type": st,
                    "hash": h,
                }
                done = conn.execute(
                    OP.update()
                    .where(*[OP.c[k] == v for k, v in key.items()])
                    .values(opinion=it["opinion"], at=now)
                ).rowcount
                if not done:
                    conn.execute(OP.insert(), {**key, "opinion": it["opinion"], "at": now})
                n += 1
        return n

    def disagreements(self, bank: str) -> list[dict[str, Any]]:
        """Per shared hash: how many subscribers called it a false positive / confirmed it."""
        info = self.feed(bank)
        fp = sa.func.sum(sa.case((OP.c.opinion == "false_positive", 1), else_=0))
        ok = sa.func.sum(sa.case((OP.c.opinion == "confirmed", 1), else_=0))
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(OP.c.signal_type, OP.c.hash, fp.label("fp"), ok.label("ok"))
                .where(OP.c.feed_id == info.id)
                .group_by(OP.c.signal_type, OP.c.hash)
                .order_by(fp.desc(), OP.c.hash)
            ).all()
            out = []
            for r in rows:
                entry_id = conn.execute(
                    sa.select(E.c.id)
                    .where(
                        E.c.bank_id == info.bank_id,
                        E.c.signal_type == r.signal_type,
                        E.c.hash == r.hash,
                    )
                    .limit(1)
                ).scalar()
                out.append(
                    {
                        "signal_type": r.signal_type,
                        "hash": r.hash,
                        "entry_id": entry_id,
                        "false_positive": int(r.fp or 0),
                        "confirmed": int(r.ok or 0),
                    }
                )
        return out


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
