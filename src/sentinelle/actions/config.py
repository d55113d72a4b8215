"""Per-bank action settings: webhooks, quarantine, flood guard.

Stored in ``bank_actions`` (one optional row per bank, deleted with the bank)
and ``action_globals`` (global flood-guard defaults), created by migration 0003.

Flood-guard settings resolve, most specific first:

1. the bank's own ``flood_max`` / ``flood_window_s`` / ``flood_pause_s``;
2. the global row written by :func:`set_global_flood` (``sentinelle actions
   set-global``);
3. ``SENTINELLE_FLOOD_MAX`` / ``SENTINELLE_FLOOD_WINDOW_S`` /
   ``SENTINELLE_FLOOD_PAUSE_S``;
4. built-in defaults: 100 matches per entry per 60 s, pause 1 hour.

A flood max of 0 disables the guard for that bank. ``enabled`` switches a
bank's webhooks and quarantine flag off without losing them; the flood guard
applies regardless (it protects the platform, not the bank owner).

The webhook secret is stored as given because the service needs it to sign
deliveries; it is never returned by :func:`get_actions` (only ``has_secret``).
Hot paths read settings through :func:`cached_actions`, a per-engine snapshot
refreshed every :data:`CACHE_TTL_S` seconds, so a change reaches every instance
within that time without a database read per request.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    Text,
    select,
)

from ..errors import SentinelleError
from ..store.models import Bank, UTCDateTime, utcnow

DEFAULT_FLOOD_MAX = 100
DEFAULT_FLOOD_WINDOW_S = 60
DEFAULT_FLOOD_PAUSE_S = 3600
MAX_WEBHOOKS = 10
MAX_URL = 2000
MIN_SECRET = 16
MAX_SECRET = 512
MAX_WINDOW_S = 7 * 86400
MAX_PAUSE_S = 365 * 86400
CACHE_TTL_S = 2.0

metadata = MetaData()
bank_actions_table = Table(
    "bank_actions",
    metadata,
    Column("bank_id", Integer, ForeignKey(Bank.__table__.c.id), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("webhook_urls", Text, nullable=False),
    Column("webhook_secret", Text),
    Column("quarantine", Boolean, nullable=False),
    Column("flood_max", Integer),
    Column("flood_window_s", Integer),
    Column("flood_pause_s", Integer),
    Column("updated_at", UTCDateTime, nullable=False),
)
action_globals_table = Table(
    "action_globals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("flood_max", Integer, nullable=False),
    Column("flood_window_s", Integer, nullable=False),
    Column("flood_pause_s", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
A = bank_actions_table
G = action_globals_table
B = Bank.__table__


class ActionConfigError(SentinelleError):
    """Invalid action settings (bad URL, short secret, unknown bank...)."""

    code = "bad_action_config"


@dataclass(frozen=True)
class FloodSettings:
    """Pause an entry matched more than ``max_matches`` times in ``window_s``
    seconds, for ``pause_s`` seconds. ``max_matches == 0``: guard off."""

    max_matches: int = DEFAULT_FLOOD_MAX
    window_s: int = DEFAULT_FLOOD_WINDOW_S
    pause_s: int = DEFAULT_FLOOD_PAUSE_S

    @property
    def enabled(self) -> bool:
        return self.max_matches > 0

    def to_dict(self) -> dict[str, int]:
        return {"max": self.max_matches, "window_s": self.window_s, "pause_s": self.pause_s}


@dataclass(frozen=True)
class BankActions:
    """Effective settings of one bank (``flood`` already resolved)."""

    bank: str
    bank_id: int
    enabled: bool = True
    webhook_urls: tuple[str, ...] = ()
    has_secret: bool = False
    quarantine: bool = False
    flood: FloodSettings = FloodSettings()
    flood_overridden: bool = False

    @property
    def webhooks_active(self) -> bool:
        return self.enabled and bool(self.webhook_urls) and self.has_secret

    def to_dict(self) -> dict[str, Any]:
        return {
            "bank": self.bank,
            "enabled": self.enabled,
            "webhook_urls": list(self.webhook_urls),
            "has_secret": self.has_secret,
            "quarantine": self.quarantine,
            "flood_guard": {**self.flood.to_dict(), "bank_override": self.flood_overridden},
        }


# ------------------------------------------------------------ validation
def validate_webhook_url(url: str) -> str:
    """An absolute ``http(s)://host[:port]/path`` URL without credentials."""
    if not isinstance(url, str) or not 1 <= len(url) <= MAX_URL:
        raise ActionConfigError(f"webhook URL must be 1-{MAX_URL} characters")
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise ActionConfigError("webhook URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as e:
        raise ActionConfigError(f"invalid webhook URL: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ActionConfigError("webhook URL must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise ActionConfigError("webhook URL must not embed credentials (use the secret)")
    return url


def _check_int(name: str, v: int | None, lo: int, hi: int) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ActionConfigError(f"{name} must be an integer in {lo}..{hi}")
    return v


def _secret_ok(secret: object) -> bool:
    return isinstance(secret, str) and MIN_SECRET <= len(secret) <= MAX_SECRET


def new_secret() -> str:
    """A random webhook secret (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


# ---------------------------------------------------------------- reading
def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def env_flood_defaults() -> FloodSettings:
    return FloodSettings(
        max_matches=max(0, _env_int("SENTINELLE_FLOOD_MAX", DEFAULT_FLOOD_MAX)),
        window_s=min(MAX_WINDOW_S, max(1, _env_int("SENTINELLE_FLOOD_WINDOW_S", 60))),
        pause_s=min(MAX_PAUSE_S, max(1, _env_int("SENTINELLE_FLOOD_PAUSE_S", 3600))),
    )


def get_global_flood(engine: Engine) -> FloodSettings:
    with engine.connect() as conn:
        r = conn.execute(select(G).where(G.c.id == 1)).first()
    if r is None:
        return env_flood_defaults()
    return FloodSettings(int(r.flood_max), int(r.flood_window_s), int(r.flood_pause_s))


def _resolve(row: Any, default: FloodSettings) -> tuple[FloodSettings, bool]:
    if row is None:
        return default, False
    over = (row.flood_max, row.flood_window_s, row.flood_pause_s)
    fs = FloodSettings(
        max_matches=default.max_matches if over[0] is None else int(over[0]),
        window_s=default.window_s if over[1] is None else int(over[1]),
        pause_s=default.pause_s if over[2] is None else int(over[2]),
    )
    return fs, any(v is not None for v in over)


def _to_actions(bank_name: str, bank_id: int, row: Any, default: FloodSettings) -> BankActions:
    flood, overridden = _resolve(row, default)
    if row is None:
        return BankActions(bank=bank_name, bank_id=bank_id, flood=flood)
    try:
        urls = tuple(str(u) for u in json.loads(row.webhook_urls or "[]"))
    except ValueError:
        urls = ()
    return BankActions(
        bank=bank_name,
        bank_id=bank_id,
        enabled=bool(row.enabled),
        webhook_urls=urls,
        has_secret=bool(row.webhook_secret),
        quarantine=bool(row.quarantine),
        flood=flood,
        flood_overridden=overridden,
    )


def load_all(engine: Engine) -> dict[str, BankActions]:
    """Effective settings of every bank, by bank name."""
    default = get_global_flood(engine)
    q = select(B.c.id, B.c.name, A).select_from(B.outerjoin(A, A.c.bank_id == B.c.id))
    out: dict[str, BankActions] = {}
    with engine.connect() as conn:
        for r in conn.execute(q):
            row = r if r.bank_id is not None else None
            out[r.name] = _to_actions(r.name, int(r.id), row, default)
    return out


def _bank_id(conn: Any, bank: str) -> int:
    bid = conn.execute(select(B.c.id).where(B.c.name == bank)).scalar()
    if bid is None:
        raise ActionConfigError(f"no bank named {bank!r}", code="unknown_bank")
    return int(bid)


def get_actions(engine: Engine, bank: str) -> BankActions:
    """Effective settings of ``bank`` (defaults if never configured)."""
    default = get_global_flood(engine)
    with engine.connect() as conn:
        bid = _bank_id(conn, bank)
        row = conn.execute(select(A).where(A.c.bank_id == bid)).first()
    return _to_actions(bank, bid, row, default)


def webhook_secret(engine: Engine, bank: str) -> str | None:
    """The signing secret of ``bank``'s webhooks (for the delivery job only)."""
    with engine.connect() as conn:
        bid = conn.execute(select(B.c.id).where(B.c.name == bank)).scalar()
        if bid is None:
            return None
        return conn.execute(select(A.c.webhook_secret).where(A.c.bank_id == bid)).scalar()


# ---------------------------------------------------------------- writing
_UNSET: Any = object()


def set_actions(
    engine: Engine,
    bank: str,
    *,
    webhook_urls: list[str] | tuple[str, ...] | None = None,
    webhook_secret: str | None = _UNSET,
    enabled: bool | None = None,
    quarantine: bool | None = None,
    flood_max: int | None = _UNSET,
    flood_window_s: int | None = _UNSET,
    flood_pause_s: int | None = _UNSET,
) -> BankActions:
    """Create or update ``bank``'s settings; arguments left out keep their value.

    ``webhook_urls=[]`` removes the webhooks; ``flood_*=None`` falls back to the
    global default. Setting webhooks requires a secret (given now or before).
    """
    urls = None if webhook_urls is None else [validate_webhook_url(u) for u in webhook_urls]
    if urls is not None and len(urls) > MAX_WEBHOOKS:
        raise ActionConfigError(f"at most {MAX_WEBHOOKS} webhook URLs per bank")
    if (
        webhook_secret is not _UNSET
        and webhook_secret is not None
        and not _secret_ok(webhook_secret)
    ):
        raise ActionConfigError(f"webhook secret must be {MIN_SECRET}-{MAX_SECRET} characters")
    limits = {"flood_max": (0, 10**9), "flood_window_s": (1, MAX_WINDOW_S)}
    limits["flood_pause_s"] = (1, MAX_PAUSE_S)
    values: dict[str, Any] = {}
    for name, v in (
        ("flood_max", flood_max),
        ("flood_window_s", flood_window_s),
        ("flood_pause_s", flood_pause_s),
    ):
        if v is not _UNSET:
            values[name] = _check_int(name, v, *limits[name])
    if urls is not None:
        values["webhook_urls"] = json.dumps(urls)
    if webhook_secret is not _UNSET:
        values["webhook_secret"] = webhook_secret
    if enabled is not None:
        values["enabled"] = bool(enabled)
    if quarantine is not None:
        values["quarantine"] = bool(quarantine)
    now = utcnow()
    values["updated_at"] = now
    with engine.begin() as conn:
        bid = _bank_id(conn, bank)
        row = conn.execute(select(A).where(A.c.bank_id == bid)).first()
        if row is None:
            base = {
                "bank_id": bid,
                "enabled": True,
                "webhook_urls": "[]",
                "webhook_secret": None,
                "quarantine": False,
                "flood_max": None,
                "flood_window_s": None,
                "flood_pause_s": None,
            }
            base.update(values)
            final_urls, final_secret = json.loads(base["webhook_urls"]), base["webhook_secret"]
            if final_urls and not final_secret:
                raise ActionConfigError("a webhook needs a secret to sign deliveries")
            conn.execute(A.insert().values(**base))
        else:
            final_urls = json.loads(values.get("webhook_urls", row.webhook_urls) or "[]")
            final_secret = values.get("webhook_secret", row.webhook_secret)
            if final_urls and not final_secret:
                raise ActionConfigError("a webhook needs a secret to sign deliveries")
            conn.execute(A.update().where(A.c.bank_id == bid).values(**values))
    invalidate_cache(engine)
    return get_actions(engine, bank)


def set_global_flood(
    engine: Engine, max_matches: int, window_s: int, pause_s: int
) -> FloodSettings:
    """Set the global flood-guard defaults (banks without their own override)."""
    _check_int("flood_max", max_matches, 0, 10**9)
    _check_int("flood_window_s", window_s, 1, MAX_WINDOW_S)
    _check_int("flood_pause_s", pause_s, 1, MAX_PAUSE_S)
    row = {
        "flood_max": max_matches,
        "flood_window_s": window_s,
        "flood_pause_s": pause_s,
        "updated_at": utcnow(),
    }
    with engine.begin() as conn:
        if conn.execute(select(G.c.id).where(G.c.id == 1)).first() is None:
            conn.execute(G.insert().values(id=1, **row))
        else:
            conn.execute(G.update().where(G.c.id == 1).values(**row))
    invalidate_cache(engine)
    return FloodSettings(max_matches, window_s, pause_s)


# ------------------------------------------------------------------ cache
class _Snapshot:
    def __init__(self) -> None:
        self.at = -1e18
        self.data: dict[str, BankActions] = {}
        self.lock = threading.Lock()


_cache: weakref.WeakKeyDictionary[Engine, _Snapshot] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def cached_actions(engine: Engine, ttl_s: float = CACHE_TTL_S) -> dict[str, BankActions]:
    """All banks' settings, at most ``ttl_s`` seconds old (one query per period)."""
    with _cache_lock:
        snap = _cache.get(engine)
        if snap is None:
            snap = _cache[engine] = _Snapshot()
    if time.monotonic() - snap.at < ttl_s:
        return snap.data
    with snap.lock:
        if time.monotonic() - snap.at >= ttl_s:
            snap.data = load_all(engine)
            snap.at = time.monotonic()
        return snap.data


def invalidate_cache(engine: Engine) -> None:
    """Forget this process's snapshot (other instances catch up within the TTL)."""
    with _cache_lock:
        snap = _cache.get(engine)
    if snap is not None:
        snap.at = -1e18
