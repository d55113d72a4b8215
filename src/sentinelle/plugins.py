"""The composition root's list of built-in extensions, and the loader that collects them.

As Datasette wires its built-ins through one ``DEFAULT_PLUGINS`` list, every built-in
job kind, periodic task and cross-layer hook is registered by the module that owns it,
in its ``register()`` function, and collected here from one explicit list. The service
(:func:`sentinelle.service.app.create_app`) calls :func:`load_plugins` at start-up; so
does anything else that runs jobs (tests do it in ``tests/conftest.py``). Lower layers
never import the modules listed here: :mod:`sentinelle.jobs` imports nothing above it.

A ``register()`` must be idempotent (it is called at every start-up) and must register
only; work belongs in the job, task or hook it registers. A listed module that fails to
import stops the start-up: an audit trail, a retention run or a report tick must never
switch itself off quietly.

Signal types and formats have their own built-in lists, next to their interfaces
(:data:`sentinelle.signals.signal_types.BUILTIN_SIGNAL_TYPES`,
:data:`sentinelle.formats.BUILTIN_FORMATS`); a plugin from a higher layer may add to them
from its ``register()``.
"""

from __future__ import annotations

import importlib

#: Every built-in extension module, in registration order. Each has ``register()``.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "sentinelle.actions.webhooks",  # job: webhook deliveries
    "sentinelle.actions.flood",  # job: flood_resume; periodic: flood_prune, flood_flush
    "sentinelle.evidence.retention",  # periodic: hourly scheduled deletion
    "sentinelle.reports.scheduler",  # periodic: CyberTipline tick (when configured)
    "sentinelle.reports.drafts",  # hook: report draft on a case's first confirmed item
    "sentinelle.service.api.bank_import",  # job: bank_import
    "sentinelle.exchanges.runner",  # jobs: exchange_fetch, exchange_feedback; periodic:
    # exchanges.schedule; hook: review decisions -> exchange feedback and peer feed
)


def load_plugins(names: tuple[str, ...] = DEFAULT_PLUGINS) -> list[str]:
    """Import each module of ``names`` and call its ``register()``; returns ``names``."""
    for name in names:
        register = getattr(importlib.import_module(name), "register", None)
        if not callable(register):
            raise TypeError(f"plugin module {name} has no register() function")
        register()
    return list(names)
