"""The built-in exchange types: one explicit list (Datasette's ``DEFAULT_PLUGINS`` idea).

Adding a counterpart = one module with an :class:`~.api.ExchangeAPI` subclass,
plus one line here. ``get_type("ncmec")`` returns the class.
"""

from __future__ import annotations

from importlib import import_module

from .api import ExchangeAPI, ExchangeError

#: ``type_name`` -> ``module:Class`` of every built-in exchange API.
BUILTIN_TYPES: dict[str, str] = {
    "ncmec": "sentinelle.exchanges.ncmec:NCMECExchange",
    "stopncii": "sentinelle.exchanges.stopncii:StopNCIIExchange",
    "threatexchange": "sentinelle.exchanges.threatexchange:ThreatExchangeExchange",
    "http_feed": "sentinelle.exchanges.http_feed:HttpFeedExchange",
    "sentinelle": "sentinelle.exchanges.peer:PeerExchange",
}


def type_names() -> list[str]:
    return list(BUILTIN_TYPES)


def get_type(name: str) -> type[ExchangeAPI]:
    """The :class:`ExchangeAPI` subclass for ``--type name``."""
    try:
        target = BUILTIN_TYPES[name]
    except KeyError:
        raise ExchangeError(
            f"unknown exchange type {name!r} (expected one of {', '.join(BUILTIN_TYPES)})",
            "unknown_type",
        ) from None
    module, _, attr = target.partition(":")
    cls = getattr(import_module(module), attr)
    assert issubclass(cls, ExchangeAPI) and cls.type_name == name
    return cls
