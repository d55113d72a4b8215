"""Service settings, read from ``SENTINELLE_*`` environment variables.

Every setting has a safe default, so ``sentinelle serve`` works with no
configuration at all (SQLite file in the working directory, URL fetching off, no
key-less access). Invalid values fail at start-up with a clear message rather
than being silently ignored.

=====================================  ==========================================
variable                               meaning (default)
=====================================  ==========================================
``SENTINELLE_DATABASE_URL``            database (``sqlite:///./sentinelle.db``)
``SENTINELLE_MAX_UPLOAD_BYTES``        media upload limit (50 MiB)
``SENTINELLE_MAX_JSON_BYTES``          JSON / form body limit (4 MiB)
``SENTINELLE_MAX_IMPORT_BYTES``        bulk bank import limit (1 GiB)
``SENTINELLE_RATE_LIMIT``              default requests/s per key (100; 0 = none)
``SENTINELLE_RATE_BURST``              default burst per key (2 x rate)
``SENTINELLE_FETCH_ENABLED``           allow scanning media by URL (``false``)
``SENTINELLE_FETCH_ALLOWED_HOSTS``     comma list of host names (empty)
``SENTINELLE_FETCH_MAX_BYTES``         fetched media limit (= upload limit)
``SENTINELLE_FETCH_TIMEOUT_S``         total fetch time limit (10)
``SENTINELLE_HMA_ALLOWLIST``           comma list of IPs/CIDRs that may call the
                                       HMA routes without a key (empty: off)
``SENTINELLE_SYNC_INTERVAL_S``         index sync period (1.0)
``SENTINELLE_READY_MAX_LAG_S``         /v1/ready fails past this sync age (5.0)
``SENTINELLE_KEY_CACHE_S``             how long a verified key is cached (2.0);
                                       revocation reaches every instance within it
``SENTINELLE_DECODE_TIMEOUT_S``        per-upload decode time limit (30)
``SENTINELLE_MAX_PIXELS``              per-image pixel limit (100 M)
``SENTINELLE_THREADS``                 worker threads for blocking work (40)
``SENTINELLE_LOG_LEVEL``               ``INFO``
``SENTINELLE_C2PA_TRUST_ANCHORS``      PEM file of trusted C2PA roots for
                                       ``/v1/provenance`` and ``/v1/scan`` (none:
                                       every signer untrusted); re-read on change
``SENTINELLE_PROVENANCE_DETECTOR``     ONNX detector model for the provenance
                                       verdict (none); its sidecar is
                                       ``SENTINELLE_PROVENANCE_DETECTOR_META``
                                       (default ``MODEL.json``/``MODEL.toml``)
=====================================  ==========================================
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import SentinelleError
from ..media.limits import Limits
from ..store.db import database_url

MiB = 1024**2


class SettingsError(SentinelleError):
    code = "bad_setting"


def _env(env: Mapping[str, str], name: str) -> str | None:
    v = env.get(f"SENTINELLE_{name}")
    if v is None or not v.strip():
        return None
    return v.strip()


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = _env(env, name)
    if raw is None:
        return default
    try:
        v = int(raw.replace("_", ""))
    except ValueError:
        raise SettingsError(f"SENTINELLE_{name} must be an integer, got {raw!r}") from None
    if v < minimum:
        raise SettingsError(f"SENTINELLE_{name} must be >= {minimum}")
    return v


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = _env(env, name)
    if raw is None:
        return default
    try:
        v = float(raw)
    except ValueError:
        raise SettingsError(f"SENTINELLE_{name} must be a number, got {raw!r}") from None
    if not v >= minimum or v != v or v == float("inf"):
        raise SettingsError(f"SENTINELLE_{name} must be a finite number >= {minimum}")
    return v


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _env(env, name)
    if raw is None:
        return default
    low = raw.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"SENTINELLE_{name} must be true or false, got {raw!r}")


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = _env(env, name)
    if raw is None:
        return ()
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def parse_networks(
    items: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``("10.0.0.0/8", "::1")`` -> networks; raises :class:`SettingsError` on a bad one."""
    out = []
    for it in items:
        try:
            out.append(ipaddress.ip_network(it, strict=False))
        except ValueError:
            raise SettingsError(f"not an IP address or CIDR network: {it!r}") from None
    return tuple(out)


@dataclass(frozen=True)
class Settings:
    """Immutable service configuration; build with :meth:`from_env` or directly in tests."""

    database_url: str = field(default_factory=database_url)
    max_upload_bytes: int = 50 * MiB
    max_json_bytes: int = 4 * MiB
    max_import_bytes: int = 1024 * MiB
    rate_limit: float = 100.0  # requests per second per key; 0 disables
    rate_burst: float | None = None  # default 2 x rate_limit
    fetch_enabled: bool = False
    fetch_allowed_hosts: tuple[str, ...] = ()
    fetch_max_bytes: int | None = None  # default: max_upload_bytes
    fetch_timeout_s: float = 10.0
    hma_allowlist: tuple[str, ...] = ()
    sync_interval_s: float = 1.0
    ready_max_lag_s: float = 5.0
    key_cache_s: float = 2.0
    decode_timeout_s: float = 30.0
    max_pixels: int = 100_000_000
    threads: int = 40
    log_level: str = "INFO"
    demo: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # for other modules' options

    def __post_init__(self) -> None:
        parse_networks(self.hma_allowlist)  # validate early
        if self.max_upload_bytes <= 0 or self.max_json_bytes <= 0 or self.max_import_bytes <= 0:
            raise SettingsError("size limits must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``env`` (default ``os.environ``); ``overrides`` win."""
        e = os.environ if env is None else env
        upload = _int(e, "MAX_UPLOAD_BYTES", 50 * MiB, 1)
        rate = _float(e, "RATE_LIMIT", 100.0)
        burst_raw = _env(e, "RATE_BURST")
        values: dict[str, Any] = dict(
            database_url=_env(e, "DATABASE_URL") or database_url(),
            max_upload_bytes=upload,
            max_json_bytes=_int(e, "MAX_JSON_BYTES", 4 * MiB, 1),
            max_import_bytes=_int(e, "MAX_IMPORT_BYTES", 1024 * MiB, 1),
            rate_limit=rate,
            rate_burst=_float(e, "RATE_BURST", 0.0) if burst_raw else None,
            fetch_enabled=_bool(e, "FETCH_ENABLED", False),
            fetch_allowed_hosts=tuple(h.lower() for h in _list(e, "FETCH_ALLOWED_HOSTS")),
            fetch_max_bytes=_int(e, "FETCH_MAX_BYTES", upload, 1),
            fetch_timeout_s=_float(e, "FETCH_TIMEOUT_S", 10.0, 0.1),
            hma_allowlist=_list(e, "HMA_ALLOWLIST"),
            sync_interval_s=_float(e, "SYNC_INTERVAL_S", 1.0, 0.05),
            ready_max_lag_s=_float(e, "READY_MAX_LAG_S", 5.0, 0.1),
            key_cache_s=_float(e, "KEY_CACHE_S", 2.0),
            decode_timeout_s=_float(e, "DECODE_TIMEOUT_S", 30.0, 0.1),
            max_pixels=_int(e, "MAX_PIXELS", 100_000_000, 1),
            threads=_int(e, "THREADS", 40, 1),
            log_level=(_env(e, "LOG_LEVEL") or "INFO").upper(),
        )
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests)."""
        return replace(self, **changes)

    # ------------------------------------------------------------ derived
    @property
    def burst(self) -> float:
        return self.rate_burst if self.rate_burst else max(1.0, 2.0 * self.rate_limit)

    @property
    def fetch_limit(self) -> int:
        return self.fetch_max_bytes or self.max_upload_bytes

    @property
    def media_limits(self) -> Limits:
        """Decode limits for uploaded media."""
        return Limits(
            max_file_bytes=max(self.max_upload_bytes, self.fetch_limit),
            max_pixels=self.max_pixels,
            decode_timeout_s=self.decode_timeout_s,
        )

    @property
    def hma_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return parse_networks(self.hma_allowlist)
