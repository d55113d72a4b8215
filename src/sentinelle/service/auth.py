"""Request authentication: API key -> :class:`ApiKeyInfo`, scope check, rate limit.

A key is sent as ``Authorization: Bearer snt_...`` or ``X-API-Key: snt_...``.
Failures: no key -> 401 ``missing_key``; unknown, wrong or revoked key -> 401
``invalid_key`` (the two are not told apart); key without the scope -> 403
``insufficient_scope``; over the key's rate -> 429 ``rate_limited`` with
``Retry-After``. ``admin`` implies every scope.

HMA compatibility routes may instead admit requests from the operator's
allow-list of source addresses (``SENTINELLE_HMA_ALLOWLIST``, off by default);
those get ``ApiKeyInfo(id=0, name="allowlist:<ip>", source="allowlist")`` and are
rate-limited per address with the default rate.

Key use is audited through ``state.key_audit``
(:class:`sentinelle.service.key_audit.KeyUseAuditor`): a counter bump here, a
rate-limited ``key.use`` / ``auth.key_rejected`` entry written by a background
thread.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from fastapi import HTTPException, Request
from sqlalchemy.exc import SQLAlchemyError

from .key_audit import actor_for, route_template
from .ratelimit import retry_after_header
from .state import ServiceState


@dataclass(frozen=True)
class ApiKeyInfo:
    """Who is calling: a key (``source="key"``) or an allow-listed address."""

    id: int
    name: str
    scopes: frozenset[str]
    source: str = "key"

    @property
    def actor(self) -> str:
        """The audit actor: ``key:<id>``, or ``key:allowlist:<ip>`` for an allow-listed address."""
        return actor_for(self.source, self.id, self.name)

    def has(self, scope: str) -> bool:
        """``scope`` held (``admin`` holds all; ``"*"`` asks for any valid key)."""
        return scope == "*" or "admin" in self.scopes or scope in self.scopes


def api_error(status: int, code: str, message: str, **extra: object) -> HTTPException:
    """An HTTPException rendered as ``{"error": {"code", "message", ...extra}}``.

    ``headers=`` in ``extra`` is passed on as response headers.
    """
    headers = extra.pop("headers", None)
    body = {"error": {"code": code, "message": message, **extra}}
    return HTTPException(status_code=status, detail=body, headers=headers)  # type: ignore[arg-type]


def presented_token(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def _client_ip(request: Request) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    host = request.client.host if request.client else None
    if not host:
        return None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def allow_listed(state: ServiceState, request: Request) -> ApiKeyInfo | None:
    """An allow-list identity when the client address is listed (HMA routes only)."""
    nets = state.settings.hma_networks
    if not nets:
        return None
    ip = _client_ip(request)
    if ip is None or not any(ip.version == n.version and ip in n for n in nets):
        return None
    return ApiKeyInfo(
        id=0, name=f"allowlist:{ip}", scopes=frozenset({"scan", "curate"}), source="allowlist"
    )


def _audit_use(state: ServiceState, request: Request, who: ApiKeyInfo) -> None:
    auditor = getattr(state, "key_audit", None)
    if auditor is not None:
        auditor.note_use(who.actor, route_template(request.scope))


def _audit_rejected(state: ServiceState, request: Request, token: str) -> None:
    auditor = getattr(state, "key_audit", None)
    if auditor is not None:
        ip = _client_ip(request)
        auditor.note_rejected(str(ip) if ip else "unknown", route_template(request.scope), token)


def _rate_limit(state: ServiceState, bucket: object, rate: float | None) -> None:
    s = state.settings
    r = s.rate_limit if rate is None else rate
    burst = s.burst if rate is None else max(1.0, 2.0 * r)
    wait = state.limiter.take(bucket, r, burst)
    if wait > 0:
        raise api_error(
            429,
            "rate_limited",
            f"rate limit of {r:g} requests/s exceeded; retry later",
            headers={"Retry-After": retry_after_header(wait)},
        )


def authenticate(
    state: ServiceState, request: Request, scope: str, *, allow_list: bool = False
) -> ApiKeyInfo:
    """Check the caller's key (or the HMA allow-list) for ``scope``; raise 401/403/429."""
    token = presented_token(request)
    if token is None and allow_list:
        who = allow_listed(state, request)
        if who is not None:
            if not who.has(scope):
                raise api_error(403, "insufficient_scope", f"allow-list lacks scope {scope!r}")
            _rate_limit(state, ("ip", who.name), None)
            request.state.key_id = who.name
            _audit_use(state, request, who)
            return who
    if token is None:
        raise api_error(
            401,
            "missing_key",
            "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        rec = state.keys.verify(token)
    except SQLAlchemyError:
        raise api_error(503, "database_unavailable", "cannot verify the key now") from None
    if rec is None:
        _audit_rejected(state, request, token)
        raise api_error(
            401, "invalid_key", "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    who = ApiKeyInfo(id=rec.id, name=rec.name, scopes=rec.scopes, source="key")
    request.state.key_id = rec.id
    _audit_use(state, request, who)
    if not who.has(scope):
        raise api_error(403, "insufficient_scope", f"this key lacks the {scope!r} scope")
    _rate_limit(state, rec.id, rec.rate_limit)
    return who
