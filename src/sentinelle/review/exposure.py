"""Reviewer protection: per-user settings, daily exposure counter, break reminders.

::

    from sentinelle.review import exposure

    s = exposure.get_settings(engine, user.id)      # blur_level, grayscale, mute_audio...
    exposure.update_settings(engine, user.id, blur_level=32, grayscale=True)
    exposure.check_can_view(engine, user.id)        # raises exposure_cap_reached (429)
    st = exposure.record_exposure(engine, user.id, viewed=1)            # item opened
    st = exposure.record_exposure(engine, user.id, viewed=0, revealed=1) # media revealed
    if st.break_due: ...                            # show the break reminder
    exposure.take_break(engine, user.id)

The counter is per user and per UTC day. The effective limits are the stricter
of the console's (:mod:`.config`: ``daily_exposure_cap``, ``break_after_minutes``,
``break_after_items``) and the user's own (``user_settings``); a user can make
them stricter, never looser. A cap of 0 means no cap. A break is due once
``break_after_items`` items were viewed, or ``break_after_minutes`` passed, since
the first view after the last break.

Passing a case to a colleague never touches these counters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ._db import ConnOrEngine, scope
from .config import get_config
from .errors import ReviewError
from .tables import aware, exposure_counters, user_settings, utcnow

SETTING_LIMITS: dict[str, tuple[int, int]] = {
    "blur_level": (0, 100),
    "daily_cap": (0, 100_000),
    "break_after_minutes": (1, 24 * 60),
    "break_after_items": (1, 100_000),
}
BOOL_SETTINGS = ("grayscale", "mute_audio")
#: The console languages a user can choose (``locale`` setting; None: never chosen).
LOCALES = ("en", "fr")


@dataclass(frozen=True)
class UserSettings:
    user_id: int
    blur_level: int  # blur radius in percent of the image's short side x 10 (0 = none)
    grayscale: bool
    mute_audio: bool
    daily_cap: int | None
    break_after_minutes: int | None
    break_after_items: int | None
    locale: str | None = None  # the console language chosen, see sentinelle.console.i18n

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ExposureStatus:
    user_id: int
    day: str
    items_viewed: int
    reveals: int
    cap: int | None  # None: no cap
    remaining: int | None
    over_cap: bool
    break_due: bool
    items_since_break: int
    minutes_since_break: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _day(now: datetime) -> str:
    return now.date().isoformat()


def get_settings(conn_or_engine: ConnOrEngine, user_id: int) -> UserSettings:
    """The user's protection settings (defaults when never saved)."""
    with scope(conn_or_engine, write=False) as conn:
        r = conn.execute(sa.select(user_settings).where(user_settings.c.user_id == user_id)).first()
    if r is None:
        return UserSettings(int(user_id), 24, True, True, None, None, None)
    return UserSettings(
        user_id=int(r.user_id),
        blur_level=int(r.blur_level),
        grayscale=bool(r.grayscale),
        mute_audio=bool(r.mute_audio),
        daily_cap=r.daily_cap,
        break_after_minutes=r.break_after_minutes,
        break_after_items=r.break_after_items,
        locale=r.locale,
    )


def update_settings(conn_or_engine: ConnOrEngine, user_id: int, **changes: Any) -> UserSettings:
    """Change some settings (names of :class:`UserSettings`; None clears a limit)."""
    values: dict[str, Any] = {}
    for k, v in changes.items():
        if k in BOOL_SETTINGS:
            if not isinstance(v, bool):
                raise ReviewError(f"{k} must be true or false", code="bad_setting")
            values[k] = v
        elif k == "locale":
            if v is not None and v not in LOCALES:
                raise ReviewError(f"locale must be one of {list(LOCALES)}", code="bad_setting")
            values[k] = v
        elif k in SETTING_LIMITS:
            lo, hi = SETTING_LIMITS[k]
            if v is None and k != "blur_level":
                values[k] = None
                continue
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ReviewError(f"{k} must be an integer in [{lo}, {hi}]", code="bad_setting")
            values[k] = v
        else:
            raise ReviewError(f"unknown setting {k!r}", code="bad_setting")
    now = utcnow()
    with scope(conn_or_engine) as conn:
        res = conn.execute(
            user_settings.update()
            .where(user_settings.c.user_id == user_id)
            .values(updated_at=now, **values)
        )
        if not res.rowcount:
            conn.execute(user_settings.insert().values(user_id=user_id, updated_at=now, **values))
    return get_settings(conn_or_engine, user_id)


def _limits(conn: Any, user_id: int) -> tuple[int | None, int, int]:
    cfg = get_config(conn)
    s = get_settings(conn, user_id)
    caps = [c for c in (int(cfg["daily_exposure_cap"]), s.daily_cap) if c]
    cap = min(caps) if caps else None
    minutes = min(m for m in (int(cfg["break_after_minutes"]), s.break_after_minutes) if m)
    items = min(i for i in (int(cfg["break_after_items"]), s.break_after_items) if i)
    return cap, minutes, items


def _status(conn: Any, user_id: int, now: datetime) -> ExposureStatus:
    cap, brk_minutes, brk_items = _limits(conn, user_id)
    day = _day(now)
    r = conn.execute(
        sa.select(exposure_counters).where(
            exposure_counters.c.user_id == user_id, exposure_counters.c.day == day
        )
    ).first()
    viewed = int(r.items_viewed) if r else 0
    reveals = int(r.reveals) if r else 0
    since_items = int(r.since_break_items) if r else 0
    started = aware(r.since_break_started_at) if r else None
    minutes = (now - started).total_seconds() / 60 if started else 0.0
    return ExposureStatus(
        user_id=int(user_id),
        day=day,
        items_viewed=viewed,
        reveals=reveals,
        cap=cap,
        remaining=None if cap is None else max(0, cap - viewed),
        over_cap=cap is not None and viewed >= cap,
        break_due=since_items >= brk_items or (started is not None and minutes >= brk_minutes),
        items_since_break=since_items,
        minutes_since_break=round(minutes, 2),
    )


def exposure_status(
    conn_or_engine: ConnOrEngine, user_id: int, *, now: datetime | None = None
) -> ExposureStatus:
    with scope(conn_or_engine, write=False) as conn:
        return _status(conn, user_id, now or utcnow())


def check_can_view(conn_or_engine: ConnOrEngine, user_id: int) -> ExposureStatus:
    """Raise ``exposure_cap_reached`` (429) when today's cap is used up."""
    st = exposure_status(conn_or_engine, user_id)
    if st.over_cap:
        raise ReviewError(
            f"daily exposure cap of {st.cap} items reached; it resets at 00:00 UTC",
            code="exposure_cap_reached",
            status=429,
        )
    return st


def _bump(conn: Any, key: Any, viewed: int, revealed: int, now: datetime) -> bool:
    res = conn.execute(
        exposure_counters.update()
        .where(key)
        .values(
            items_viewed=exposure_counters.c.items_viewed + viewed,
            reveals=exposure_counters.c.reveals + revealed,
            since_break_items=exposure_counters.c.since_break_items + viewed,
            since_break_started_at=sa.func.coalesce(
                exposure_counters.c.since_break_started_at, now
            ),
            updated_at=now,
        )
    )
    return bool(res.rowcount)


def _first_of_day(
    conn: Any, user_id: int, day: str, viewed: int, revealed: int, now: datetime
) -> None:
    """Today's row. A break streak crossing midnight carries over if recent (< 4 h)."""
    prev = conn.execute(
        sa.select(exposure_counters.c.since_break_items, exposure_counters.c.since_break_started_at)
        .where(exposure_counters.c.user_id == user_id, exposure_counters.c.day < day)
        .order_by(exposure_counters.c.day.desc())
        .limit(1)
    ).first()
    carry_items, carry_start = 0, now
    started = aware(prev.since_break_started_at) if prev is not None else None
    if started is not None and now - started < timedelta(hours=4):
        carry_items, carry_start = int(prev.since_break_items), started
    conn.execute(
        exposure_counters.insert().values(
            user_id=user_id,
            day=day,
            items_viewed=viewed,
            reveals=revealed,
            since_break_items=carry_items + viewed,
            since_break_started_at=carry_start,
            updated_at=now,
        )
    )


def record_exposure(
    conn_or_engine: ConnOrEngine,
    user_id: int,
    *,
    viewed: int = 1,
    revealed: int = 0,
    now: datetime | None = None,
    enforce_cap: bool = False,
) -> ExposureStatus:
    """Count items viewed / media reveals for today; returns the new status.

    ``enforce_cap=True``: the count and the cap check are one transaction. When the new
    count would pass today's cap the bump is rolled back and ``exposure_cap_reached``
    (429) raised, so concurrent reveals cannot all slip past a check made earlier (the
    counter's ``UPDATE ... + n`` serialises them; a concurrent first view of the day goes
    through the same path after its unique-key conflict).
    """
    if viewed < 0 or revealed < 0:
        raise ReviewError("counts must be >= 0", code="bad_count")
    now = now or utcnow()
    day = _day(now)
    key = (exposure_counters.c.user_id == user_id) & (exposure_counters.c.day == day)
    with scope(conn_or_engine) as conn:
        if not _bump(conn, key, viewed, revealed, now):
            try:
                with conn.begin_nested():
                    _first_of_day(conn, user_id, day, viewed, revealed, now)
            except sa.exc.IntegrityError:  # a concurrent first view of the day
                _bump(conn, key, viewed, revealed, now)
        st = _status(conn, user_id, now)
        if enforce_cap and st.cap is not None and st.items_viewed > st.cap:
            raise ReviewError(  # leaving the block rolls the bump back
                f"daily exposure cap of {st.cap} items reached; it resets at 00:00 UTC",
                code="exposure_cap_reached",
                status=429,
            )
        return st


def take_break(
    conn_or_engine: ConnOrEngine, user_id: int, *, now: datetime | None = None
) -> ExposureStatus:
    """Reset the break reminder (the daily counter is kept)."""
    now = now or utcnow()
    with scope(conn_or_engine) as conn:
        conn.execute(
            exposure_counters.update()
            .where(exposure_counters.c.user_id == user_id, exposure_counters.c.day == _day(now))
            .values(
                since_break_items=0, since_break_started_at=None, last_break_at=now, updated_at=now
            )
        )
        return _status(conn, user_id, now)
