"""Console-wide review settings (table ``review_config``), changed by admins.

=========================  =======  ===================================================
key                        default  meaning
=========================  =======  ===================================================
``second_review``          false    decisions wait for a specialist's approval
``daily_exposure_cap``     200      items a user may view per UTC day (0 = no cap)
``break_after_minutes``    50       a break reminder is due after this much work
``break_after_items``      40       ... or after this many items since the last break
``session_ttl_minutes``    720      absolute lifetime of a login session
``session_idle_minutes``   60       a session unused this long expires
=========================  =======  ===================================================

``get_config(engine)`` returns every key (defaults filled in);
``set_config(engine, key, value, actor=...)`` validates, stores and audits
(``config.change``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ._db import ConnOrEngine, audit, dumps, loads, scope
from .errors import ReviewError
from .tables import review_config, utcnow

DEFAULTS: dict[str, Any] = {
    "second_review": False,
    "daily_exposure_cap": 200,
    "break_after_minutes": 50,
    "break_after_items": 40,
    "session_ttl_minutes": 720,
    "session_idle_minutes": 60,
}
_LIMITS: dict[str, tuple[int, int]] = {
    "daily_exposure_cap": (0, 100_000),
    "break_after_minutes": (1, 24 * 60),
    "break_after_items": (1, 100_000),
    "session_ttl_minutes": (5, 30 * 24 * 60),
    "session_idle_minutes": (1, 24 * 60),
}


def check_value(key: str, value: Any) -> Any:
    if key not in DEFAULTS:
        raise ReviewError(f"unknown setting {key!r}; known: {sorted(DEFAULTS)}", code="bad_setting")
    if isinstance(DEFAULTS[key], bool):
        if isinstance(value, str) and value.lower() in (
            "true",
            "1",
            "yes",
            "on",
            "false",
            "0",
            "no",
            "off",
        ):
            return value.lower() in ("true", "1", "yes", "on")
        if not isinstance(value, bool):
            raise ReviewError(f"{key} must be true or false", code="bad_setting")
        return value
    lo, hi = _LIMITS[key]
    try:
        n = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        n = None
    if n is None or isinstance(value, float) and value != n or not lo <= n <= hi:
        raise ReviewError(f"{key} must be an integer in [{lo}, {hi}]", code="bad_setting")
    return n


def get_config(conn_or_engine: ConnOrEngine) -> dict[str, Any]:
    """Every setting, stored values over :data:`DEFAULTS`."""
    out = dict(DEFAULTS)
    with scope(conn_or_engine, write=False) as conn:
        for key, value in conn.execute(sa.select(review_config.c.key, review_config.c.value)):
            if key in out:
                out[key] = loads(value, out[key])
    return out


def set_config(conn_or_engine: ConnOrEngine, key: str, value: Any, *, actor: str) -> Any:
    """Validate and store one setting; audited as ``config.change``. Returns the value."""
    value = check_value(key, value)
    now = utcnow()
    with scope(conn_or_engine) as conn:
        old = conn.execute(
            sa.select(review_config.c.value).where(review_config.c.key == key)
        ).scalar()
        row = {"value": dumps(value), "updated_at": now, "updated_by": actor}
        if old is None:
            conn.execute(review_config.insert().values(key=key, **row))
        else:
            conn.execute(review_config.update().where(review_config.c.key == key).values(**row))
        audit(
            conn,
            actor=actor,
            action="config.change",
            target=f"review_config:{key}",
            details={"key": key, "old": loads(old, DEFAULTS[key]), "new": value},
        )
    return value
