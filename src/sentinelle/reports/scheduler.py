"""The CyberTipline report tick, run by the service's job worker.

:meth:`sentinelle.reports.lifecycle.ReportManager.tick` moves every open report
forward (upload files, send file details, finish) and retracts a report before
NCMEC's expiry. ``sentinelle report tick`` runs it by hand or from cron; this
module makes every ``sentinelle serve`` instance run it too, about every
``SENTINELLE_CYBERTIP_TICK_S`` seconds (default 60), **when the CyberTipline
client is configured**: ``SENTINELLE_CYBERTIP_URL`` or
``SENTINELLE_CYBERTIP_USERNAME`` set, or ``SENTINELLE_CYBERTIP_ENV=production``.
Otherwise :func:`register_periodic_task` registers nothing.

Configuration is the same as the CLI's (:mod:`sentinelle.cli.report_cmd`): the
client from ``SENTINELLE_CYBERTIP_*``; the schema from ``SENTINELLE_CYBERTIP_XSD``
or the API's ``/xsd`` (cached on disk); file bytes from the encrypted evidence
store (``SENTINELLE_MASTER_KEY`` / ``_FILE``). A broken configuration is logged
once and the task is not registered (``sentinelle report status`` says why).

Several instances: a tick is not a queued job, so each instance's worker runs
it. On PostgreSQL a session advisory lock (per database schema) lets one tick
run at a time across instances; an instance that finds it taken skips that
round, so a file is never uploaded twice by two instances at once. SQLite
deployments are one host; the lock there is per process.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from .errors import ReportError

log = logging.getLogger("sentinelle.reports.scheduler")

TASK_NAME = "reports.tick"
TICK_ENV = "SENTINELLE_CYBERTIP_TICK_S"
DEFAULT_TICK_S = 60.0
MIN_TICK_S = 5.0
_LOCK_SQL = sa.text(
    "SELECT pg_try_advisory_lock(hashtext('sentinelle.reports.tick:' || current_schema()))"
)
_UNLOCK_SQL = sa.text(
    "SELECT pg_advisory_unlock(hashtext('sentinelle.reports.tick:' || current_schema()))"
)

__all__ = ["ReportTicker", "configured", "manager_from_env", "register_periodic_task"]


def configured(env: Mapping[str, str] | None = None) -> bool:
    """True when the environment names a CyberTipline API to talk to."""
    env = os.environ if env is None else env
    return bool(
        env.get("SENTINELLE_CYBERTIP_URL", "").strip()
        or env.get("SENTINELLE_CYBERTIP_USERNAME", "").strip()
        or env.get("SENTINELLE_CYBERTIP_ENV", "").strip().lower() == "production"
    )


def tick_interval(env: Mapping[str, str] | None = None) -> float:
    """``SENTINELLE_CYBERTIP_TICK_S`` (seconds, at least 5; default 60)."""
    env = os.environ if env is None else env
    raw = env.get(TICK_ENV, "").strip()
    if not raw:
        return DEFAULT_TICK_S
    try:
        value = float(raw)
    except ValueError:
        raise ReportError(f"{TICK_ENV} must be a number of seconds", "bad_config") from None
    if not value >= MIN_TICK_S or value == float("inf"):
        raise ReportError(f"{TICK_ENV} must be at least {MIN_TICK_S:g} seconds", "bad_config")
    return value


def manager_from_env(engine: sa.Engine, env: Mapping[str, str] | None = None) -> Any:
    """A :class:`ReportManager` with the client and schema the environment describes."""
    from .client import CyberTipConfig, CyberTiplineClient
    from .lifecycle import ReportManager
    from .xsd import default_cache_path, load_schema, load_schema_cached

    env = os.environ if env is None else env
    client = CyberTiplineClient(CyberTipConfig.from_env(env))
    xsd = env.get("SENTINELLE_CYBERTIP_XSD", "").strip()
    if xsd:
        schema = load_schema(xsd)
    else:
        schema = load_schema_cached(client.xsd, default_cache_path(client.environment))
    return ReportManager(engine, client, schema=schema, actor="system")


class ReportTicker:
    """The periodic task: ``ticker(state)`` runs one tick on ``state.engine``.

    The manager (HTTP client, parsed schema) is built on first use and kept.
    Returns the :class:`TickResult`, or None when another instance held the lock.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(os.environ if env is None else env)
        self._managers: dict[int, Any] = {}
        self._lock = threading.Lock()

    def manager(self, engine: sa.Engine) -> Any:
        key = id(engine)
        if key not in self._managers:
            self._managers[key] = manager_from_env(engine, self._env)
        return self._managers[key]

    def __call__(self, state: Any) -> Any:
        engine: sa.Engine = state.engine
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if engine.dialect.name != "postgresql":
                return self._tick(engine)
            with engine.connect() as conn:
                if not conn.execute(_LOCK_SQL).scalar():
                    conn.rollback()
                    return None
                conn.commit()
                try:
                    return self._tick(engine)
                finally:
                    conn.execute(_UNLOCK_SQL)
                    conn.commit()
        finally:
            self._lock.release()

    def _tick(self, engine: sa.Engine) -> Any:
        result = self.manager(engine).tick()
        if result.finished or result.retracted or result.expired or result.errors:
            log.info(
                "report tick: %d finished, %d retracted, %d expired, %d error(s)",
                len(result.finished),
                len(result.retracted),
                len(result.expired),
                len(result.errors),
            )
        if result.needs_attention:
            log.warning(
                "report tick: %d report(s) in submit_unknown need a person",
                len(result.needs_attention),
            )
        return result


def register_periodic_task(env: Mapping[str, str] | None = None) -> bool:
    """Register the tick with the job worker when a CyberTipline API is configured.

    Returns True when registered. Never raises: a bad configuration is logged.
    """
    env = os.environ if env is None else env
    if not configured(env):
        return False
    from ..jobs.worker import register_periodic

    try:
        interval = tick_interval(env)
        from .client import CyberTipConfig

        CyberTipConfig.from_env(env)  # fail now, loudly, rather than every minute
    except ReportError as e:
        log.error("CyberTipline tick not started: [%s] %s", e.code, e.message)
        return False
    register_periodic(TASK_NAME, ReportTicker(env), interval)
    return True


def register() -> None:
    """The plugin hook (see :mod:`sentinelle.plugins`): the tick, when configured."""
    register_periodic_task()
