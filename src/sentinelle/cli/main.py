"""`sentinelle` command line. Each command group lives in its own module."""

from __future__ import annotations

import typer

from ..store.db import DEFAULT_DATABASE_HELP

app = typer.Typer(
    name="sentinelle",
    help=(
        "Sentinelle: match media against hash banks of known abuse material, "
        f"review and report.\n\nDatabase: {DEFAULT_DATABASE_HELP}"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


COMMAND_MODULES = (
    "hash_cmd",
    "scan_cmd",
    "bank_cmd",
    "demo_cmd",
    "serve_cmd",
    "key_cmd",
    "actions_cmd",
    "guard_cmd",
    "provenance_cmd",
    "user_cmd",
    "report_cmd",
    "audit_cmd",
    "retention_cmd",
    "model_cmd",
    "exchange_cmd",
    "backfill_cmd",
    "triage_cmd",
    "triage_vics_cmd",
)


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:  # a command module that fails to import stops the CLI
        importlib.import_module(f"{__package__}.{name}").register(app)


_register()

if __name__ == "__main__":  # pragma: no cover
    app()
