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


def _register() -> None:
    from . import actions_cmd, bank_cmd, demo_cmd, hash_cmd, key_cmd, scan_cmd, serve_cmd

    hash_cmd.register(app)
    scan_cmd.register(app)
    bank_cmd.register(app)
    demo_cmd.register(app)
    serve_cmd.register(app)
    key_cmd.register(app)
    actions_cmd.register(app)


_register()

if __name__ == "__main__":  # pragma: no cover
    app()
